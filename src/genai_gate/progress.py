"""Rows done, rate and ETA: a bar on a terminal, a line every few seconds in a CI log.

tqdm draws the terminal bar. In a CI log its carriage returns pile up into one unreadable
line, so there the reporter prints a plain line at most every `interval` seconds.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

_LABELS = {
    "model": "model calls",
    "score": "scoring",
    "baseline-model": "baseline model calls",
    "baseline-score": "baseline scoring",
}


class Progress:
    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 5.0, enabled: bool = True
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._bars: dict[str, Any] = {}
        self._start: dict[str, float] = {}
        self._last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            self._bar(phase, done, total)
            return
        now = time.monotonic()
        start = self._start.setdefault(phase, now)
        self._last = self._last or now
        if done < total and now - self._last < self.interval:
            return
        if done == total and total < 50 and now - start < self.interval:
            return  # small and quick: a line would only be noise
        self._last = now
        elapsed = max(now - start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        label = _LABELS.get(phase, phase)
        print(
            f"{label}: {done}/{total} rows ({100 * done / total:.0f}%), {rate:.1f} rows/s, "
            f"ETA {eta:.0f} s",
            file=self.stream,
            flush=True,
        )

    def _bar(self, phase: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self._bars.get(phase)
        if bar is None:
            bar = tqdm(
                total=total,
                desc=_LABELS.get(phase, phase),
                unit="row",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )
            self._bars[phase] = bar
        bar.update(done - bar.n)
        if done >= total:
            bar.close()


class ProgressFile:
    """Progress also written to a JSON file, at most once a second and at each phase's end:
    the row counter a Databricks job leaves for the run that submitted it (run-on:
    databricks) to read while the job runs."""

    def __init__(self, path: Path, inner: Callable[[str, int, int], None]) -> None:
        self.path = path
        self.inner = inner
        self._last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.inner(phase, done, total)
        now = time.monotonic()
        if done < total and now - self._last < 1.0:
            return
        self._last = now
        doc = {"phase": _LABELS.get(phase, phase), "done": done, "total": total}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with contextlib.suppress(OSError):  # a counter must never fail the eval
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc), encoding="utf-8")
            tmp.replace(self.path)

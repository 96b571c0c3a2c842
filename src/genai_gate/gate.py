"""Thresholds + metrics + row errors -> Verdict. Pure, and closed by default.

A missing or NaN metric fails; every failure is listed, not only the first. MLflow's own
evaluation returns `metrics == {}` when a judge is unreachable, without raising, so nothing
here may treat "absent" as "fine".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genai_gate.thresholds import Threshold


@dataclass(frozen=True)
class Check:
    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class RowError:
    where: str
    stage: str  # "model" or the scorer's name
    message: str


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[Check, ...]
    failures: tuple[str, ...]


def check_threshold(t: Threshold, metrics: Mapping[str, float]) -> Check:
    value = metrics.get(t.metric)
    if value is None:
        return Check(
            t.metric,
            t.op,
            t.value,
            None,
            False,
            f"{t.metric} was not produced: no row could be scored for it",
        )
    if math.isnan(value):
        return Check(t.metric, t.op, t.value, None, False, f"{t.metric} is NaN")
    ok = t.holds(value)
    verb = "meets" if ok else "misses"
    return Check(
        t.metric, t.op, t.value, value, ok, f"{t.metric} = {value:.4g} {verb} {t.describe()}"
    )


def decide(
    thresholds: Sequence[Threshold],
    metrics: Mapping[str, float],
    *,
    rows: int,
    row_errors: Sequence[RowError],
    allowed_errors: int,
) -> Verdict:
    checks = tuple(check_threshold(t, metrics) for t in thresholds)
    failures = [c.reason for c in checks if not c.passed]
    errored = len({e.where for e in row_errors})
    if errored > allowed_errors:
        sample = "; ".join(
            f"{e.where} ({e.stage}): {e.message.splitlines()[0]}" for e in row_errors[:3]
        )
        more = f" and {len(row_errors) - 3} more" if len(row_errors) > 3 else ""
        failures.append(
            f"{errored} of {rows} rows failed, and max-errors allows {allowed_errors}: "
            f"{sample}{more}"
        )
    if rows == 0:
        failures.append("no rows were evaluated")
    return Verdict(passed=not failures, checks=checks, failures=tuple(failures))

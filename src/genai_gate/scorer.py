"""What every scorer shares, with no I/O and no MLflow import: the bound scorer, the
aggregations, and how an answer and its references are read as text.

`builtin`, `semantic`, `registry` and the runner all read these, so they live below them.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# MLflow's key for the reference answer; its Correctness judge reads it too.
EXPECTED_KEY = "expected_response"


class LazyScorer:
    """An MLflow scorer built on first use.

    Importing MLflow takes about 1.1 s, most of the time to a remote model's first request;
    the scorers are not needed before its first answer. So the config is checked up front
    (every problem, before any call), the MLflow objects are built on a thread while the first
    calls are in flight (`mlflow_loading`), and a row waits for them only if its answer
    comes back first. A build that fails fails every row that needs it: never a pass."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: Any = None
        self._error: BaseException | None = None

    def get(self) -> Any:
        if self._built is not None:  # every row's every scorer asks: no lock once built
            return self._built
        with self._lock:
            if self._built is None and self._error is None:
                try:
                    self._built = self._build()
                except ImportError:
                    raise  # not kept: the next row asks again
                except Exception as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._built


def build_scorers_now(scorers: Sequence[BoundScorer]) -> list[str]:
    """Build the lazy scorers; the problems, one a scorer that MLflow would not build."""
    problems = []
    for s in scorers:
        if isinstance(s.scorer, LazyScorer):
            try:
                s.scorer.get()
            except Exception as exc:
                problems.append(f"scorers: {s.name}: MLflow would not build it: {exc}")
    return problems


@dataclass(frozen=True)
class BoundScorer:
    name: str
    # an mlflow.genai.scorers.Scorer, or a LazyScorer that builds one; Any keeps mlflow out
    # of import time. Read it through `resolved`.
    scorer: Any
    aggregations: tuple[str, ...]
    needs_expectations: bool
    custom: bool
    # callable aggregations that a custom scorer brought along, by their names
    custom_aggregations: tuple[tuple[str, Any], ...] = ()
    judge: bool = False  # an MLflow LLM judge, graded by the `judge:` model
    repeat: int = 1  # judges: ask this many times ...
    min_pass: int = 1  # ... and pass the row when this many verdicts say yes
    needs_context: bool = False  # reads the row's retrieved context (a RETRIEVER span)
    # called once with every scorable row's (outputs, expectations) before rows are scored
    prepare: Callable[[list[tuple[Any, dict[str, Any] | None]]], None] | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(f"{self.name}/{a}" for a in self.aggregations)

    @property
    def resolved(self) -> Any:
        """The MLflow scorer itself (built now if it was not yet)."""
        return self.scorer.get() if isinstance(self.scorer, LazyScorer) else self.scorer


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces (what
    exact_match and token_f1 compare, and the words input drift counts)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


# MLflow computes min/max/mean/median/variance/p90 itself; it names a callable aggregation by
# its __name__, so p50/p95/p99 are plain functions with those names.


def p50(values: list[float]) -> float:
    return float(np.percentile(values, 50))


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def p99(values: list[float]) -> float:
    return float(np.percentile(values, 99))


AGGREGATIONS: dict[str, str | Callable[[list[float]], float]] = {
    "min": "min",
    "max": "max",
    "mean": "mean",
    "median": "median",
    "variance": "variance",
    "p50": p50,
    "p90": "p90",
    "p95": p95,
    "p99": p99,
}

# Where genai-gate's engine leaves a row's latency with sub-millisecond precision;
# TraceInfo.execution_duration is whole milliseconds.
LATENCY_METADATA_KEY = "genai_gate.latency_ms"


class ScorerInputError(ValueError):
    """The row lacks what the scorer needs; reported as that row's scorer error."""


_TEXT_KEYS = ("content", "response", "answer", "text", "output")


def readable_text(value: Any) -> str | None:
    """The text of an answer, or None when it is not one.

    An answer is text, or a mapping we know how to read: an OpenAI-style chat or text
    completion (choices[0].message.content, choices[0].text), or a dict with one of
    content/response/answer/text/output holding text (or such a mapping in turn). Anything
    else (None, bytes, numbers, a generator, a dict of other fields) is not an answer: read
    by its printed form it would be scored as if it were one.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            first = choices[0]
            msg = first.get("message")
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                return str(msg["content"])
            if isinstance(first.get("text"), str):
                return str(first["text"])
        for key in _TEXT_KEYS:
            if key in value:
                return readable_text(value[key])
    return None


def not_an_answer(value: Any) -> str | None:
    """Why a model's return value is not an answer (a row error), or None when it is."""
    if readable_text(value) is not None:
        return None
    kind = type(value).__name__
    if isinstance(value, dict):
        shown = ", ".join(map(repr, list(value)[:8])) or "none"
        what = f"a dict with no text field (keys: {shown})"
    elif value is None:
        what = "None"
    else:
        what = f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"
    return (
        f"the model returned {what}, not text (an answer is a str, a chat completion, or a "
        "dict with content, response, answer, text or output)"
    )


def as_text(value: Any) -> str:
    if value is None:
        return ""
    text = readable_text(value)
    return text if text is not None else str(value)


def references(expectations: dict[str, Any] | None, scorer_name: str) -> list[str]:
    if not expectations:
        raise ScorerInputError(f"{scorer_name} needs an expected answer, and this row has none")
    if EXPECTED_KEY in expectations:
        ref = expectations[EXPECTED_KEY]
    elif len(expectations) == 1:
        ref = next(iter(expectations.values()))
    else:
        raise ScorerInputError(
            f"{scorer_name} reads expectations.{EXPECTED_KEY}; this row's expectations have "
            f"{sorted(expectations)}"
        )
    refs = ref if isinstance(ref, list) else [ref]
    return [as_text(r) for r in refs]


# ---- SQuAD v1.1 answer normalisation, as in its official evaluation script

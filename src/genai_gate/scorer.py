"""What every scorer shares, with no I/O and no MLflow import: the bound scorer, the
aggregations, and how an answer and its references are read as text.

`builtin`, `semantic`, `registry` and the runner all read these, so they live below them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# MLflow's key for the reference answer; its Correctness judge reads it too.
EXPECTED_KEY = "expected_response"


@dataclass(frozen=True)
class BoundScorer:
    name: str
    scorer: Any  # mlflow.genai.scorers.Scorer; Any keeps mlflow out of import time
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


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        # OpenAI-style chat completion, or a dict answer with an obvious text field
        choices = value.get("choices")
        if isinstance(choices, list) and choices:
            first = choices[0]
            if isinstance(first, dict):
                msg = first.get("message") or {}
                if isinstance(msg, dict) and "content" in msg:
                    return str(msg["content"])
                if "text" in first:
                    return str(first["text"])
        for key in ("content", "response", "answer", "text", "output"):
            if key in value:
                return as_text(value[key])
    return str(value)


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

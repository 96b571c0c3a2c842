"""Threshold syntax: `">= 0.8"`, `{at_least: 0.8}`, and the action's `metric op value` lines.

A direction is always explicit (as in MLflow's own `MetricThreshold`): a bare number
is refused, because "0.8" cannot say whether higher or lower is better.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Op = Literal[">=", "<=", ">", "<"]

_OPS: dict[str, Op] = {">=": ">=", "<=": "<=", ">": ">", "<": "<", "=>": ">=", "=<": "<="}
_EXPR = re.compile(
    r"^\s*(>=|<=|=>|=<|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(%?)\s*$"
)

# The seed pipeline's names, which MLflow never wrote, mapped to the keys it does write.
METRIC_ALIASES: dict[str, str] = {
    "answer_correctness_score": "correctness/mean",
    "answer_correctness/v1/mean": "correctness/mean",
    "latency_p50_ms": "latency/p50",
    "latency_p90_ms": "latency/p90",
    "latency_p99_ms": "latency/p99",
    "exact_match_score": "exact_match/mean",
}


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: Op
    value: float

    def holds(self, observed: float) -> bool:
        if math.isnan(observed):
            return False
        if self.op == ">=":
            return observed >= self.value
        if self.op == "<=":
            return observed <= self.value
        if self.op == ">":
            return observed > self.value
        return observed < self.value

    def describe(self) -> str:
        return f"{self.op} {self.value:g}"


THRESHOLD_HELP = """\
Write each threshold with an explicit direction:
  thresholds:
    exact_match/mean: ">= 0.6"
    latency/p50: "<= 800"          # milliseconds
    token_f1/mean: {at_least: 0.5}"""


def parse_expression(text: str) -> tuple[Op, float]:
    """`">= 0.8"` -> (">=", 0.8); `">= 80%"` -> (">=", 0.8). Raises ValueError with the reason."""
    m = _EXPR.match(text)
    if not m:
        raise ValueError(
            f'{text!r} is not a threshold; expected an operator and a number, like ">= 0.8"'
        )
    value = float(m.group(2))
    if m.group(3):
        value /= 100.0
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return _OPS[m.group(1)], value


def parse_lines(text: str) -> dict[str, str]:
    """The action's multi-line input: one `metric op value` per line; `#` starts a comment."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" in line and not re.search(r"[<>]", line.split(":", 1)[0]):
            # also accept YAML-ish `metric: ">= 0.8"` lines
            metric, expr = line.split(":", 1)
        else:
            m = re.match(r"^(\S+)\s+(.+)$", line)
            if not m:
                raise ValueError(f"line {n}: {raw.strip()!r} is not `metric op value`")
            metric, expr = m.group(1), m.group(2)
        out[metric.strip()] = expr.strip().strip("\"'")
    return out

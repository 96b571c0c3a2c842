"""Threshold syntax: `">= 0.8"`, `{at_least: 0.8}`, and the action's `metric op value` lines.

A direction is always explicit (as in MLflow's own `MetricThreshold`): a bare number
is refused, because "0.8" cannot say whether higher or lower is better.

Relative thresholds (issue #5) compare with the baseline: `{max-drop: 0.02}`,
`{max-drop-pct: 5}` or `{must-improve: true}`, next to or instead of `at-least`/`at-most`
in the same mapping. A drop means worse in the metric's direction, which comes from the
absolute limit (`at-least` means higher is better) or from `better: higher|lower`; it is
never guessed from the metric's name, for the same reason a bare number is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Op = Literal[">=", "<=", ">", "<"]
ABSOLUTE_OPS: tuple[Op, ...] = (">=", "<=", ">", "<")
Better = Literal["higher", "lower"]

_OPS: dict[str, Op] = {">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
THRESHOLD_PATTERN = r"^\s*(>=|<=|>|<)\s*" + _NUMBER + r"\s*(%?)\s*$"
_EXPR = re.compile(THRESHOLD_PATTERN)
# operators people write that are not ours, and what they most likely meant; a guess
# would silently pick a direction, so these are refused with the suggestion
_NEAR_OPS = {"=>": ">=", "=<": "<=", "≥": ">=", "≤": "<=", "==": ">=", "=": ">=", "!=": None}
_NEAR = re.compile(r"^\s*(=>|=<|≥|≤|==|!=|=)\s*" + _NUMBER + r"\s*(%?)\s*$")

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
        # NaN or an overflow is not a measurement: no limit holds for it, either way round
        if not math.isfinite(observed):
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


@dataclass(frozen=True)
class RelativeThreshold:
    """A limit on the change against the baseline, measured in the metric's better direction.

    Exactly one rule: `max_drop` (in the metric's units), `max_drop_pct` (percent of the
    baseline's value) or `must_improve` (the candidate must be significantly better).
    """

    metric: str
    better: Better
    max_drop: float | None = None
    max_drop_pct: float | None = None
    must_improve: bool = False

    @property
    def op(self) -> str:
        if self.must_improve:
            return "must-improve"
        return "max-drop" if self.max_drop is not None else "max-drop-pct"

    @property
    def limit(self) -> float:
        if self.must_improve:
            return 0.0
        return self.max_drop if self.max_drop is not None else float(self.max_drop_pct or 0.0)

    def allowed_drop(self, baseline: float) -> float:
        """How much worse than `baseline` the candidate may be, in the metric's units."""
        if self.must_improve:
            return 0.0
        if self.max_drop is not None:
            return self.max_drop
        return abs(baseline) * float(self.max_drop_pct or 0.0) / 100.0

    def describe(self) -> str:
        if self.must_improve:
            return f"must-improve ({self.better} is better)"
        unit = "%" if self.max_drop is None else ""
        return f"{self.op} {self.limit:g}{unit} ({self.better} is better)"


THRESHOLD_HELP = """\
Write each threshold with an explicit direction:
  thresholds:
    exact_match/mean: ">= 0.6"
    latency/p50: "<= 800"          # milliseconds
    token_f1/mean: {at-least: 0.5}
Against the baseline (see baseline:), next to or instead of the absolute limit:
    token_f1/mean: {at-least: 0.5, max-drop: 0.02}
    latency/p90: {better: lower, max-drop-pct: 10}
    correctness/mean: {better: higher, must-improve: true}"""


def parse_expression(text: str) -> tuple[Op, float]:
    """`">= 0.8"` -> (">=", 0.8); `">= 80%"` -> (">=", 0.8). Raises ValueError with the reason."""
    m = _EXPR.match(text)
    near = None if m else _NEAR.match(text)
    if near:
        meant = _NEAR_OPS[near.group(1)]
        number = near.group(2) + near.group(3)
        suggestion = (
            f'; did you mean "{meant} {number}"?'
            if meant
            else f'; write ">= {number}" or "<= {number}"'
        )
        raise ValueError(
            f"{text!r}: {near.group(1)!r} is not a threshold operator (>=, <=, >, <){suggestion}"
        )
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


def parse_lines(text: str) -> dict[str, str | dict[str, object]]:
    """The action's multi-line input: one `metric op value` per line; `#` starts a comment.

    A line may also hold the mapping form, `metric {max-drop: 0.02, better: higher}`.
    """
    out: dict[str, str | dict[str, object]] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "{" in line:
            metric, _, rest = line.partition("{")
            _put(out, metric.strip().rstrip(":").strip(), _flow_mapping(n, "{" + rest), n)
            continue
        if ":" in line and not re.search(r"[<>]", line.split(":", 1)[0]):
            # also accept YAML-ish `metric: ">= 0.8"` lines
            metric, expr = line.split(":", 1)
        else:
            m = re.match(r"^(\S+)\s+(.+)$", line)
            if not m:
                raise ValueError(f"line {n}: {raw.strip()!r} is not `metric op value`")
            metric, expr = m.group(1), m.group(2)
        _put(out, metric.strip(), expr.strip().strip("\"'"), n)
    return out


def _put(out: dict[str, str | dict[str, object]], metric: str, spec: object, n: int) -> None:
    # two lines for one metric would keep the last in silence, like a YAML duplicate key
    if metric in out:
        raise ValueError(f"line {n}: {metric!r} is given twice")
    out[metric] = spec  # type: ignore[assignment]


def _flow_mapping(n: int, text: str) -> dict[str, object]:
    import yaml

    from genai_gate import strict_yaml

    try:
        loaded = strict_yaml.load(text)
    except (yaml.YAMLError, ValueError):
        loaded = None
    if not isinstance(loaded, dict):
        raise ValueError(f"line {n}: {text!r} is not a mapping like {{max-drop: 0.02}}")
    return {str(k): v for k, v in loaded.items()}

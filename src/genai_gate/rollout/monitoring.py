"""The monitor's verdict on the champion: its current window against a reference. Pure.

Each side (`Side`) is what was measured: the window's health (errors, p50/p95/p99), the
judged sample's scores and the prompts. The reference is the gate's own eval run of the
version now serving (its rows: scores, prompts, errors), or an earlier window of the same
table (everything, latency included).

The rules use the thresholds' syntax (thresholds.py): an absolute limit on the current value
(`errors/rate: "<= 0.02"`), or a limit on the change against the reference in the metric's
better direction (`safety/mean: {max-drop: 0.05}`), decided by the gate's own
`check_relative` on an interval from compare.py's bootstrap. So "quality fell by more than
X" is said only when the whole 95% interval of the change lies beyond X; an interval that
straddles X is inconclusive and raises nothing. Errors, known only as counts, get the same
bootstrap through `rate_interval` (binomial draws). Latency percentiles are compared on a
sample of each side's durations, and only against a window: an eval run's latency is its
client's (a local model, another network), not the endpoint's.

Input drift (drift.py) is decided on its statistic's limit (KS's D, the PSI), and for KS
also on its p-value (`alpha`): a gap that size must be unlikely to be chance.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from genai_gate.compare import (
    CONFIDENCE,
    MIN_PAIRS,
    RESAMPLES,
    Comparison,
    statistic,
    unpaired_interval,
)
from genai_gate.gate import check_relative, check_threshold
from genai_gate.rollout.drift import INPUT_METRICS, PROMPT_LENGTH, WORDS, TwoSample, input_drift
from genai_gate.thresholds import Better, RelativeThreshold, Threshold

Kind = Literal["quality", "health", "input"]
Status = Literal["ok", "drift", "inconclusive", "not enough traffic", "no reference"]
Verdict = Literal["stable", "drift", "not enough traffic"]

ERROR_RATE = "errors/rate"
LATENCY = ("latency/p50", "latency/p95", "latency/p99")
HEALTH = (ERROR_RATE, *LATENCY)
# as compare.MIN_PAIRS: a bootstrap of a handful of scores is far too narrow to trust
MIN_SAMPLES = 10


@dataclass(frozen=True)
class Side:
    """What one side measured."""

    label: str
    requests: int  # window: requests served; eval run: rows
    errors: int  # window: non-200 answers; eval run: rows the model failed on
    percentiles: Mapping[str, float] = field(default_factory=dict)  # latency/p50.. in ms
    durations: tuple[float, ...] = ()  # a sample of answered requests' latency (ms)
    scores: Mapping[str, Sequence[float]] = field(default_factory=dict)  # <scorer>/mean
    prompts: tuple[str, ...] = ()
    serving_latency: bool = True  # False for an eval run: its latency is the client's

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if (rate := self.error_rate) is not None:
            out[ERROR_RATE] = rate
        if self.serving_latency:
            out.update({k: v for k, v in self.percentiles.items() if math.isfinite(v)})
        for metric, values in self.scores.items():
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                out[metric] = sum(finite) / len(finite)
        return out


@dataclass(frozen=True)
class DriftRules:
    absolute: tuple[Threshold, ...]
    relative: tuple[RelativeThreshold, ...]
    min_requests: int = 100
    min_inputs: int = 50
    alpha: float = 0.01


@dataclass(frozen=True)
class DriftCheck:
    metric: str
    kind: Kind
    rule: str  # "<= 0.02", "max-drop 0.05"
    status: Status
    value: float | None
    reference: float | None = None
    delta: float | None = None
    ci: tuple[float, float] | None = None
    pvalue: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class MonitorDecision:
    verdict: Verdict
    reason: str
    checks: tuple[DriftCheck, ...] = ()
    inputs: tuple[TwoSample, ...] = ()

    @property
    def drifted(self) -> tuple[DriftCheck, ...]:
        return tuple(c for c in self.checks if c.status == "drift")

    @property
    def model_drifted(self) -> bool:
        """Quality or health drifted: the model serves worse, so a rollback can help. Input
        drift alone is the users changing, which only retraining answers."""
        return any(c.kind != "input" for c in self.drifted)


@dataclass(frozen=True)
class Taken:
    """One action on drift and what came of it."""

    action: str  # annotate | rollback | retrain | retrain-job | retrain-dispatch | issue
    outcome: Literal["done", "skipped", "failed"]
    detail: str
    url: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "action": self.action,
            "outcome": self.outcome,
            "detail": self.detail,
            "url": self.url,
        }


def rate_interval(
    hits: int, n: int, base_hits: int, base_n: int, *, seed_key: str
) -> tuple[float, float] | None:
    """The 95% interval of rate(hits/n) - rate(base_hits/base_n), by compare.py's bootstrap
    (its resamples, confidence and minimum sample), for two 0/1 samples known only by their
    counts: resampling n values of a 0/1 sample with k ones draws a Binomial(n, k/n) count,
    so each resample is one binomial draw a side, with no row per request in memory. (It
    lives here, not in compare.py, which the verdict path's mutation testing holds as is.)"""
    if min(n, base_n) < MIN_PAIRS:
        return None
    rng = np.random.default_rng(zlib.crc32(seed_key.encode()))
    now = rng.binomial(n, hits / n, size=RESAMPLES) / n
    then = rng.binomial(base_n, base_hits / base_n, size=RESAMPLES) / base_n
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(now - then, [tail, 1.0 - tail])
    return float(low), float(high)


def kind_of(metric: str) -> Kind:
    if metric in INPUT_METRICS:
        return "input"
    return "health" if metric in HEALTH else "quality"


def default_rules(
    better: Mapping[str, Better],
    *,
    max_error_rate: float,
    max_error_rate_increase: float,
    max_latency_ratio: float,
    quality_max_drop: float,
) -> tuple[tuple[Threshold, ...], tuple[RelativeThreshold, ...]]:
    """Without `monitor`: the canary's limits, held against the reference, plus the
    conventional limits of the input tests."""
    absolute = (
        Threshold(ERROR_RATE, "<=", max_error_rate),
        Threshold(PROMPT_LENGTH, "<=", 0.1),
        Threshold(WORDS, "<=", 0.25),
    )
    relative = (
        RelativeThreshold(ERROR_RATE, "lower", max_drop=max_error_rate_increase),
        RelativeThreshold(
            "latency/p95", "lower", max_drop_pct=round((max_latency_ratio - 1) * 100, 6)
        ),
        *(RelativeThreshold(m, b, max_drop=quality_max_drop) for m, b in sorted(better.items())),
    )
    return absolute, relative


def _latency_stat(metric: str) -> str:
    return metric.rpartition("/")[2]


def _comparison(metric: str, current: Side, reference: Side) -> Comparison | str:
    """The change of one metric with its 95% interval, or why there is none."""
    cur, ref = current.metrics(), reference.metrics()
    if metric not in ref:
        if metric in LATENCY and not reference.serving_latency:
            return (
                f"{reference.label} measured its client's latency, not the endpoint's; "
                "latency is compared against a window of traffic (monitor-reference: window:..)"
            )
        return f"{reference.label} has no {metric}"
    if metric not in cur:
        return f"the current window has no {metric}"
    delta = cur[metric] - ref[metric]
    if metric == ERROR_RATE:
        ci = rate_interval(
            current.errors, current.requests, reference.errors, reference.requests, seed_key=metric
        )
        pairs = min(current.requests, reference.requests)
    elif metric in LATENCY:
        a, b = np.asarray(current.durations), np.asarray(reference.durations)
        ci = unpaired_interval(a, b, statistic(_latency_stat(metric)), seed_key=metric)
        pairs = min(len(a), len(b))
    else:
        a = np.asarray([v for v in current.scores.get(metric, ()) if math.isfinite(v)])
        b = np.asarray([v for v in reference.scores.get(metric, ()) if math.isfinite(v)])
        ci = unpaired_interval(a, b, statistic("mean"), seed_key=metric)
        pairs = min(len(a), len(b))
    return Comparison(metric, cur[metric], ref[metric], delta, ci, pairs)


def _relative(rule: RelativeThreshold, current: Side, reference: Side | None) -> DriftCheck:
    kind = kind_of(rule.metric)
    text = f"{rule.op} {rule.limit:g}" + ("%" if rule.op == "max-drop-pct" else "")
    if reference is None:
        return DriftCheck(rule.metric, kind, text, "no reference", None, detail="no reference")
    found = _comparison(rule.metric, current, reference)
    if isinstance(found, str):
        value = current.metrics().get(rule.metric)
        return DriftCheck(rule.metric, kind, text, "no reference", value, detail=found)
    # an inconclusive interval raises nothing: drift is said only when it is significant
    check = check_relative(rule, found, inconclusive="pass", baseline_label=reference.label)
    status: Status = {
        "improved": "ok",
        "within-max-drop": "ok",
        "regressed": "drift",
        "inconclusive": "inconclusive",
    }.get(check.status, "no reference")  # type: ignore[assignment]
    if status == "inconclusive" and found.ci is None:
        status = "not enough traffic"
    return DriftCheck(
        rule.metric,
        kind,
        text,
        status,
        found.candidate,
        found.baseline,
        found.delta,
        found.ci,
        detail=check.reason,
    )


def _input(rule: Threshold, test: TwoSample | None, alpha: float, min_inputs: int) -> DriftCheck:
    text = rule.describe()
    if test is None:
        return DriftCheck(rule.metric, "input", text, "no reference", None, detail="no reference")
    if not test.enough or test.statistic is None:
        return DriftCheck(
            rule.metric,
            "input",
            text,
            "not enough traffic",
            None,
            detail=f"{test.current} current and {test.reference} reference prompts; "
            f"{min_inputs} each are needed",
        )
    holds = rule.holds(test.statistic)
    significant = test.pvalue is None or test.pvalue < alpha
    drift = not holds and significant
    p = f", p = {test.pvalue:.3g} (alpha {alpha:g})" if test.pvalue is not None else ""
    verb = "beyond" if not holds else "within"
    detail = f"{rule.metric} = {test.statistic:.3g} {verb} {text}{p}"
    if not holds and not significant:
        detail += "; not significant, so no drift"
    return DriftCheck(
        rule.metric,
        "input",
        text,
        "drift" if drift else "ok",
        test.statistic,
        pvalue=test.pvalue,
        detail=f"{detail} ({test.current} vs {test.reference} prompts)",
    )


def _absolute(
    rule: Threshold, current: Side, tests: Mapping[str, TwoSample], rules: DriftRules
) -> DriftCheck:
    if rule.metric in INPUT_METRICS:
        return _input(rule, tests.get(rule.metric), rules.alpha, rules.min_inputs)
    kind = kind_of(rule.metric)
    scored = len(current.scores.get(rule.metric, ()))
    if kind == "quality" and scored < MIN_SAMPLES:
        return DriftCheck(
            rule.metric,
            kind,
            rule.describe(),
            "not enough traffic",
            None,
            detail=f"{scored} judged request(s); {MIN_SAMPLES} are needed",
        )
    check = check_threshold(rule, current.metrics())
    if check.value is None:
        return DriftCheck(
            rule.metric, kind, rule.describe(), "not enough traffic", None, detail=check.reason
        )
    return DriftCheck(
        rule.metric,
        kind,
        rule.describe(),
        "ok" if check.passed else "drift",
        check.value,
        detail=check.reason,
    )


def decide(current: Side, reference: Side | None, rules: DriftRules) -> MonitorDecision:
    if current.requests < rules.min_requests:
        return MonitorDecision(
            "not enough traffic",
            f"not enough traffic: the champion served {current.requests} request(s) in the "
            f"window, fewer than min-requests ({rules.min_requests})",
        )
    tests: dict[str, TwoSample] = {}
    if reference is not None:
        length, words = input_drift(
            current.prompts, reference.prompts, min_samples=rules.min_inputs
        )
        tests = {length.metric: length, words.metric: words}
    checks = [_absolute(r, current, tests, rules) for r in rules.absolute]
    checks += [_relative(r, current, reference) for r in rules.relative]
    drifted = [c for c in checks if c.status == "drift"]
    if drifted:
        reason = "drift: " + "; ".join(c.detail for c in drifted)
        return MonitorDecision("drift", reason, tuple(checks), tuple(tests.values()))
    held = sum(1 for c in checks if c.status == "ok")
    open_ = len(checks) - held
    reason = f"stable: {held} rule(s) hold"
    if open_:
        reason += f", {open_} could not be decided (see the table)"
    return MonitorDecision("stable", reason, tuple(checks), tuple(tests.values()))

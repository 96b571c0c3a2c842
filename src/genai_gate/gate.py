"""Thresholds + metrics + row errors (+ the comparison with a baseline) -> Verdict. Pure,
and closed by default.

A missing or NaN metric fails; every failure is listed, not only the first. MLflow's own
evaluation returns `metrics == {}` when a judge is unreachable, without raising, so nothing
here may treat "absent" as "fine". The same holds against the baseline: a rule whose
baseline value is missing fails, and says why.

Rules against the baseline (issue #5) read the 95% interval of the delta, turned into the
metric's better direction (d > 0 is better), with m the allowed drop:
- `improved`: the whole interval is above 0;
- `regressed`: the whole interval is below -m (worse than max-drop allows);
- `within-max-drop`: the whole interval is at or above -m;
- `inconclusive`: the interval straddles -m, so the data cannot tell. `inconclusive:` then
  decides: `estimate` (the default) passes when the point estimate is within -m, `pass`
  passes, `fail` fails.
Significance is measured against the margin, not against zero: a drop that is real but
smaller than max-drop is what max-drop allows (a non-inferiority test). With `max-drop: 0`
this is the plain "significant in either direction" reading. `must-improve` passes only
when `improved`: an inconclusive result is not an improvement, whatever `inconclusive:` says.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from genai_gate.compare import Comparison
from genai_gate.results import CheckDoc, RowError
from genai_gate.thresholds import ABSOLUTE_OPS, RelativeThreshold, Threshold

Inconclusive = Literal["estimate", "pass", "fail"]


@dataclass(frozen=True)
class Check:
    """One threshold's outcome. A rule against the baseline has op `max-drop`,
    `max-drop-pct` (threshold in percent) or `must-improve` (threshold 0)."""

    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    reason: str
    baseline: float | None = None
    delta: float | None = None
    ci: tuple[float, float] | None = None
    # passed | failed for absolute limits; improved | within-max-drop | inconclusive |
    # regressed | no-baseline for rules against the baseline
    status: str = ""

    @property
    def relative(self) -> bool:
        return self.op not in ABSOLUTE_OPS

    def as_dict(self) -> CheckDoc:
        return {
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
            "baseline": self.baseline,
            "delta": self.delta,
            "ci": list(self.ci) if self.ci is not None else None,
            "status": self.status or ("passed" if self.passed else "failed"),
        }


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
    if not math.isfinite(value):
        # NaN, or an aggregation that overflowed: not a measurement, whichever way the limit
        # points (and results.json holds no non-finite number)
        return Check(
            t.metric, t.op, t.value, None, False, f"{t.metric} is {value:g}, not a finite number"
        )
    ok = t.holds(value)
    verb = "meets" if ok else "misses"
    return Check(
        t.metric, t.op, t.value, value, ok, f"{t.metric} = {value:.4g} {verb} {t.describe()}"
    )


def check_relative(
    t: RelativeThreshold,
    comparison: Comparison | None,
    *,
    inconclusive: Inconclusive = "estimate",
    baseline_label: str = "the baseline",
    no_baseline: str | None = None,
) -> Check:
    """One rule against the baseline; see the module docstring for the statuses."""

    def fail(value: float | None, base: float | None, reason: str) -> Check:
        return Check(
            t.metric, t.op, t.limit, value, False, reason, baseline=base, status="no-baseline"
        )

    if comparison is None and no_baseline is not None:
        return fail(None, None, f"{t.metric} cannot be compared: {no_baseline}")
    value = comparison.candidate if comparison else None
    base = comparison.baseline if comparison else None
    if value is None or math.isnan(value):
        return fail(None, base, f"{t.metric} was not produced: no row could be scored for it")
    if base is None or math.isnan(base):
        return fail(
            value,
            None,
            f"{t.metric} has no baseline value: {baseline_label} produced no {t.metric} "
            "(its rows failed, or it was not scored with this scorer)",
        )
    assert comparison is not None
    if comparison.delta is None or math.isnan(comparison.delta):
        return fail(
            value, base, f"{t.metric}: no row was scored on both sides, so nothing is paired"
        )
    if not (math.isfinite(value) and math.isfinite(base) and math.isfinite(comparison.delta)):
        # an infinite metric or change has no drop to measure: fail closed, and keep the
        # non-finite numbers out of results.json
        return fail(
            None,
            None,
            f"{t.metric} = {value:g} against {base:g} (Δ {comparison.delta:g}): "
            "an infinite value cannot be compared",
        )
    delta, ci = comparison.delta, comparison.ci
    if ci is not None and not all(math.isfinite(x) for x in ci):
        # a custom aggregation that gave NaN or inf on some resamples: no interval is not
        # "inconclusive" (which `inconclusive: pass` would let through), it is no answer
        return fail(
            value,
            base,
            f"{t.metric}: the 95% interval of the change is not a finite number (the "
            "aggregation gave NaN or inf on some resamples), so the change cannot be judged",
        )
    sign = 1.0 if t.better == "higher" else -1.0
    gain = sign * delta  # > 0 is better
    allowed = t.allowed_drop(base)
    if ci is None:
        status = "inconclusive"
    else:
        low, high = sorted((sign * ci[0], sign * ci[1]))
        if low > 0:
            status = "improved"
        elif high < -allowed:
            status = "regressed"
        elif low >= -allowed and not t.must_improve:
            status = "within-max-drop"
        else:
            status = "inconclusive"
    if ci is not None:
        interval = f" (95% CI {ci[0]:+.4g} to {ci[1]:+.4g})"
    else:
        interval = f" (no 95% interval from {comparison.pairs} paired rows)"
    change = (
        f"{t.metric} = {value:.4g} against {base:.4g} from {baseline_label}: "
        f"Δ {delta:+.4g}{interval}"
    )
    if t.must_improve:
        passed = status == "improved"
        verdict = (
            "significantly better, as must-improve asks"
            if passed
            else f"not significantly better ({status}), and must-improve asks for that"
        )
        return Check(
            t.metric, t.op, t.limit, value, passed, f"{change}; {verdict}", base, delta, ci, status
        )
    rule = f"{t.op} {t.limit:g}" + (f"% (= {allowed:.4g})" if t.max_drop is None else "")
    if status == "improved":
        passed, verdict = True, f"better ({t.better} is better)"
    elif status == "within-max-drop":
        passed, verdict = True, f"within {rule}"
    elif status == "regressed":
        passed, verdict = False, f"worse by more than {rule} allows"
    else:
        within = gain >= -allowed
        if inconclusive == "pass":
            passed = True
        elif inconclusive == "fail":
            passed = False
        else:
            passed = within
        where = "within" if within else "beyond"
        why = "the interval reaches both sides of it" if ci else "too few rows for an interval"
        verdict = (
            f"inconclusive against {rule} ({why}); the estimate is {where} it, and "
            f"`inconclusive: {inconclusive}` {'passes' if passed else 'fails'} it"
        )
    return Check(
        t.metric, t.op, t.limit, value, passed, f"{change}; {verdict}", base, delta, ci, status
    )


def _with_comparison(check: Check, comparison: Comparison | None) -> Check:
    if comparison is None:
        return check
    return dataclasses.replace(
        check, baseline=comparison.baseline, delta=comparison.delta, ci=comparison.ci
    )


def decide(
    thresholds: Sequence[Threshold],
    metrics: Mapping[str, float],
    *,
    rows: int,
    row_errors: Sequence[RowError],
    allowed_errors: int,
    relative: Sequence[RelativeThreshold] = (),
    comparisons: Mapping[str, Comparison] | None = None,
    no_baseline: str | None = None,
    baseline_label: str = "the baseline",
    inconclusive: Inconclusive = "estimate",
) -> Verdict:
    """`comparisons` is None when nothing was compared; `no_baseline` then says why, for the
    rules against the baseline to fail with."""
    found = comparisons or {}
    checks = [
        _with_comparison(check_threshold(t, metrics), found.get(t.metric)) for t in thresholds
    ]
    checks += [
        check_relative(
            t,
            found.get(t.metric),
            inconclusive=inconclusive,
            baseline_label=baseline_label,
            no_baseline=(no_baseline or "no baseline is configured")
            if comparisons is None
            else None,
        )
        for t in relative
    ]
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
    return Verdict(passed=not failures, checks=tuple(checks), failures=tuple(failures))

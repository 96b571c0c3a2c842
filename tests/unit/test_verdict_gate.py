"""The verdict, pinned (issue #18): every check's fields and text (results.json's `checks` and
`failures`, and the job summary, show them), every rule against the baseline in both
directions on and beside its margin, each `inconclusive:` setting, and fail-closed on every
missing or non-finite number.

The numbers are binary fractions (0.25, 0.125, ...), so "exactly on the margin" is exact in
floating point; "just beside" is the neighbouring float (math.nextafter).
"""

from __future__ import annotations

import math
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genai_gate.compare import Comparison
from genai_gate.gate import Check, Inconclusive, Verdict, check_relative, check_threshold, decide
from genai_gate.results import RowError
from genai_gate.thresholds import Better, RelativeThreshold, Threshold

EM = "exact_match/mean"
LAT = "latency/p90"
SETTINGS: tuple[Inconclusive, ...] = get_args(Inconclusive)
MAX_DROP = RelativeThreshold(EM, "higher", max_drop=0.25)
NOT_PRODUCED = f"{EM} was not produced: no row could be scored for it"


def relative(
    rule: RelativeThreshold, comparison: Comparison | None, **kwargs: Any
) -> tuple[bool, str]:
    check = check_relative(rule, comparison, **kwargs)
    return check.passed, check.status


# ---------------------------------------------------------------- absolute limits


def test_a_met_and_a_missed_limit_read_as_the_report_shows_them() -> None:
    assert check_threshold(Threshold(EM, ">=", 0.6), {EM: 0.6}) == Check(
        EM, ">=", 0.6, 0.6, True, "exact_match/mean = 0.6 meets >= 0.6"
    )
    assert check_threshold(Threshold("latency/p50", "<", 800.0), {"latency/p50": 5000.0}) == (
        Check("latency/p50", "<", 800.0, 5000.0, False, "latency/p50 = 5000 misses < 800")
    )


def test_a_missing_metric_fails_its_limit() -> None:
    assert check_threshold(Threshold(EM, "<", 0.6), {"other/mean": 0.1}) == Check(
        EM, "<", 0.6, None, False, NOT_PRODUCED
    )


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
@pytest.mark.parametrize("op", [">=", ">", "<=", "<"])
def test_a_non_finite_metric_fails_every_limit(op: Any, value: float, shown: str) -> None:
    # -inf would meet `<= 800` and +inf `>= 0.6`: an overflow is not a measurement
    assert check_threshold(Threshold(EM, op, 0.6), {EM: value}) == Check(
        EM, op, 0.6, None, False, f"exact_match/mean is {shown}, not a finite number"
    )


def test_an_absolute_limit_carries_its_comparison() -> None:
    compared = Comparison(EM, 0.75, 0.875, -0.125, (-0.25, 0.0), 300)
    verdict = decide(
        [Threshold(EM, ">=", 0.6)],
        {EM: 0.75},
        rows=300,
        row_errors=[],
        allowed_errors=0,
        comparisons={EM: compared, LAT: Comparison(LAT, 1.0, 2.0, -1.0, None, 3)},
    )
    check = Check(EM, ">=", 0.6, 0.75, True, "exact_match/mean = 0.75 meets >= 0.6")
    assert verdict == Verdict(
        True,
        (Check(**{**vars(check), "baseline": 0.875, "delta": -0.125, "ci": (-0.25, 0.0)}),),
        (),
    )
    assert verdict.checks[0].as_dict() == {
        "metric": EM,
        "op": ">=",
        "threshold": 0.6,
        "value": 0.75,
        "passed": True,
        "baseline": 0.875,
        "delta": -0.125,
        "ci": [-0.25, 0.0],
        "status": "passed",
    }


def test_a_check_as_results_json_holds_it() -> None:
    failed = Check(EM, "<", 0.6, None, False, NOT_PRODUCED)
    assert failed.as_dict() == {
        "metric": EM,
        "op": "<",
        "threshold": 0.6,
        "value": None,
        "passed": False,
        "baseline": None,
        "delta": None,
        "ci": None,
        "status": "failed",
    }
    # a rule against the baseline names its own status, whatever `passed` says
    improved = Check(EM, "max-drop", 0.25, 0.9, True, "r", 0.8, 0.1, (0.05, 0.15), "improved")
    assert improved.as_dict()["status"] == "improved"
    assert improved.relative and not failed.relative
    inconclusive = Check(EM, "max-drop", 0.25, 0.9, False, "r", 0.8, 0.1, None, "inconclusive")
    assert inconclusive.as_dict()["status"] == "inconclusive"


# ---------------------------------------------------------------- the whole verdict


def _errors(count: int) -> list[RowError]:
    return [
        RowError(f"line {i}", "model", f"ValueError: boom {i}\n  the traceback")
        for i in range(1, count + 1)
    ]


@pytest.mark.parametrize(
    ("count", "listed"),
    [
        (2, "line 1 (model): ValueError: boom 1; line 2 (model): ValueError: boom 2"),
        (
            3,
            "line 1 (model): ValueError: boom 1; line 2 (model): ValueError: boom 2; "
            "line 3 (model): ValueError: boom 3",
        ),
        (
            4,
            "line 1 (model): ValueError: boom 1; line 2 (model): ValueError: boom 2; "
            "line 3 (model): ValueError: boom 3 and 1 more",
        ),
        (
            6,
            "line 1 (model): ValueError: boom 1; line 2 (model): ValueError: boom 2; "
            "line 3 (model): ValueError: boom 3 and 3 more",
        ),
    ],
)
def test_row_errors_beyond_max_errors_list_the_first_three(count: int, listed: str) -> None:
    verdict = decide([], {}, rows=10, row_errors=_errors(count), allowed_errors=count - 1)
    assert verdict.failures == (
        f"{count} of 10 rows failed, and max-errors allows {count - 1}: {listed}",
    )
    assert decide([], {}, rows=10, row_errors=_errors(count), allowed_errors=count).passed


def test_no_rows_is_its_own_failure() -> None:
    assert decide([], {}, rows=0, row_errors=[], allowed_errors=0) == Verdict(
        False, (), ("no rows were evaluated",)
    )


def test_every_failure_is_listed_in_order() -> None:
    verdict = decide(
        [Threshold(EM, ">=", 0.6), Threshold(LAT, "<=", 800.0)],
        {LAT: 900.0},
        rows=5,
        row_errors=_errors(1),
        allowed_errors=0,
        relative=[MAX_DROP],
        comparisons=None,
    )
    assert verdict.failures == (
        NOT_PRODUCED,
        "latency/p90 = 900 misses <= 800",
        "exact_match/mean cannot be compared: no baseline is configured",
        "1 of 5 rows failed, and max-errors allows 0: line 1 (model): ValueError: boom 1",
    )


def test_a_rule_without_a_comparison_of_its_metric_fails_as_not_produced() -> None:
    # a comparison ran, but not for this metric: the candidate never produced it
    verdict = decide(
        [], {}, rows=3, row_errors=[], allowed_errors=0, relative=[MAX_DROP], comparisons={}
    )
    assert verdict.checks == (
        Check(EM, "max-drop", 0.25, None, False, NOT_PRODUCED, status="no-baseline"),
    )
    named = decide(
        [],
        {},
        rows=3,
        row_errors=[],
        allowed_errors=0,
        relative=[MAX_DROP],
        comparisons=None,
        no_baseline="the baseline run has no eval_results.json",
    )
    assert named.failures == (
        "exact_match/mean cannot be compared: the baseline run has no eval_results.json",
    )


def test_decide_passes_the_label_and_the_setting_to_every_rule() -> None:
    compared = Comparison(EM, 0.5, 0.75, -0.25, (-0.5, 0.0), 300)
    default = decide(
        [],
        {EM: 0.5},
        rows=300,
        row_errors=[],
        allowed_errors=0,
        relative=[MAX_DROP],
        comparisons={EM: compared},
    )
    assert default.checks[0].reason == (
        "exact_match/mean = 0.5 against 0.75 from the baseline: Δ -0.25 (95% CI -0.5 to +0); "
        "inconclusive against max-drop 0.25 (the interval reaches both sides of it); the "
        "estimate is within it, and `inconclusive: estimate` passes it"
    )
    labelled = decide(
        [],
        {EM: 0.5},
        rows=300,
        row_errors=[],
        allowed_errors=0,
        relative=[MAX_DROP],
        comparisons={EM: compared},
        baseline_label="endpoints:/bot",
        inconclusive="fail",
    )
    assert labelled.failures == (
        "exact_match/mean = 0.5 against 0.75 from endpoints:/bot: Δ -0.25 (95% CI -0.5 to +0); "
        "inconclusive against max-drop 0.25 (the interval reaches both sides of it); the "
        "estimate is within it, and `inconclusive: fail` fails it",
    )


# ---------------------------------------------------------------- each status, as reported


def test_improved() -> None:
    compared = Comparison(EM, 0.875, 0.75, 0.125, (0.0625, 0.25), 300)
    assert check_relative(MAX_DROP, compared) == Check(
        EM,
        "max-drop",
        0.25,
        0.875,
        True,
        "exact_match/mean = 0.875 against 0.75 from the baseline: Δ +0.125 "
        "(95% CI +0.0625 to +0.25); better (higher is better)",
        0.75,
        0.125,
        (0.0625, 0.25),
        "improved",
    )


def test_within_max_drop_when_the_interval_ends_on_the_margin() -> None:
    compared = Comparison(EM, 0.625, 0.75, -0.125, (-0.25, 0.0), 300)
    assert check_relative(MAX_DROP, compared, inconclusive="fail") == Check(
        EM,
        "max-drop",
        0.25,
        0.625,
        True,
        "exact_match/mean = 0.625 against 0.75 from the baseline: Δ -0.125 "
        "(95% CI -0.25 to +0); within max-drop 0.25",
        0.75,
        -0.125,
        (-0.25, 0.0),
        "within-max-drop",
    )


def test_regressed() -> None:
    compared = Comparison(EM, 0.25, 0.75, -0.5, (-0.625, -0.375), 300)
    assert check_relative(MAX_DROP, compared, inconclusive="pass") == Check(
        EM,
        "max-drop",
        0.25,
        0.25,
        False,
        "exact_match/mean = 0.25 against 0.75 from the baseline: Δ -0.5 "
        "(95% CI -0.625 to -0.375); worse by more than max-drop 0.25 allows",
        0.75,
        -0.5,
        (-0.625, -0.375),
        "regressed",
    )


def test_inconclusive_when_the_interval_only_touches_the_margin_from_below() -> None:
    # the whole interval is at or beyond -0.25, but "regressed" needs it all beyond
    compared = Comparison(EM, 0.5, 0.75, -0.25, (-0.5, -0.25), 300)
    check = check_relative(MAX_DROP, compared)
    assert (check.passed, check.status) == (True, "inconclusive")
    assert check.reason.endswith(
        "(95% CI -0.5 to -0.25); inconclusive against max-drop 0.25 (the interval reaches "
        "both sides of it); the estimate is within it, and `inconclusive: estimate` passes it"
    )


def test_inconclusive_with_the_estimate_beyond_the_margin() -> None:
    compared = Comparison(EM, 0.375, 0.75, -0.375, (-0.625, 0.0), 300)
    assert check_relative(MAX_DROP, compared) == Check(
        EM,
        "max-drop",
        0.25,
        0.375,
        False,
        "exact_match/mean = 0.375 against 0.75 from the baseline: Δ -0.375 "
        "(95% CI -0.625 to +0); inconclusive against max-drop 0.25 (the interval reaches "
        "both sides of it); the estimate is beyond it, and `inconclusive: estimate` fails it",
        0.75,
        -0.375,
        (-0.625, 0.0),
        "inconclusive",
    )


def test_inconclusive_without_an_interval() -> None:
    compared = Comparison(EM, 0.5, 0.75, -0.25, None, 4)
    assert check_relative(MAX_DROP, compared, inconclusive="pass") == Check(
        EM,
        "max-drop",
        0.25,
        0.5,
        True,
        "exact_match/mean = 0.5 against 0.75 from the baseline: Δ -0.25 (no 95% interval "
        "from 4 paired rows); inconclusive against max-drop 0.25 (too few rows for an "
        "interval); the estimate is within it, and `inconclusive: pass` passes it",
        0.75,
        -0.25,
        None,
        "inconclusive",
    )


def test_max_drop_pct_states_its_allowance_in_the_metrics_units() -> None:
    rule = RelativeThreshold(LAT, "lower", max_drop_pct=10)
    compared = Comparison(LAT, 880.0, 800.0, 80.0, (40.0, 120.0), 300)
    assert check_relative(
        rule, compared, inconclusive="fail", baseline_label="run:abc (python:m:predict)"
    ) == Check(
        LAT,
        "max-drop-pct",
        10.0,
        880.0,
        False,
        "latency/p90 = 880 against 800 from run:abc (python:m:predict): Δ +80 "
        "(95% CI +40 to +120); inconclusive against max-drop-pct 10% (= 80) (the interval "
        "reaches both sides of it); the estimate is within it, and `inconclusive: fail` "
        "fails it",
        800.0,
        80.0,
        (40.0, 120.0),
        "inconclusive",
    )


def test_must_improve_passes_only_a_significant_gain() -> None:
    rule = RelativeThreshold(EM, "higher", must_improve=True)
    better = Comparison(EM, 0.875, 0.75, 0.125, (0.0625, 0.25), 300)
    assert check_relative(rule, better) == Check(
        EM,
        "must-improve",
        0.0,
        0.875,
        True,
        "exact_match/mean = 0.875 against 0.75 from the baseline: Δ +0.125 "
        "(95% CI +0.0625 to +0.25); significantly better, as must-improve asks",
        0.75,
        0.125,
        (0.0625, 0.25),
        "improved",
    )
    same = Comparison(EM, 0.75, 0.75, 0.0, (0.0, 0.0), 300)
    for setting in SETTINGS:
        check = check_relative(rule, same, inconclusive=setting)
        assert (check.passed, check.status) == (False, "inconclusive")
        assert check.reason == (
            "exact_match/mean = 0.75 against 0.75 from the baseline: Δ +0 (95% CI +0 to +0); "
            "not significantly better (inconclusive), and must-improve asks for that"
        )
    worse = Comparison(EM, 0.625, 0.75, -0.125, (-0.25, -0.0625), 300)
    assert relative(rule, worse, inconclusive="pass") == (False, "regressed")
    assert "not significantly better (regressed)" in check_relative(rule, worse).reason


# ---------------------------------------------------------------- on and beside the margin

# Cases in "gain" units (> 0 is better), scaled by the rule's allowance m: the estimate, the
# interval, the status, and whether `inconclusive: estimate` passes. Each is checked for
# max-drop and max-drop-pct, higher and lower is better; `pass` and `fail` then only change
# the inconclusive ones.
BELOW = -1.0000000000000002  # math.nextafter(-1.0, -inf): a hair beyond the margin
CASES = [
    ("improved", 0.5, (0.25, 0.75), "improved", True),
    ("improved, from a hair above zero", 0.5, (1e-300, 1.0), "improved", True),
    ("within, touching the margin", -0.5, (-1.0, 0.0), "within-max-drop", True),
    ("within, inside", -0.125, (-0.5, 0.25), "within-max-drop", True),
    ("within, with zero", 0.0, (-0.5, 0.0), "within-max-drop", True),
    ("a hair past the margin", -0.5, (BELOW, 0.0), "inconclusive", True),
    ("touching the margin from beyond", -1.5, (-2.0, -1.0), "inconclusive", False),
    ("straddling, estimate on the margin", -1.0, (-2.0, 0.0), "inconclusive", True),
    ("straddling, estimate a hair beyond", BELOW, (-2.0, 0.0), "inconclusive", False),
    ("straddling zero and the margin", -0.5, (-2.0, 1.0), "inconclusive", True),
    ("regressed, a hair beyond", -1.5, (-2.0, BELOW), "regressed", False),
    ("regressed", -3.0, (-4.0, -2.0), "regressed", False),
]


def _rule(kind: str, better: Better) -> tuple[RelativeThreshold, float, float]:
    """The rule, its baseline value, and its allowance m."""
    if kind == "max-drop":
        return RelativeThreshold(EM, better, max_drop=0.25), 0.75, 0.25
    return RelativeThreshold(EM, better, max_drop_pct=10), 800.0, 80.0


def _ci(a: float, b: float) -> tuple[float, float]:
    low, high = sorted((a, b))
    return low, high


def _compared(better: Better, base: float, gain: float, ci: tuple[float, float]) -> Comparison:
    sign = 1.0 if better == "higher" else -1.0
    return Comparison(
        EM, base + sign * gain, base, sign * gain, _ci(sign * ci[0], sign * ci[1]), 300
    )


@pytest.mark.parametrize("better", ["higher", "lower"])
@pytest.mark.parametrize("kind", ["max-drop", "max-drop-pct"])
@pytest.mark.parametrize(("name", "gain", "ci", "status", "estimate"), CASES)
def test_every_rule_in_both_directions_on_and_beside_its_margin(
    better: Better,
    kind: str,
    name: str,
    gain: float,
    ci: tuple[float, float],
    status: str,
    estimate: bool,
) -> None:
    rule, base, m = _rule(kind, better)
    compared = _compared(better, base, gain * m, (ci[0] * m, ci[1] * m))
    for setting in SETTINGS:
        expected = estimate
        if status == "inconclusive":
            expected = {"estimate": estimate, "pass": True, "fail": False}[setting]
        assert relative(rule, compared, inconclusive=setting) == (expected, status), setting


@pytest.mark.parametrize("better", ["higher", "lower"])
def test_a_zero_allowance_allows_no_significant_drop(better: Better) -> None:
    # `max-drop: 0` and `max-drop-pct: 0` are the plain "significantly worse" reading
    for rule in (
        RelativeThreshold(LAT, better, max_drop=0.0),
        RelativeThreshold(LAT, better, max_drop_pct=0.0),
    ):
        sign = 1.0 if better == "higher" else -1.0
        worse = Comparison(
            LAT, 800 - sign * 0.5, 800.0, -sign * 0.5, _ci(-sign * 0.25, -sign * 0.75), 300
        )
        assert relative(rule, worse) == (False, "regressed")
        touching = Comparison(LAT, 800.0, 800.0, 0.0, _ci(0.0, -sign * 0.5), 300)
        assert relative(rule, touching, inconclusive="fail") == (False, "inconclusive")
        assert relative(rule, touching) == (True, "inconclusive")


def test_the_magnitude_of_a_lower_is_better_change_is_its_own() -> None:
    # a slower p90 is a drop of exactly its size: 60 ms against an allowance of 100
    rule = RelativeThreshold(LAT, "lower", max_drop=100.0)
    inside = Comparison(LAT, 1060.0, 1000.0, 60.0, (-10.0, 80.0), 300)
    assert relative(rule, inside) == (True, "within-max-drop")
    straddling = Comparison(LAT, 1060.0, 1000.0, 60.0, (-10.0, 130.0), 300)
    assert relative(rule, straddling) == (True, "inconclusive")
    assert "the estimate is within it" in check_relative(rule, straddling).reason
    beyond = Comparison(LAT, 1120.0, 1000.0, 120.0, (90.0, 130.0), 300)
    assert relative(rule, beyond) == (False, "inconclusive")
    assert "the estimate is beyond it" in check_relative(rule, beyond).reason


# ---------------------------------------------------------------- fail closed

NON_FINITE = [math.nan, math.inf, -math.inf]


def _fails_everywhere(rule: RelativeThreshold, compared: Comparison | None, **kw: Any) -> Check:
    checks = {check_relative(rule, compared, inconclusive=s, **kw) for s in SETTINGS}
    assert len(checks) == 1  # `inconclusive:` does not rescue a comparison that cannot be made
    (check,) = checks
    assert not check.passed and check.status == "no-baseline"
    return check


def test_no_comparison_fails_and_says_why() -> None:
    assert _fails_everywhere(MAX_DROP, None, no_baseline="no credentials") == Check(
        EM,
        "max-drop",
        0.25,
        None,
        False,
        "exact_match/mean cannot be compared: no credentials",
        status="no-baseline",
    )
    assert _fails_everywhere(MAX_DROP, None) == Check(
        EM, "max-drop", 0.25, None, False, NOT_PRODUCED, status="no-baseline"
    )


def test_a_reason_not_to_compare_does_not_override_a_comparison() -> None:
    compared = Comparison(EM, 0.875, 0.75, 0.125, (0.0625, 0.25), 300)
    assert relative(MAX_DROP, compared, no_baseline="unused") == (True, "improved")


@pytest.mark.parametrize("candidate", [None, math.nan])
def test_a_missing_candidate_fails_even_when_the_change_would_pass(
    candidate: float | None,
) -> None:
    # issue #18: `value is None or isnan(value)` mutated to `and` let a NaN candidate pass
    compared = Comparison(EM, candidate, 0.75, 0.0, (-0.0625, 0.0625), 300)
    assert _fails_everywhere(MAX_DROP, compared) == Check(
        EM, "max-drop", 0.25, None, False, NOT_PRODUCED, baseline=0.75, status="no-baseline"
    )


@pytest.mark.parametrize("baseline", [None, math.nan])
def test_a_missing_baseline_value_fails_and_names_the_baseline(baseline: float | None) -> None:
    compared = Comparison(EM, 0.9, baseline, 0.0, (-0.0625, 0.0625), 300)
    assert _fails_everywhere(MAX_DROP, compared, baseline_label="run:abc") == Check(
        EM,
        "max-drop",
        0.25,
        0.9,
        False,
        "exact_match/mean has no baseline value: run:abc produced no exact_match/mean "
        "(its rows failed, or it was not scored with this scorer)",
        status="no-baseline",
    )


@pytest.mark.parametrize("delta", [None, math.nan])
def test_nothing_paired_fails_under_every_setting(delta: float | None) -> None:
    # issue #18: the same `and` mutation on the delta let a NaN delta pass `inconclusive: pass`
    compared = Comparison(EM, 0.9, 0.75, delta, None, 0)
    assert _fails_everywhere(MAX_DROP, compared) == Check(
        EM,
        "max-drop",
        0.25,
        0.9,
        False,
        "exact_match/mean: no row was scored on both sides, so nothing is paired",
        baseline=0.75,
        status="no-baseline",
    )


@pytest.mark.parametrize(
    ("candidate", "baseline", "delta", "shown"),
    [
        (math.inf, 0.75, 0.0, "inf against 0.75 (Δ 0)"),
        (-math.inf, 0.75, 0.0, "-inf against 0.75 (Δ 0)"),
        (0.75, math.inf, 0.0, "0.75 against inf (Δ 0)"),
        (0.75, -math.inf, 0.0, "0.75 against -inf (Δ 0)"),
        (0.75, 0.75, math.inf, "0.75 against 0.75 (Δ inf)"),
        (0.75, 0.75, -math.inf, "0.75 against 0.75 (Δ -inf)"),
    ],
)
@pytest.mark.parametrize("better", ["higher", "lower"])
def test_an_infinite_value_on_either_side_fails_closed(
    candidate: float, baseline: float, delta: float, shown: str, better: Better
) -> None:
    # +inf would read as "improved" one way round; no number of it reaches results.json
    rule = RelativeThreshold(EM, better, max_drop=0.25)
    compared = Comparison(EM, candidate, baseline, delta, (math.inf, math.inf), 300)
    assert _fails_everywhere(rule, compared) == Check(
        EM,
        "max-drop",
        0.25,
        None,
        False,
        f"exact_match/mean = {shown}: an infinite value cannot be compared",
        status="no-baseline",
    )


# ---------------------------------------------------------------- invariants

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
allowance = st.floats(min_value=0, max_value=1e3, allow_nan=False)


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    """A comparison whose interval holds its estimate, or has none."""
    base = draw(finite)
    delta = draw(finite)
    ci = None
    if draw(st.booleans()):
        below, above = draw(allowance), draw(allowance)
        ci = (delta - below, delta + above)
    return Comparison(EM, base + delta, base, delta, ci, 300 if ci else 5)


def _rules(better: Better, small: float, large: float, pct: bool) -> tuple[RelativeThreshold, ...]:
    if pct:
        return (
            RelativeThreshold(EM, better, max_drop_pct=small),
            RelativeThreshold(EM, better, max_drop_pct=large),
        )
    return (
        RelativeThreshold(EM, better, max_drop=small),
        RelativeThreshold(EM, better, max_drop=large),
    )


@given(
    compared=comparisons(),
    better=st.sampled_from(["higher", "lower"]),
    allowances=st.tuples(allowance, allowance).map(sorted),
    pct=st.booleans(),
    setting=st.sampled_from(SETTINGS),
)
def test_tightening_a_rule_never_turns_a_fail_into_a_pass(
    compared: Comparison, better: Better, allowances: list[float], pct: bool, setting: Any
) -> None:
    tight, loose = _rules(better, allowances[0], allowances[1], pct)
    if check_relative(tight, compared, inconclusive=setting).passed:
        assert check_relative(loose, compared, inconclusive=setting).passed


@given(
    compared=comparisons(),
    better=st.sampled_from(["higher", "lower"]),
    limit=allowance,
    pct=st.booleans(),
)
def test_a_stricter_inconclusive_setting_never_passes_more(
    compared: Comparison, better: Better, limit: float, pct: bool
) -> None:
    rule = _rules(better, limit, limit, pct)[0]
    passed = {s: check_relative(rule, compared, inconclusive=s).passed for s in SETTINGS}
    assert passed["fail"] <= passed["estimate"] <= passed["pass"]


@given(
    compared=comparisons(),
    limit=allowance,
    pct=st.booleans(),
    setting=st.sampled_from(SETTINGS),
)
def test_lower_is_better_is_higher_is_better_mirrored(
    compared: Comparison, limit: float, pct: bool, setting: Any
) -> None:
    higher = _rules("higher", limit, limit, pct)[0]
    lower = _rules("lower", limit, limit, pct)[0]
    assert compared.delta is not None and compared.baseline is not None
    ci = compared.ci
    mirrored = Comparison(
        EM,
        compared.baseline - compared.delta,
        compared.baseline,
        -compared.delta,
        (-ci[1], -ci[0]) if ci else None,
        compared.pairs,
    )
    assert relative(higher, compared, inconclusive=setting) == relative(
        lower, mirrored, inconclusive=setting
    )


@given(
    base=finite,
    better=st.sampled_from(["higher", "lower"]),
    limit=allowance,
    pct=st.booleans(),
    setting=st.sampled_from(SETTINGS),
)
def test_a_candidate_identical_to_its_baseline_never_fails_a_max_drop_rule(
    base: float, better: Better, limit: float, pct: bool, setting: Any
) -> None:
    # identical rows: a zero change with a zero interval (see test_verdict_compare.py)
    rule = _rules(better, limit, limit, pct)[0]
    assert check_relative(
        rule, Comparison(EM, base, base, 0.0, (0.0, 0.0), 300), inconclusive=setting
    ).passed


@given(
    compared=comparisons(),
    better=st.sampled_from(["higher", "lower"]),
    setting=st.sampled_from(SETTINGS),
    spoiled=st.sampled_from(["candidate", "baseline", "delta"]),
    value=st.sampled_from([None, math.nan, math.inf, -math.inf]),
)
def test_a_missing_or_non_finite_number_never_passes(
    compared: Comparison, better: Better, setting: Any, spoiled: str, value: float | None
) -> None:
    rule = RelativeThreshold(EM, better, max_drop=1e9)  # would allow anything
    broken = Comparison(**{**vars(compared), spoiled: value})
    check = check_relative(rule, broken, inconclusive=setting)
    assert not check.passed
    assert check.value is None or math.isfinite(check.value)
    assert check.baseline is None or math.isfinite(check.baseline)


@pytest.mark.parametrize("ci", [(math.nan, 0.1), (-0.1, math.inf), (-math.inf, math.nan)])
@pytest.mark.parametrize("inconclusive", get_args(Inconclusive))
def test_a_non_finite_interval_fails_whatever_inconclusive_says(
    ci: tuple[float, float], inconclusive: Inconclusive
) -> None:
    """A custom aggregation that gives NaN or inf on some resamples leaves no interval: not
    `inconclusive` (which `pass` would let through) but no answer, and results.json gets
    no NaN (it is written with allow_nan=False)."""
    compared = Comparison(EM, 0.74, 0.75, -0.01, ci, 300)
    check = check_relative(MAX_DROP, compared, inconclusive=inconclusive)
    assert check.passed is False
    assert "interval of the change is not a finite number" in check.reason
    assert compared.as_dict()["ci"] is None
    assert check.as_dict()["ci"] is None

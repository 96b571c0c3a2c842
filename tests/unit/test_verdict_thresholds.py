"""The threshold grammar, pinned (issue #18): each operator at, just above and just below its
limit, non-finite observations, the allowance of every rule against the baseline, and the
action's `metric op value` lines.

"Just above" and "just below" are the neighbouring floats (math.nextafter), so a strict and a
non-strict operator differ exactly at the limit and nowhere else.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genai_gate.thresholds import (
    Op,
    RelativeThreshold,
    Threshold,
    parse_expression,
    parse_lines,
)

LIMITS = [0.6, 800.0, 0.0, -3.5]


def _above(x: float) -> float:
    return math.nextafter(x, math.inf)


def _below(x: float) -> float:
    return math.nextafter(x, -math.inf)


# op -> does it hold (just below, at, just above) the limit
TRUTH: dict[Op, tuple[bool, bool, bool]] = {
    ">=": (False, True, True),
    ">": (False, False, True),
    "<=": (True, True, False),
    "<": (True, False, False),
}


@pytest.mark.parametrize("limit", LIMITS)
@pytest.mark.parametrize("op", list(TRUTH))
def test_every_operator_at_just_above_and_just_below_its_limit(op: Op, limit: float) -> None:
    t = Threshold("m/mean", op, limit)
    below, at, above = TRUTH[op]
    assert t.holds(_below(limit)) is below
    assert t.holds(limit) is at
    assert t.holds(_above(limit)) is above


@pytest.mark.parametrize("op", list(TRUTH))
def test_a_strict_operator_is_never_read_the_other_way(op: Op) -> None:
    # issue #18: `op == ">"` mutated to `!=` swapped both strict operators, and
    # `latency/p50 < 800` passed at 5000 ms
    t = Threshold("latency/p50", op, 800.0)
    lower_is_better = op in ("<", "<=")
    assert t.holds(5000.0) is not lower_is_better
    assert t.holds(10.0) is lower_is_better


@pytest.mark.parametrize("observed", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("op", list(TRUTH))
def test_a_non_finite_observation_never_holds(op: Op, observed: float) -> None:
    # an overflowed or undefined metric is not a measurement: fail closed, either way round
    assert Threshold("m/mean", op, 0.5).holds(observed) is False


def test_a_limit_is_described_as_written() -> None:
    assert Threshold("m/mean", ">", 0.75).describe() == "> 0.75"
    assert Threshold("latency/p50", "<=", 800.0).describe() == "<= 800"


@given(
    observed=st.floats(allow_nan=False, allow_infinity=False),
    limit=st.floats(min_value=-1e9, max_value=1e9),
    tighter=st.floats(min_value=0, max_value=1e6),
)
def test_tightening_a_limit_never_turns_a_fail_into_a_pass(
    observed: float, limit: float, tighter: float
) -> None:
    cases: list[tuple[Op, float]] = [
        (">=", limit + tighter),
        (">", limit + tighter),
        ("<=", limit - tighter),
        ("<", limit - tighter),
    ]
    for op, harder in cases:
        assert not (
            Threshold("m", op, harder).holds(observed)
            and not Threshold("m", op, limit).holds(observed)
        )


@given(
    observed=st.floats(allow_nan=False, allow_infinity=False),
    limit=st.floats(allow_nan=False, allow_infinity=False),
)
def test_strict_and_non_strict_differ_only_at_the_limit(observed: float, limit: float) -> None:
    ge, gt = Threshold("m", ">=", limit), Threshold("m", ">", limit)
    le, lt = Threshold("m", "<=", limit), Threshold("m", "<", limit)
    assert ge.holds(observed) == (gt.holds(observed) or observed == limit)
    assert le.holds(observed) == (lt.holds(observed) or observed == limit)
    # exactly one side of a limit holds, the limit itself on both non-strict sides
    assert ge.holds(observed) != lt.holds(observed)
    assert le.holds(observed) != gt.holds(observed)


# ---------------------------------------------------------------- rules against the baseline


def test_max_drop_is_an_allowance_in_the_metrics_units_whatever_the_baseline() -> None:
    rule = RelativeThreshold("token_f1/mean", "higher", max_drop=0.02)
    assert (rule.op, rule.limit) == ("max-drop", 0.02)
    assert rule.allowed_drop(0.8) == 0.02
    assert rule.allowed_drop(-5.0) == 0.02
    assert rule.describe() == "max-drop 0.02 (higher is better)"


def test_max_drop_pct_is_a_share_of_the_baselines_size() -> None:
    rule = RelativeThreshold("latency/p90", "lower", max_drop_pct=10)
    assert (rule.op, rule.limit) == ("max-drop-pct", 10.0)
    assert rule.allowed_drop(800.0) == 80.0
    assert rule.allowed_drop(-800.0) == 80.0  # a size: a negative baseline allows as much
    assert rule.allowed_drop(0.0) == 0.0
    assert rule.describe() == "max-drop-pct 10% (lower is better)"


def test_max_drop_pct_zero_is_zero_allowance() -> None:
    # issue #18: `max_drop_pct or 0.0` mutated to `or 1.0` made 0 a 1% allowance
    rule = RelativeThreshold("latency/p90", "lower", max_drop_pct=0.0)
    assert rule.allowed_drop(800.0) == 0.0
    assert rule.limit == 0.0
    assert rule.describe() == "max-drop-pct 0% (lower is better)"


def test_max_drop_zero_is_zero_allowance() -> None:
    rule = RelativeThreshold("cost/mean", "lower", max_drop=0.0)
    assert (rule.op, rule.limit, rule.allowed_drop(3.0)) == ("max-drop", 0.0, 0.0)
    assert rule.describe() == "max-drop 0 (lower is better)"


def test_must_improve_allows_no_drop() -> None:
    rule = RelativeThreshold("correctness/mean", "higher", must_improve=True)
    assert (rule.op, rule.limit, rule.allowed_drop(0.7)) == ("must-improve", 0.0, 0.0)
    assert rule.describe() == "must-improve (higher is better)"


@given(
    baseline=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    pct=st.floats(min_value=0, max_value=100, allow_nan=False),
    more=st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_a_larger_pct_never_allows_less(baseline: float, pct: float, more: float) -> None:
    small = RelativeThreshold("m", "higher", max_drop_pct=pct).allowed_drop(baseline)
    large = RelativeThreshold("m", "higher", max_drop_pct=pct + more).allowed_drop(baseline)
    assert 0.0 <= small <= large
    assert small == pytest.approx(abs(baseline) * pct / 100.0)


# ---------------------------------------------------------------- the expression grammar


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (">= 0.8", (">=", 0.8)),
        (">0.8", (">", 0.8)),
        ("< 2", ("<", 2.0)),
        ("<= -1.5e2", ("<=", -150.0)),
        (">= 80%", (">=", 0.8)),
        ("  <  .5 % ", ("<", 0.005)),
    ],
)
def test_expressions(text: str, parsed: tuple[str, float]) -> None:
    assert parse_expression(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "≥ 0.8",
            "'≥ 0.8': '≥' is not a threshold operator (>=, <=, >, <); did you mean \">= 0.8\"?",
        ),
        ("= 5%", "'= 5%': '=' is not a threshold operator (>=, <=, >, <); did you mean \">= 5%\"?"),
        (
            "!= 1",
            "'!= 1': '!=' is not a threshold operator (>=, <=, >, <); write \">= 1\" or \"<= 1\"",
        ),
        ("0.8", "'0.8' is not a threshold; expected an operator and a number, like \">= 0.8\""),
        (">= 1e999", "'>= 1e999' is not a finite number"),
    ],
)
def test_a_refused_expression_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_expression(text)
    assert str(err.value) == message


# ---------------------------------------------------------------- the action's lines


def test_a_comment_ends_a_line_at_its_first_hash() -> None:
    assert parse_lines("m/mean >= 0.5 # was 0.4 # then 0.3\n") == {"m/mean": ">= 0.5"}


def test_a_yaml_style_line_splits_at_its_first_colon() -> None:
    # the value keeps any later colon; parse_expression then refuses it with the line's text
    assert parse_lines("m/mean: '>= 0.5': x\n") == {"m/mean": ">= 0.5': x"}
    # a colon after an operator is not a YAML key: the line is `metric op value`
    assert parse_lines("m/mean >= 0.5 :x\n") == {"m/mean": ">= 0.5 :x"}
    assert parse_lines("m/mean <= 1:2\n") == {"m/mean": "<= 1:2"}


def test_only_quotes_are_stripped_from_a_value() -> None:
    assert parse_lines("a/mean \"<= 3\"\nb/mean: 'X>= 1X'\n") == {
        "a/mean": "<= 3",
        "b/mean": "X>= 1X",
    }


def test_a_mapping_line_keeps_its_metric_and_braces() -> None:
    assert parse_lines("m/mean: {max-drop: 0.02, better: higher}\n") == {
        "m/mean": {"max-drop": 0.02, "better": "higher"}
    }
    # the first brace opens the mapping, and a nested one belongs to it
    assert parse_lines("m/mean {a: {b: 1}}\n") == {"m/mean": {"a": {"b": 1}}}
    # a custom aggregation's name may end in any letter; only a colon is trimmed
    assert parse_lines("judge/top_X {max-drop: 1, better: higher}\n") == {
        "judge/top_X": {"max-drop": 1, "better": "higher"}
    }


def test_a_mapping_line_given_twice_names_its_line() -> None:
    with pytest.raises(ValueError, match=r"^line 3: 'm/mean' is given twice$"):
        parse_lines("m/mean {max-drop: 1, better: lower}\n\nm/mean {max-drop: 2, better: lower}\n")


@pytest.mark.parametrize("text", ["{a: 1", "{a: [1}", "{a: 1} {b: 2}"])
def test_a_mapping_line_must_hold_a_mapping(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a mapping like \{max-drop: 0.02\}"):
        parse_lines(f"m/mean {text}\n")

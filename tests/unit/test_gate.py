from __future__ import annotations

import math

import pytest

from genai_gate.gate import decide
from genai_gate.results import RowError
from genai_gate.thresholds import Threshold, parse_expression, parse_lines

T_EM = Threshold("exact_match/mean", ">=", 0.6)
T_LAT = Threshold("latency/p50", "<=", 800.0)


def test_passes_when_every_threshold_holds() -> None:
    v = decide(
        [T_EM, T_LAT],
        {"exact_match/mean": 0.6, "latency/p50": 800.0},
        rows=10,
        row_errors=[],
        allowed_errors=0,
    )
    assert v.passed
    assert [c.passed for c in v.checks] == [True, True]
    assert v.failures == ()


def test_every_failure_is_reported_not_just_the_first() -> None:
    v = decide(
        [T_EM, T_LAT],
        {"exact_match/mean": 0.1, "latency/p50": 900.0},
        rows=10,
        row_errors=[],
        allowed_errors=0,
    )
    assert not v.passed
    assert len(v.failures) == 2
    assert "exact_match/mean = 0.1 misses >= 0.6" in v.failures[0]
    assert "latency/p50 = 900 misses <= 800" in v.failures[1]


@pytest.mark.parametrize("metrics", [{}, {"exact_match/mean": math.nan}])
def test_missing_or_nan_metric_fails_closed(metrics: dict[str, float]) -> None:
    v = decide([T_EM], metrics, rows=3, row_errors=[], allowed_errors=0)
    assert not v.passed
    assert v.checks[0].value is None
    assert "exact_match/mean" in v.failures[0]


def test_row_errors_fail_unless_allowed() -> None:
    errors = [
        RowError("line 3", "model", "ValueError: boom"),
        RowError("line 3", "token_f1", "KeyError"),
    ]
    failed = decide([T_EM], {"exact_match/mean": 1.0}, rows=4, row_errors=errors, allowed_errors=0)
    assert not failed.passed
    assert "1 of 4 rows failed, and max-errors allows 0" in failed.failures[0]
    assert "line 3 (model): ValueError: boom" in failed.failures[0]
    allowed = decide([T_EM], {"exact_match/mean": 1.0}, rows=4, row_errors=errors, allowed_errors=1)
    assert allowed.passed


def test_no_rows_never_passes() -> None:
    assert not decide([], {}, rows=0, row_errors=[], allowed_errors=0).passed


@pytest.mark.parametrize(
    ("op", "value", "observed", "holds"),
    [
        (">=", 1, 1, True),
        (">", 1, 1, False),
        ("<=", 1, 1, True),
        ("<", 1, 1, False),
        (">=", 1, math.nan, False),
        ("<=", 1, math.nan, False),
    ],
)
def test_operators(op: str, value: float, observed: float, holds: bool) -> None:
    assert Threshold("m/mean", op, value).holds(observed) is holds  # type: ignore[arg-type]


def test_expression_parsing() -> None:
    assert parse_expression(">= 0.8") == (">=", 0.8)
    assert parse_expression("<=800") == ("<=", 800.0)
    assert parse_expression(">= 1e-3") == (">=", 0.001)
    # issue #12: a near-miss operator is refused with what it most likely meant, not guessed
    with pytest.raises(ValueError, match='did you mean ">= 1e-3"'):
        parse_expression("=> 1e-3")
    with pytest.raises(ValueError, match='did you mean "<= 5"'):
        parse_expression("=< 5")
    assert parse_expression("> 75%") == (">", 0.75)
    for bad in ("0.8", ">= ", "== 1", ">= nan", "at least 3"):
        with pytest.raises(ValueError):
            parse_expression(bad)


def test_action_lines_refuse_a_metric_given_twice() -> None:
    with pytest.raises(ValueError, match="line 2: 'exact_match/mean' is given twice"):
        parse_lines("exact_match/mean >= 0.9\nexact_match/mean >= 0.1\n")


def test_action_lines() -> None:
    text = (
        "exact_match/mean >= 0.6\n\n# comment\nlatency/p50 <= 800  # ms\ntoken_f1/mean: '>= .5'\n"
    )
    assert parse_lines(text) == {
        "exact_match/mean": ">= 0.6",
        "latency/p50": "<= 800",
        "token_f1/mean": ">= .5",
    }
    with pytest.raises(ValueError, match="line 1"):
        parse_lines("justonetoken")


def test_action_lines_take_the_mapping_form() -> None:
    text = "token_f1/mean {max-drop: 0.02, better: higher}\nlatency/p90: {at-most: 900}\n"
    assert parse_lines(text) == {
        "token_f1/mean": {"max-drop": 0.02, "better": "higher"},
        "latency/p90": {"at-most": 900},
    }
    with pytest.raises(ValueError, match=r"line 1: .* is not a mapping"):
        parse_lines("token_f1/mean {max-drop: [0.02}")

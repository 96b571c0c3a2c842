"""compare.py and the gate's rules against a baseline, on synthetic pairs with a known effect.

Every case is seeded, so each assertion is about one fixed draw: the gate must catch a
5-point drop on 300 rows and must not flag the same rows without an effect.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from genai_gate.compare import (
    Comparison,
    compare,
    pair_rows,
    paired_interval,
    regressed_rows,
    statistic,
)
from genai_gate.evaluate import compute_metrics
from genai_gate.gate import check_relative, decide
from genai_gate.results import RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.thresholds import RelativeThreshold, Threshold

N = 300
EXACT = BoundScorer("exact_match", None, ("mean",), True, False)
F1 = BoundScorer("token_f1", None, ("mean", "median", "min"), True, False)
LATENCY = BoundScorer("latency", None, ("mean", "p50", "p90", "p99", "max"), False, False)
SCORERS = (EXACT, F1, LATENCY)


def rows(**columns: Any) -> tuple[RowResult, ...]:
    """One RowResult per row; each keyword is a scorer name -> per-row values."""
    n = len(next(iter(columns.values())))
    return tuple(
        RowResult(
            index=i,
            where=f"line {i + 1}",
            inputs={"question": f"q{i}"},
            expectations={"expected_response": "a"},
            outputs=f"answer {i}",
            latency_ms=None,
            error=None,
            scores={name: float(values[i]) for name, values in columns.items()},
        )
        for i in range(n)
    )


def comparisons(cand: tuple[RowResult, ...], base: tuple[RowResult, ...]) -> dict[str, Comparison]:
    return compare(
        pair_rows(cand, base),
        SCORERS,
        compute_metrics(cand, SCORERS),
        compute_metrics(base, SCORERS),
    )


def baseline_passes(seed: int = 7, p: float = 0.85) -> np.ndarray:
    return (np.random.default_rng(seed).random(N) < p).astype(float)


def flip(values: np.ndarray, count: int, to: float, seed: int) -> np.ndarray:
    """`count` rows that were not `to` become `to`: a known, paired effect."""
    out = values.copy()
    candidates = np.flatnonzero(out != to)
    out[np.random.default_rng(seed).choice(candidates, size=count, replace=False)] = to
    return out


MAX_DROP = RelativeThreshold("exact_match/mean", "higher", max_drop=0.02)


def gate(
    cand: tuple[RowResult, ...],
    base: tuple[RowResult, ...],
    *rules: RelativeThreshold,
    inconclusive: Any = "estimate",
) -> Any:
    return decide(
        [],
        compute_metrics(cand, SCORERS),
        rows=len(cand),
        row_errors=[],
        allowed_errors=0,
        relative=rules or (MAX_DROP,),
        comparisons=comparisons(cand, base),
        inconclusive=inconclusive,
    )


# ---------------------------------------------------------------- the two cases


def test_a_five_point_drop_on_300_rows_is_caught() -> None:
    base = baseline_passes()
    cand = flip(base, 15, 0.0, seed=1)  # 15 of 300 rows now fail: -0.05
    verdict = gate(rows(exact_match=cand), rows(exact_match=base))
    check = verdict.checks[0]
    assert not verdict.passed
    assert check.delta == pytest.approx(-0.05)
    assert check.ci is not None and check.ci[1] < -0.02  # significantly beyond max-drop
    assert check.status == "regressed"
    assert "worse by more than max-drop 0.02 allows" in verdict.failures[0]


def test_a_five_point_drop_hidden_in_noise_still_fails_by_default() -> None:
    # both sides wrong on different rows: 40 rows lost, 25 gained, net -0.05
    base = baseline_passes()
    cand = flip(flip(base, 40, 0.0, seed=2), 25, 1.0, seed=3)
    strict = gate(rows(exact_match=cand), rows(exact_match=base))
    check = strict.checks[0]
    assert check.delta == pytest.approx(-0.05)
    assert check.status == "inconclusive"  # the interval reaches past -0.02 and above it
    assert not strict.passed  # the estimate is beyond max-drop: the default fails it
    assert "`inconclusive: estimate` fails it" in strict.failures[0]
    lenient = gate(rows(exact_match=cand), rows(exact_match=base), inconclusive="pass")
    assert lenient.passed and lenient.checks[0].status == "inconclusive"


def test_no_effect_on_the_same_300_rows_is_not_flagged() -> None:
    base = baseline_passes()
    cand = flip(flip(base, 12, 0.0, seed=4), 12, 1.0, seed=5)  # as many lost as gained
    verdict = gate(rows(exact_match=cand), rows(exact_match=base))
    assert verdict.passed, verdict.failures
    assert verdict.checks[0].delta == pytest.approx(0.0)


def test_no_effect_on_a_continuous_score_is_within_max_drop() -> None:
    rng = np.random.default_rng(11)
    base = rng.beta(5, 2, N)
    cand = np.clip(base + rng.normal(0, 0.05, N), 0, 1)
    rule = RelativeThreshold("token_f1/mean", "higher", max_drop=0.02)
    verdict = gate(rows(token_f1=cand), rows(token_f1=base), rule)
    assert verdict.passed
    assert verdict.checks[0].status == "within-max-drop"


def test_a_slower_p90_is_caught_and_a_faster_one_is_an_improvement() -> None:
    rng = np.random.default_rng(12)
    base = rng.lognormal(6, 0.4, N)
    rule = RelativeThreshold("latency/p90", "lower", max_drop_pct=10)
    slower = gate(rows(latency=base * 1.3), rows(latency=base), rule)
    assert not slower.passed and slower.checks[0].status == "regressed"
    assert "max-drop-pct 10% (= " in slower.failures[0]
    faster = gate(rows(latency=base * 0.7), rows(latency=base), rule)
    assert faster.passed and faster.checks[0].status == "improved"
    same = gate(rows(latency=base * rng.normal(1, 0.02, N)), rows(latency=base), rule)
    assert same.passed and same.checks[0].status == "within-max-drop"


def test_must_improve_needs_a_significant_gain() -> None:
    base = baseline_passes(p=0.7)
    rule = RelativeThreshold("exact_match/mean", "higher", must_improve=True)
    better = gate(rows(exact_match=flip(base, 15, 1.0, seed=6)), rows(exact_match=base), rule)
    assert better.passed and better.checks[0].status == "improved"
    same = gate(rows(exact_match=base), rows(exact_match=base), rule)
    assert not same.passed
    assert "not significantly better" in same.failures[0]
    # inconclusive: never an improvement, whatever `inconclusive:` says
    noisy = flip(flip(base, 20, 1.0, seed=8), 15, 0.0, seed=9)
    lenient = gate(rows(exact_match=noisy), rows(exact_match=base), rule, inconclusive="pass")
    assert not lenient.passed and lenient.checks[0].status == "inconclusive"


# ---------------------------------------------------------------- the statistics


def test_the_interval_is_deterministic_and_independent_of_other_metrics() -> None:
    base = baseline_passes()
    cand = flip(base, 15, 0.0, seed=1)
    one = comparisons(rows(exact_match=cand), rows(exact_match=base))["exact_match/mean"]
    again = comparisons(
        rows(exact_match=cand, token_f1=base), rows(exact_match=base, token_f1=cand)
    )["exact_match/mean"]
    assert one == again


def test_identical_sides_have_a_zero_interval() -> None:
    base = baseline_passes()
    got = comparisons(rows(exact_match=base), rows(exact_match=base))["exact_match/mean"]
    assert (got.delta, got.ci, got.pairs) == (0.0, (0.0, 0.0), N)


def test_a_percentile_delta_is_the_difference_of_percentiles() -> None:
    rng = np.random.default_rng(13)
    base = rng.lognormal(6, 0.4, N)
    cand = base + 50.0
    got = comparisons(rows(latency=cand), rows(latency=base))
    assert got["latency/p90"].delta == pytest.approx(
        np.percentile(cand, 90) - np.percentile(base, 90)
    )
    assert got["latency/p90"].ci == pytest.approx((50.0, 50.0))


def test_the_interval_covers_the_true_difference_of_means() -> None:
    rng = np.random.default_rng(14)
    diffs = rng.normal(0.1, 1.0, 400)
    lo, hi = paired_interval(diffs, np.zeros(400), statistic("mean"), seed_key="m")  # type: ignore[misc]
    half = 1.96 * diffs.std(ddof=1) / math.sqrt(400)
    # the bootstrap agrees with the normal interval to within a few percent of its width
    assert lo == pytest.approx(diffs.mean() - half, abs=0.1 * half)
    assert hi == pytest.approx(diffs.mean() + half, abs=0.1 * half)


def test_a_handful_of_pairs_has_no_interval() -> None:
    # 3 wins in 4 rows would otherwise read as significant
    wins = np.array([1.0, 1.0, 1.0, 0.0] * 2)
    assert paired_interval(wins[:9], np.zeros(9), statistic("mean"), seed_key="m") is None
    assert paired_interval(np.ones(10), np.zeros(10), statistic("mean"), seed_key="m")
    rule = RelativeThreshold("exact_match/mean", "higher", must_improve=True)
    few = rows(exact_match=[1, 1, 1, 0])
    verdict = gate(few, rows(exact_match=[0, 0, 0, 0]), rule)
    assert not verdict.passed and verdict.checks[0].status == "inconclusive"
    assert "(no 95% interval from 4 paired rows)" in verdict.failures[0]


def test_rows_pair_by_input_not_by_position() -> None:
    base = rows(exact_match=[1, 0, 1])
    shuffled = (base[2], base[0], base[1])
    twice = (*base, base[0])  # a question asked twice pairs with its second answer too
    assert [(c.index, b.index) for c, b in pair_rows(base, shuffled)] == [(0, 0), (1, 1), (2, 2)]
    assert len(pair_rows(twice, base)) == 3
    assert len(pair_rows(twice, twice)) == 4


def test_rows_without_a_score_on_either_side_are_left_out() -> None:
    cand = rows(exact_match=[1, 1, 0, 1])
    base = list(rows(exact_match=[1, 0, 0, 1]))
    base[1] = RowResult(1, "line 2", base[1].inputs, None, None, None, "HTTP 500")
    got = comparisons(cand, tuple(base))["exact_match/mean"]
    assert got.pairs == 3
    assert got.baseline == pytest.approx(2 / 3)  # the baseline's own metric, over its rows
    assert got.delta == pytest.approx(0.0)  # paired rows only


def test_regressed_rows_list_the_worst_first() -> None:
    cand = list(rows(exact_match=[0, 1, 0, 1], token_f1=[0.2, 0.9, 0.5, 0.1]))
    base = rows(exact_match=[1, 1, 1, 1], token_f1=[0.9, 0.9, 0.6, 0.2])
    cand[3] = RowResult(3, "line 4", cand[3].inputs, None, None, None, "ValueError: boom")
    changes = regressed_rows(pair_rows(cand, base), {"exact_match": "higher", "token_f1": "higher"})
    assert [(c.candidate.where, c.worse) for c in changes] == [
        ("line 4", ("model error",)),
        ("line 1", ("exact_match", "token_f1")),
        ("line 3", ("exact_match", "token_f1")),
    ]


# ---------------------------------------------------------------- fail closed


def test_a_missing_baseline_metric_fails_closed() -> None:
    check = check_relative(
        MAX_DROP,
        Comparison("exact_match/mean", 0.9, None, None, None, 0),
        baseline_label="run:abc (python:m:predict)",
    )
    assert not check.passed and check.status == "no-baseline"
    assert "has no baseline value: run:abc (python:m:predict) produced no" in check.reason


def test_no_baseline_at_all_fails_every_rule_and_says_why() -> None:
    verdict = decide(
        [Threshold("exact_match/mean", ">=", 0.5)],
        {"exact_match/mean": 0.9},
        rows=3,
        row_errors=[],
        allowed_errors=0,
        relative=[MAX_DROP],
        comparisons=None,
        no_baseline="there are no Databricks credentials",
    )
    assert not verdict.passed
    assert [c.passed for c in verdict.checks] == [True, False]
    assert verdict.failures == (
        "exact_match/mean cannot be compared: there are no Databricks credentials",
    )


@pytest.mark.parametrize(
    ("ci", "setting", "passed", "status"),
    [
        ((0.01, 0.03), "estimate", True, "improved"),
        ((-0.015, 0.01), "estimate", True, "within-max-drop"),
        ((-0.04, -0.025), "estimate", False, "regressed"),
        ((-0.03, 0.01), "estimate", True, "inconclusive"),  # estimate -0.01 is within 0.02
        ((-0.03, 0.01), "fail", False, "inconclusive"),
        ((-0.03, 0.01), "pass", True, "inconclusive"),
    ],
)
def test_statuses(ci: tuple[float, float], setting: Any, passed: bool, status: str) -> None:
    comparison = Comparison("exact_match/mean", 0.79, 0.80, -0.01, ci, 300)
    check = check_relative(MAX_DROP, comparison, inconclusive=setting)
    assert (check.passed, check.status) == (passed, status)
    assert check.as_dict()["ci"] == list(ci)


def test_lower_is_better_turns_the_interval_around() -> None:
    rule = RelativeThreshold("latency/p90", "lower", max_drop=100.0)
    slower = Comparison("latency/p90", 1300.0, 1000.0, 300.0, (250.0, 350.0), 300)
    faster = Comparison("latency/p90", 900.0, 1000.0, -100.0, (-150.0, -50.0), 300)
    assert check_relative(rule, slower).status == "regressed"
    assert check_relative(rule, faster).status == "improved"

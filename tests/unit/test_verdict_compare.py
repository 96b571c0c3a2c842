"""The comparison with a baseline, pinned (issue #18): every aggregation's delta and interval
(the percentiles and custom aggregations included), metrics on one side only, pairing that
ignores how an input's keys are ordered, the bootstrap's mechanics, and the rows listed as
worse.

Every draw is seeded, so each assertion is about one fixed sample. Interval *coverage* is
checked by simulation in test_verdict_coverage.py.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genai_gate.compare import (
    MIN_PAIRS,
    Comparison,
    compare,
    pair_rows,
    paired_interval,
    regressed_rows,
    regression_directions,
    statistic,
    unpaired_interval,
)
from genai_gate.evaluate import compute_metrics
from genai_gate.gate import check_relative
from genai_gate.results import RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.thresholds import RelativeThreshold, Threshold

BUILTIN = ("mean", "median", "variance", "min", "max", "p50", "p90", "p95", "p99")


def trimmed_mean(values: list[float]) -> float:
    """A custom aggregation: the mean without the smallest and the largest value."""
    ordered = sorted(values)
    return float(np.mean(ordered[1:-1]))


def share_above_half(values: list[float]) -> float:
    return float(np.mean(np.asarray(values) > 0.5))


LATENCY = BoundScorer("latency", None, BUILTIN, False, False)
JUDGE = BoundScorer(
    "judge",
    None,
    ("mean", "trimmed_mean", "share_above_half"),
    False,
    True,
    custom_aggregations=(("trimmed_mean", trimmed_mean), ("share_above_half", share_above_half)),
)
EXACT = BoundScorer("exact_match", None, ("mean",), True, False)
SCORERS = (LATENCY, JUDGE, EXACT)


def row(
    i: int,
    inputs: dict[str, Any] | None = None,
    *,
    error: str | None = None,
    scores: dict[str, float] | None = None,
    **named: float,
) -> RowResult:
    """A row; `named` scores spell a slash as `__` (rubric__clarity is rubric/clarity)."""
    return RowResult(
        index=i,
        where=f"line {i + 1}",
        inputs=inputs if inputs is not None else {"question": f"q{i}"},
        expectations=None,
        outputs=f"answer {i}",
        latency_ms=None,
        error=error,
        scores={**(scores or {}), **{k.replace("__", "/"): v for k, v in named.items()}},
    )


def table(**columns: Any) -> tuple[RowResult, ...]:
    n = len(next(iter(columns.values())))
    return tuple(row(i, scores={k: float(v[i]) for k, v in columns.items()}) for i in range(n))


def compared(
    cand: tuple[RowResult, ...],
    base: tuple[RowResult, ...],
    scorers: tuple[BoundScorer, ...] = SCORERS,
) -> dict[str, Comparison]:
    return compare(
        pair_rows(cand, base),
        scorers,
        compute_metrics(cand, scorers),
        compute_metrics(base, scorers),
    )


# ---------------------------------------------------------------- every aggregation


@pytest.fixture(scope="module")
def latencies() -> dict[str, Comparison]:
    rng = np.random.default_rng(21)
    base = rng.lognormal(6, 0.5, 200)
    cand = base * rng.lognormal(0.1, 0.3, 200)
    return compared(table(latency=cand), table(latency=base))


@pytest.mark.parametrize("agg", BUILTIN)
def test_each_aggregations_delta_is_the_change_of_the_metric(
    agg: str, latencies: dict[str, Comparison]
) -> None:
    # with no row errors, delta == candidate - baseline: compare's statistic is the
    # aggregation evaluate computed, percentiles included
    got = latencies[f"latency/{agg}"]
    assert got.pairs == 200
    assert got.candidate is not None and got.baseline is not None and got.delta is not None
    assert got.delta == pytest.approx(got.candidate - got.baseline, rel=1e-12, abs=1e-9)
    assert got.ci is not None and got.ci[0] <= got.ci[1]


@pytest.mark.parametrize(("agg", "q"), [("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)])
def test_a_percentiles_delta_and_interval_against_a_baseline(agg: str, q: int) -> None:
    # issue #18: no test computed a delta or an interval for p50/p90/p95/p99
    rng = np.random.default_rng(22)
    base = rng.lognormal(6, 0.4, 300)
    slower = base * 1.25  # every request a quarter slower: each percentile too
    only = (BoundScorer("latency", None, (agg,), False, False),)
    got = compared(table(latency=slower), table(latency=base), only)[f"latency/{agg}"]
    expected = np.percentile(slower, q) - np.percentile(base, q)
    assert got.delta == pytest.approx(expected)
    assert got.ci is not None
    low, high = got.ci
    # the interval of a percentile's change brackets it, and shows a real slowdown
    assert 0 < low <= expected <= high
    assert high < 2 * expected
    # a constant shift moves every resample's percentile by exactly that shift
    shifted = compared(table(latency=base + 40.0), table(latency=base), only)[f"latency/{agg}"]
    assert shifted.delta == pytest.approx(40.0)
    assert shifted.ci == pytest.approx((40.0, 40.0))


def test_the_percentiles_are_the_ones_named() -> None:
    values = np.arange(1.0, 101.0)[None, :]  # 1..100: each percentile is distinct
    for agg, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert statistic(agg)(values).tolist() == [np.percentile(values, q)]
    assert statistic("median")(values).tolist() == [50.5]
    assert statistic("min")(values).tolist() == [1.0]
    assert statistic("max")(values).tolist() == [100.0]
    # one value per row of resamples, never one for the whole block
    block = np.vstack([values[0], values[0] * 2])
    assert statistic("p90")(block).tolist() == [
        np.percentile(values, 90),
        2 * np.percentile(values, 90),
    ]


def test_a_custom_aggregation_is_compared_with_the_scorers_own_function() -> None:
    rng = np.random.default_rng(23)
    base = rng.beta(5, 2, 80)
    cand = np.clip(base - 0.1, 0, 1)
    got = compared(table(judge=cand), table(judge=base))
    trimmed = got["judge/trimmed_mean"]
    assert trimmed.delta == pytest.approx(trimmed_mean(list(cand)) - trimmed_mean(list(base)))
    assert trimmed.candidate == pytest.approx(trimmed_mean(list(cand)))
    assert trimmed.ci is not None and trimmed.ci[1] < 0  # a real drop
    share = got["judge/share_above_half"]
    assert share.delta == pytest.approx(share_above_half(list(cand)) - share_above_half(list(base)))
    assert share.ci is not None and share.delta is not None
    assert share.ci[0] <= share.delta <= share.ci[1]
    # a constant shift, through the custom function on every resample
    trimmed_only = (
        BoundScorer("judge", None, ("trimmed_mean",), False, True, JUDGE.custom_aggregations),
    )
    shifted = compared(table(judge=base + 0.25), table(judge=base), trimmed_only)[
        "judge/trimmed_mean"
    ]
    assert shifted.ci == pytest.approx((0.25, 0.25))


def test_a_custom_aggregation_against_a_baseline_at_the_gate() -> None:
    rng = np.random.default_rng(24)
    base = rng.beta(5, 2, 60)
    rule = RelativeThreshold("judge/trimmed_mean", "higher", max_drop=0.02)
    only = (
        BoundScorer(
            "judge", None, ("trimmed_mean",), False, True, (("trimmed_mean", trimmed_mean),)
        ),
    )
    worse = compared(table(judge=np.clip(base - 0.1, 0, 1)), table(judge=base), only)
    assert check_relative(rule, worse["judge/trimmed_mean"]).status == "regressed"
    same = compared(table(judge=base), table(judge=base), only)
    assert check_relative(rule, same["judge/trimmed_mean"]).status == "within-max-drop"


def test_a_custom_statistic_runs_on_every_row_of_resamples() -> None:
    stat = statistic("anything", trimmed_mean)
    block = np.array([[1.0, 2.0, 3.0, 10.0], [0.0, 5.0, 7.0, 8.0]])
    assert stat(block).tolist() == [2.5, 6.0]
    # a custom function wins over a built-in of the same name
    assert statistic("max", trimmed_mean)(block).tolist() == [2.5, 6.0]


# ---------------------------------------------------------------- one side only, sub-scores


def test_metrics_present_on_only_one_side() -> None:
    cand = tuple(row(i, exact_match=1.0, judge=0.5) for i in range(12))
    base = tuple(row(i, exact_match=0.0, latency=100.0) for i in range(12))
    got = compared(cand, base, (EXACT, JUDGE, BoundScorer("latency", None, ("p50",), False, False)))
    assert got["judge/mean"] == Comparison("judge/mean", 0.5, None, None, None, 0)
    assert got["latency/p50"] == Comparison("latency/p50", None, 100.0, None, None, 0)
    assert got["exact_match/mean"] == Comparison("exact_match/mean", 1.0, 0.0, 1.0, (1.0, 1.0), 12)
    assert set(got) == {
        "exact_match/mean",
        "judge/mean",
        "judge/trimmed_mean",
        "judge/share_above_half",
        "latency/p50",
    }


def test_a_metric_of_a_scorer_no_longer_configured_is_listed_without_a_delta() -> None:
    # a baseline run scored with a scorer the config has dropped since
    cand = {"a_gone/mean": 0.25, "exact_match/mean": 1.0}
    base = {"a_gone/mean": 0.5, "exact_match/mean": 0.5, "zz_gone/mean": 0.5}
    pairs = pair_rows(
        tuple(row(i, exact_match=1.0) for i in range(10)),
        tuple(row(i, exact_match=float(i % 2)) for i in range(10)),
    )
    got = compare(pairs, (EXACT,), cand, base)
    assert got == {
        "a_gone/mean": Comparison("a_gone/mean", 0.25, 0.5, None, None, 0),
        "exact_match/mean": Comparison(
            "exact_match/mean", 1.0, 0.5, 0.5, got["exact_match/mean"].ci, 10
        ),
        "zz_gone/mean": Comparison("zz_gone/mean", None, 0.5, None, None, 0),
    }
    assert got["exact_match/mean"].ci is not None


def test_nothing_paired_leaves_no_delta() -> None:
    cand = tuple(row(i, exact_match=1.0) for i in range(12))
    base = tuple(row(i, error="HTTP 500") for i in range(12))
    got = compared(cand, base)["exact_match/mean"]
    assert got == Comparison("exact_match/mean", 1.0, None, None, None, 0)


def test_a_sub_score_is_compared_under_its_scorer() -> None:
    # a judge that returns several feedbacks scores `rubric/<name>`; the name may hold a slash
    rubric = BoundScorer("rubric", None, ("mean",), False, True)
    cand = tuple(row(i, rubric__clarity=1.0, rubric__tone__formal=0.0) for i in range(12))
    base = tuple(row(i, rubric__clarity=0.5, rubric__tone__formal=0.5) for i in range(12))
    got = compared(cand, base, (rubric,))
    assert got["rubric/clarity/mean"] == Comparison(
        "rubric/clarity/mean", 1.0, 0.5, 0.5, (0.5, 0.5), 12
    )
    assert got["rubric/tone/formal/mean"] == Comparison(
        "rubric/tone/formal/mean", 0.0, 0.5, -0.5, (-0.5, -0.5), 12
    )


def test_a_scorer_whose_name_has_a_slash_is_found() -> None:
    team = BoundScorer("team/judge", None, ("mean",), False, True)
    cand = tuple(row(i, team__judge=1.0) for i in range(10))
    base = tuple(row(i, team__judge=0.0) for i in range(10))
    got = compare(
        pair_rows(cand, base), (team,), {"team/judge/mean": 1.0}, {"team/judge/mean": 0.0}
    )
    assert got == {"team/judge/mean": Comparison("team/judge/mean", 1.0, 0.0, 1.0, (1.0, 1.0), 10)}


# ---------------------------------------------------------------- pairing


def test_pairing_ignores_the_order_of_an_inputs_keys() -> None:
    cand = tuple(
        row(i, {"question": f"q{i}", "context": f"c{i}", "n": i}, exact_match=1.0)
        for i in range(10)
    )
    base = tuple(
        row(9 - i, {"n": 9 - i, "context": f"c{9 - i}", "question": f"q{9 - i}"}, exact_match=0.0)
        for i in range(10)
    )
    pairs = pair_rows(cand, base)
    assert [(c.index, b.index) for c, b in pairs] == [(i, i) for i in range(10)]
    assert compared(cand, base)["exact_match/mean"].pairs == 10


def test_pairing_reads_any_input_value_and_keeps_different_inputs_apart() -> None:
    # a Parquet timestamp or a set is not JSON: it is keyed by its text
    when = dt.datetime(2026, 5, 5, 12, 0, tzinfo=dt.UTC)
    cand = (row(0, {"at": when, "q": "a"}), row(1, {"at": when, "q": "b"}), row(2, {"q": "é"}))
    base = (row(2, {"q": "é"}), row(1, {"q": "b", "at": when}), row(0, {"q": "a", "at": when}))
    assert [(c.index, b.index) for c, b in pair_rows(cand, base)] == [(0, 0), (1, 1), (2, 2)]
    assert pair_rows((row(0, {"q": "a"}),), (row(0, {"q": "A"}), row(1, {"q": "a "}))) == []


@given(
    keys=st.lists(st.sampled_from(["question", "context", "user", "n"]), min_size=1, unique=True),
    order=st.permutations(range(12)),
)
def test_pairing_survives_any_shuffle_of_rows_and_keys(keys: list[str], order: list[int]) -> None:
    cand = tuple(row(i, {k: f"{k}{i}" for k in keys}) for i in range(12))
    base = tuple(row(i, {k: f"{k}{i}" for k in reversed(keys)}) for i in order)
    assert [(c.index, b.index) for c, b in pair_rows(cand, base)] == [(i, i) for i in range(12)]


# ---------------------------------------------------------------- the bootstrap


def test_the_interval_is_seeded_by_the_metrics_name() -> None:
    rng = np.random.default_rng(25)
    cand, base = rng.normal(0.1, 1, 120), rng.normal(0, 1, 120)
    mean = statistic("mean")
    one = paired_interval(cand, base, mean, seed_key="token_f1/mean")
    assert one == paired_interval(cand.copy(), base.copy(), mean, seed_key="token_f1/mean")
    assert one != paired_interval(cand, base, mean, seed_key="token_f1/median")
    other = unpaired_interval(cand, base, mean, seed_key="token_f1/mean")
    assert other == unpaired_interval(cand.copy(), base.copy(), mean, seed_key="token_f1/mean")


@pytest.mark.parametrize("rows", [MIN_PAIRS, 401, 1000, 4001])
def test_many_rows_are_drawn_in_blocks_without_losing_a_resample(rows: int) -> None:
    # a block holds at most 2,000,000 cells: 401 rows and more take several blocks, and
    # the last block is a remainder
    rng = np.random.default_rng(26)
    base = rng.normal(0, 1, rows)
    shift = 0.3125
    assert paired_interval(base + shift, base, statistic("mean"), seed_key="m") == pytest.approx(
        (shift, shift)
    )


def test_every_resample_is_drawn_even_with_few_resamples() -> None:
    # with 7 resamples each end of the interval reads the two most extreme: one resample
    # left undrawn (whatever its memory held, from the first call say) would show
    base = np.linspace(0.0, 1.0, 12)
    for shift in (0.7182818, -0.1414213):
        got = paired_interval(base + shift, base, statistic("mean"), seed_key="m", resamples=7)
        assert got == pytest.approx((shift, shift))


def test_every_row_can_be_drawn() -> None:
    # only the first row differs: resamples that draw it reach above zero
    diffs = np.zeros(MIN_PAIRS)
    diffs[0] = 100.0
    low, high = paired_interval(diffs, np.zeros(MIN_PAIRS), statistic("mean"), seed_key="m")  # type: ignore[misc]
    assert low == 0.0 and high >= 20.0
    low, high = unpaired_interval(diffs, np.zeros(30), statistic("mean"), seed_key="m")  # type: ignore[misc]
    assert low == 0.0 and high >= 20.0
    low, high = unpaired_interval(np.zeros(30), diffs, statistic("mean"), seed_key="m")  # type: ignore[misc]
    assert low <= -20.0 and high == 0.0


@pytest.mark.parametrize("confidence", [0.5, 0.95])
def test_a_paired_interval_matches_the_normal_one_at_its_confidence(confidence: float) -> None:
    rng = np.random.default_rng(14)
    diffs = rng.normal(0.1, 1.0, 500)
    got = paired_interval(
        diffs, np.zeros(500), statistic("mean"), seed_key="m", confidence=confidence
    )
    assert got is not None
    z = {0.5: 0.6745, 0.95: 1.96}[confidence]
    half = z * diffs.std() / math.sqrt(500)
    assert got == pytest.approx((diffs.mean() - half, diffs.mean() + half), abs=0.08 * half)


@pytest.mark.parametrize("confidence", [0.5, 0.95])
def test_an_unpaired_interval_matches_the_normal_one_at_its_confidence(confidence: float) -> None:
    rng = np.random.default_rng(15)
    cand, base = rng.normal(0.3, 1.0, 400), rng.normal(0.0, 2.0, 300)
    got = unpaired_interval(cand, base, statistic("mean"), seed_key="m", confidence=confidence)
    assert got is not None
    z = {0.5: 0.6745, 0.95: 1.96}[confidence]
    half = z * math.sqrt(cand.var() / 400 + base.var() / 300)
    change = cand.mean() - base.mean()
    assert got == pytest.approx((change - half, change + half), abs=0.08 * half)


def test_fewer_than_min_pairs_on_either_side_give_no_unpaired_interval() -> None:
    ten, nine = np.ones(MIN_PAIRS), np.zeros(MIN_PAIRS - 1)
    mean = statistic("mean")
    assert unpaired_interval(ten, nine, mean, seed_key="m") is None
    assert unpaired_interval(nine, ten, mean, seed_key="m") is None
    assert unpaired_interval(ten, np.zeros(MIN_PAIRS), mean, seed_key="m") == (1.0, 1.0)
    assert unpaired_interval(np.full(25, 5.0), np.full(MIN_PAIRS, 2.0), mean, seed_key="m") == (
        3.0,
        3.0,
    )


# ---------------------------------------------------------------- results.json


def test_a_comparison_as_results_json_holds_it() -> None:
    assert Comparison("m/mean", 0.9, 0.8, 0.1, (0.05, 0.15), 30).as_dict() == {
        "metric": "m/mean",
        "candidate": 0.9,
        "baseline": 0.8,
        "delta": 0.1,
        "ci": [0.05, 0.15],
        "pairs": 30,
    }
    # JSON has no NaN or infinity: they are written as null
    assert Comparison("m/p90", math.inf, math.nan, -math.inf, None, 0).as_dict() == {
        "metric": "m/p90",
        "candidate": None,
        "baseline": None,
        "delta": None,
        "ci": None,
        "pairs": 0,
    }
    assert Comparison("m/p90", None, 0.0, None, None, 0).as_dict()["baseline"] == 0.0


# ---------------------------------------------------------------- the rows that got worse


def test_regressed_rows_order_errors_then_most_scorers_then_largest_drop() -> None:
    directions = {"a": "higher", "b": "higher", "cost": "lower"}
    cand = (
        row(0, error="boom"),  # the candidate failed where the baseline answered
        row(1, a=0.5, b=0.9),  # worse on a alone
        row(2, a=0.5, b=0.8),  # worse on a and b: 0.5 + 0.1
        row(3, a=0.95, b=0.6),  # worse on a and b: 0.05 + 0.3
        row(4, a=1.0, cost=3.0),  # worse on cost (lower is better)
        row(5, a=1.0, cost=1.0),  # better on cost
        row(6, error="boom"),
        row(7, error="both failed"),
        row(8, b=0.1),  # a missing on the candidate: b alone is worse
    )
    base = (
        row(0, a=1.0, b=1.0),
        row(1, a=1.0, b=0.9),
        row(2, a=1.0, b=0.9),
        row(3, a=1.0, b=0.9),
        row(4, a=1.0, cost=2.0),
        row(5, a=1.0, cost=2.0),
        row(6, a=1.0),
        row(7, error="HTTP 500"),
        row(8, a=1.0, b=0.9),
    )
    changes = regressed_rows(pair_rows(cand, base), directions)  # type: ignore[arg-type]
    assert [(c.candidate.index, c.baseline.index, c.worse) for c in changes] == [
        (0, 0, ("model error",)),
        (6, 6, ("model error",)),
        (2, 2, ("a", "b")),  # two scorers, 0.6 in all
        (3, 3, ("a", "b")),  # two scorers, 0.35 in all
        (4, 4, ("cost",)),  # one scorer: 1.0
        (8, 8, ("b",)),  # 0.8
        (1, 1, ("a",)),  # 0.5
    ]
    assert all(c.candidate is cand[c.candidate.index] for c in changes)
    assert all(c.baseline is base[c.baseline.index] for c in changes)


def test_regression_directions_follow_the_thresholds() -> None:
    thresholds = [
        Threshold("token_f1/mean", ">=", 0.5),
        Threshold("exact_match/mean", ">", 0.5),
        Threshold("cost/mean", "<=", 0.1),
        Threshold("toxicity/max", "<", 0.1),
        Threshold("rubric/tone/mean", ">=", 0.5),
        Threshold("latency/p50", "<=", 800),
    ]
    relative = [
        RelativeThreshold("judge/p90", "lower", max_drop=0.1),
        RelativeThreshold("rubric/clarity/mean", "higher", max_drop=0.1),
        RelativeThreshold("latency/p90", "lower", max_drop_pct=10),
    ]
    scorers = (LATENCY, EXACT)
    assert regression_directions(thresholds, relative, scorers) == {
        "token_f1": "higher",
        "exact_match": "higher",
        "cost": "lower",
        "toxicity": "lower",
        "rubric/tone": "higher",
        "judge": "lower",
        "rubric/clarity": "higher",
    }


def test_only_the_builtin_latency_is_left_out() -> None:
    custom_latency = BoundScorer("latency", None, ("p90",), False, True)
    rules = [
        Threshold("latency/p90", "<=", 800),
        Threshold("latency/ttft/p90", "<=", 200),
        Threshold("latency/ttft/first/p90", "<=", 100),
    ]
    assert regression_directions(rules, [], (custom_latency,)) == {
        "latency": "lower",
        "latency/ttft": "lower",
        "latency/ttft/first": "lower",
    }
    # with the built-in latency, nothing is left but the scorers with a reference
    assert regression_directions(rules, [], (LATENCY, EXACT, JUDGE)) == {"exact_match": "higher"}
    assert regression_directions([], [], (LATENCY,)) == {}

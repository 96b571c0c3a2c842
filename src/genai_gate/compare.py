"""Candidate against baseline, row by row: per-metric deltas with a 95% interval. Pure.

What is compared. Both sides are evaluated on the same rows with the same scorers, and rows
are paired by their inputs (the n-th occurrence of an input with the n-th). A metric's delta
is its aggregation over the candidate's paired scores minus the same aggregation over the
baseline's: the mean of the differences for `mean` (pass/fail judges are 0/1 means), the
difference of the percentiles for `p50`, `p90`, ... A row that errored, or lacks the score on
either side, is left out of that metric's pairs; `pairs` says how many remained. The
candidate and baseline values shown next to the delta are each side's own metric over all its
rows, so with no errors `delta == candidate - baseline`.

The interval is a paired percentile bootstrap: the same rows are drawn on both sides (which
keeps the pairing, and with it the variance that pairing removes), 5,000 times, from a
generator seeded with a fixed number and the metric's name. The same data therefore always
gives the same interval, whatever else is configured.

Why not MLflow: `mlflow.genai.compare_evaluations` is not in MLflow 3.17.2 (the installed
release), and nothing under `mlflow.genai` computes McNemar, Wilcoxon or a bootstrap (only a
judge optimiser mentions one). Why not McNemar or Wilcoxon alone: they test "any difference
from zero" for one kind of statistic, while the gate asks "worse by more than max-drop?", a
non-inferiority question with a margin, for means and percentiles alike. One interval answers
that for every aggregation, pass/fail judges included.

Limits, on purpose: below MIN_PAIRS pairs no interval is given (a percentile bootstrap of a
handful of rows is far too narrow: 3 wins in 4 rows would read as "significantly better"),
so a rule against the baseline is inconclusive there. Intervals of `min` and `max` are rough,
since a bootstrap cannot see beyond the sample.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genai_gate.results import ComparisonDoc, RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.thresholds import Better, RelativeThreshold, Threshold

RESAMPLES = 5000
CONFIDENCE = 0.95
MIN_PAIRS = 10
_SEED = 20260505  # any fixed number; the metric's name is mixed in per metric
_CELLS_PER_CHUNK = 2_000_000  # bounds the memory of one block of resamples

# an aggregation over the last axis: one value per resample
Stat = Callable[[np.ndarray], np.ndarray]


def _percentile(m: np.ndarray, q: float) -> np.ndarray:
    # a function called on every use, not a lambda made once at import: mutation testing
    # (issue #18) can only reach code that runs while a test runs
    out: np.ndarray = np.percentile(m, q, axis=-1)
    return out


_STATS: dict[str, Stat] = {
    "mean": lambda m: np.mean(m, axis=-1),
    "median": lambda m: np.median(m, axis=-1),
    "variance": lambda m: np.var(m, axis=-1),
    "min": lambda m: np.min(m, axis=-1),
    "max": lambda m: np.max(m, axis=-1),
    "p50": functools.partial(_percentile, q=50),
    "p90": functools.partial(_percentile, q=90),
    "p95": functools.partial(_percentile, q=95),
    "p99": functools.partial(_percentile, q=99),
}


def statistic(aggregation: str, custom: Callable[[list[float]], Any] | None = None) -> Stat:
    """The aggregation `evaluate.aggregate` computes, vectorised over resamples."""
    if custom is not None:
        fn = custom
        return lambda m: np.apply_along_axis(lambda row: float(fn(list(row))), -1, m)
    return _STATS[aggregation]


@dataclass(frozen=True)
class Comparison:
    metric: str
    candidate: float | None  # the candidate's metric, over all its rows
    baseline: float | None  # the baseline's metric, over all its rows
    delta: float | None  # paired: aggregation(candidate) - aggregation(baseline)
    ci: tuple[float, float] | None  # 95% interval of delta; None below MIN_PAIRS pairs
    pairs: int

    def as_dict(self) -> ComparisonDoc:
        return {
            "metric": self.metric,
            "candidate": _finite(self.candidate),
            "baseline": _finite(self.baseline),
            "delta": _finite(self.delta),
            # a non-finite interval is reported as none (the gate fails it, gate.py)
            "ci": list(self.ci)
            if self.ci is not None and all(math.isfinite(x) for x in self.ci)
            else None,
            "pairs": self.pairs,
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _bootstrap(
    draw: Callable[[np.random.Generator, int], np.ndarray],
    largest: int,
    *,
    seed_key: str,
    resamples: int,
    confidence: float,
) -> tuple[float, float]:
    """The percentile interval of `draw`'s deltas, drawn in blocks that bound memory."""
    rng = np.random.default_rng([_SEED, zlib.crc32(seed_key.encode())])
    deltas = np.empty(resamples)
    chunk = max(1, min(resamples, _CELLS_PER_CHUNK // largest))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        deltas[start : start + size] = draw(rng, size)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(deltas, [tail, 1.0 - tail])
    return float(lo), float(hi)


def paired_interval(
    candidate: np.ndarray,
    baseline: np.ndarray,
    stat: Stat,
    *,
    seed_key: str,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """The percentile-bootstrap interval of stat(candidate) - stat(baseline), rows paired."""
    n = len(candidate)
    if n < MIN_PAIRS:
        return None

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        idx = rng.integers(0, n, size=(size, n))
        return stat(candidate[idx]) - stat(baseline[idx])

    return _bootstrap(draw, n, seed_key=seed_key, resamples=resamples, confidence=confidence)


def unpaired_interval(
    candidate: np.ndarray,
    baseline: np.ndarray,
    stat: Stat,
    *,
    seed_key: str,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """As `paired_interval`, for two samples of different rows (a canary and its champion
    judge different requests): each side is resampled on its own."""
    n, m = len(candidate), len(baseline)
    if min(n, m) < MIN_PAIRS:
        return None

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        a = candidate[rng.integers(0, n, size=(size, n))]
        b = baseline[rng.integers(0, m, size=(size, m))]
        return stat(a) - stat(b)

    return _bootstrap(
        draw, max(n, m), seed_key=seed_key, resamples=resamples, confidence=confidence
    )


def _input_key(inputs: Mapping[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=False)


def pair_rows(
    candidate: Sequence[RowResult], baseline: Sequence[RowResult]
) -> list[tuple[RowResult, RowResult]]:
    """Candidate and baseline rows with the same inputs, in the candidate's order."""
    pool: dict[str, deque[RowResult]] = {}
    for row in baseline:
        pool.setdefault(_input_key(row.inputs), deque()).append(row)
    pairs = []
    for row in candidate:
        same = pool.get(_input_key(row.inputs))
        if same:
            pairs.append((row, same.popleft()))
    return pairs


def _paired_values(
    pairs: Sequence[tuple[RowResult, RowResult]], key: str
) -> tuple[np.ndarray, np.ndarray]:
    both = [
        (c, b)
        for cand, base in pairs
        if (c := cand.scores.get(key)) is not None
        and (b := base.scores.get(key)) is not None
        and math.isfinite(c)
        and math.isfinite(b)
    ]
    values = np.array(both, dtype=float).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def compare(
    pairs: Sequence[tuple[RowResult, RowResult]],
    scorers: Sequence[BoundScorer],
    candidate_metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, float],
) -> dict[str, Comparison]:
    """One Comparison per metric that either side produced."""
    by_name = {s.name: s for s in scorers}
    out: dict[str, Comparison] = {}
    for metric in sorted(set(candidate_metrics) | set(baseline_metrics)):
        key, _, agg = metric.rpartition("/")
        scorer = by_name.get(key.split("/", 1)[0]) or by_name.get(key)
        cand_value = candidate_metrics.get(metric)
        base_value = baseline_metrics.get(metric)
        if scorer is None:
            out[metric] = Comparison(metric, cand_value, base_value, None, None, 0)
            continue
        stat = statistic(agg, dict(scorer.custom_aggregations).get(agg))
        cand, base = _paired_values(pairs, key)
        delta = None
        if len(cand):
            delta = float(stat(cand[None, :])[0] - stat(base[None, :])[0])
        ci = paired_interval(cand, base, stat, seed_key=metric)
        out[metric] = Comparison(metric, cand_value, base_value, delta, ci, len(cand))
    return out


@dataclass(frozen=True)
class RowChange:
    """A row the candidate did worse on than the baseline."""

    candidate: RowResult
    baseline: RowResult
    worse: tuple[str, ...]  # the scorers that scored it lower (or "model error")


def regressed_rows(
    pairs: Sequence[tuple[RowResult, RowResult]], directions: Mapping[str, Better]
) -> list[RowChange]:
    """Rows whose scores got worse, in each scorer's better direction: the candidate's
    errors where the baseline answered first, then the rows worse on the most scorers."""
    ranked: list[tuple[tuple[int, int, float, int], RowChange]] = []
    for cand, base in pairs:
        if cand.error is not None and base.error is None:
            ranked.append(((0, 0, 0.0, cand.index), RowChange(cand, base, ("model error",))))
            continue
        worse: list[str] = []
        total = 0.0
        for name, better in directions.items():
            c, b = cand.scores.get(name), base.scores.get(name)
            if c is None or b is None:
                continue
            drop = b - c if better == "higher" else c - b
            if drop > 0:
                worse.append(name)
                total += drop
        if worse:
            ranked.append(
                ((1, -len(worse), -total, cand.index), RowChange(cand, base, tuple(worse)))
            )
    ranked.sort(key=lambda item: item[0])
    return [change for _, change in ranked]


def regression_directions(
    thresholds: Sequence[Threshold],
    relative: Sequence[RelativeThreshold],
    scorers: Sequence[BoundScorer],
) -> dict[str, Better]:
    """Which way is better for each scorer the gate names, for listing the rows that got
    worse. The built-in latency is left out: one row's latency is timing noise, and a slower
    p90 shows in the metrics. Without any, the scorers that compare with a reference."""
    out: dict[str, Better] = {}
    for t in thresholds:
        out[t.metric.rpartition("/")[0]] = "higher" if t.op in (">=", ">") else "lower"
    for r in relative:
        out[r.metric.rpartition("/")[0]] = r.better
    builtin_latency = {s.name for s in scorers if s.name == "latency" and not s.custom}
    out = {k: v for k, v in out.items() if k.split("/", 1)[0] not in builtin_latency}
    if not out:
        out = {s.name: "higher" for s in scorers if s.needs_expectations}
    return out

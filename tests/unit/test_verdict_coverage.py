"""The interval's coverage, by simulation (issue #18): over many seeded samples with a known
paired effect, the interval holds the true change at the stated rate, and a null effect is
flagged (called significant, or regressed against a zero margin) no more often than the
stated rate allows.

Seeded, so the counts are the same on every run; the tolerances are about three standard
errors of a rate over REPS samples, so an implementation that is right passes with room to
spare, and one whose tail is wrong (the 95% interval built from other quantiles, say) does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from genai_gate.compare import Comparison, paired_interval, statistic
from genai_gate.gate import check_relative
from genai_gate.thresholds import RelativeThreshold

REPS = 200  # samples per simulation
ROWS = 60  # paired rows per sample, a small eval set
MEAN = statistic("mean")


def _samples(effect: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """REPS paired samples: a baseline score and the candidate's, `effect` better on average."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(REPS):
        base = rng.normal(0.6, 0.2, ROWS)
        out.append((base + effect + rng.normal(0.0, 0.15, ROWS), base))
    return out


def _intervals(
    samples: list[tuple[np.ndarray, np.ndarray]], confidence: float
) -> list[tuple[float, float]]:
    out = []
    for i, (cand, base) in enumerate(samples):
        ci = paired_interval(cand, base, MEAN, seed_key=f"rep {i}", confidence=confidence)
        assert ci is not None
        out.append(ci)
    return out


@pytest.mark.parametrize(("confidence", "tolerance"), [(0.95, 0.05), (0.5, 0.1)])
def test_a_known_effect_is_covered_at_the_stated_rate(confidence: float, tolerance: float) -> None:
    effect = -0.05
    intervals = _intervals(_samples(effect, seed=31), confidence)
    covered = np.mean([low <= effect <= high for low, high in intervals])
    # a percentile bootstrap of 60 rows runs a little short of its nominal rate
    assert confidence - tolerance <= covered <= confidence + tolerance / 2, covered


def test_a_null_effect_is_not_flagged_more_than_the_stated_rate() -> None:
    intervals = _intervals(_samples(0.0, seed=32), 0.95)
    significant = np.mean([low > 0 or high < 0 for low, high in intervals])
    assert significant <= 0.05 + 0.05, significant


def test_a_drop_exactly_at_max_drop_is_called_regressed_at_most_at_the_tail_rate() -> None:
    # non-inferiority: a true drop of exactly the margin is "regressed" only when the upper
    # end of the interval falls below it, a 2.5% tail
    margin = 0.04
    rule = RelativeThreshold("judge/mean", "higher", max_drop=margin)
    samples = _samples(-margin, seed=33)
    statuses = []
    for (cand, base), ci in zip(samples, _intervals(samples, 0.95), strict=True):
        delta = float(cand.mean() - base.mean())
        compared = Comparison("judge/mean", cand.mean(), base.mean(), delta, ci, ROWS)
        statuses.append(check_relative(rule, compared, inconclusive="pass").status)
    regressed = statuses.count("regressed") / REPS
    assert regressed <= 0.025 + 0.035, regressed

"""Input drift without a model: two-sample tests on what users ask. Pure.

Each measure gets the test that is standard for its kind of data:

- Prompt length (characters of the user's message) is a one-dimensional, heavy-tailed
  number: the two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp). It needs no bins,
  assumes no shape, and reacts to a shift in location as much as in spread. Its statistic D
  (the largest gap between the two empirical distribution functions) is the size of the
  drift; its p-value says whether a gap that size could be chance. Lengths are integers, so
  ties make the test conservative (p-values too large): it errs towards not alarming.
- The words of the prompts (SQuAD-normalised, the words token_f1 compares) are categorical
  with a long tail: the population stability index (PSI) over the reference's most common
  words plus one "other" bin. PSI is the usual measure of a shift in a binned or categorical
  population, with conventional limits (below 0.1 stable, 0.1-0.25 moderate, above 0.25 a
  shift). A chi-square test would call a trivial change significant over thousands of
  prompts, and is undefined for empty cells; PSI measures the size of the change, so its limit
  is an effect size and needs no p-value.

Below a minimum sample on either side no test is run: the result is "not enough traffic".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from genai_gate.scorer import normalize_answer

PROMPT_LENGTH = "prompt_length/ks"
WORDS = "words/psi"
INPUT_METRICS = (PROMPT_LENGTH, WORDS)
TOP_WORDS = 20  # bins of the word distribution, plus "other"
# an empty bin on one side would make PSI infinite; a share this small stands in for it (the
# usual practice), so one word that vanished counts as a large change, not an infinite one
_EMPTY_SHARE = 1e-4


@dataclass(frozen=True)
class TwoSample:
    """One input measure, current against reference."""

    metric: str
    statistic: float | None  # KS's D, or the PSI; None when not enough traffic
    pvalue: float | None  # KS only
    current: int  # sample sizes
    reference: int
    current_summary: float | None = None  # median length, or None for words
    reference_summary: float | None = None

    @property
    def enough(self) -> bool:
        return self.statistic is not None


def prompt_lengths(prompts: Sequence[str]) -> np.ndarray:
    return np.array([len(p) for p in prompts], dtype=float)


def ks_two_sample(current: npt.ArrayLike, reference: npt.ArrayLike) -> tuple[float, float]:
    """(D, p-value) of the two-sample Kolmogorov-Smirnov test, two-sided."""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(current, dtype=float), np.asarray(reference, dtype=float))
    return float(result.statistic), float(result.pvalue)


def psi(current: npt.ArrayLike, reference: npt.ArrayLike) -> float:
    """The population stability index of two distributions over the same bins (counts or
    shares): sum over bins of (p - q) * ln(p / q), p current, q reference."""
    p = np.asarray(current, dtype=float)
    q = np.asarray(reference, dtype=float)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("psi needs two non-empty distributions over the same bins")
    p = np.maximum(p / p.sum(), _EMPTY_SHARE)
    q = np.maximum(q / q.sum(), _EMPTY_SHARE)
    return float(np.sum((p - q) * np.log(p / q)))


def words(prompt: str) -> list[str]:
    return normalize_answer(prompt).split()


def word_bins(
    current: Sequence[str], reference: Sequence[str], top: int = TOP_WORDS
) -> tuple[list[str], list[int], list[int]]:
    """Bins for PSI: the reference's `top` most common words and "other", with each side's
    word counts. Bins come from the reference alone, so a new topic shows as a growing
    "other" bin rather than as bins that move with the traffic being judged."""
    ref = Counter(w for p in reference for w in words(p))
    cur = Counter(w for p in current for w in words(p))
    labels = [w for w, _ in sorted(ref.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    kept = set(labels)
    cur_counts = [cur[w] for w in labels] + [sum(c for w, c in cur.items() if w not in kept)]
    ref_counts = [ref[w] for w in labels] + [sum(c for w, c in ref.items() if w not in kept)]
    return [*labels, "(other)"], cur_counts, ref_counts


def input_drift(
    current: Sequence[str], reference: Sequence[str], *, min_samples: int
) -> tuple[TwoSample, TwoSample]:
    """Prompt length (KS) and words (PSI), current prompts against the reference's."""
    n, m = len(current), len(reference)
    enough = n >= min_samples and m >= min_samples
    cur_len, ref_len = prompt_lengths(current), prompt_lengths(reference)
    medians = (
        float(np.median(cur_len)) if n else None,
        float(np.median(ref_len)) if m else None,
    )
    if not enough:
        return (
            TwoSample(PROMPT_LENGTH, None, None, n, m, *medians),
            TwoSample(WORDS, None, None, n, m),
        )
    d, p = ks_two_sample(cur_len, ref_len)
    _labels, cur_counts, ref_counts = word_bins(current, reference)
    index = psi(cur_counts, ref_counts) if sum(cur_counts) and sum(ref_counts) else math.nan
    return (
        TwoSample(PROMPT_LENGTH, d, p, n, m, *medians),
        TwoSample(WORDS, index if math.isfinite(index) else None, None, n, m),
    )

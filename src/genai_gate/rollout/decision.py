"""The canary's verdict, from traffic and quality per served entity (pure).

Rules are absolute (the challenger's error rate at most `max-error-rate`) and relative to
the champion, which serves the same traffic at the same time: error rate at most the
champion's plus `max-error-rate-increase`, p95 latency at most `max-latency-ratio` times the
champion's, and each quality metric no more than `quality-max-drop` below the champion's,
counted only when the drop is significant (a 95% bootstrap interval of the difference that
lies wholly below zero), so a handful of unlucky samples do not roll a good model back.
Too little traffic on either side is inconclusive, and an inconclusive canary holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from genai_gate.compare import statistic, unpaired_interval
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.thresholds import Better

Action = Literal["promote", "advance", "hold", "rollback"]
# as compare.MIN_PAIRS: a bootstrap of a handful of scores is far too narrow to trust
MIN_SAMPLES = 10


@dataclass(frozen=True)
class Rules:
    min_requests: int = 100
    max_error_rate: float = 0.02
    max_error_rate_increase: float = 0.01
    max_latency_ratio: float = 1.2
    quality_max_drop: float = 0.05
    steps: tuple[int, ...] = (10, 50, 100)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: not enough data to say
    detail: str


@dataclass(frozen=True)
class QualityDelta:
    metric: str
    champion: float | None
    challenger: float | None
    delta: float | None
    ci: tuple[float, float] | None
    samples: tuple[int, int]
    better: Better = "higher"

    @property
    def worse_by(self) -> float | None:
        """How much worse the challenger is, in the metric's own direction (< 0: better)."""
        if self.delta is None:
            return None
        return -self.delta if self.better == "higher" else self.delta


@dataclass(frozen=True)
class Decision:
    action: Action
    healthy: bool | None  # None: inconclusive
    reason: str
    step: int  # the challenger's share now
    next_step: int  # its share after the action (0 after a rollback)
    checks: tuple[Check, ...] = ()
    quality: tuple[QualityDelta, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> str:
        if self.healthy is None:
            return "inconclusive"
        return "healthy" if self.healthy else "unhealthy"


def bootstrap_diff(challenger: Sequence[float], champion: Sequence[float]) -> tuple[float, float]:
    """95% interval of mean(challenger) - mean(champion): the gate's bootstrap
    (compare.py), unpaired, since the two sides judged different requests."""
    import numpy as np

    found = unpaired_interval(
        np.asarray(challenger, dtype=float),
        np.asarray(champion, dtype=float),
        statistic("mean"),
        seed_key="canary",
    )
    if found is None:
        raise ValueError(f"a bootstrap needs {MIN_SAMPLES} scores a side")
    return found


def quality_deltas(
    champion: Mapping[str, Sequence[float]],
    challenger: Mapping[str, Sequence[float]],
    better: Mapping[str, Better],
) -> list[QualityDelta]:
    """Per metric: challenger minus champion, with a 95% interval once both sides have
    MIN_SAMPLES scores. `better` gives each metric's direction; it is never guessed."""
    out = []
    for metric in sorted(better):
        a = [x for x in challenger.get(metric, ()) if math.isfinite(x)]
        b = [x for x in champion.get(metric, ()) if math.isfinite(x)]
        mean_a = sum(a) / len(a) if a else None
        mean_b = sum(b) / len(b) if b else None
        enough = len(a) >= MIN_SAMPLES and len(b) >= MIN_SAMPLES
        delta = mean_a - mean_b if mean_a is not None and mean_b is not None else None
        out.append(
            QualityDelta(
                metric,
                mean_b,
                mean_a,
                delta,
                bootstrap_diff(a, b) if enough else None,
                (len(b), len(a)),
                better[metric],
            )
        )
    return out


def _next_step(step: int, steps: Sequence[int]) -> int:
    return next((s for s in steps if s > step), 100)


def decide(
    champion: EntityTraffic | None,
    challenger: EntityTraffic | None,
    step: int,
    rules: Rules,
    quality: Sequence[QualityDelta] = (),
) -> Decision:
    if challenger is None or challenger.requests < rules.min_requests:
        seen = challenger.requests if challenger else 0
        return Decision(
            "hold",
            None,
            f"inconclusive: the challenger served {seen} request(s) since the rollout "
            f"started, fewer than min-requests ({rules.min_requests})",
            step,
            step,
            quality=tuple(quality),
        )
    checks: list[Check] = []
    rate = challenger.error_rate
    checks.append(
        Check(
            "error rate",
            rate <= rules.max_error_rate,
            f"{rate:.2%} (at most {rules.max_error_rate:.2%})",
        )
    )
    enough_champion = champion is not None and champion.requests >= rules.min_requests
    if champion is not None and enough_champion:
        limit = champion.error_rate + rules.max_error_rate_increase
        checks.append(
            Check(
                "error rate vs champion",
                rate <= limit,
                f"{rate:.2%} vs {champion.error_rate:.2%} + {rules.max_error_rate_increase:.2%}",
            )
        )
        if champion.p95_ms and challenger.p95_ms is not None:
            ceiling = rules.max_latency_ratio * champion.p95_ms
            checks.append(
                Check(
                    "p95 latency vs champion",
                    challenger.p95_ms <= ceiling,
                    f"{challenger.p95_ms:.0f} ms vs {champion.p95_ms:.0f} ms x "
                    f"{rules.max_latency_ratio:g}",
                )
            )
    for q in quality:
        if q.delta is None or q.ci is None or q.worse_by is None:
            checks.append(
                Check(
                    f"{q.metric} vs champion",
                    None,
                    f"only {q.samples[0]} / {q.samples[1]} judged samples "
                    f"(champion / challenger); {MIN_SAMPLES} each are needed",
                )
            )
            continue
        # significantly worse: the whole interval lies on the worse side of zero
        low, high = q.ci
        sure = high < 0 if q.better == "higher" else low > 0
        worse = q.worse_by > rules.quality_max_drop and sure
        checks.append(
            Check(
                f"{q.metric} vs champion",
                not worse,
                f"{q.delta:+.3f} (95% CI {low:+.3f} to {high:+.3f}; {q.better} is better; "
                f"max drop {rules.quality_max_drop:g})",
            )
        )
    failed = [c for c in checks if c.passed is False]
    if failed:
        return Decision(
            "rollback",
            False,
            "unhealthy: " + "; ".join(f"{c.name} {c.detail}" for c in failed),
            step,
            0,
            tuple(checks),
            tuple(quality),
        )
    unjudged = [c for c in checks if c.passed is None]
    if unjudged:
        return Decision(
            "hold",
            None,
            "inconclusive: " + "; ".join(f"{c.name}: {c.detail}" for c in unjudged),
            step,
            step,
            tuple(checks),
            tuple(quality),
        )
    if not enough_champion:
        seen = champion.requests if champion else 0
        return Decision(
            "hold",
            None,
            f"inconclusive: the champion served {seen} request(s), fewer than min-requests "
            f"({rules.min_requests}), so the relative rules cannot be checked",
            step,
            step,
            tuple(checks),
            tuple(quality),
        )
    target = _next_step(step, rules.steps)
    if target >= 100:
        return Decision(
            "promote", True, "healthy: promoted to 100%", step, 100, tuple(checks), tuple(quality)
        )
    return Decision(
        "advance",
        True,
        f"healthy: advancing from {step}% to {target}%",
        step,
        target,
        tuple(checks),
        tuple(quality),
    )

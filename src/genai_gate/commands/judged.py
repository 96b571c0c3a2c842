"""The judged scores of analyze and monitor, written back beside the traffic for the
dashboard (`judged-table` through the warehouse, or `judged-data` as Parquet)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from genai_gate.backends.base import ServingBackend, ServingState
from genai_gate.errors import GateError
from genai_gate.rollout.measures import JudgedScore
from genai_gate.rollout.plan import Entity


def write_judged(
    backend: ServingBackend,
    state: ServingState,
    entity: Entity,
    source: str,
    run_id: str,
    scores: Mapping[str, Sequence[float]],
    notices: list[str],
) -> str | None:
    """Where the scores went (None: nowhere is configured). A failure is a notice: the
    verdict does not depend on the copy."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    rows = [
        JudgedScore(
            state.name,
            entity.name,
            entity.model,
            entity.version,
            source,
            run_id,
            when,
            metric.rpartition("/")[0] or metric,
            value,
        )
        for metric, values in sorted(scores.items())
        for value in values
        if math.isfinite(value)
    ]
    try:
        return backend.record_judged(state, rows)
    except GateError as exc:
        notices.append(f"the judged samples were not written back: {exc.message}")
        return None

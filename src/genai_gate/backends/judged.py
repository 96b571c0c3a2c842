"""The judged samples as Parquet files in a local folder (`judged-data`), whatever the
serving platform: one row per judged request and scorer, no request or response text.
Databricks can write the same rows to a Unity Catalog table instead (databricks/judged.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from genai_gate.rollout.measures import JudgedScore

COLUMNS = (
    ("endpoint", "STRING"),
    ("served_entity", "STRING"),
    ("model", "STRING"),
    ("model_version", "STRING"),
    ("source", "STRING"),
    ("run_id", "STRING"),
    ("judged_at", "TIMESTAMP"),
    ("scorer", "STRING"),
    ("score", "DOUBLE"),
)


def values(score: JudgedScore) -> tuple[str, ...]:
    return (
        score.endpoint,
        score.entity,
        score.model,
        score.version,
        score.source,
        score.run,
        score.judged_at,
        score.scorer,
        repr(float(score.score)),
    )


def write_parquet(folder: Path, scores: Sequence[JudgedScore]) -> Path:
    """A new part file in `folder` (DuckDB, Spark and pandas read the folder as one table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    data = {name: [v[i] for v in map(values, scores)] for i, (name, _) in enumerate(COLUMNS)}
    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in data.items()},
            "judged_at": pa.array(
                [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in data["judged_at"]],
                pa.timestamp("us", tz="UTC"),
            ),
            "score": pa.array([s.score for s in scores], pa.float64()),
        }
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    pq.write_table(table, path)
    return path

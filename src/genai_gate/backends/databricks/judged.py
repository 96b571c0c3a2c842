"""The judged samples, written back beside the inference table for the dashboard: into a
Unity Catalog table through the warehouse (`judged-table`: CREATE TABLE IF NOT EXISTS, then
INSERT with bound parameters), or as Parquet files in a local folder (`judged-data`) for
the DuckDB path. One row per judged request and scorer; no request or response text."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from genai_gate.backends.databricks.inference_table import Engine
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
BATCH = 100  # rows per INSERT: 900 bound parameters a statement


def quoted(table: str) -> str:
    """catalog.schema.table with each part back-quoted (the config's pattern has none)."""
    return ".".join(f"`{part}`" for part in table.split("."))


def _values(score: JudgedScore) -> tuple[str, ...]:
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


def write_to_table(engine: Engine, table: str, scores: Sequence[JudgedScore]) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    engine.query(
        f"CREATE TABLE IF NOT EXISTS {quoted(table)} ({columns}) "
        "COMMENT 'genai-gate: judged samples of analyze and monitor'",
        {},
    )
    for start in range(0, len(scores), BATCH):
        batch = scores[start : start + BATCH]
        params: dict[str, tuple[str, str]] = {}
        rows = []
        for i, score in enumerate(batch):
            names = []
            for (column, kind), value in zip(COLUMNS, _values(score), strict=True):
                params[f"{column}_{i}"] = (value, kind)
                names.append(f":{column}_{i}")
            rows.append(f"({', '.join(names)})")
        engine.query(f"INSERT INTO {quoted(table)} VALUES {', '.join(rows)}", params)


def write_parquet(folder: Path, scores: Sequence[JudgedScore]) -> Path:
    """A new part file in `folder` (DuckDB, Spark and pandas read the folder as one table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    data = {name: [v[i] for v in map(_values, scores)] for i, (name, _) in enumerate(COLUMNS)}
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

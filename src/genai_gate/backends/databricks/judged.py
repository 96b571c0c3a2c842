"""The judged samples, written back beside the inference table for the dashboard: into a
Unity Catalog table through the warehouse (`judged-table`: CREATE TABLE IF NOT EXISTS, then
INSERT with bound parameters). The Parquet form (`judged-data`) is backend-neutral, in
backends/judged.py. One row per judged request and scorer; no request or response text."""

from __future__ import annotations

from collections.abc import Sequence

from genai_gate.backends.databricks.inference_table import Engine
from genai_gate.backends.judged import COLUMNS, values
from genai_gate.rollout.measures import JudgedScore

BATCH = 100  # rows per INSERT: 900 bound parameters a statement


def quoted(table: str) -> str:
    """catalog.schema.table with each part back-quoted (the config's pattern has none)."""
    return ".".join(f"`{part}`" for part in table.split("."))


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
            for (column, kind), value in zip(COLUMNS, values(score), strict=True):
                params[f"{column}_{i}"] = (value, kind)
                names.append(f":{column}_{i}")
            rows.append(f"({', '.join(names)})")
        engine.query(f"INSERT INTO {quoted(table)} VALUES {', '.join(rows)}", params)

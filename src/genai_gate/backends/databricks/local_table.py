"""The inference table from local files: DuckDB in the process over Parquet, Delta or
JSON-lines copies of the table (and of `system.serving.served_entities`), for tests, for
offline analysis, and for teams that export their tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_gate.backends.databricks.inference_table import (
    SERVED_ENTITIES,
    TrafficSource,
)
from genai_gate.backends.files import connect, expand, files_in, is_remote, sql_list
from genai_gate.errors import ConfigError, DataError

_MACROS = (
    # Databricks SQL names, so one query text serves both engines
    "CREATE OR REPLACE MACRO percentile_approx(x, p) AS approx_quantile(x, p)",
    "CREATE OR REPLACE MACRO size(x) AS len(x)",
    "CREATE OR REPLACE MACRO timestamp_millis(x) AS epoch_ms(x)",
)


def _reader(files: Sequence[Path]) -> str:
    """DuckDB's table function for these files."""
    folder = files[0] if len(files) == 1 and files[0].is_dir() else None
    if folder is not None and (folder / "_delta_log").is_dir():
        return f"read_parquet({sql_list(_delta_files(folder))})"
    if folder is not None:
        files = files_in(folder)
    kinds = {p.suffix.lower() for p in files}
    if not files:
        raise DataError("no files")
    if kinds <= {".parquet"}:
        return f"read_parquet({sql_list(files)}, union_by_name = true)"
    if kinds <= {".jsonl", ".json", ".ndjson"}:
        listed = sql_list(files)
        return f"read_json_auto({listed}, format = 'newline_delimited', union_by_name = true)"
    raise DataError(
        f"cannot read {sorted(kinds)} files as an inference table (Parquet, Delta or JSON lines)"
    )


def _delta_files(folder: Path) -> list[Path]:
    """The Parquet files of a Delta table's current version.

    Reading every Parquet file in the folder would count rows that later commits removed;
    the `deltalake` library resolves the log, checkpoints included.
    """
    try:
        from deltalake import DeltaTable
    except ImportError:
        raise DataError(
            f"{folder} is a Delta table, and reading one needs the deltalake package, "
            "which is not installed",
            fix="Install genai-gate's delta extra:\n"
            "  extras: delta                    # the composite action's input\n"
            "  uv sync --extra delta            # in a checkout of genai-gate\n"
            "  pip install 'genai-gate[delta]'\n"
            "The container flavour's image does not carry it (about 130 MB): there, copy the "
            "table's current version out as Parquet files.",
        ) from None
    return [Path(uri.removeprefix("file://")) for uri in DeltaTable(str(folder)).file_uris()]


class DuckEngine:
    """DuckDB in this process, reading the files in place (streamed, never loaded whole)."""

    def __init__(self, payload_reader: str, entities_reader: str | None) -> None:
        self.con = connect()
        for macro in _MACROS:
            self.con.execute(macro)
        self.con.execute(f"CREATE VIEW payload AS SELECT * FROM {payload_reader}")
        kinds = {
            str(r[0]).lower(): str(r[1]) for r in self.con.execute("DESCRIBE payload").fetchall()
        }
        if not kinds.get("request_time", "TIMESTAMP").startswith("TIMESTAMP"):
            # JSON lines hold it as text; comparing the column itself keeps Parquet fast
            self.con.execute(
                "CREATE OR REPLACE VIEW payload AS SELECT * REPLACE "
                f"(CAST(request_time AS TIMESTAMP) AS request_time) FROM {payload_reader}"
            )
        if entities_reader is not None:
            self.con.execute(f"CREATE VIEW served_entities AS SELECT * FROM {entities_reader}")

    def columns(self, table: str) -> list[str]:
        return [str(r[0]) for r in self.con.execute(f"DESCRIBE {table}").fetchall()]

    def query(self, sql: str, params: Mapping[str, tuple[str, str]]) -> list[dict[str, Any]]:
        import duckdb

        text = sql
        values: dict[str, Any] = {}
        for name, (value, kind) in params.items():
            text = text.replace(f":{name}", f"CAST(${name} AS {_duck_type(kind)})")
            values[name] = value
        try:
            cur = self.con.execute(text, values)
        except duckdb.Error as exc:
            raise DataError(f"reading the inference table failed: {exc}") from None
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _duck_type(kind: str) -> str:
    return {"STRING": "VARCHAR", "INT": "INTEGER"}.get(kind, kind)


def local_source(spec: str, base: Path, models: Mapping[tuple[str, str], str]) -> TrafficSource:
    if is_remote(spec):
        # the table's copies come with served_entities and may be Delta: both are looked up
        # beside the files, which a bucket listing does not do (yet)
        raise ConfigError(
            f"inference-data: {spec!r} is a URL; inference-data reads copies of the inference "
            "table on the runner",
            fix="Read the table where it lives, through a SQL warehouse:\n"
            "  warehouse-id: 1234567890abcdef\n"
            "or copy its files to the runner in a step before:\n"
            "  inference-data: captures/main.genai_logs.support-bot_payload",
        )
    files = expand(spec, base)
    if not files:
        raise ConfigError(
            f"inference-data: {spec!r} matches no file",
            fix="Name the payload table's files: a Parquet or JSON-lines file, a folder, a "
            "glob, or a Delta table folder:\n  inference-data: captures/main.mon.bot_payload",
        )
    folder = files[0] if files[0].is_dir() else files[0].parent
    try:
        payload = _reader(files)
    except DataError as exc:
        raise ConfigError(f"inference-data: {spec!r}: {exc.message}", fix=exc.fix) from None
    entity_files = sorted(folder.parent.glob(f"{SERVED_ENTITIES}.*")) + sorted(
        folder.glob(f"{SERVED_ENTITIES}.*")
    )
    entities = _reader(entity_files[:1]) if entity_files else None
    engine = DuckEngine(payload, entities)
    source = TrafficSource(engine, "payload", "served_entities", spec, models)
    if entities is None and source._schema() == "gateway":
        raise ConfigError(
            f"inference-data: no copy of {SERVED_ENTITIES} next to {folder}",
            fix="The AI Gateway table names served entities by an opaque id. Export the "
            f"system table beside the payload files:\n  {folder.parent}/{SERVED_ENTITIES}.parquet",
        )
    return source

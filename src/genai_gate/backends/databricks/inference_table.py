"""Reading a serving endpoint's inference table, per served entity, as SQL pushed down.

Two engines run the same query text: a Databricks SQL warehouse (the Statement Execution
API in databricks-sdk, polled, results fetched chunk by chunk) and DuckDB over local
Parquet, Delta or JSON-lines files. Only aggregates and a small sample ever come back,
so the table is never loaded whole into Python, whatever its size.

The AI Gateway table stores an opaque `served_entity_id`; `system.serving.served_entities`
maps it to the served entity's name (on a warehouse, the system table; locally, a copy of
it next to the payload files). The legacy table has no such id: its `request_metadata`
map names the model and version, which the endpoint's served entities map back to names.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from genai_gate.backends.databricks.serving_target import EVAL_REQUEST_PREFIX
from genai_gate.errors import ConfigError, DataError, ServiceError
from genai_gate.rollout.measures import EntityTraffic, Exchange

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

SERVED_ENTITIES = "system.serving.served_entities"
Schema = Literal["gateway", "legacy"]
STATEMENT_TIMEOUT = 600.0  # seconds a statement may run before we cancel it
# a statement that failed for the service's sake, not for the query's (exit 4, not 2)
_SERVICE_CODES = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "INTERNAL_ERROR",
        "RESOURCE_EXHAUSTED",
        "SERVICE_UNDER_MAINTENANCE",
        "DEADLINE_EXCEEDED",
        "IO_ERROR",
        "ABORTED",
        "UNKNOWN",
    }
)


class Engine(Protocol):
    """Runs SQL with named parameters; `:name` in the text, values as strings."""

    def query(self, sql: str, params: Mapping[str, tuple[str, str]]) -> list[dict[str, Any]]: ...

    def columns(self, table: str) -> list[str]: ...


# ---------------------------------------------------------------- the SQL, one text for both


def _entity_map(schema: Schema, entities: str) -> str:
    if schema == "gateway":
        return (
            f"(SELECT DISTINCT served_entity_id, served_entity_name FROM {entities} "
            "WHERE endpoint_name = :endpoint)"
        )
    raise AssertionError("the legacy table maps entities by model and version")


# genai-gate's own evaluation calls (see targets/databricks_endpoint.py) are not production
def _not_eval(alias: str) -> str:
    column = f"{alias}.client_request_id"
    return f"({column} IS NULL OR {column} NOT LIKE '{EVAL_REQUEST_PREFIX}%')"


def _from(schema: Schema, payload: str, entities: str, legacy_map: str) -> str:
    if schema == "gateway":
        return (
            f"FROM {payload} p JOIN {_entity_map(schema, entities)} e "
            "ON p.served_entity_id = e.served_entity_id "
            # epoch milliseconds: an instant, whatever the warehouse's session time zone
            f"WHERE p.request_time >= timestamp_millis(:since_ms) AND {_not_eval('p')}"
        )
    return (
        f"FROM (SELECT *, {legacy_map} AS served_entity_name FROM {payload}) e "
        "WHERE e.timestamp_ms >= :since_ms "
        f"AND {_not_eval('e')}"
    )


def stats_sql(schema: Schema, payload: str, entities: str, legacy_map: str = "") -> str:
    duration = "execution_duration_ms" if schema == "gateway" else "execution_time_ms"
    logging = (
        "sum(CASE WHEN size(logging_error_codes) > 0 THEN 1 ELSE 0 END)"
        if schema == "gateway"
        else "0"
    )
    return (
        "SELECT served_entity_name AS entity, count(*) AS requests, "
        "sum(CASE WHEN status_code = 200 THEN 0 ELSE 1 END) AS errors, "
        f"{logging} AS logging_errors, "
        f"percentile_approx({duration}, 0.5) AS p50, "
        f"percentile_approx({duration}, 0.95) AS p95, "
        f"percentile_approx({duration}, 0.99) AS p99 "
        f"{_from(schema, payload, entities, legacy_map)} "
        "GROUP BY served_entity_name"
    )


def sample_sql(schema: Schema, payload: str, entities: str, k: int, legacy_map: str = "") -> str:
    # ordered by the request id, a uuid: an even spread over time, and the same sample on a
    # re-run (so the judges' answers come from the cache)
    return (
        "SELECT served_entity_name AS entity, request, response "
        f"{_from(schema, payload, entities, legacy_map)} "
        "AND served_entity_name = :entity AND status_code = 200 "
        "AND request IS NOT NULL AND response IS NOT NULL "
        f"ORDER BY databricks_request_id LIMIT {int(k)}"
    )


def legacy_entity_case(models: Mapping[tuple[str, str], str]) -> str:
    """`request_metadata` names the model and version; the endpoint knows which entity that is."""
    if not models:
        return "CAST(NULL AS STRING)"
    whens = " ".join(
        f"WHEN request_metadata['model_name'] = '{_lit(m)}' "
        f"AND request_metadata['model_version'] = '{_lit(v)}' THEN '{_lit(name)}'"
        for (m, v), name in models.items()
    )
    return f"CASE {whens} END"


def _lit(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "''")


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class TrafficSource:
    engine: Engine
    payload: str  # the table (or view) name, quoted as the engine needs
    entities: str
    where: str  # for messages: the table or the files
    models: Mapping[tuple[str, str], str]  # legacy: (model, version) -> served entity name
    # the table's flavour, learnt once: on a warehouse every question is a statement
    _known: dict[str, Schema] = field(default_factory=dict, compare=False, repr=False)

    def _schema(self) -> Schema:
        if "schema" not in self._known:
            self._known["schema"] = self._detect()
        return self._known["schema"]

    def _detect(self) -> Schema:
        cols = {c.lower() for c in self.engine.columns(self.payload)}
        if "served_entity_id" in cols:
            return "gateway"
        if "timestamp_ms" in cols:
            return "legacy"
        raise DataError(
            f"{self.where} is not an inference table: it has neither served_entity_id (AI "
            f"Gateway) nor timestamp_ms (legacy); its columns are {sorted(cols)}",
            fix="Point inference-data at the endpoint's <prefix>_payload table files.",
        )

    def stats(self, endpoint: str, since_ms: int) -> dict[str, EntityTraffic]:
        schema = self._schema()
        sql = stats_sql(schema, self.payload, self.entities, legacy_entity_case(self.models))
        params = {"endpoint": (endpoint, "STRING"), "since_ms": (str(since_ms), "BIGINT")}
        out: dict[str, EntityTraffic] = {}
        for row in self.engine.query(sql, params if schema == "gateway" else _no_endpoint(params)):
            if row["entity"] is None:
                continue
            out[str(row["entity"])] = EntityTraffic(
                entity=str(row["entity"]),
                requests=int(row["requests"]),
                errors=int(row["errors"] or 0),
                logging_errors=int(row["logging_errors"] or 0),
                p50_ms=_num(row["p50"]),
                p95_ms=_num(row["p95"]),
                p99_ms=_num(row["p99"]),
            )
        return out

    def sample(self, endpoint: str, entity: str, since_ms: int, k: int) -> list[Exchange]:
        if k <= 0:
            return []
        schema = self._schema()
        sql = sample_sql(schema, self.payload, self.entities, k, legacy_entity_case(self.models))
        params = {
            "endpoint": (endpoint, "STRING"),
            "since_ms": (str(since_ms), "BIGINT"),
            "entity": (entity, "STRING"),
        }
        rows = self.engine.query(sql, params if schema == "gateway" else _no_endpoint(params))
        return [Exchange(str(r["entity"]), str(r["request"]), str(r["response"])) for r in rows]


def _no_endpoint(params: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in params.items() if k != "endpoint"}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)


# ---------------------------------------------------------------- DuckDB over local files

_MACROS = (
    # Databricks SQL names, so one query text serves both engines
    "CREATE OR REPLACE MACRO percentile_approx(x, p) AS approx_quantile(x, p)",
    "CREATE OR REPLACE MACRO size(x) AS len(x)",
    "CREATE OR REPLACE MACRO timestamp_millis(x) AS epoch_ms(x)",
)


def _expand(spec: str, base: Path) -> list[Path]:
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(ch in spec for ch in "*?["):
        # Path.glob takes no absolute pattern
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True))  # noqa: PTH207
    return [path] if path.exists() else []


def _reader(files: Sequence[Path]) -> str:
    """DuckDB's table function for these files."""
    folder = files[0] if len(files) == 1 and files[0].is_dir() else None
    if folder is not None and (folder / "_delta_log").is_dir():
        return f"read_parquet({_sql_list(_delta_files(folder))})"
    if folder is not None:
        inner = sorted(
            p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))
        )
        files = inner
    kinds = {p.suffix.lower() for p in files}
    if not files:
        raise DataError("no files")
    if kinds <= {".parquet"}:
        return f"read_parquet({_sql_list(files)}, union_by_name = true)"
    if kinds <= {".jsonl", ".json", ".ndjson"}:
        listed = _sql_list(files)
        return f"read_json_auto({listed}, format = 'newline_delimited', union_by_name = true)"
    raise DataError(
        f"cannot read {sorted(kinds)} files as an inference table (Parquet, Delta or JSON lines)"
    )


def _delta_files(folder: Path) -> list[Path]:
    """The Parquet files of a Delta table's current version.

    Reading every Parquet file in the folder would count rows that later commits removed;
    the `deltalake` library resolves the log, checkpoints included.
    """
    from deltalake import DeltaTable

    return [Path(uri.removeprefix("file://")) for uri in DeltaTable(str(folder)).file_uris()]


def _sql_list(files: Sequence[Path]) -> str:
    # DuckDB strings have no backslash escapes: only the quote is doubled
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"


class DuckEngine:
    """DuckDB in this process, reading the files in place (streamed, never loaded whole)."""

    def __init__(self, payload_reader: str, entities_reader: str | None) -> None:
        import duckdb

        # 2 threads: the runner's cores; more threads hold more row groups at once (see
        # benchmarks/README.md: the peak RSS grows with row-group size x threads)
        self.con = duckdb.connect(config={"threads": 2})
        # Parquet stores request_time with a zone, and a cast would use the machine's local
        # one: rows in the hours after `since` vanished on a laptop outside UTC
        self.con.execute("SET TimeZone = 'UTC'")
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
    files = _expand(spec, base)
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
        raise ConfigError(f"inference-data: {spec!r}: {exc.message}") from None
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


# ---------------------------------------------------------------- a Databricks SQL warehouse


class WarehouseEngine:
    """The Statement Execution API: submit, poll until terminal, fetch every chunk."""

    def __init__(
        self,
        client: WorkspaceClient,
        warehouse_id: str,
        errors: Callable[[str], Any],
        poll_seconds: float = 0.1,
    ) -> None:
        self.w = client
        self.warehouse_id = warehouse_id
        self.errors = errors  # a context-manager factory mapping SDK errors to ours
        self.poll = poll_seconds

    def columns(self, table: str) -> list[str]:
        rows = self.query(f"SELECT * FROM {table} LIMIT 0", {}, want_columns=True)
        return [str(r["name"]) for r in rows]

    def query(
        self,
        sql: str,
        params: Mapping[str, tuple[str, str]],
        *,
        want_columns: bool = False,
    ) -> list[dict[str, Any]]:
        from databricks.sdk.service.sql import (
            Disposition,
            Format,
            StatementParameterListItem,
            StatementState,
        )

        with self.errors("running SQL on the warehouse"):
            resp = self.w.statement_execution.execute_statement(
                statement=sql,
                warehouse_id=self.warehouse_id,
                disposition=Disposition.INLINE,
                format=Format.JSON_ARRAY,
                wait_timeout="10s",
                parameters=[
                    StatementParameterListItem(name=n, value=v, type=t)
                    for n, (v, t) in params.items()
                ],
            )
            deadline = time.monotonic() + STATEMENT_TIMEOUT
            pause = self.poll
            state = resp.status.state if resp.status else None
            while state in (StatementState.PENDING, StatementState.RUNNING):
                if time.monotonic() > deadline:
                    self.w.statement_execution.cancel_execution(str(resp.statement_id))
                    raise ServiceError(
                        f"the statement on warehouse {self.warehouse_id} ran over "
                        f"{STATEMENT_TIMEOUT:g} s and was cancelled"
                    )
                time.sleep(pause)
                # short statements answer in well under a second; long ones are polled less
                pause = min(pause * 1.5, 5.0)
                resp = self.w.statement_execution.get_statement(str(resp.statement_id))
                state = resp.status.state if resp.status else None
            if state != StatementState.SUCCEEDED:
                error = resp.status.error if resp.status else None
                message = error.message if error and error.message else str(state)
                code = error.error_code.value if error and error.error_code else ""
                if code in _SERVICE_CODES:
                    raise ServiceError(
                        f"warehouse {self.warehouse_id} could not run the inference-table "
                        f"query ({code}): {message}",
                        fix="Retry later; check the warehouse's state in the SQL UI.",
                    )
                raise DataError(
                    f"the inference-table query failed on warehouse {self.warehouse_id}: {message}",
                    fix="Check that the service principal can read the payload table and "
                    f"{SERVED_ENTITIES} (SELECT on both), and that warehouse-id is right.",
                )
            columns = [
                c.name or f"_{i}"
                for i, c in enumerate(
                    (
                        resp.manifest.schema.columns
                        if resp.manifest and resp.manifest.schema
                        else None
                    )
                    or []
                )
            ]
            if want_columns:
                return [{"name": c} for c in columns]
            rows: list[Sequence[str | None]] = []
            chunk = resp.result
            while chunk is not None:
                rows.extend(chunk.data_array or [])
                if chunk.next_chunk_index is None:
                    break
                chunk = self.w.statement_execution.get_statement_result_chunk_n(
                    str(resp.statement_id), chunk.next_chunk_index
                )
        return [dict(zip(columns, row, strict=True)) for row in rows]


def warehouse_source(
    engine: WarehouseEngine, payload_table: str, models: Mapping[tuple[str, str], str]
) -> TrafficSource:
    return TrafficSource(engine, payload_table, SERVED_ENTITIES, payload_table, models)

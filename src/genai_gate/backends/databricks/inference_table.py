"""Reading a serving endpoint's inference table, per served entity, as SQL pushed down.

Two engines run the same query text, which this module builds: a Databricks SQL warehouse
(warehouse.py: the Statement Execution API, polled, results fetched chunk by chunk) and
DuckDB over local Parquet, Delta or JSON-lines files (local_table.py). Only aggregates and
a small sample ever come back, so the table is never loaded whole into Python.

The AI Gateway table stores an opaque `served_entity_id`; `system.serving.served_entities`
maps it to the served entity's name (on a warehouse, the system table; locally, a copy of
it next to the payload files). The legacy table has no such id: its `request_metadata`
map names the model and version, which the endpoint's served entities map back to names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from genai_gate.backends.databricks.serving_target import EVAL_REQUEST_PREFIX
from genai_gate.errors import DataError
from genai_gate.rollout.measures import EntityTraffic, Exchange

SERVED_ENTITIES = "system.serving.served_entities"
Schema = Literal["gateway", "legacy"]


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


def _from(
    schema: Schema, payload: str, entities: str, legacy_map: str, *, until: bool = False
) -> str:
    """FROM and WHERE of the rows since `:since_ms` (and before `:until_ms` with `until`)."""
    if schema == "gateway":
        return (
            f"FROM {payload} p JOIN {_entity_map(schema, entities)} e "
            "ON p.served_entity_id = e.served_entity_id "
            # epoch milliseconds: an instant, whatever the warehouse's session time zone
            f"WHERE p.request_time >= timestamp_millis(:since_ms) AND {_not_eval('p')}"
            + (" AND p.request_time < timestamp_millis(:until_ms)" if until else "")
        )
    return (
        f"FROM (SELECT *, {legacy_map} AS served_entity_name FROM {payload}) e "
        "WHERE e.timestamp_ms >= :since_ms "
        f"AND {_not_eval('e')}" + (" AND e.timestamp_ms < :until_ms" if until else "")
    )


def stats_sql(
    schema: Schema, payload: str, entities: str, legacy_map: str = "", *, until: bool = False
) -> str:
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
        f"{_from(schema, payload, entities, legacy_map, until=until)} "
        "GROUP BY served_entity_name"
    )


def sample_sql(
    schema: Schema,
    payload: str,
    entities: str,
    k: int,
    legacy_map: str = "",
    *,
    until: bool = False,
) -> str:
    # ordered by the request id, a uuid: an even spread over time, and the same sample on a
    # re-run (so the judges' answers come from the cache)
    duration = "execution_duration_ms" if schema == "gateway" else "execution_time_ms"
    return (
        f"SELECT served_entity_name AS entity, request, response, {duration} AS duration_ms "
        f"{_from(schema, payload, entities, legacy_map, until=until)} "
        "AND served_entity_name = :entity AND status_code = 200 "
        "AND request IS NOT NULL AND response IS NOT NULL "
        f"ORDER BY databricks_request_id LIMIT {int(k)}"
    )


def legacy_entity_case(models: Mapping[tuple[str, str], str]) -> str:
    """`request_metadata` names the model and version; the endpoint knows which entity that is."""
    if not models:
        return "CAST(NULL AS STRING)"
    whens = " ".join(
        f"WHEN request_metadata['model_name'] = '{sql_literal(m)}' "
        f"AND request_metadata['model_version'] = '{sql_literal(v)}' THEN '{sql_literal(name)}'"
        for (m, v), name in models.items()
    )
    return f"CASE {whens} END"


def sql_literal(text: str) -> str:
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

    def stats(
        self, endpoint: str, since_ms: int, until_ms: int | None = None
    ) -> dict[str, EntityTraffic]:
        schema = self._schema()
        sql = stats_sql(
            schema,
            self.payload,
            self.entities,
            legacy_entity_case(self.models),
            until=until_ms is not None,
        )
        params = {"endpoint": (endpoint, "STRING"), "since_ms": (str(since_ms), "BIGINT")}
        if until_ms is not None:
            params["until_ms"] = (str(until_ms), "BIGINT")
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

    def sample(
        self, endpoint: str, entity: str, since_ms: int, k: int, until_ms: int | None = None
    ) -> list[Exchange]:
        if k <= 0:
            return []
        schema = self._schema()
        sql = sample_sql(
            schema,
            self.payload,
            self.entities,
            k,
            legacy_entity_case(self.models),
            until=until_ms is not None,
        )
        params = {
            "endpoint": (endpoint, "STRING"),
            "since_ms": (str(since_ms), "BIGINT"),
            "entity": (entity, "STRING"),
        }
        if until_ms is not None:
            params["until_ms"] = (str(until_ms), "BIGINT")
        rows = self.engine.query(sql, params if schema == "gateway" else _no_endpoint(params))
        return [
            Exchange(
                str(r["entity"]), str(r["request"]), str(r["response"]), _num(r.get("duration_ms"))
            )
            for r in rows
        ]


def _no_endpoint(params: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {k: v for k, v in params.items() if k != "endpoint"}


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)

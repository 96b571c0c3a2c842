"""KServe's logged inference events, per revision: the canary's traffic reader (DuckDB).

KServe's inference logger (the agent sidecar, `pkg/logger`) sends two CloudEvents per call:
`org.kubeflow.serving.inference.request` when it arrives and
`org.kubeflow.serving.inference.response` when the model answered, sharing the `id` (the
caller's `Ce-Id`, else a UUID). A sink writes them as CloudEvents JSON, one per line, or as
Parquet with the same columns (`data` the JSON payload, else `data_base64`). From them:

- a pair is the events of one `id`; the logger sends a response **only for a 200**, so a
  request without a response is a failed call (an error), and a response without its
  request is a logging error;
- latency is the response's `time` minus the request's (both the agent's clock);
- no attribute names the revision: `source` is the pod's name, and a Knative pod is
  `{revision}-deployment-{replicaset}-{pod}`, so the revision is `source` up to
  `-deployment-` (FACTS.md, section 4). Events of other services sharing the sink are left
  out by `inferenceservicename` and `namespace`.

Only aggregates and a small sample come back to Python. Each event is windowed by its own
time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_gate.backends.files import connect, expand, files_in, is_remote, sql_list
from genai_gate.errors import ConfigError, DataError
from genai_gate.rollout.measures import EntityTraffic, Exchange

if TYPE_CHECKING:
    import duckdb

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
# `{revision}-deployment-{replicaset hash}-{pod hash}`; Knative's revisions end in -NNNNN
REVISION_OF_SOURCE = r"^(.+-\d{5})-deployment-"
# the CloudEvents JSON columns we read; other attributes (recordedtime, metadata...) are not
_JSON_COLUMNS = {
    "id": "VARCHAR",
    "type": "VARCHAR",
    "source": "VARCHAR",
    "time": "VARCHAR",
    "inferenceservicename": "VARCHAR",
    "namespace": "VARCHAR",
    "data": "JSON",
    "data_base64": "VARCHAR",
}
EXAMPLE = "inference-log: captures/models/support-bot   # the sink's JSON-lines or Parquet files"


def _reader(spec: str, base: Path) -> str:
    """DuckDB's table function over the logged events that `spec` names."""
    if is_remote(spec):
        lowered = spec.lower()
        if lowered.endswith(".parquet"):
            return f"read_parquet({sql_list([spec])}, union_by_name = true)"
        if lowered.endswith((".jsonl", ".json", ".ndjson")):
            return _json_reader([spec])
        raise ConfigError(
            f"inference-log: {spec!r} names no .jsonl or .parquet files",
            fix="Give a bucket path with a glob and the files' suffix:\n"
            "  inference-log: s3://logs/models/support-bot/**/*.parquet",
        )
    found = expand(spec, base)
    if not found:
        raise ConfigError(f"inference-log: {spec!r} matches no file", fix=EXAMPLE)
    files: list[Path] = []
    for path in found:
        files += files_in(path) if path.is_dir() else [path]
    kinds = {p.suffix.lower() for p in files}
    if not files:
        raise ConfigError(f"inference-log: {spec!r} is an empty folder", fix=EXAMPLE)
    if kinds <= {".parquet"}:
        return f"read_parquet({sql_list(files)}, union_by_name = true)"
    if kinds <= {".jsonl", ".json", ".ndjson"}:
        return _json_reader(files)
    raise ConfigError(
        f"inference-log: {spec!r} holds {sorted(kinds)} files; the logged events are read from "
        "JSON lines or Parquet, one kind per folder",
        fix=EXAMPLE,
    )


def _json_reader(files: list[Path] | list[str]) -> str:
    columns = ", ".join(f"'{k}': '{v}'" for k, v in _JSON_COLUMNS.items())
    return f"read_json({sql_list(files)}, format = 'newline_delimited', columns = {{{columns}}})"


def _events_sql(con: duckdb.DuckDBPyConnection, reader: str) -> str:
    """The query of the service's events (`$endpoint`, `$namespace`): one row per logged
    event, its payload as text and its time as an instant, whichever form the sink wrote."""
    con.execute(f"CREATE VIEW raw_events AS SELECT * FROM {reader}")
    kinds = {str(r[0]).lower(): str(r[1]) for r in con.execute("DESCRIBE raw_events").fetchall()}
    missing = [c for c in ("id", "type", "source", "time") if c not in kinds]
    if missing:
        raise DataError(
            f"the inference log has no {', '.join(missing)} column(s), so it is not KServe's "
            f"logged CloudEvents; its columns are {sorted(kinds)}",
            fix="Point inference-log at the files the logger's sink wrote (CloudEvents JSON "
            "lines, or Parquet with the same columns).",
        )
    # the JSON reader fills absent columns with NULL: look at the first rows for events
    seen, events = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE type IN ($req, $res)) "
        "FROM (SELECT type FROM raw_events LIMIT 1000)",
        {"req": REQUEST, "res": RESPONSE},
    ).fetchone() or (0, 0)
    if seen and not events:
        raise DataError(
            "the inference log holds no KServe inference events (type "
            f"{REQUEST} or {RESPONSE}) in its first {seen} rows",
            fix="Point inference-log at the files the logger's sink wrote.",
        )
    parts = []
    if "data" in kinds:
        parts.append("CAST(data AS VARCHAR)")
    if "data_base64" in kinds:
        parts.append("decode(from_base64(data_base64))")
    body = f"coalesce({', '.join(parts)})" if parts else "CAST(NULL AS VARCHAR)"
    wanted = []
    if "inferenceservicename" in kinds:
        wanted.append("(inferenceservicename IS NULL OR inferenceservicename = $endpoint)")
    if "namespace" in kinds:
        wanted.append("(namespace IS NULL OR namespace = $namespace)")
    where = " AND ".join(wanted) or "TRUE"
    time = "time" if kinds["time"].startswith("TIMESTAMP") else "CAST(time AS TIMESTAMPTZ)"
    return f"SELECT id, type, source, {time} AS t, {body} AS body FROM raw_events WHERE {where}"


def _pairs(events: str, since_ms: int) -> str:
    """One row per id: its revision, the request's and the response's time. Events are
    windowed before they are paired, so an id seen again long after (a caller's Ce-Id) is
    not paired across windows; a request logged just before `since` leaves its response
    alone, counted as a logging error."""
    return (
        f"WITH ev AS ({events}), "
        "pairs AS (SELECT id, any_value(source) AS source, "
        f"min(t) FILTER (WHERE type = '{REQUEST}') AS req_t, "
        f"max(t) FILTER (WHERE type = '{RESPONSE}') AS res_t "
        f"FROM ev WHERE type IN ('{REQUEST}', '{RESPONSE}') "
        f"AND t >= make_timestamptz({int(since_ms) * 1000}) GROUP BY id), "
        # a handful of pods: the pattern runs once per pod, not once per event
        "sources AS (SELECT DISTINCT source, "
        f"regexp_extract(source, '{REVISION_OF_SOURCE}', 1) AS revision FROM pairs) "
        "SELECT p.*, s.revision FROM pairs p JOIN sources s USING (source) "
        "WHERE s.revision <> ''"
    )


@dataclass
class LoggedEvents:
    """The logged events of one InferenceService, read with DuckDB."""

    spec: str
    base: Path
    namespace: str
    _con: Any = field(default=None, repr=False)
    _events: str = field(default="", repr=False)

    @property
    def where(self) -> str:
        return f"the inference log {self.spec}"

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            reader = _reader(self.spec, self.base)
            fresh = connect()
            try:
                self._events = _events_sql(fresh, reader)
            except duckdb.Error as exc:
                fresh.close()
                raise DataError(f"reading the inference log {self.spec} failed: {exc}") from None
            self._con = fresh
        con: duckdb.DuckDBPyConnection = self._con
        return con

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        import duckdb

        con = self._connection()
        try:
            return con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise DataError(f"reading the inference log {self.spec} failed: {exc}") from None

    def stats(self, endpoint: str, since_ms: int) -> dict[str, EntityTraffic]:
        self._connection()
        latency = "epoch_ms(res_t) - epoch_ms(req_t)"
        sql = (
            f"WITH p AS ({_pairs(self._events, since_ms)}) "
            "SELECT revision, count(*), "
            "count(*) FILTER (WHERE req_t IS NOT NULL AND res_t IS NULL), "
            "count(*) FILTER (WHERE req_t IS NULL), "
            f"quantile_cont({latency}, 0.5), quantile_cont({latency}, 0.95), "
            f"quantile_cont({latency}, 0.99) "
            "FROM p GROUP BY revision"
        )
        rows = self._query(sql, {"endpoint": endpoint, "namespace": self.namespace})
        return {
            str(rev): EntityTraffic(
                entity=str(rev),
                requests=int(n),
                errors=int(errors or 0),
                logging_errors=int(unlogged or 0),
                p50_ms=_num(p50),
                p95_ms=_num(p95),
                p99_ms=_num(p99),
            )
            for rev, n, errors, unlogged, p50, p95, p99 in rows
        }

    def sample(self, endpoint: str, entity: str, since_ms: int, k: int) -> list[Exchange]:
        """Up to `k` answered exchanges of `entity`, ordered by id (an even spread, and the
        same sample on a re-run, so the judges' answers come from the cache)."""
        if k <= 0:
            return []
        self._connection()
        sql = (
            f"WITH p AS ({_pairs(self._events, since_ms)} AND p.req_t IS NOT NULL "
            "AND p.res_t IS NOT NULL AND s.revision = $entity ORDER BY p.id LIMIT $k), "
            f"ev AS ({self._events}) "
            f"SELECT p.id, any_value(ev.body) FILTER (WHERE ev.type = '{REQUEST}'), "
            f"any_value(ev.body) FILTER (WHERE ev.type = '{RESPONSE}') "
            "FROM p JOIN ev USING (id) GROUP BY p.id ORDER BY p.id"
        )
        params = {"endpoint": endpoint, "namespace": self.namespace, "entity": entity, "k": k}
        return [
            Exchange(entity, str(req), str(res))
            for _id, req, res in self._query(sql, params)
            if req is not None and res is not None
        ]


def _num(value: Any) -> float | None:
    return None if value is None else float(value)

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
time. The files may be on the runner or in a bucket (`s3://logs/bot/**/*.parquet`): a bucket
is listed and read through fsspec, registered on DuckDB's connection (files.py says why not
DuckDB's httpfs).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genai_gate.backends.files import (
    bucket_files,
    connect,
    expand,
    files_in,
    is_remote,
    sql_list,
    suffix,
)
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
BUCKET_EXAMPLE = "inference-log: s3://logs/models/support-bot/**/*.parquet"


def _reader(spec: str, base: Path) -> tuple[str, Any]:
    """DuckDB's table function over the logged events that `spec` names, and the fsspec
    filesystem DuckDB reads them through when they are in a bucket (else None)."""
    filesystem = None
    files: list[Path] | list[str]
    if is_remote(spec):
        found = bucket_files(spec, "inference-log", BUCKET_EXAMPLE)
        filesystem, files = found.filesystem, list(found.files)
    else:
        local = expand(spec, base)
        if not local:
            raise ConfigError(f"inference-log: {spec!r} matches no file", fix=EXAMPLE)
        paths: list[Path] = []
        for path in local:
            paths += files_in(path) if path.is_dir() else [path]
        if not paths:
            raise ConfigError(f"inference-log: {spec!r} is an empty folder", fix=EXAMPLE)
        files = paths
    kinds = {suffix(p) for p in files}
    if kinds <= {".parquet"}:
        return f"read_parquet({sql_list(files)}, union_by_name = true)", filesystem
    if kinds <= {".jsonl", ".json", ".ndjson"}:
        return _json_reader(files), filesystem
    raise ConfigError(
        f"inference-log: {spec!r} holds {sorted(kinds)} files; the logged events are read from "
        "JSON lines or Parquet, one kind per folder",
        fix=f"{EXAMPLE}\nor, in a bucket, a glob with the files' suffix:\n  {BUCKET_EXAMPLE}",
    )


def _json_reader(files: list[Path] | list[str]) -> str:
    columns = ", ".join(f"'{k}': '{v}'" for k, v in _JSON_COLUMNS.items())
    return f"read_json({sql_list(files)}, format = 'newline_delimited', columns = {{{columns}}})"


def _events_sql(con: duckdb.DuckDBPyConnection, reader: str) -> tuple[str, str]:
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
    # events always carry both attributes; plain equality lets the Parquet reader skip early
    wanted = [
        f"{c} = ${p}"
        for c, p in (("inferenceservicename", "endpoint"), ("namespace", "namespace"))
        if c in kinds
    ]
    where = " AND ".join(wanted) or "TRUE"
    time = "time" if kinds["time"].startswith("TIMESTAMP") else "CAST(time AS TIMESTAMPTZ)"
    events = (
        f"SELECT id, type, source, time, epoch_us({time}) AS us, {body} AS body "
        f"FROM raw_events WHERE {where}"
    )
    return events, where


def _text_times_in_utc(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `time` is RFC 3339 text in UTC (`...Z`), as the sink writes it: then a window
    that starts on a whole second is a text comparison, which spares the samples' scans the
    cast of every event's time (the pairing needs it, for latency)."""
    kind = con.execute("SELECT typeof(time) FROM raw_events LIMIT 1").fetchone()
    if kind is None or kind[0] != "VARCHAR":
        return False
    row = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE regexp_full_match(time, "
        "'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z')) "
        "FROM (SELECT time FROM raw_events LIMIT 1000)"
    ).fetchone()
    return bool(row and row[0] and row[0] == row[1])


def _window(since_ms: int, until_ms: int | None = None) -> str:
    window = f"us >= {int(since_ms) * 1000}"
    if until_ms is not None:
        window += f" AND us < {int(until_ms) * 1000}"
    return window


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text_window(since_ms: int, until_ms: int | None = None) -> str:
    """`since <= time < until` on RFC 3339 UTC text: exact when both are whole seconds (a
    fraction or the `Z` only follows the seconds of a later or equal instant, so an event
    at exactly `until`, `...:00Z`, sorts after `...:00` and is left out)."""
    window = f"time >= '{_stamp(since_ms)}'"
    if until_ms is not None:
        window += f" AND time < '{_stamp(until_ms)}'"
    return window


def _pairs_sql(events: str, window: str) -> str:
    """Per pod, how many pairs of each kind and latency (whole ms): a histogram, a few
    thousand rows whatever the traffic.

    Events are windowed before they are paired, so an id seen again long after (a caller's
    Ce-Id) is not paired across windows; a request logged just before `since` leaves its
    response alone, counted as a logging error. Pairs are grouped by the id's 64-bit hash
    and carry their pod as a hash: fixed-width keys keep the one big aggregation cheap (two
    of 10M ids share a hash with a probability of about 3 in a million). Percentiles come
    from the histogram (exact to the millisecond), which costs far less than a quantile
    aggregate over every pair.
    """
    return (
        "WITH pairs AS (SELECT any_value(hash(source)) AS pod, "
        f"min(us) FILTER (WHERE type = '{REQUEST}') AS req, "
        f"max(us) FILTER (WHERE type = '{RESPONSE}') AS res "
        f"FROM ({events}) WHERE type IN ('{REQUEST}', '{RESPONSE}') AND {window} "
        "GROUP BY hash(id)) "
        "SELECT pod, req IS NULL, res IS NULL, CAST(round((res - req) / 1000.0) AS BIGINT), "
        "count(*) FROM pairs GROUP BY ALL"
    )


def _pods_sql(scope: str) -> str:
    """Each pod's hash and revision: the pattern runs once per pod, not once per event."""
    return (
        f"SELECT hash(source), regexp_extract(source, '{REVISION_OF_SOURCE}', 1) "
        f"FROM (SELECT DISTINCT source FROM raw_events WHERE {scope})"
    )


def _percentile(histogram: list[tuple[int, int]], q: float) -> float | None:
    """Nearest-rank percentile of sorted (value, count) pairs."""
    total = sum(n for _, n in histogram)
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for value, n in histogram:
        seen += n
        if seen >= rank:
            return float(value)
    return float(histogram[-1][0])  # pragma: no cover - the ranks add up to total


@dataclass
class LoggedEvents:
    """The logged events of one InferenceService, read with DuckDB."""

    spec: str
    base: Path
    namespace: str
    _con: Any = field(default=None, repr=False)
    _events: str = field(default="", repr=False)
    _spill: Any = field(default=None, repr=False)
    _scope: str = field(default="TRUE", repr=False)
    _utc_text: bool = field(default=False, repr=False)
    _samples: dict[tuple[str, int, int | None, int], dict[str, list[Exchange]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def where(self) -> str:
        return f"the inference log {self.spec}"

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            reader, filesystem = _reader(self.spec, self.base)
            # pairing 10M calls groups 10M ids: bounded memory, spilled to a folder of ours
            self._spill = tempfile.TemporaryDirectory(prefix="genai-gate-duckdb-")
            fresh = connect(spill_to=Path(self._spill.name), filesystem=filesystem)
            try:
                self._events, self._scope = _events_sql(fresh, reader)
                self._utc_text = _text_times_in_utc(fresh)
            except duckdb.Error as exc:
                fresh.close()
                raise DataError(f"reading the inference log {self.spec} failed: {exc}") from None
            self._con = fresh
        con: duckdb.DuckDBPyConnection = self._con
        return con

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        import duckdb

        con = self._connection()
        # DuckDB refuses a parameter the text does not use (a sink without namespace column)
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        try:
            return con.execute(sql, used).fetchall()
        except duckdb.Error as exc:
            raise DataError(f"reading the inference log {self.spec} failed: {exc}") from None

    def _window(self, since_ms: int, until_ms: int | None) -> str:
        """The window [since, until) as a filter the Parquet reader can push down when it can
        be one (whole seconds of UTC text), else on each event's instant."""
        whole = since_ms % 1000 == 0 and (until_ms is None or until_ms % 1000 == 0)
        if self._utc_text and whole:
            return _text_window(since_ms, until_ms)
        return _window(since_ms, until_ms)

    def stats(
        self, endpoint: str, since_ms: int, until_ms: int | None = None
    ) -> dict[str, EntityTraffic]:
        self._connection()
        scope = {"endpoint": endpoint, "namespace": self.namespace}
        revision_of = {
            int(pod): str(rev) for pod, rev in self._query(_pods_sql(self._scope), scope) if rev
        }
        counts: dict[str, list[int]] = {}
        latencies: dict[str, dict[int, int]] = {}
        for pod, unlogged, failed, ms, n in self._query(
            _pairs_sql(self._events, self._window(since_ms, until_ms)), scope
        ):
            revision = revision_of.get(int(pod))
            if revision is None:
                continue  # not a Knative pod: no revision to attribute it to
            total = counts.setdefault(revision, [0, 0, 0])
            total[0] += int(n)
            if unlogged:
                total[2] += int(n)
            elif failed:
                total[1] += int(n)
            else:
                hist = latencies.setdefault(revision, {})
                hist[int(ms)] = hist.get(int(ms), 0) + int(n)
        out = {}
        for revision, (requests, errors, unlogged_n) in counts.items():
            histogram = sorted(latencies.get(revision, {}).items())
            out[revision] = EntityTraffic(
                entity=revision,
                requests=requests,
                errors=errors,
                logging_errors=unlogged_n,
                p50_ms=_percentile(histogram, 0.5),
                p95_ms=_percentile(histogram, 0.95),
                p99_ms=_percentile(histogram, 0.99),
            )
        return out

    def sample(
        self, endpoint: str, entity: str, since_ms: int, k: int, until_ms: int | None = None
    ) -> list[Exchange]:
        """Up to `k` answered exchanges of `entity`, by smallest id (an even spread, and the
        same sample on a re-run, so the judges' answers come from the cache). Every
        revision's sample is drawn at once, on the first call: two scans in all. Each
        exchange's duration is its response's time minus its request's (the agent's clock)."""
        if k <= 0:
            return []
        key = (endpoint, since_ms, until_ms, k)
        if key not in self._samples:
            self._samples[key] = self._sample_all(endpoint, since_ms, until_ms, k)
        return self._samples[key].get(entity, [])

    def _sample_all(
        self, endpoint: str, since_ms: int, until_ms: int | None, k: int
    ) -> dict[str, list[Exchange]]:
        """Each pod's smallest request ids (a top-N per group, no payload read), then the
        bodies of just those ids; a failed call has no response, so more ids are asked for
        until every revision has `k` answered exchanges or the window has no more."""
        self._connection()
        scope: dict[str, Any] = {"endpoint": endpoint, "namespace": self.namespace}
        window = self._window(since_ms, until_ms)
        revision_of = {
            int(pod): str(rev) for pod, rev in self._query(_pods_sql(self._scope), scope) if rev
        }
        wanted = 2 * k
        while True:
            candidates: dict[str, list[str]] = {}
            for pod, ids in self._query(
                f"SELECT hash(source), min(id, {int(wanted)}) FROM ({self._events}) "
                f"WHERE type = '{REQUEST}' AND {window} GROUP BY hash(source)",
                scope,
            ):
                revision = revision_of.get(int(pod))
                if revision is not None:
                    candidates.setdefault(revision, []).extend(str(i) for i in ids)
            for revision, ids in candidates.items():
                candidates[revision] = sorted(ids)[:wanted]
            everyone = [i for ids in candidates.values() for i in ids]
            bodies: dict[tuple[str, str], str] = {}
            # the request's first and the response's last instant, as the pairing takes them
            at: dict[tuple[str, str], int] = {}
            if everyone:
                for id_, kind, body, first, last in self._query(
                    f"SELECT id, type, any_value(body), min(us), max(us) FROM ({self._events}) "
                    f"WHERE id IN (SELECT unnest($ids)) AND {window} "
                    f"AND type IN ('{REQUEST}', '{RESPONSE}') GROUP BY id, type",
                    {**scope, "ids": everyone},
                ):
                    if body is not None:
                        bodies[(str(id_), str(kind))] = str(body)
                        instant = first if kind == REQUEST else last
                        if instant is not None:
                            at[(str(id_), str(kind))] = int(instant)
            out = {
                revision: [
                    Exchange(
                        revision,
                        bodies[(i, REQUEST)],
                        bodies[(i, RESPONSE)],
                        _duration_ms(at.get((i, REQUEST)), at.get((i, RESPONSE))),
                    )
                    for i in ids
                    if (i, REQUEST) in bodies and (i, RESPONSE) in bodies
                ][:k]
                for revision, ids in candidates.items()
            }
            short = [r for r, ids in candidates.items() if len(out[r]) < k and len(ids) == wanted]
            if not short:
                return out
            wanted *= 4


def _duration_ms(request_us: int | None, response_us: int | None) -> float | None:
    """How long the model took, from the logged times (None when either is missing, or the
    clocks disagree so much the response precedes its request)."""
    if request_us is None or response_us is None or response_us < request_us:
        return None
    return (response_us - request_us) / 1000.0


def _num(value: Any) -> float | None:
    return None if value is None else float(value)

"""A local Databricks workspace emulator, faithful to ../shared/reference/databricks_api.md.

Start it with `FakeDatabricks(...).start()` (or `with FakeDatabricks(...) as fake:`, or the
conftest fixtures `databricks_workspace`, `databricks_pat_env`, `databricks_oidc_env`) and point
the real databricks-sdk at `fake.host` (plain http on 127.0.0.1).

Python API at a glance (details below):
  constructor fields  tokens, latency, fail_429_first, retry_after, seed, oidc_issuer,
                      federation (FederationPolicy), pat_user, access_token_ttl, update_polls,
                      fail_next_updates, conflict_next, require_registered_models,
                      legacy_inference_tables_cutoff, capture_dir, served_entities_history,
                      warehouses, statement_polls, sql_chunk_rows, clock. All may be changed
                      on a running fake; the fault budgets count down.
  setup               add_endpoint(name, *ServedEntity), register_model_version(full_name,
                      version, answer, latency=, error_rate=, status=, aliases=), settle(name),
                      objects.add_job(name, parameters),
                      write_table(full_name, rows, mode=) (a Delta table, issue #17);
                      volumes, clusters, job_env (issue #17)
  addresses           host, token_endpoint, captures, pat_env(), oidc_env(issuer=None)
  reading             endpoint(name) / endpoints, model_version(), rows(table),
                      table_path(table), payload_table(endpoint), sql(query, **params),
                      api_requests(); counters calls, served, requests, exchanges,
                      exchange_errors, statements, served_entity_rows
  module constants    PAT, WORKSPACE_ID, SERVICE_PRINCIPAL_ID, WAREHOUSE_ID, DEFAULT_SUBJECT,
                      EXCHANGE_* (refusal texts), PAYLOAD_COLUMNS, LEGACY_PAYLOAD_COLUMNS,
                      SERVED_ENTITIES_TABLE, SERVED_ENTITIES_COLUMNS, LEGACY_CUTOFF_MESSAGE

It serves:

Auth (spec §2)
  `GET /.well-known/databricks-config` (oidc_endpoint, workspace_id, cloud) and
  `GET /oidc/.well-known/oauth-authorization-server`, so github-oidc discovery works with every
  SDK version; PATs (`tokens`, default {PAT}); and the token exchange `POST /oidc/v1/token`
  (form-encoded, §2.3). The exchange verifies the GitHub JWT for real with PyJWT: the issuer
  must be the `federation` policy's (default: the attached `oidc_issuer`, a FakeGitHubOIDC),
  the signature is checked against the issuer's JWKS (found through its
  `/.well-known/openid-configuration`), then `exp`, `aud` (default audiences: the token
  endpoint URL, which the SDK requests) and `sub` (an exact string), and `client_id` must be the
  policy's service principal. A refusal is HTTP 400 JSON `{"error": "invalid_request",
  "error_description": "Token exchange failed: ..."}` naming what failed (constants
  EXCHANGE_*; no claim values or tokens are quoted); the SDK raises it as `ValueError("
  invalid_request: Token exchange failed: ...")` from the API call. Success mints a random
  access token that later calls may use. Counters: `exchanges`, `exchange_errors`.

Serving endpoints (§3): list, get, create, `PUT {name}/config`, `PUT {name}/ai-gateway`,
  `PATCH {name}/tags`, delete, `GET .../served-models/{x}/build-logs` and `/logs`, the
  invocations route, `/serving-endpoints/{name}/served-models/{x}/invocations` (that served
  entity answers whatever the routes say; an unknown one is 404 RESOURCE_DOES_NOT_EXIST) and
  the OpenAI-style `/serving-endpoints/chat/completions` (body `model` = endpoint name). The
  state machine of §3.4: a create answers NOT_READY/IN_PROGRESS with only `pending_config`;
  an update of a READY endpoint answers READY/IN_PROGRESS with the old `config` (version N)
  and `pending_config` (N+1, `start_time`). An update settles on a later
  `GET` of that endpoint: `update_polls` GETs (default 1) still answer IN_PROGRESS, the next one
  settles (0: the first GET after the update settles, so SDK waiters never sleep). A PUT config
  while IN_PROGRESS is 409 RESOURCE_CONFLICT ("Endpoint <name> is currently updating. ..."),
  which the SDK raises as ResourceConflict. Faults: `fail_next_updates` (the next N
  creates/updates end UPDATE_FAILED: the old config keeps serving, `pending_config` stays with
  its new entities DEPLOYMENT_FAILED and a message), `conflict_next` (the next N PUT config
  answer 409 even when idle). `settle(name)` forces an update to finish from Python.

  Validation follows the backend (and the Databricks CLI's fake, which "mirrors the backend"):
  routes name served entities by `served_entity_name` and/or `served_model_name`, are
  integers and add up to 100; more than one entity needs a traffic_config; one entity without
  it gets a 100 % route (echoed with both names); `entity_version` must be a JSON string;
  served entity names are unique, `[A-Za-z0-9_-]`, and default to `<model short name>-<version>`
  (the SDK docstring says "entity_name-entity_version", but a UC entity_name holds dots, which
  a served entity name may not, so the backend uses the last part: `main.ml.qa` v3 -> `qa-3`).
  `served_models` (legacy) are accepted and mirrored: every entity is listed in both
  `served_entities` and `served_models`. workload_size, scale_to_zero_enabled and other fields
  are echoed as sent (`workload_type` defaults to "CPU"; `burst_scaling_enabled` is not echoed,
  as on the backend). An update may omit the entities to change only the traffic.
  A served entity whose Unity Catalog model version is not registered (see
  `register_model_version`) or not READY is accepted by the PUT but makes the update end
  UPDATE_FAILED with a deployment_state_message that names the model version: the real
  backend's answer is undocumented, and the asynchronous failure is the case a client must
  handle anyway. Set `require_registered_models=False` to serve any version.

AI Gateway (§3.2/§3.4/§4): `put_ai_gateway` replaces the whole gateway config synchronously
  and GET echoes it as `ai_gateway` (a missing inference table prefix is filled with the
  endpoint name). Refused with 400 INVALID_PARAMETER_VALUE: enabling an inference table without
  catalog/schema; changing catalog/schema/prefix of an enabled one (disable it first); enabling
  it while legacy inference tables are on. Legacy `auto_capture_config` that enables capture
  is refused on create/update once `clock()` is past `legacy_inference_tables_cutoff`
  (2026-02-20, §4.4) with a message saying legacy inference tables can no longer be enabled;
  before that date it is accepted, and re-enabling it after a disable, or moving it, is 400.

Unity Catalog model versions: `GET /api/2.1/unity-catalog/models/{full_name}/versions/{v}`
  (what `w.model_versions.get` calls) and `.../aliases/{alias}` (`get_by_alias`), backed by
  `register_model_version(full_name, version, answer=..., latency=..., error_rate=...)`.
  Served entities answer with the callable of their (entity_name, entity_version), after
  `latency` seconds; `error_rate` of their calls answer HTTP 500 INTERNAL_ERROR, drawn from the
  seeded RNG (deterministic for a given `seed` and call order). A ServedEntity's own `answer`
  (the `add_endpoint` API) wins over the registry; with neither, `default_answer`.

Inference tables and system tables, under `capture_dir` (a constructor field; a temporary
  folder removed at stop() when not given). Table `catalog.schema.table` is the folder
  `<capture_dir>/<catalog>.<schema>.<table>/` of JSON-lines part files, or the single file
  `<capture_dir>/<catalog>.<schema>.<table>.jsonl` (names lower-case, hyphens kept). While an
  endpoint's AI Gateway inference table is enabled, every invocation (429 and 500 included)
  appends one row of the AI Gateway payload schema (PAYLOAD_COLUMNS, §4.3) to
  `<catalog>.<schema>.<prefix>_payload/part-*.jsonl`: TIMESTAMP values are UTC
  "YYYY-MM-DD HH:MM:SS.ffffff" strings, DATE values "YYYY-MM-DD", `logging_error_codes` a JSON
  list, `request`/`response` the raw JSON text, `requester` the PAT user or the service
  principal id; 429s are rejected before routing, so their `served_entity_id` is null. Legacy
  capture writes LEGACY_PAYLOAD_COLUMNS instead. `system.serving.served_entities.jsonl` holds
  SERVED_ENTITIES_COLUMNS (the documented columns of Databricks' system table): one row per
  served entity ever deployed (its latest state: `endpoint_config_version`, `change_time`,
  `endpoint_delete_time` once the endpoint is deleted); `served_entities_history=True` appends
  a row per activated config instead, like the real change-history table. A served entity
  keeps its opaque `served_entity_id` (a uuid) across config versions while its name, model
  and version stay the same; the id is not in the REST answers (the SDK has no such field):
  join through the system table, as on Databricks. Entities appended to `endpoint.entities` by
  hand are added to the system table at their first invocation. All times (request_time,
  change_time, creation timestamps, SQL's current_timestamp()) come from `clock` (default
  time.time), so a test can move time.

Jobs `run-now`, workspace folders, AI/BI (Lakeview) dashboards, SQL queries and SQL alerts:
  `fake.objects` (tests/fakes/databricks_objects.py, whose docstring has the details):
  objects.add_job(name, parameters) -> job id, objects.job_runs, objects.dashboards,
  objects.published, objects.queries, objects.alerts, objects.dashboard_named(name).

SQL Statement Execution (§5): `POST /api/2.0/sql/statements`, `GET .../{id}`,
  `GET .../{id}/result/chunks/{n}`, `POST .../{id}/cancel`, on the warehouses in `warehouses`
  (others: 404 RESOURCE_DOES_NOT_EXIST). Statements run on DuckDB over the tables above: each
  `catalog.schema.table` (parts bare or back-quoted) is rewritten to a DuckDB view named by the
  quoted full name, back-quoted identifiers become double-quoted, `:name` markers are bound from
  `parameters` [{name, value, type}] (as `CAST(value AS type)`; no value = NULL),
  `current_timestamp()`/`now()`/`current_date()` read the fake's `clock`, and
  percentile_approx, approx_percentile, percentile, get_json_object, try_divide, nvl,
  timestamp_millis, unix_millis and size are defined as macros. Other SQL is DuckDB's dialect;
  Databricks' `col:path` JSON syntax is refused (use get_json_object), and functions DuckDB
  lacks, like timestampadd/dateadd, fail as [UNRESOLVED_ROUTINE] (write
  `ts - INTERVAL 30 MINUTES`, valid in both dialects). The statement runs at
  submission; its state is revealed by polls: with `wait_timeout` "0s", or when
  `statement_polls` > 0, the POST answers PENDING (CANCELED with on_wait_timeout=CANCEL and a
  non-zero wait), then `statement_polls` GETs answer RUNNING, then the next is terminal. Results
  are JSON_ARRAY with every cell a string (null stays null; timestamps
  "YYYY-MM-DDTHH:MM:SS.fffZ"), a manifest schema with Spark type names (BIGINT -> LONG in
  `type_name`, `type_text` BIGINT), chunks of `sql_chunk_rows` rows linked by
  `next_chunk_index`/`next_chunk_internal_link`; an empty result has no `data_array`. A failing
  statement is HTTP 200 with state FAILED, `status.error` {error_code, message} and
  `status.sql_state` (e.g. "[TABLE_OR_VIEW_NOT_FOUND] ...", 42P01). INLINE + JSON_ARRAY and
  EXTERNAL_LINKS + ARROW_STREAM are emulated (INLINE with another format: 400, as the API
  documents; anything else: 400). `fake.sql(query, **params)` runs the same SQL from Python and
  returns dicts. Two writes are emulated, for tables genai-gate keeps:
  `CREATE TABLE [IF NOT EXISTS] c.s.t (col TYPE, ...) [USING DELTA] [COMMENT '...']` makes an
  empty table (its folder) with those columns (an existing one, without IF NOT EXISTS, is
  [TABLE_OR_VIEW_ALREADY_EXISTS]), and `INSERT INTO c.s.t VALUES ... | SELECT ...` appends the
  rows by position as a part file and answers one row of `num_affected_rows`,
  `num_inserted_rows`, as Databricks does (a row of the wrong width is
  [INSERT_COLUMN_ARITY_MISMATCH]).

Delta tables with history and Arrow results (issue #17): `write_table(full_name, rows,
  mode="overwrite"|"append")` writes a real Delta table (deltalake) under capture_dir, one
  version per write, and returns the version. SQL reads a Delta table's latest version;
  `<table> VERSION AS OF n` reads version n as it was (a version the table never had fails
  with "Cannot time travel Delta table to version n. Available versions: [a, b]."; on a
  non-Delta table DELTA_ONLY_OPERATION) and `DESCRIBE HISTORY <table> [LIMIT n]` lists its
  versions newest first (HISTORY_COLUMNS). With EXTERNAL_LINKS + ARROW_STREAM the manifest has
  format ARROW_STREAM and per-chunk byte counts, `result.external_links` holds chunk 0's link
  and `.../result/chunks/{n}` answers `{"external_links": [link n]}`; each link is a
  presigned-style URL under `/_storage/` (expiration 15 minutes) that serves the chunk as an
  Arrow IPC stream. Like cloud storage, it refuses a request that carries an Authorization
  header (400) or a wrong signature (403). An empty Arrow result has no chunk at all.

Unity Catalog volumes and one-time job runs (issue #17): the Files API on volumes,
  `PUT /api/2.0/fs/files/Volumes/<c>/<s>/<v>/<path>?overwrite=` (the raw body is the file;
  parent folders are created; 204; overwrite=false on an existing file is 409 ALREADY_EXISTS)
  and `GET` of the same path (the bytes, application/octet-stream, Last-Modified); volumes are
  `volumes` (default {JOB_VOLUME}), any other is 404 NOT_FOUND; the files live under
  `volumes_root`, and `volume_path(p)` maps a /Volumes path to its file. Jobs 2.2:
  `POST /api/2.2/jobs/runs/submit` takes one task with a spark_python_task on an existing
  cluster (`clusters`, default {CLUSTER_ID}; others 400 "Cluster ... does not exist") or on
  serverless compute (environment_key naming one of `environments`), and answers {run_id};
  the run goes PENDING -> RUNNING -> TERMINATED (SUCCESS on exit 0, FAILED otherwise,
  TIMEDOUT past timeout_seconds). It REALLY runs: the python_file is executed by this
  interpreter in a subprocess with its parameters, /Volumes paths mapped to volumes_root, and
  a job's environment (DATABRICKS_HOST, a PAT, DATABRICKS_RUNTIME_VERSION, plus `job_env`);
  a wheel dependency or library on a volume must exist and be a zip, else the run fails
  "Library installation failed" (the code that runs is this checkout's, not the wheel's).
  `GET /api/2.2/jobs/runs/get?run_id=` answers the Run (state, status, tasks with their
  task run_id, run_page_url `{host}/?o=<workspace>#job/<id>/run/<id>`); `GET
  .../runs/get-output?run_id=<task run id>` the task's `logs` (its stdout and stderr) and,
  when it failed, `error`/`error_trace` (the run's own id: 400, as for any multi-task run);
  `POST .../runs/cancel` is asynchronous: TERMINATING, then TERMINATED/CANCELED once the
  process is killed. Runs are in `job_runs` (JobRun: argv, process, log, result).

Every request is recorded in `requests` (RecordedRequest: method, path, query, auth kind "none" |
"pat" | "oauth" | "invalid", principal, the X-Databricks-Workspace-Id header, user agent, status).
`calls` and `served` count invocations per endpoint and per served entity name. Endpoint-level
faults for invocations: `latency` and `fail_429_first` (429 with `Retry-After: retry_after`).
Never 503/429 for anything else: the SDK would retry for 5 minutes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import jwt

from tests.fakes.databricks_objects import WorkspaceObjects
from tests.fakes.github_oidc import FakeGitHubOIDC

PAT = "dapi-emulator-token-0123456789abcdef"
WORKSPACE_ID = "1234567890"
ACCOUNT_ID = "00000000-0000-4000-8000-00000000acc7"
SERVICE_PRINCIPAL_ID = "6b1c0e6e-5a7a-4c47-9d8e-5e1f0c0ffee1"
PAT_USER = "emulator@example.com"
WAREHOUSE_ID = "emulator-warehouse"
JOB_VOLUME = "main.eval.jobs"  # /Volumes/main/eval/jobs (issue #17)
CLUSTER_ID = "0101-000000-emulated"
DEFAULT_SUBJECT = "repo:acme/shop:ref:refs/heads/main"

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
EXCHANGE_AUDIENCE_MISMATCH = (
    "Token exchange failed: subject token audience mismatch; no federation policy of this "
    "service principal accepts the token's aud claim"
)
EXCHANGE_SUBJECT_MISMATCH = (
    "Token exchange failed: subject token subject mismatch; no federation policy of this "
    "service principal accepts the token's sub claim"
)
EXCHANGE_ISSUER_MISMATCH = (
    "Token exchange failed: subject token issuer mismatch; no federation policy of this "
    "service principal trusts the token's issuer"
)
EXCHANGE_EXPIRED = "Token exchange failed: subject token has expired"
EXCHANGE_NOT_YET_VALID = "Token exchange failed: subject token is not yet valid"
EXCHANGE_BAD_SIGNATURE = "Token exchange failed: subject token signature verification failed"
EXCHANGE_MALFORMED = "Token exchange failed: subject token is not a valid JWT"
EXCHANGE_UNKNOWN_CLIENT = (
    "Token exchange failed: unknown client; no service principal with this client_id has a "
    "federation policy"
)

LEGACY_CUTOFF = date(2026, 2, 20)
LEGACY_CUTOFF_MESSAGE = (
    "Legacy inference tables (auto_capture_config) can no longer be enabled on new or existing "
    "endpoints since {cutoff}. Enable AI Gateway inference tables instead: PUT "
    "/api/2.0/serving-endpoints/{name}/ai-gateway with inference_table_config."
)

# The AI Gateway payload table (spec §4.3), in the table's column order; DuckDB types.
PAYLOAD_COLUMNS: dict[str, str] = {
    "databricks_request_id": "VARCHAR",
    "request_date": "DATE",
    "client_request_id": "VARCHAR",
    "request_time": "TIMESTAMP",
    "status_code": "INTEGER",
    "sampling_fraction": "DOUBLE",
    "execution_duration_ms": "BIGINT",
    "request": "VARCHAR",
    "response": "VARCHAR",
    "logging_error_codes": "VARCHAR[]",
    "served_entity_id": "VARCHAR",
    "requester": "VARCHAR",
}
# The legacy (auto_capture_config) payload table (spec §4.2).
LEGACY_PAYLOAD_COLUMNS: dict[str, str] = {
    "databricks_request_id": "VARCHAR",
    "client_request_id": "VARCHAR",
    "date": "DATE",
    "timestamp_ms": "BIGINT",
    "status_code": "INTEGER",
    "sampling_fraction": "DOUBLE",
    "execution_time_ms": "BIGINT",
    "request": "VARCHAR",
    "response": "VARCHAR",
    "request_metadata": "MAP(VARCHAR, VARCHAR)",
}
# system.serving.served_entities, the documented columns; the *_config structs of other
# entity types are always null here (VARCHAR).
SERVED_ENTITIES_TABLE = "system.serving.served_entities"
SERVED_ENTITIES_COLUMNS: dict[str, str] = {
    "served_entity_id": "VARCHAR",
    "account_id": "VARCHAR",
    "workspace_id": "VARCHAR",
    "created_by": "VARCHAR",
    "endpoint_name": "VARCHAR",
    "endpoint_id": "VARCHAR",
    "served_entity_name": "VARCHAR",
    "entity_type": "VARCHAR",
    "entity_name": "VARCHAR",
    "entity_version": "VARCHAR",
    "endpoint_config_version": "INTEGER",
    "task": "VARCHAR",
    "external_model_config": "VARCHAR",
    "foundation_model_config": "VARCHAR",
    "custom_model_config": (
        "STRUCT(min_concurrency BIGINT, max_concurrency BIGINT, compute_type VARCHAR)"
    ),
    "feature_spec_config": "VARCHAR",
    "change_time": "TIMESTAMP",
    "endpoint_delete_time": "TIMESTAMP",
}

Answer = Callable[[list[dict[str, Any]]], str]
Reply = tuple[int, Any, dict[str, str]]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_CONCURRENCY = {"Small": (4, 4), "Medium": (8, 16), "Large": (16, 64)}
_NOT_ECHOED = {"burst_scaling_enabled"}


def _now_ms(clock: Callable[[], float] = time.time) -> int:
    return int(clock() * 1000)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _ts_text(epoch: float) -> str:
    """A TIMESTAMP cell in the capture files: UTC, microseconds, no zone."""
    return _utc(epoch).strftime("%Y-%m-%d %H:%M:%S.%f")


def default_answer(entity_name: str, entity_version: str) -> Answer:
    """What an entity answers when neither it nor its model version has an answer."""
    return lambda messages: f"{entity_name} version {entity_version} answered"


class ApiError(Exception):
    """A standard Databricks error answer: HTTP status + {"error_code", "message"}."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def reply(self) -> Reply:
        return self.status, {"error_code": self.error_code, "message": self.message}, {}


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _missing_endpoint(name: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint {name} does not exist.")


# ------------------------------------------------------------------------------ data model


@dataclass
class ModelVersion:
    """A Unity Catalog model version, and how entities serving it behave."""

    full_name: str
    version: str
    answer: Answer | None = None
    latency: float = 0.0
    error_rate: float = 0.0
    status: str = "READY"
    aliases: list[str] = field(default_factory=list)
    run_id: str | None = None
    source: str | None = None
    comment: str | None = None
    created_by: str = PAT_USER
    created_at: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def info(self, include_aliases: bool = True) -> dict[str, Any]:
        """The ModelVersionInfo JSON of GET /api/2.1/unity-catalog/models/{n}/versions/{v}."""
        catalog, schema, model = [*self.full_name.split("."), "", ""][:3]
        info: dict[str, Any] = {
            "id": self.id,
            "catalog_name": catalog,
            "schema_name": schema,
            "model_name": model,
            "version": int(self.version),
            "status": self.status,
            "source": self.source or f"dbfs:/databricks/mlflow-registry/{self.id}/models/model",
            "storage_location": f"s3://emulator-metastore/models/{self.id}",
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.created_at,
            "updated_by": self.created_by,
            "metastore_id": "emulator-metastore",
        }
        if self.run_id:
            info["run_id"] = self.run_id
            info["run_workspace_id"] = int(WORKSPACE_ID)
        if self.comment:
            info["comment"] = self.comment
        if include_aliases and self.aliases:
            info["aliases"] = [
                {"alias_name": a, "version_num": int(self.version)} for a in self.aliases
            ]
        return info


@dataclass
class ServedEntity:
    """One served entity of an endpoint config. `traffic` is its route percentage."""

    name: str
    entity_name: str
    entity_version: str
    answer: Answer | None = None
    traffic: int = 100
    workload_size: str | None = "Small"
    scale_to_zero_enabled: bool | None = True
    extra: dict[str, Any] = field(default_factory=dict)
    served_entity_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    creator: str = PAT_USER
    creation_timestamp: int = 0
    deployment_state: str = "DEPLOYMENT_READY"
    deployment_state_message: str = ""

    def same_deployment(self, other: ServedEntity) -> bool:
        return (self.name, self.entity_name, self.entity_version) == (
            other.name,
            other.entity_name,
            other.entity_version,
        )

    def _common(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v for k, v in self.extra.items() if k not in _NOT_ECHOED and v is not None
        }
        out.setdefault("workload_type", "CPU")
        if self.workload_size is not None:
            out["workload_size"] = self.workload_size
        if self.scale_to_zero_enabled is not None:
            out["scale_to_zero_enabled"] = self.scale_to_zero_enabled
        out.update(
            name=self.name,
            state={
                "deployment": self.deployment_state,
                "deployment_state_message": self.deployment_state_message,
            },
            creator=self.creator,
            creation_timestamp=self.creation_timestamp,
        )
        return out

    def entity_output(self) -> dict[str, Any]:
        return {
            "entity_name": self.entity_name,
            "entity_version": self.entity_version,
            **self._common(),
        }

    def model_output(self) -> dict[str, Any]:
        return {
            "model_name": self.entity_name,
            "model_version": self.entity_version,
            **self._common(),
        }


@dataclass
class PendingConfig:
    """The config an endpoint is updating to (`pending_config`)."""

    entities: list[ServedEntity]
    config_version: int
    start_time: int
    polls_left: int
    failures: dict[str, str] = field(default_factory=dict)  # served entity name -> message
    auto_capture: dict[str, Any] | None = None
    failed: bool = False


def _routes(entities: list[ServedEntity]) -> dict[str, Any]:
    return {
        "routes": [
            {
                "served_model_name": e.name,
                "served_entity_name": e.name,
                "traffic_percentage": e.traffic,
            }
            for e in entities
        ]
    }


@dataclass
class Endpoint:
    """A serving endpoint. `entities` is the config being served (mutable from tests)."""

    name: str
    entities: list[ServedEntity]
    config_version: int = 1
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    creator: str = PAT_USER
    creation_timestamp: int = field(default_factory=_now_ms)
    last_updated_timestamp: int = field(default_factory=_now_ms)
    ready: str = "READY"
    config_update: str = "NOT_UPDATING"
    has_config: bool = True
    pending: PendingConfig | None = None
    ai_gateway: dict[str, Any] | None = None
    auto_capture: dict[str, Any] | None = None
    legacy_disabled: bool = False
    tags: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    versions_assigned: int = 1

    def _config(
        self, entities: list[ServedEntity], version: int, auto_capture: dict[str, Any] | None
    ) -> dict[str, Any]:
        config: dict[str, Any] = {
            "config_version": version,
            "served_entities": [e.entity_output() for e in entities],
            "served_models": [e.model_output() for e in entities],
            "traffic_config": _routes(entities),
        }
        if auto_capture is not None:
            config["auto_capture_config"] = auto_capture
        return config

    def detailed(self) -> dict[str, Any]:
        """The ServingEndpointDetailed JSON (GET, create and update answers)."""
        out: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "creator": self.creator,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "state": {"ready": self.ready, "config_update": self.config_update},
            "permission_level": "CAN_MANAGE",
            "route_optimized": False,
        }
        if self.has_config:
            out["config"] = self._config(self.entities, self.config_version, self.auto_capture)
        if self.pending is not None:
            pending = self._config(
                self.pending.entities, self.pending.config_version, self.pending.auto_capture
            )
            pending["start_time"] = self.pending.start_time
            out["pending_config"] = pending
        if self.ai_gateway is not None:
            out["ai_gateway"] = self.ai_gateway
        if self.tags:
            out["tags"] = self.tags
        out.update(self.extra)
        return out

    def summary(self) -> dict[str, Any]:
        """A ServingEndpoint JSON, as `GET /api/2.0/serving-endpoints` lists it."""
        out: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "creator": self.creator,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
            "state": {"ready": self.ready, "config_update": self.config_update},
        }
        if self.has_config:
            out["config"] = {
                "served_entities": [
                    {
                        "name": e.name,
                        "entity_name": e.entity_name,
                        "entity_version": e.entity_version,
                    }
                    for e in self.entities
                ],
                "served_models": [
                    {"name": e.name, "model_name": e.entity_name, "model_version": e.entity_version}
                    for e in self.entities
                ],
            }
        if self.ai_gateway is not None:
            out["ai_gateway"] = self.ai_gateway
        if self.tags:
            out["tags"] = self.tags
        if "description" in self.extra:
            out["description"] = self.extra["description"]
        return out

    def inference_table(self) -> tuple[str, bool] | None:
        """(full payload table name, legacy?) while capture is enabled, else None."""
        itc = (self.ai_gateway or {}).get("inference_table_config")
        if isinstance(itc, dict) and itc.get("enabled"):
            return _payload_table(itc, self.name), False
        acc = self.auto_capture
        if acc is not None and acc.get("enabled"):
            return _payload_table(acc, self.name), True
        return None


def _payload_table(cfg: dict[str, Any], endpoint: str) -> str:
    prefix = cfg.get("table_name_prefix") or endpoint
    return f"{cfg['catalog_name']}.{cfg['schema_name']}.{prefix}_payload".lower()


@dataclass
class FederationPolicy:
    """A service principal's GitHub federation policy (what the token exchange accepts).

    `issuer` None: the attached FakeGitHubOIDC's URL; `audiences` None: the workspace's token
    endpoint URL (what the SDK asks GitHub for); `subject`: the exact `sub` claim."""

    issuer: str | None = None
    audiences: list[str] | None = None
    subject: str = DEFAULT_SUBJECT
    service_principal_id: str = SERVICE_PRINCIPAL_ID


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    auth: str  # "none" | "pat" | "oauth" | "invalid"
    principal: str | None
    workspace_id: str | None  # the X-Databricks-Workspace-Id header
    user_agent: str
    status: int = 0


# ------------------------------------------------------------------------------ SQL


class SqlError(Exception):
    """A statement that fails while running: HTTP 200 with status.state FAILED."""

    def __init__(self, error_class: str, message: str, sql_state: str) -> None:
        super().__init__(f"[{error_class}] {message}")
        self.sql_state = sql_state


_SQL_TOKEN = re.compile(
    r"""
    (?P<str>'(?:[^'\\]|\\.|'')*')
   |(?P<dq>"(?:[^"]|"")*")
   |(?P<bq>`(?:[^`]|``)*`)
   |(?P<comment>--[^\n]*|/\*.*?\*/)
   |(?P<cast>::)
   |(?P<param>:[A-Za-z_][A-Za-z0-9_]*)
   |(?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
   |(?P<ws>\s+)
   |(?P<other>.)
    """,
    re.S | re.X,
)
_TABLE_KEYWORDS = {"FROM", "JOIN"}
_PARAM_AFTER_KEYWORDS = {
    "SELECT", "WHERE", "AND", "OR", "NOT", "BETWEEN", "IN", "LIKE", "ILIKE", "IS", "THEN",
    "ELSE", "WHEN", "CASE", "LIMIT", "OFFSET", "ON", "BY", "HAVING", "INTERVAL", "VALUES",
    "SET", "RETURN", "DISTINCT", "ALL", "ANY",
}  # fmt: skip
_PARAM_TYPES = {
    "STRING": "VARCHAR", "INT": "INTEGER", "INTEGER": "INTEGER", "BIGINT": "BIGINT",
    "LONG": "BIGINT", "SMALLINT": "SMALLINT", "SHORT": "SMALLINT", "TINYINT": "TINYINT",
    "BYTE": "TINYINT", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT", "BOOLEAN": "BOOLEAN",
    "DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "TIMESTAMP_NTZ": "TIMESTAMP",
}  # fmt: skip
_MACROS = (
    "CREATE MACRO percentile_approx(x, p) AS quantile_disc(x, p),"
    " (x, p, accuracy) AS quantile_disc(x, p)",
    "CREATE MACRO approx_percentile(x, p) AS quantile_disc(x, p),"
    " (x, p, accuracy) AS quantile_disc(x, p)",
    "CREATE MACRO percentile(x, p) AS quantile_cont(x, p)",
    "CREATE MACRO get_json_object(j, p) AS json_extract_string(j, p)",
    "CREATE MACRO try_divide(a, b) AS CASE WHEN b = 0 THEN NULL ELSE a / b END",
    "CREATE MACRO nvl(a, b) AS coalesce(a, b)",
    "CREATE MACRO timestamp_millis(x) AS epoch_ms(x)",
    "CREATE MACRO unix_millis(x) AS epoch_ms(x)",
    "CREATE MACRO size(x) AS len(x)",
)


_CREATE_TABLE = re.compile(
    r"\s*CREATE\s+TABLE\s+(?P<ifnot>IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w`.]+)\s*"
    r"\((?P<cols>.*)\)\s*(?:USING\s+DELTA\s*)?(?:COMMENT\s+'(?:[^']|'')*'\s*)?;?\s*$",
    re.S | re.I,
)
_INSERT = re.compile(
    r"\s*INSERT\s+INTO\s+(?P<name>[\w`.]+)\s+(?P<rest>(?:VALUES|SELECT)\b.*)$", re.S | re.I
)


def _table_name(text: str) -> str:
    return ".".join(_unquote(p) for p in re.findall(r"`(?:[^`]|``)*`|[^.]+", text)).lower()


def _unquote(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1].replace("``", "`")
    return token


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def translate_sql(
    sql: str,
    resolve: Callable[[list[str], bool], str | None],
    params: dict[str, tuple[str | None, str]],
    now: float,
    resolve_version: Callable[[list[str], int], str] | None = None,
) -> tuple[str, set[str]]:
    """Databricks SQL -> (DuckDB SQL, the parameters it uses); see the module docstring.
    `resolve(parts, after_from)` returns the view for a table name, None to leave the name
    alone, or raises SqlError; `resolve_version(parts, n)` the view for `name VERSION AS OF n`
    (Delta time travel)."""
    used_params: set[str] = set()
    tokens = [(m.lastgroup or "other", m.group()) for m in _SQL_TOKEN.finditer(sql)]
    out: list[str] = []
    prev_kind, prev_text = "", ""
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind in ("ident", "bq"):
            parts, j = [_unquote(text)], i + 1
            quoted = [kind == "bq"]
            while (
                j + 1 < len(tokens)
                and tokens[j] == ("other", ".")
                and tokens[j + 1][0] in ("ident", "bq")
            ):
                parts.append(_unquote(tokens[j + 1][1]))
                quoted.append(tokens[j + 1][0] == "bq")
                j += 2
            after_from = prev_kind == "ident" and prev_text.upper() in _TABLE_KEYWORDS
            upper = text.upper()
            if len(parts) == 1 and kind == "ident" and upper in (
                "CURRENT_TIMESTAMP", "NOW", "CURRENT_DATE", "GETDATE",
            ):  # fmt: skip
                if tokens[j : j + 2] == [("other", "("), ("other", ")")]:
                    j += 2
                elif upper in ("NOW", "GETDATE"):
                    out.append(text)
                    prev_kind, prev_text, i = kind, text, j
                    continue
                if upper == "CURRENT_DATE":
                    out.append(f"DATE '{_utc(now).date().isoformat()}'")
                else:
                    out.append(f"TIMESTAMP '{_utc(now).isoformat(sep=' ')}'")
            elif after_from and (travel := _version_as_of(tokens, j)) is not None:
                version, j = travel
                if resolve_version is None:
                    raise SqlError("UNSUPPORTED_FEATURE", "VERSION AS OF", "0A000")
                out.append(resolve_version(parts, version))
            else:
                view = resolve(parts, after_from)
                if view is not None:
                    out.append(view)
                else:
                    out.append(
                        ".".join(_quote(p) if q else p for p, q in zip(parts, quoted, strict=True))
                    )
            prev_kind, prev_text, i = kind, text, j
            continue
        if kind == "param":
            name = text[1:]
            path_syntax = prev_kind in ("bq", "dq") or (
                prev_kind == "ident" and prev_text.upper() not in _PARAM_AFTER_KEYWORDS
            )
            path_syntax = path_syntax or (prev_kind == "other" and prev_text in (")", "]"))
            if path_syntax:
                raise SqlError(
                    "UNSUPPORTED_FEATURE",
                    f"The JSON path syntax `<column>{text}` is not supported by the emulator; "
                    "use get_json_object(<column>, '$.path').",
                    "0A000",
                )
            if name not in params:
                raise SqlError(
                    "UNBOUND_SQL_PARAMETER",
                    f"Found the unbound parameter: {name}. Please, fix `args` and provide a "
                    "mapping of the parameter to either a SQL literal or collection "
                    "constructor functions such as `map()`, `array()`, `struct()`.",
                    "42P02",
                )
            value, duck_type = params[name]
            used_params.add(name)
            out.append(
                f"CAST(${name} AS {duck_type})"
                if value is not None
                else f"CAST(NULL AS {duck_type})"
            )
        else:
            out.append(text)
        if kind not in ("ws", "comment"):
            prev_kind, prev_text = kind, text
        i += 1
    return "".join(out), used_params


def _version_as_of(tokens: list[tuple[str, str]], j: int) -> tuple[int, int] | None:
    """`VERSION AS OF <n>` (or `FOR VERSION AS OF`) at tokens[j:]: (n, the index after it)."""
    words: list[str] = []
    k = j
    while k < len(tokens) and len(words) < 4:
        kind, text = tokens[k]
        if kind in ("ws", "comment"):
            k += 1
            continue
        if kind != "ident":
            break
        words.append(text.upper())
        k += 1
        if words in (["VERSION", "AS", "OF"], ["FOR", "VERSION", "AS", "OF"]):
            while k < len(tokens) and tokens[k][0] == "ws":
                k += 1
            digits = ""
            while k < len(tokens) and tokens[k][0] == "other" and tokens[k][1].isdigit():
                digits += tokens[k][1]
                k += 1
            if not digits:
                raise SqlError(
                    "PARSE_SYNTAX_ERROR", "VERSION AS OF takes a version number.", "42601"
                )
            return int(digits), k
    return None


_DUCK_TO_SPARK = {
    "BOOLEAN": ("BOOLEAN", "BOOLEAN"),
    "TINYINT": ("BYTE", "TINYINT"),
    "UTINYINT": ("SHORT", "SMALLINT"),
    "SMALLINT": ("SHORT", "SMALLINT"),
    "USMALLINT": ("INT", "INT"),
    "INTEGER": ("INT", "INT"),
    "UINTEGER": ("LONG", "BIGINT"),
    "BIGINT": ("LONG", "BIGINT"),
    "UBIGINT": ("LONG", "BIGINT"),
    "HUGEINT": ("LONG", "BIGINT"),  # DuckDB's sum()/count_if(); Spark's are BIGINT
    "UHUGEINT": ("LONG", "BIGINT"),
    "FLOAT": ("FLOAT", "FLOAT"),
    "DOUBLE": ("DOUBLE", "DOUBLE"),
    "VARCHAR": ("STRING", "STRING"),
    "UUID": ("STRING", "STRING"),
    "JSON": ("STRING", "STRING"),
    "BLOB": ("BINARY", "BINARY"),
    "DATE": ("DATE", "DATE"),
    "TIMESTAMP": ("TIMESTAMP", "TIMESTAMP"),
    "TIMESTAMP_S": ("TIMESTAMP", "TIMESTAMP"),
    "TIMESTAMP_MS": ("TIMESTAMP", "TIMESTAMP"),
    "TIMESTAMP_NS": ("TIMESTAMP", "TIMESTAMP"),
    "TIMESTAMP WITH TIME ZONE": ("TIMESTAMP", "TIMESTAMP"),
    "INTERVAL": ("INTERVAL", "INTERVAL"),
    '"NULL"': ("NULL", "VOID"),
}


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for pos, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:pos].strip())
            start = pos + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def spark_type(duck: str) -> dict[str, Any]:
    """A manifest column type for a DuckDB type: {type_name, type_text[, precision, scale]}."""
    duck = duck.strip()
    if m := re.fullmatch(r"(.+)\[\d*\]", duck):
        return {"type_name": "ARRAY", "type_text": f"ARRAY<{spark_type(m[1])['type_text']}>"}
    if m := re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duck):
        return {
            "type_name": "DECIMAL",
            "type_text": f"DECIMAL({m[1]},{m[2]})",
            "type_precision": int(m[1]),
            "type_scale": int(m[2]),
        }
    if m := re.fullmatch(r"MAP\((.*)\)", duck):
        key, value = [*_split_top(m[1]), "VARCHAR", "VARCHAR"][:2]
        text = f"MAP<{spark_type(key)['type_text']},{spark_type(value)['type_text']}>"
        return {"type_name": "MAP", "type_text": text}
    if m := re.fullmatch(r"STRUCT\((.*)\)", duck):
        fields = []
        for part in _split_top(m[1]):
            fname, _, ftype = part.partition(" ")
            fields.append(f"{fname.strip(chr(34))}: {spark_type(ftype)['type_text']}")
        return {"type_name": "STRUCT", "type_text": f"STRUCT<{', '.join(fields)}>"}
    name, text = _DUCK_TO_SPARK.get(duck, ("USER_DEFINED_TYPE", duck))
    return {"type_name": name, "type_text": text}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def cell_text(value: Any) -> str | None:
    """One JSON_ARRAY cell: every value as a string, null as null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        moment: datetime = value
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, default=_json_default, separators=(",", ":"))
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@dataclass
class _Statement:
    id: str
    state: str
    final_state: str
    polls_left: int
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    error: SqlError | None = None
    # EXTERNAL_LINKS + ARROW_STREAM (issue #17): the result as Arrow, served by chunk
    arrow: Any = None


# ---------------------------------------------- Delta tables with history (issue #17)

_NAME_PART = r"(?:`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_$]*)"
_DESCRIBE_HISTORY = re.compile(
    rf"^\s*DESCRIBE\s+HISTORY\s+({_NAME_PART}(?:\.{_NAME_PART}){{0,2}})"
    r"(?:\s+LIMIT\s+(\d+))?\s*;?\s*$",
    re.I,
)
# DESCRIBE HISTORY's columns on Databricks (a subset of the 15: the ones Delta always fills)
HISTORY_COLUMNS = (
    "version", "timestamp", "userId", "userName", "operation", "operationParameters",
    "readVersion", "isolationLevel", "isBlindAppend", "operationMetrics", "userMetadata",
    "engineInfo",
)  # fmt: skip


def _is_delta(path: Path) -> bool:
    return path.is_dir() and (path / "_delta_log").is_dir()


def _split_name(text: str) -> list[str]:
    return [_unquote(m.group()) for m in re.finditer(_NAME_PART, text)]


# ---------------------------------------------------- one-time job runs (issue #17)

# the states of §Jobs runs/get: life cycle, result, and the newer `status` block
_RESULT_STATUS = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("CANCELED", "SUCCESS"),
    "TIMEDOUT": ("TIMED_OUT", "CLIENT_ERROR"),
}


@dataclass
class JobRun:
    """A one-time run (runs/submit) of one spark_python_task, really run as a subprocess."""

    run_id: int
    task_run_id: int
    run_name: str
    task: dict[str, Any]
    creator: str | None
    timeout: int
    life_cycle: str = "PENDING"
    result: str | None = None
    message: str = "Waiting for cluster"
    start_time: int = 0
    end_time: int = 0
    log: str = ""
    error: str | None = None
    process: Any = None
    cancelled: bool = False
    # what it ran: the command line and the folder the volume paths were mapped to
    argv: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ the fake


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


@dataclass
class FakeDatabricks:
    """A Databricks workspace on 127.0.0.1 (see the module docstring for the whole API)."""

    tokens: set[str] = field(default_factory=lambda: {PAT})
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    # invocation faults (whole workspace)
    latency: float = 0.0
    fail_429_first: int = 0
    retry_after: int = 1
    seed: int = 0
    # auth
    oidc_issuer: FakeGitHubOIDC | None = None
    federation: FederationPolicy = field(default_factory=FederationPolicy)
    pat_user: str = PAT_USER
    access_token_ttl: int = 3600
    # deploy
    update_polls: int = 1
    fail_next_updates: int = 0
    conflict_next: int = 0
    require_registered_models: bool = True
    legacy_inference_tables_cutoff: date = LEGACY_CUTOFF
    # capture and SQL
    capture_dir: Path | None = None
    served_entities_history: bool = False
    warehouses: set[str] = field(default_factory=lambda: {WAREHOUSE_ID})
    statement_polls: int = 0
    sql_chunk_rows: int = 1000
    clock: Callable[[], float] = time.time
    # Unity Catalog volumes and jobs (issue #17)
    volumes: set[str] = field(default_factory=lambda: {JOB_VOLUME})
    clusters: set[str] = field(default_factory=lambda: {CLUSTER_ID})
    job_env: dict[str, str] = field(default_factory=dict)
    # counters
    calls: Counter[str] = field(default_factory=Counter, init=False)
    served: Counter[str] = field(default_factory=Counter, init=False)
    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    exchanges: int = field(default=0, init=False)
    exchange_errors: list[str] = field(default_factory=list, init=False)
    oauth_tokens: dict[str, str] = field(default_factory=dict, init=False)
    model_versions: dict[tuple[str, str], ModelVersion] = field(default_factory=dict, init=False)
    statements: dict[str, _Statement] = field(default_factory=dict, init=False)
    served_entity_rows: list[dict[str, Any]] = field(default_factory=list, init=False)
    # jobs, dashboards, folders, SQL queries and alerts (tests/fakes/databricks_objects.py)
    objects: WorkspaceObjects = field(init=False)
    server: ThreadingHTTPServer | None = field(default=None, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _capture_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _owns_capture_dir: bool = field(default=False, init=False, repr=False)
    _legacy_tables: set[str] = field(default_factory=set, init=False, repr=False)
    # tables made by CREATE TABLE: full name -> DuckDB column types
    _created_tables: dict[str, dict[str, str]] = field(default_factory=dict, init=False, repr=False)
    _recorded_ids: set[str] = field(default_factory=set, init=False, repr=False)
    _part_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12], init=False, repr=False)
    _jwks_clients: dict[str, jwt.PyJWKClient] = field(default_factory=dict, init=False, repr=False)
    job_runs: dict[int, JobRun] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.objects = WorkspaceObjects(clock=lambda: self.clock())

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        assert self.server is not None, "FakeDatabricks is not started"
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.host}/oidc/v1/token"

    @property
    def captures(self) -> Path:
        """The capture folder (capture_dir, or the temporary one made at start())."""
        assert self.capture_dir is not None, "FakeDatabricks is not started"
        return self.capture_dir

    def pat_env(self, token: str = PAT) -> dict[str, str]:
        """Environment for PAT auth against this workspace."""
        return {"DATABRICKS_HOST": self.host, "DATABRICKS_TOKEN": token}

    def oidc_env(self, issuer: FakeGitHubOIDC | None = None) -> dict[str, str]:
        """Environment for github-oidc auth: host, client id, auth type and the issuer's
        ACTIONS_ID_TOKEN_REQUEST_* (issuer: the attached `oidc_issuer` by default)."""
        issuer = issuer or self.oidc_issuer
        assert issuer is not None, "no FakeGitHubOIDC attached"
        return {
            "DATABRICKS_HOST": self.host,
            "DATABRICKS_AUTH_TYPE": "github-oidc",
            "DATABRICKS_CLIENT_ID": self.federation.service_principal_id,
            **issuer.env(),
        }

    # -- Python API: setup -------------------------------------------------------------------

    def add_endpoint(self, name: str, *entities: ServedEntity) -> Endpoint:
        """A READY endpoint serving `entities` (config version 1), no HTTP needed."""
        now = _now_ms(self.clock)
        for entity in entities:
            entity.creation_timestamp = entity.creation_timestamp or now
        endpoint = Endpoint(
            name, list(entities), creation_timestamp=now, last_updated_timestamp=now
        )
        with self._lock:
            self.endpoints[name] = endpoint
            self._record_served_entities(endpoint)
        return endpoint

    def register_model_version(
        self,
        full_name: str,
        version: str | int,
        answer: Answer | None = None,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        status: str = "READY",
        aliases: list[str] | None = None,
        run_id: str | None = None,
        source: str | None = None,
        comment: str | None = None,
    ) -> ModelVersion:
        """Register (or replace) a Unity Catalog model version and how it answers."""
        mv = ModelVersion(
            full_name.lower(),
            str(version),
            answer,
            latency=latency,
            error_rate=error_rate,
            status=status,
            aliases=list(aliases or []),
            run_id=run_id,
            source=source,
            comment=comment,
            created_at=_now_ms(self.clock),
        )
        with self._lock:
            if mv.aliases:  # an alias points at one version of a model
                for other in self.model_versions.values():
                    if other.full_name == mv.full_name:
                        other.aliases = [a for a in other.aliases if a not in mv.aliases]
            self.model_versions[(mv.full_name, mv.version)] = mv
        return mv

    def model_version(self, full_name: str, version: str | int) -> ModelVersion | None:
        return self.model_versions.get((full_name.lower(), str(version)))

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints[name]

    def settle(self, name: str) -> Endpoint:
        """Finish the endpoint's in-flight update now (success or injected failure)."""
        with self._lock:
            endpoint = self.endpoints[name]
            if endpoint.pending is not None and not endpoint.pending.failed:
                self._settle(endpoint)
            return endpoint

    # -- Python API: reading -----------------------------------------------------------------

    def table_path(self, full_name: str) -> Path:
        """Where table `catalog.schema.table` lives (a folder; the system table is a file)."""
        name = full_name.lower()
        if name == SERVED_ENTITIES_TABLE:
            return self.captures / f"{name}.jsonl"
        return self.captures / name

    def rows(self, full_name: str) -> list[dict[str, Any]]:
        """The raw JSON rows of a table, in write order (no type conversion)."""
        path = self.table_path(full_name)
        files = [path] if path.is_file() else sorted(path.glob("*.jsonl")) if path.is_dir() else []
        with self._capture_lock:
            return [
                json.loads(line)
                for file in files
                for line in file.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]

    def payload_table(self, endpoint: str) -> str | None:
        """The full name of the endpoint's payload table while capture is enabled."""
        found = self.endpoints[endpoint].inference_table()
        return found[0] if found else None

    def sql(
        self,
        query: str,
        parameters: dict[str, Any] | None = None,
        *,
        catalog: str | None = None,
        schema: str | None = None,
        **named: Any,
    ) -> list[dict[str, Any]]:
        """Run `query` as the SQL warehouse would, returning rows as dicts of Python values.
        Named parameters are given as `parameters` or keywords: value, or (value, TYPE)."""
        params: list[dict[str, Any]] = []
        for key, value in {**(parameters or {}), **named}.items():
            raw, kind = value if isinstance(value, tuple) else (value, "STRING")
            params.append({"name": key, "value": None if raw is None else str(raw), "type": kind})
        columns, rows = self._run_sql(query, params, catalog, schema)
        return [dict(zip([c for c, _ in columns], row, strict=True)) for row in rows]

    def api_requests(self) -> list[RecordedRequest]:
        """Recorded calls to the REST API and invocations (not discovery or token calls)."""
        return [r for r in self.requests if r.path.startswith(("/api/", "/serving-endpoints"))]

    # -- auth ----------------------------------------------------------------------------------

    def _identify(self, authorization: str | None) -> tuple[str, str | None]:
        if not authorization:
            return "none", None
        token = authorization.removeprefix("Bearer ").strip()
        if token in self.tokens:
            return "pat", self.pat_user
        principal = self.oauth_tokens.get(token)
        if principal is not None:
            return "oauth", principal
        return "invalid", None

    def _exchange(self, form: dict[str, str]) -> Reply:
        """POST /oidc/v1/token: RFC 8693 token exchange against the federation policy."""
        try:
            principal = self._verify_exchange(form)
        except _ExchangeRefused as refused:
            with self._lock:
                self.exchange_errors.append(refused.description)
            refusal = {"error": refused.error, "error_description": refused.description}
            return 400, refusal, {}
        access_token = "dbx-oauth-" + secrets.token_urlsafe(24)
        with self._lock:
            self.oauth_tokens[access_token] = principal
            self.exchanges += 1
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": form.get("scope", "all-apis"),
        }
        return 200, body, {}

    def _verify_exchange(self, form: dict[str, str]) -> str:
        if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            raise _ExchangeRefused(
                "Token exchange failed: grant_type must be " + TOKEN_EXCHANGE_GRANT,
                "unsupported_grant_type",
            )
        if form.get("subject_token_type") != JWT_TOKEN_TYPE:
            raise _ExchangeRefused(
                "Token exchange failed: subject_token_type must be " + JWT_TOKEN_TYPE
            )
        policy = self.federation
        if form.get("client_id") != policy.service_principal_id:
            raise _ExchangeRefused(EXCHANGE_UNKNOWN_CLIENT)
        token = form.get("subject_token", "")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _ExchangeRefused(EXCHANGE_MALFORMED) from exc
        issuer = policy.issuer or (self.oidc_issuer.issuer if self.oidc_issuer else None)
        if issuer is None or unverified.get("iss") != issuer:
            raise _ExchangeRefused(EXCHANGE_ISSUER_MISMATCH)
        try:
            key = self._jwks_client(issuer).get_signing_key(str(header.get("kid", "")))
        except jwt.PyJWKClientError as exc:
            raise _ExchangeRefused(EXCHANGE_BAD_SIGNATURE) from exc
        audiences = policy.audiences or [self.token_endpoint]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise _ExchangeRefused(EXCHANGE_BAD_SIGNATURE) from exc
        except jwt.ExpiredSignatureError as exc:
            raise _ExchangeRefused(EXCHANGE_EXPIRED) from exc
        except jwt.ImmatureSignatureError as exc:
            raise _ExchangeRefused(EXCHANGE_NOT_YET_VALID) from exc
        except jwt.InvalidAudienceError as exc:
            raise _ExchangeRefused(EXCHANGE_AUDIENCE_MISMATCH) from exc
        except jwt.InvalidIssuerError as exc:
            raise _ExchangeRefused(EXCHANGE_ISSUER_MISMATCH) from exc
        except jwt.PyJWTError as exc:
            raise _ExchangeRefused(EXCHANGE_MALFORMED) from exc
        if claims.get("sub") != policy.subject:
            raise _ExchangeRefused(EXCHANGE_SUBJECT_MISMATCH)
        return policy.service_principal_id

    def _jwks_client(self, issuer: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._jwks_clients.get(issuer)
        if client is None:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    jwks_uri = str(json.load(resp)["jwks_uri"])
            except (OSError, ValueError, KeyError) as exc:
                raise jwt.PyJWKClientError(f"cannot discover the issuer's JWKS: {exc}") from exc
            client = jwt.PyJWKClient(jwks_uri, timeout=5)
            with self._lock:
                self._jwks_clients[issuer] = client
        return client

    # -- serving endpoints: parsing and validation ----------------------------------------------

    def _entities_from(self, body: dict[str, Any]) -> list[ServedEntity] | None:
        entities_in = body.get("served_entities")
        models_in = body.get("served_models")
        if entities_in and models_in:
            raise _bad("Only one of served_entities and served_models may be set.")
        raw_list, legacy = (models_in, True) if models_in else (entities_in, False)
        if not raw_list:
            return None
        if not isinstance(raw_list, list):
            raise _bad("served_entities must be a list.")
        now = _now_ms(self.clock)
        entities: list[ServedEntity] = []
        for index, raw in enumerate(raw_list):
            where = f"{'served_models' if legacy else 'served_entities'}[{index}]"
            entities.append(self._entity_from(raw, where, legacy, now))
        names = [e.name for e in entities]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _bad(f"Served entity names must be unique in a config: {duplicates}.")
        return entities

    def _entity_from(self, raw: Any, where: str, legacy: bool, now: int) -> ServedEntity:
        if not isinstance(raw, dict):
            raise _bad(f"{where} must be an object.")
        if raw.get("external_model") is not None or raw.get("foundation_model") is not None:
            raise _bad(f"{where}: external and foundation models are not emulated.")
        name_key, version_key = (
            ("model_name", "model_version")
            if legacy
            else (
                "entity_name",
                "entity_version",
            )
        )
        entity_name, version = raw.get(name_key), raw.get(version_key)
        if not isinstance(entity_name, str) or not entity_name:
            raise _bad(f"{where}.{name_key} is required.")
        if version is None:
            raise _bad(f"{where}.{version_key} is required for a Unity Catalog model.")
        if not isinstance(version, str):
            raise _bad(
                f"Invalid JSON given in the body of the request: {where}.{version_key} must be "
                f"a string, got {json.dumps(version)}."
            )
        if legacy and not isinstance(raw.get("scale_to_zero_enabled"), bool):
            raise _bad(f"{where}.scale_to_zero_enabled is required.")
        name = raw.get("name") or f"{entity_name.rsplit('.', 1)[-1]}-{version}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _bad(
                f"{where}.name {name!r} is invalid: a served entity name may contain only "
                "alphanumeric characters, dashes and underscores (at most 63)."
            )
        known = {name_key, version_key, "name", "workload_size", "scale_to_zero_enabled"}
        return ServedEntity(
            name=name,
            entity_name=entity_name,
            entity_version=version,
            traffic=0,
            workload_size=raw.get("workload_size"),
            scale_to_zero_enabled=raw.get("scale_to_zero_enabled"),
            extra={k: v for k, v in raw.items() if k not in known},
            creator=self.pat_user,
            creation_timestamp=now,
            deployment_state="DEPLOYMENT_CREATING",
            deployment_state_message="Creating",
        )

    @staticmethod
    def _apply_traffic(entities: list[ServedEntity], traffic_config: Any) -> None:
        routes = traffic_config.get("routes") if isinstance(traffic_config, dict) else None
        if not routes:
            if len(entities) == 1:
                entities[0].traffic = 100
                return
            raise _bad(
                "A traffic_config with routes is required when the config has more than one "
                "served entity."
            )
        if not isinstance(routes, list):
            raise _bad("traffic_config.routes must be a list.")
        by_name = {e.name: e for e in entities}
        for entity in entities:
            entity.traffic = 0
        seen: set[str] = set()
        total = 0
        for index, route in enumerate(routes):
            where = f"traffic_config.routes[{index}]"
            if not isinstance(route, dict):
                raise _bad(f"{where} must be an object.")
            model_name, entity_name = (
                route.get("served_model_name"),
                route.get("served_entity_name"),
            )
            if model_name and entity_name and model_name != entity_name:
                raise _bad(
                    f"{where}: served_model_name {model_name!r} and served_entity_name "
                    f"{entity_name!r} must name the same served entity."
                )
            target = entity_name or model_name
            if not target:
                raise _bad(f"{where} must set served_entity_name or served_model_name.")
            if target not in by_name:
                raise _bad(
                    f"{where} routes traffic to served entity {target!r}, which is not in the "
                    f"config (served entities: {sorted(by_name)})."
                )
            if target in seen:
                raise _bad(f"{where}: served entity {target!r} has more than one route.")
            seen.add(target)
            percentage = route.get("traffic_percentage")
            if isinstance(percentage, bool) or not isinstance(percentage, int):
                raise _bad(f"{where}.traffic_percentage must be an integer.")
            if not 0 <= percentage <= 100:
                raise _bad(f"{where}.traffic_percentage must be between 0 and 100.")
            by_name[target].traffic = percentage
            total += percentage
        if total != 100:
            raise _bad(f"The traffic percentages of the routes must add up to 100, not {total}.")

    def _check_auto_capture(
        self, endpoint: Endpoint | None, name: str, acc: Any
    ) -> dict[str, Any] | None:
        """Legacy auto_capture_config -> its output form, or 400 (spec §3.4, §4.4)."""
        if acc is None:
            return None
        if not isinstance(acc, dict):
            raise _bad("auto_capture_config must be an object.")
        enabling = acc.get("enabled", True) is not False
        current = endpoint.auto_capture if endpoint is not None else None
        if not enabling:
            if current is None:
                return {**acc, "enabled": False}
            return {**current, "enabled": False}
        if _utc(self.clock()).date() >= self.legacy_inference_tables_cutoff:
            raise _bad(
                LEGACY_CUTOFF_MESSAGE.format(
                    cutoff=self.legacy_inference_tables_cutoff.isoformat(), name=name
                )
            )
        if endpoint is not None and endpoint.legacy_disabled:
            raise _bad(
                "Re-enabling payload logging after it was disabled is not supported for legacy "
                "inference tables. Create a new endpoint, or use AI Gateway inference tables."
            )
        if not acc.get("catalog_name") or not acc.get("schema_name"):
            raise _bad("auto_capture_config.catalog_name and schema_name are required.")
        out = {
            "catalog_name": acc["catalog_name"],
            "schema_name": acc["schema_name"],
            "table_name_prefix": acc.get("table_name_prefix") or name,
            "enabled": True,
        }
        if current is not None and current.get("enabled"):
            old = (current["catalog_name"], current["schema_name"], current["table_name_prefix"])
            new = (out["catalog_name"], out["schema_name"], out["table_name_prefix"])
            if old != new:
                raise _bad(
                    "Changing the catalog, schema or table prefix of legacy inference tables "
                    "after they were enabled is not supported."
                )
        out["state"] = {"payload_table": {"name": f"{out['table_name_prefix']}_payload"}}
        return out

    def _check_gateway(
        self, endpoint: Endpoint | None, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A put_ai_gateway body -> the new gateway config, or 400 (spec §3.2, §3.4)."""
        gateway = {
            key: body[key]
            for key in (
                "fallback_config",
                "guardrails",
                "inference_table_config",
                "rate_limits",
                "usage_tracking_config",
            )
            if body.get(key) is not None
        }
        for index, limit in enumerate(gateway.get("rate_limits") or []):
            if not isinstance(limit, dict) or limit.get("renewal_period") != "minute":
                raise _bad(f"rate_limits[{index}].renewal_period must be 'minute'.")
        itc = gateway.get("inference_table_config")
        if itc is None:
            return gateway
        if not isinstance(itc, dict):
            raise _bad("inference_table_config must be an object.")
        itc = dict(itc)
        if itc.get("enabled"):
            if not itc.get("catalog_name") or not itc.get("schema_name"):
                raise _bad(
                    "inference_table_config.catalog_name and schema_name are required when "
                    "enabling inference tables."
                )
            itc["table_name_prefix"] = itc.get("table_name_prefix") or name
            old_gateway = endpoint.ai_gateway if endpoint is not None else None
            old = (old_gateway or {}).get("inference_table_config") or {}
            if old.get("enabled"):
                before = (old["catalog_name"], old["schema_name"], old["table_name_prefix"])
                after = (itc["catalog_name"], itc["schema_name"], itc["table_name_prefix"])
                if [p.lower() for p in before] != [p.lower() for p in after]:
                    raise _bad(
                        "The catalog, schema or table name prefix of an enabled inference table "
                        "cannot be changed. Disable the inference table first "
                        "(inference_table_config.enabled=false), then enable it with the new "
                        "location."
                    )
            if endpoint is not None and (endpoint.auto_capture or {}).get("enabled"):
                raise _bad(
                    "Legacy inference tables are enabled on this endpoint; disable "
                    "auto_capture_config before enabling AI Gateway inference tables."
                )
        gateway["inference_table_config"] = itc
        return gateway

    def _failures(
        self, entities: list[ServedEntity], current: list[ServedEntity]
    ) -> dict[str, str]:
        """Which served entities of a new config will fail to deploy, with their messages."""
        failures: dict[str, str] = {}
        for entity in entities:
            if any(entity.same_deployment(old) for old in current):
                continue
            mv = self.model_version(entity.entity_name, entity.entity_version)
            if mv is None and self.require_registered_models:
                failures[entity.name] = (
                    f"Served entity {entity.name} failed to deploy: version "
                    f"{entity.entity_version} of model {entity.entity_name} does not exist in "
                    "Unity Catalog, or the endpoint's creator cannot access it."
                )
            elif mv is not None and mv.status != "READY":
                failures[entity.name] = (
                    f"Served entity {entity.name} failed to deploy: version "
                    f"{entity.entity_version} of model {entity.entity_name} is "
                    f"{mv.status}; only READY model versions can be served."
                )
        if self.fail_next_updates > 0:
            self.fail_next_updates -= 1
            new = [e for e in entities if not any(e.same_deployment(o) for o in current)]
            for entity in new or entities:
                failures.setdefault(
                    entity.name,
                    f"Served entity {entity.name} failed to deploy: the model server container "
                    "did not become healthy. Please see the service logs for more information.",
                )
        return failures

    def _start_update(
        self,
        endpoint: Endpoint,
        entities: list[ServedEntity],
        auto_capture: dict[str, Any] | None,
    ) -> None:
        for entity in entities:  # carried-over entities keep their id and stay READY
            for old in endpoint.entities:
                if entity.same_deployment(old):
                    entity.served_entity_id = old.served_entity_id
                    entity.creation_timestamp = old.creation_timestamp
                    entity.creator = old.creator
                    entity.deployment_state = "DEPLOYMENT_READY"
                    entity.deployment_state_message = ""
        failures = self._failures(entities, endpoint.entities if endpoint.has_config else [])
        if endpoint.has_config or endpoint.pending is not None:  # not the create's first config
            endpoint.versions_assigned += 1
        endpoint.pending = PendingConfig(
            entities=entities,
            config_version=endpoint.versions_assigned,
            start_time=_now_ms(self.clock),
            polls_left=self.update_polls,
            failures=failures,
            auto_capture=auto_capture if auto_capture is not None else endpoint.auto_capture,
        )
        endpoint.config_update = "IN_PROGRESS"
        endpoint.last_updated_timestamp = _now_ms(self.clock)

    def _settle(self, endpoint: Endpoint) -> None:
        pending = endpoint.pending
        assert pending is not None
        if pending.failures:
            for entity in pending.entities:
                if entity.name in pending.failures:
                    entity.deployment_state = "DEPLOYMENT_FAILED"
                    entity.deployment_state_message = pending.failures[entity.name]
            pending.failed = True
            endpoint.config_update = "UPDATE_FAILED"
            endpoint.ready = "READY" if endpoint.has_config else "NOT_READY"
            return
        for entity in pending.entities:
            entity.deployment_state = "DEPLOYMENT_READY"
            entity.deployment_state_message = ""
        was_legacy = (endpoint.auto_capture or {}).get("enabled")
        endpoint.entities = pending.entities
        endpoint.config_version = pending.config_version
        endpoint.auto_capture = pending.auto_capture
        if was_legacy and not (endpoint.auto_capture or {}).get("enabled"):
            endpoint.legacy_disabled = True
        self._ensure_table(endpoint)
        endpoint.has_config = True
        endpoint.pending = None
        endpoint.ready = "READY"
        endpoint.config_update = "NOT_UPDATING"
        self._record_served_entities(endpoint)

    def _poll(self, endpoint: Endpoint) -> None:
        """A GET of the endpoint: count down the in-flight update, settle it when due."""
        pending = endpoint.pending
        if endpoint.config_update != "IN_PROGRESS" or pending is None:
            return
        if pending.polls_left > 0:
            pending.polls_left -= 1
        else:
            self._settle(endpoint)

    # -- serving endpoints: HTTP ---------------------------------------------------------------

    def _get_endpoint(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise _missing_endpoint(name)
        return endpoint

    def _create(self, body: dict[str, Any], principal: str | None) -> Reply:
        name = body.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise _bad(
                f"Endpoint name {name!r} is invalid: use 1-63 alphanumeric characters, dashes "
                "and underscores."
            )
        with self._lock:
            if name in self.endpoints:
                raise ApiError(
                    409,
                    "RESOURCE_ALREADY_EXISTS",
                    f"Serving endpoint with name {name} already exists",
                )
            config = body.get("config") or {}
            if not isinstance(config, dict):
                raise _bad("config must be an object.")
            entities = self._entities_from(config)
            if entities is not None:
                self._apply_traffic(entities, config.get("traffic_config"))
            auto_capture = self._check_auto_capture(None, name, config.get("auto_capture_config"))
            gateway = (
                self._check_gateway(None, name, body["ai_gateway"])
                if isinstance(body.get("ai_gateway"), dict)
                else None
            )
            now = _now_ms(self.clock)
            endpoint = Endpoint(
                name=name,
                entities=[],
                config_version=0,
                creator=principal or self.pat_user,
                creation_timestamp=now,
                last_updated_timestamp=now,
                ready="NOT_READY",
                has_config=False,
                ai_gateway=gateway,
                tags=[t for t in body.get("tags") or [] if isinstance(t, dict)],
                extra={
                    k: body[k]
                    for k in (
                        "description",
                        "budget_policy_id",
                        "email_notifications",
                        "rate_limits",
                        "telemetry_config",
                    )
                    if body.get(k) is not None
                },
                versions_assigned=1,
            )
            if body.get("route_optimized") is not None:
                endpoint.extra["route_optimized"] = bool(body["route_optimized"])
            for entity in entities or []:
                entity.creator = endpoint.creator
            if entities is not None:
                self._start_update(endpoint, entities, auto_capture)
            self.endpoints[name] = endpoint
            self._ensure_table(endpoint)
            return 200, endpoint.detailed(), {}

    def _update_config(self, name: str, body: dict[str, Any], principal: str | None) -> Reply:
        with self._lock:
            endpoint = self._get_endpoint(name)
            if self.conflict_next > 0 or endpoint.config_update == "IN_PROGRESS":
                if endpoint.config_update != "IN_PROGRESS":
                    self.conflict_next -= 1
                raise ApiError(
                    409,
                    "RESOURCE_CONFLICT",
                    f"Endpoint {name} is currently updating. Wait for the update to complete "
                    "before updating its config.",
                )
            entities = self._entities_from(body)
            if entities is None:
                if not endpoint.has_config:
                    raise _bad("The config must contain at least one served entity.")
                entities = [
                    ServedEntity(
                        name=e.name,
                        entity_name=e.entity_name,
                        entity_version=e.entity_version,
                        answer=e.answer,
                        traffic=e.traffic,
                        workload_size=e.workload_size,
                        scale_to_zero_enabled=e.scale_to_zero_enabled,
                        extra=dict(e.extra),
                    )
                    for e in endpoint.entities
                ]
                if body.get("traffic_config") is not None:
                    self._apply_traffic(entities, body["traffic_config"])
            else:
                for entity in entities:
                    entity.creator = principal or self.pat_user
                self._apply_traffic(entities, body.get("traffic_config"))
            auto_capture = self._check_auto_capture(endpoint, name, body.get("auto_capture_config"))
            if (auto_capture or {}).get("enabled") and (
                (endpoint.ai_gateway or {}).get("inference_table_config") or {}
            ).get("enabled"):
                raise _bad(
                    "AI Gateway inference tables are enabled on this endpoint; legacy "
                    "auto_capture_config cannot be enabled as well."
                )
            self._start_update(endpoint, entities, auto_capture)
            return 200, endpoint.detailed(), {}

    def _put_ai_gateway(self, name: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            endpoint = self._get_endpoint(name)
            gateway = self._check_gateway(endpoint, name, body)
            endpoint.ai_gateway = gateway or None
            endpoint.last_updated_timestamp = _now_ms(self.clock)
            self._ensure_table(endpoint)
            return 200, gateway, {}

    def _patch_tags(self, name: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            endpoint = self._get_endpoint(name)
            tags = {t["key"]: t for t in endpoint.tags}
            for key in body.get("delete_tags") or []:
                tags.pop(key, None)
            for tag in body.get("add_tags") or []:
                if not isinstance(tag, dict) or not tag.get("key"):
                    raise _bad("add_tags entries need a key.")
                tags[tag["key"]] = {k: v for k, v in tag.items() if k in ("key", "value")}
            endpoint.tags = list(tags.values())
            return 200, {"tags": endpoint.tags}, {}

    def _delete(self, name: str) -> Reply:
        with self._lock:
            endpoint = self._get_endpoint(name)
            del self.endpoints[name]
            ids = {e.served_entity_id for e in endpoint.entities}
            deleted = _ts_text(self.clock())
            for row in self.served_entity_rows:
                if row["served_entity_id"] in ids and row["endpoint_delete_time"] is None:
                    row["endpoint_delete_time"] = deleted
            self._write_served_entities()
            return 200, {}, {}

    def _logs(self, name: str, served_name: str) -> Reply:
        with self._lock:
            endpoint = self._get_endpoint(name)
            candidates = list(endpoint.entities) + (
                endpoint.pending.entities if endpoint.pending else []
            )
            for entity in reversed(candidates):
                if entity.name == served_name:
                    text = entity.deployment_state_message or "Model server is up and serving."
                    return 200, {"logs": text + "\n"}, {}
            raise ApiError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Served model {served_name} does not exist in endpoint {name}.",
            )

    # -- invocations -----------------------------------------------------------------------------

    def _route(self, endpoint: Endpoint) -> ServedEntity:
        live = [e for e in endpoint.entities if e.traffic > 0] or endpoint.entities[:1]
        with self._lock:
            pick = self._rng.uniform(0, sum(e.traffic for e in live))
        for entity in live:
            pick -= entity.traffic
            if pick <= 0:
                return entity
        return live[-1]

    def invoke(
        self,
        name: str,
        body: dict[str, Any],
        *,
        requester: str | None = None,
        raw: str | None = None,
        served_model: str | None = None,
    ) -> Reply:
        """One invocation of endpoint `name`: (status, JSON body, headers). `served_model`
        names the entity to answer (the `/served-models/{x}/invocations` route), bypassing
        the traffic split."""
        started = time.monotonic()
        request_time = self.clock()
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return _missing_endpoint(name).reply()
        with self._lock:
            self.calls[name] += 1
            throttle = self.fail_429_first > 0
            if throttle:
                self.fail_429_first -= 1
            capture = endpoint.inference_table()
        if self.latency:
            time.sleep(self.latency)
        entity: ServedEntity | None = None
        if throttle:
            reply: Reply = (
                429,
                {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                {"Retry-After": str(self.retry_after)},
            )
        elif not endpoint.has_config or not endpoint.entities:
            reply = ApiError(
                400,
                "INVALID_STATE",
                f"Endpoint {name} is not ready: it has no served entities yet. Wait until its "
                "state is READY.",
            ).reply()
        elif served_model is not None and not any(
            e.name == served_model for e in endpoint.entities
        ):
            reply = ApiError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Served model {served_model} does not exist in endpoint {name}.",
            ).reply()
        else:
            entity = (
                self._route(endpoint)
                if served_model is None
                else next(e for e in endpoint.entities if e.name == served_model)
            )
            if entity.served_entity_id not in self._recorded_ids:  # added to `entities` by hand
                with self._lock:
                    self._record_served_entities(endpoint)
            reply = self._answer(entity, body)
        if capture is not None:
            self._capture(
                capture,
                endpoint,
                entity,
                reply,
                raw if raw is not None else json.dumps(body),
                body,
                request_time,
                int((time.monotonic() - started) * 1000),
                requester,
            )
        return reply

    def _answer(self, entity: ServedEntity, body: dict[str, Any]) -> Reply:
        mv = self.model_version(entity.entity_name, entity.entity_version)
        with self._lock:
            self.served[entity.name] += 1
            failing = mv is not None and mv.error_rate > 0 and self._rng.random() < mv.error_rate
        if mv is not None and mv.latency:
            time.sleep(mv.latency)
        headers = {"served-model-name": entity.name}
        answer = entity.answer or (mv.answer if mv else None)
        answer = answer or default_answer(entity.entity_name, entity.entity_version)
        text: str | None = None
        if not failing:
            try:
                text = answer(list(body.get("messages") or []))
            except Exception as exc:  # the model raised: the serving container answers 500
                return (
                    500,
                    {"error_code": "INTERNAL_ERROR", "message": f"Model raised: {exc!r}"},
                    headers,
                )
        if text is None:
            message = "The model server returned an error (emulated by error_rate)."
            return 500, {"error_code": "INTERNAL_ERROR", "message": message}, headers
        words = len(text.split())
        return (
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": entity.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 1,
                    "completion_tokens": words,
                    "total_tokens": 1 + words,
                },
            },
            headers,
        )

    # -- capture files ---------------------------------------------------------------------------

    def _ensure_table(self, endpoint: Endpoint) -> None:
        """Create the endpoint's payload table (an empty folder) when capture is enabled."""
        target = endpoint.inference_table()
        if target is None or self.capture_dir is None:
            return
        full_name, legacy = target
        if legacy:
            self._legacy_tables.add(full_name)
        with self._capture_lock:
            self.table_path(full_name).mkdir(parents=True, exist_ok=True)

    def _capture(
        self,
        target: tuple[str, bool],
        endpoint: Endpoint,
        entity: ServedEntity | None,
        reply: Reply,
        raw: str,
        body: dict[str, Any],
        request_time: float,
        duration_ms: int,
        requester: str | None,
    ) -> None:
        full_name, legacy = target
        status, response, _ = reply
        client_request_id = body.get("client_request_id")
        request_id = str(uuid.uuid4())
        row: dict[str, Any]
        if legacy:
            row = {
                "databricks_request_id": request_id,
                "client_request_id": client_request_id,
                "date": _utc(request_time).date().isoformat(),
                "timestamp_ms": int(request_time * 1000),
                "status_code": status,
                "sampling_fraction": 1.0,
                "execution_time_ms": duration_ms,
                "request": raw,
                "response": json.dumps(response),
                "request_metadata": {
                    "endpoint_name": endpoint.name,
                    "model_name": entity.entity_name if entity else None,
                    "model_version": entity.entity_version if entity else None,
                },
            }
        else:
            row = {
                "databricks_request_id": request_id,
                "request_date": _utc(request_time).date().isoformat(),
                "client_request_id": client_request_id,
                "request_time": _ts_text(request_time),
                "status_code": status,
                "sampling_fraction": 1.0,
                "execution_duration_ms": duration_ms,
                "request": raw,
                "response": json.dumps(response),
                "logging_error_codes": [],
                "served_entity_id": entity.served_entity_id if entity else None,
                "requester": requester,
            }
        folder = self.table_path(full_name)
        line = json.dumps(row) + "\n"
        if legacy:
            self._legacy_tables.add(full_name)
        with self._capture_lock:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / f"part-00000-{self._part_id}.jsonl").open("a", encoding="utf-8") as f:
                f.write(line)

    def _record_served_entities(self, endpoint: Endpoint) -> None:
        changed = _ts_text(self.clock())
        for entity in endpoint.entities:
            low, high = _CONCURRENCY.get(entity.workload_size or "Small", (4, 4))
            row = {
                "served_entity_id": entity.served_entity_id,
                "account_id": ACCOUNT_ID,
                "workspace_id": WORKSPACE_ID,
                "created_by": entity.creator,
                "endpoint_name": endpoint.name,
                "endpoint_id": endpoint.id,
                "served_entity_name": entity.name,
                "entity_type": "CUSTOM_MODEL",
                "entity_name": entity.entity_name,
                "entity_version": entity.entity_version,
                "endpoint_config_version": endpoint.config_version,
                "task": None,
                "external_model_config": None,
                "foundation_model_config": None,
                "custom_model_config": {
                    "min_concurrency": 0 if entity.scale_to_zero_enabled else low,
                    "max_concurrency": high,
                    "compute_type": str(entity.extra.get("workload_type") or "CPU"),
                },
                "feature_spec_config": None,
                "change_time": changed,
                "endpoint_delete_time": None,
            }
            existing = [
                r
                for r in self.served_entity_rows
                if r["served_entity_id"] == entity.served_entity_id
            ]
            self._recorded_ids.add(entity.served_entity_id)
            if self.served_entities_history or not existing:
                self.served_entity_rows.append(row)
            else:
                existing[-1].update(row)
        self._write_served_entities()

    def _write_served_entities(self) -> None:
        if self.capture_dir is None:
            return
        path = self.table_path(SERVED_ENTITIES_TABLE)
        text = "".join(json.dumps(r) + "\n" for r in self.served_entity_rows)
        with self._capture_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".{self._part_id}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

    # -- SQL ---------------------------------------------------------------------------------------

    def _tables(self) -> dict[str, tuple[Path, dict[str, str] | None]]:
        """Every table under capture_dir: lower-case full name -> (path, DuckDB columns)."""
        tables: dict[str, tuple[Path, dict[str, str] | None]] = {}
        legacy = self._legacy_tables
        if self.capture_dir is None or not self.capture_dir.is_dir():
            return tables
        for path in self.capture_dir.iterdir():
            name = path.name.lower()
            if path.is_file() and name.endswith(".jsonl"):
                name = name.removesuffix(".jsonl")
            elif not path.is_dir():
                continue
            if name.count(".") != 2:
                continue
            if name in self._created_tables:
                columns: dict[str, str] | None = self._created_tables[name]
            elif name == SERVED_ENTITIES_TABLE:
                columns = SERVED_ENTITIES_COLUMNS
            elif name.endswith("_payload"):
                columns = LEGACY_PAYLOAD_COLUMNS if name in legacy else PAYLOAD_COLUMNS
            else:
                columns = None
            tables[name] = (path, columns)
        return tables

    def _view_sql(self, path: Path, columns: dict[str, str] | None) -> str | None:
        files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
        files = [f for f in files if f.stat().st_size > 0]
        if not files:
            if columns is None:
                return None
            return (
                "SELECT "
                + ", ".join(f"CAST(NULL AS {t}) AS {_quote(c)}" for c, t in columns.items())
                + " WHERE false"
            )
        listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        if columns is None:
            return f"SELECT * FROM read_json_auto({listing}, format='newline_delimited')"
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        return f"SELECT * FROM read_json({listing}, format='newline_delimited', columns={spec})"

    def _run_sql(
        self,
        statement: str,
        parameters: list[dict[str, Any]],
        catalog: str | None,
        schema: str | None,
        arrow_sink: list[Any] | None = None,
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """(columns, rows); with `arrow_sink`, the result goes there as one Arrow table
        instead of rows (the EXTERNAL_LINKS + ARROW_STREAM path)."""
        if history := _DESCRIBE_HISTORY.match(statement):
            return self._describe_history(history, catalog, schema, arrow_sink)
        params: dict[str, tuple[str | None, str]] = {}
        for param in parameters:
            if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                raise _bad("Each parameter needs a name.")
            kind = str(param.get("type") or "STRING").upper()
            duck = _PARAM_TYPES.get(kind)
            if duck is None and re.fullmatch(r"DECIMAL(\(\d+(,\s*\d+)?\))?", kind):
                duck = kind
            if duck is None:
                raise _bad(f"Parameter {param['name']}: type {kind} is not supported.")
            value = param.get("value")
            params[param["name"]] = (None if value is None else str(value), duck)
        with self._capture_lock:
            tables = self._tables()
            used: dict[str, str] = {}

            def resolve(parts: list[str], after_from: bool) -> str | None:
                lowered = [p.lower() for p in parts]
                if len(parts) == 2 and after_from and catalog:
                    lowered = [catalog.lower(), *lowered]
                elif len(parts) == 1 and after_from and catalog and schema:
                    lowered = [catalog.lower(), schema.lower(), *lowered]
                if len(lowered) != 3:
                    return None
                full = ".".join(lowered)
                if full in tables:
                    used[full] = _quote(full)
                    return used[full]
                if after_from and (len(parts) == 3 or (len(parts) == 2 and catalog)):
                    quoted = ".".join(f"`{p}`" for p in lowered)
                    raise SqlError(
                        "TABLE_OR_VIEW_NOT_FOUND",
                        f"The table or view {quoted} cannot be found. Verify the spelling and "
                        "correctness of the schema and catalog.",
                        "42P01",
                    )
                return None

            if created := _CREATE_TABLE.match(statement):
                return self._create_table(created, tables)
            inserted = _INSERT.match(statement)
            target = _table_name(inserted["name"]) if inserted else None
            if inserted and target not in tables:
                raise SqlError(
                    "TABLE_OR_VIEW_NOT_FOUND",
                    f"The table or view {target} cannot be found.",
                    "42P01",
                )
            query = inserted["rest"] if inserted else statement
            versions: dict[str, tuple[str, int]] = {}

            def resolve_version(parts: list[str], version: int) -> str:
                view = resolve(parts, True)
                full = next((f for f, v in used.items() if v == view), None)
                if full is None:
                    raise SqlError(
                        "TABLE_OR_VIEW_NOT_FOUND",
                        f"The table or view {'.'.join(parts)} cannot be found.",
                        "42P01",
                    )
                if not _is_delta(tables[full][0]):
                    raise SqlError(
                        "DELTA_ONLY_OPERATION",
                        f"VERSION AS OF is only supported for Delta tables; {full} is not one.",
                        "0AKDD",
                    )
                travelled = _quote(f"{full}@v{version}")
                versions[travelled] = (full, version)
                return travelled

            translated, used_params = translate_sql(
                query, resolve, params, self.clock(), resolve_version
            )
            con = duckdb.connect(":memory:")
            try:
                con.execute("SET TimeZone = 'UTC'")
                for macro in _MACROS:
                    con.execute(macro)
                for view, (full, version) in versions.items():
                    self._register_delta(con, view, tables[full][0], version)
                for full, view in used.items():
                    path, table_columns = tables[full]
                    if _is_delta(path):
                        if view not in versions:
                            self._register_delta(con, view, path, None)
                        continue
                    body = self._view_sql(path, table_columns)
                    if body is None:
                        raise SqlError(
                            "TABLE_OR_VIEW_NOT_FOUND",
                            f"The table or view {full} has no data files.",
                            "42P01",
                        )
                    con.execute(f"CREATE VIEW {view} AS {body}")
                values = {
                    k: v for k, (v, _) in params.items() if v is not None and k in used_params
                }
                try:
                    cursor = con.execute(translated, values)
                    description = cursor.description or []
                    if arrow_sink is not None:
                        with warnings.catch_warnings():  # "an extra copy": fine for a fake
                            warnings.simplefilter("ignore")
                            arrow_sink.append(cursor.to_arrow_table())
                        rows = []
                    else:
                        rows = cursor.fetchall() if description else []
                except duckdb.ParserException as exc:
                    raise SqlError("PARSE_SYNTAX_ERROR", str(exc), "42601") from exc
                except duckdb.CatalogException as exc:
                    if "Function" in str(exc):
                        raise SqlError("UNRESOLVED_ROUTINE", str(exc), "42883") from exc
                    raise SqlError("TABLE_OR_VIEW_NOT_FOUND", str(exc), "42P01") from exc
                except duckdb.BinderException as exc:
                    raise SqlError("UNRESOLVED_COLUMN", str(exc), "42703") from exc
                except duckdb.Error as exc:
                    raise SqlError("DUCKDB_ERROR", str(exc), "XX000") from exc
            finally:
                con.close()
            if inserted and target is not None:
                return self._insert_rows(target, tables[target], rows)
        columns = [(str(d[0]), str(d[1])) for d in description]
        return columns, rows

    def _create_table(
        self, match: re.Match[str], tables: dict[str, tuple[Path, dict[str, str] | None]]
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """CREATE TABLE [IF NOT EXISTS] c.s.t (name TYPE, ...): an empty table folder."""
        name = _table_name(match["name"])
        if name.count(".") != 2:
            raise SqlError(
                "REQUIRES_SINGLE_PART_NAMESPACE", f"{name} is not catalog.schema.table", "42K05"
            )
        if name in tables:
            if match["ifnot"]:
                return [], []
            raise SqlError(
                "TABLE_OR_VIEW_ALREADY_EXISTS",
                f"Cannot create table or view {name} because it already exists.",
                "42P07",
            )
        columns: dict[str, str] = {}
        for spec in _split_top(match["cols"]):
            col, _, kind = spec.strip().partition(" ")
            duck = _PARAM_TYPES.get(kind.strip().split()[0].upper()) if kind.strip() else None
            if duck is None:
                raise SqlError("UNSUPPORTED_DATATYPE", f"Unsupported data type {kind!r}", "0A000")
            columns[_unquote(col)] = duck
        self._created_tables[name] = columns
        self.table_path(name).mkdir(parents=True, exist_ok=True)
        return [], []

    def _insert_rows(
        self, name: str, table: tuple[Path, dict[str, str] | None], rows: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """INSERT INTO c.s.t VALUES ... | SELECT ...: the rows appended as JSON lines, by
        position; Databricks answers with the counts."""
        path, columns = table
        names = list(columns or {})
        if any(len(row) != len(names) for row in rows):
            raise SqlError(
                "INSERT_COLUMN_ARITY_MISMATCH",
                f"Cannot write to {name}: the table has {len(names)} columns",
                "21S01",
            )
        lines = []
        for row in rows:
            record = {}
            for col, value in zip(names, row, strict=True):
                if isinstance(value, datetime):
                    value = value.strftime("%Y-%m-%d %H:%M:%S.%f")
                elif isinstance(value, Decimal):
                    value = float(value)
                record[col] = value
            lines.append(json.dumps(record, default=str) + "\n")
        folder = path if path.is_dir() else path.parent
        with (folder / f"part-{uuid.uuid4().hex[:12]}.jsonl").open("a", encoding="utf-8") as f:
            f.write("".join(lines))
        counts = (len(rows), len(rows))
        return [("num_affected_rows", "BIGINT"), ("num_inserted_rows", "BIGINT")], [counts]

    def _submit_statement(self, body: dict[str, Any]) -> Reply:
        statement = body.get("statement")
        warehouse = body.get("warehouse_id")
        if not isinstance(statement, str) or not statement.strip():
            raise _bad("statement is required.")
        if not isinstance(warehouse, str) or not warehouse:
            raise _bad("warehouse_id is required.")
        if warehouse not in self.warehouses:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"SQL warehouse {warehouse} does not exist."
            )
        wait = str(body.get("wait_timeout") or "10s")
        match = re.fullmatch(r"(\d+)s", wait)
        if match is None or not (int(match[1]) == 0 or 5 <= int(match[1]) <= 50):
            raise _bad("wait_timeout must be 0s or between 5s and 50s.")
        disposition = body.get("disposition") or "INLINE"
        result_format = body.get("format") or "JSON_ARRAY"
        external = (disposition, result_format) == ("EXTERNAL_LINKS", "ARROW_STREAM")
        if disposition == "INLINE" and result_format != "JSON_ARRAY":
            raise _bad(f"The {result_format} format requires the EXTERNAL_LINKS disposition.")
        if not external and (disposition, result_format) != ("INLINE", "JSON_ARRAY"):
            raise _bad("Only INLINE + JSON_ARRAY and EXTERNAL_LINKS + ARROW_STREAM are emulated.")
        on_wait = body.get("on_wait_timeout") or "CONTINUE"
        if on_wait not in ("CONTINUE", "CANCEL"):
            raise _bad("on_wait_timeout must be CONTINUE or CANCEL.")
        parameters = body.get("parameters") or []
        if not isinstance(parameters, list):
            raise _bad("parameters must be a list.")
        st = _Statement(
            id=str(uuid.uuid4()), state="PENDING", final_state="SUCCEEDED", polls_left=0
        )
        sink: list[Any] | None = [] if external else None
        try:
            st.columns, st.rows = self._run_sql(
                statement, parameters, body.get("catalog"), body.get("schema"), sink
            )
        except SqlError as exc:
            st.final_state, st.error = "FAILED", exc
        if sink:
            st.arrow = sink[0]
        row_limit = body.get("row_limit")
        if isinstance(row_limit, int) and row_limit >= 0 and len(st.rows) > row_limit:
            st.rows, st.truncated = st.rows[:row_limit], True
        seconds = int(match[1])
        with self._lock:
            st.polls_left = self.statement_polls
            if seconds == 0 or self.statement_polls > 0:
                st.state = "CANCELED" if seconds and on_wait == "CANCEL" else "PENDING"
            else:
                st.state = st.final_state
            self.statements[st.id] = st
            return 200, self._statement_body(st), {}

    def _get_statement(self, statement_id: str) -> Reply:
        with self._lock:
            st = self._statement(statement_id)
            if st.state in ("PENDING", "RUNNING"):
                if st.polls_left > 0:
                    st.polls_left -= 1
                    st.state = "RUNNING"
                else:
                    st.state = st.final_state
            return 200, self._statement_body(st), {}

    def _statement(self, statement_id: str) -> _Statement:
        st = self.statements.get(statement_id)
        if st is None:
            raise ApiError(
                404, "RESOURCE_DOES_NOT_EXIST", f"Statement {statement_id} does not exist."
            )
        return st

    def _cancel_statement(self, statement_id: str) -> Reply:
        with self._lock:
            st = self._statement(statement_id)
            if st.state in ("PENDING", "RUNNING"):
                st.state = "CANCELED"
            return 200, {}, {}

    def _chunk_reply(self, statement_id: str, index: int) -> Reply:
        with self._lock:
            st = self._statement(statement_id)
            if st.state != "SUCCEEDED":
                raise ApiError(
                    400,
                    "INVALID_STATE",
                    f"Statement {statement_id} is {st.state}; results are only available "
                    "once it SUCCEEDED.",
                )
            if not 0 <= index < self._chunk_count(st):
                raise _bad(f"Chunk index {index} is out of range.")
            if st.arrow is not None:
                return 200, {"external_links": [self._external_link(st, index)]}, {}
            return 200, self._chunk(st, index), {}

    def _chunk_count(self, st: _Statement) -> int:
        size = max(1, self.sql_chunk_rows)
        if st.arrow is not None:  # an empty Arrow result has no chunk at all
            return math.ceil(int(st.arrow.num_rows) / size)
        return max(1, math.ceil(len(st.rows) / size))

    def _chunk(self, st: _Statement, index: int) -> dict[str, Any]:
        size = max(1, self.sql_chunk_rows)
        rows = st.rows[index * size : (index + 1) * size]
        chunk: dict[str, Any] = {
            "chunk_index": index,
            "row_offset": index * size,
            "row_count": len(rows),
        }
        if rows:
            chunk["data_array"] = [[cell_text(v) for v in row] for row in rows]
        if index + 1 < self._chunk_count(st):
            chunk["next_chunk_index"] = index + 1
            chunk["next_chunk_internal_link"] = (
                f"/api/2.0/sql/statements/{st.id}/result/chunks/{index + 1}"
            )
        return chunk

    def _statement_body(self, st: _Statement) -> dict[str, Any]:
        status: dict[str, Any] = {"state": st.state}
        body: dict[str, Any] = {"statement_id": st.id, "status": status}
        if st.state == "FAILED" and st.error is not None:
            status["error"] = {"error_code": "BAD_REQUEST", "message": str(st.error)}
            status["sql_state"] = st.error.sql_state
        if st.state == "SUCCEEDED" and st.arrow is not None:
            body["manifest"], body["result"] = self._arrow_manifest(st)
        elif st.state == "SUCCEEDED":
            size = max(1, self.sql_chunk_rows)
            count = self._chunk_count(st)
            body["manifest"] = {
                "format": "JSON_ARRAY",
                "schema": {
                    "column_count": len(st.columns),
                    "columns": [
                        {"name": name, "position": pos, **spark_type(duck)}
                        for pos, (name, duck) in enumerate(st.columns)
                    ],
                },
                "total_chunk_count": count,
                "chunks": [
                    {
                        "chunk_index": i,
                        "row_offset": i * size,
                        "row_count": len(st.rows[i * size : (i + 1) * size]),
                    }
                    for i in range(count)
                ],
                "total_row_count": len(st.rows),
                "truncated": st.truncated,
            }
            body["result"] = self._chunk(st, 0)
        return body

    # -- Delta tables with history, results by external link (issue #17) -----------------------

    def write_table(
        self, full_name: str, rows: list[dict[str, Any]], *, mode: str = "overwrite"
    ) -> int:
        """Write `rows` as a new version of the Delta table `catalog.schema.table` (created at
        version 0 by its first write; `mode` "overwrite" or "append"); returns the version.
        Each version stays readable as it was: `SELECT ... VERSION AS OF n`."""
        import deltalake
        import pyarrow as pa

        path = self.table_path(full_name)
        with self._capture_lock:
            deltalake.write_deltalake(
                str(path),
                pa.Table.from_pylist(rows),
                mode="append"
                if mode == "append"
                else ("overwrite" if _is_delta(path) else "error"),
            )
            version: int = deltalake.DeltaTable(str(path)).version()
            return version

    def _delta(self, path: Path, version: int | None) -> Any:
        import deltalake

        if version is None:
            return deltalake.DeltaTable(str(path))
        latest = deltalake.DeltaTable(str(path))
        known = sorted(int(h["version"]) for h in latest.history())
        if version not in known:
            # [INFERRED] the wording of Delta's VersionNotFoundException; the class name is not
            # in the error-conditions reference we could check
            raise SqlError(
                "DELTA_VERSION_NOT_FOUND",
                f"Cannot time travel Delta table to version {version}. Available versions: "
                f"[{known[0]}, {known[-1]}].",
                "22003",
            )
        return deltalake.DeltaTable(str(path), version=version)

    def _register_delta(
        self, con: duckdb.DuckDBPyConnection, view: str, path: Path, version: int | None
    ) -> None:
        snapshot = self._delta(path, version).to_pyarrow_table()
        name = f"_snapshot_{len(con.execute('SHOW TABLES').fetchall())}"
        con.register(name, snapshot)
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {name}")

    def _describe_history(
        self,
        match: re.Match[str],
        catalog: str | None,
        schema: str | None,
        arrow_sink: list[Any] | None,
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        parts = [p.lower() for p in _split_name(match[1])]
        defaults = [str(catalog or ""), str(schema or "")]
        full = ".".join([*defaults[: 3 - len(parts)], *parts]).lower()
        path = self.table_path(full)
        if not path.exists():
            raise SqlError(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view {full} cannot be found. Verify the spelling and correctness "
                "of the schema and catalog.",
                "42P01",
            )
        if not _is_delta(path):
            raise SqlError(
                "DELTA_ONLY_OPERATION",
                f"DESCRIBE HISTORY is only supported for Delta tables; {full} is not one.",
                "0AKDD",
            )
        with self._capture_lock:
            history = self._delta(path, None).history()
        history.sort(key=lambda h: -int(h["version"]))
        if match[2] is not None:
            history = history[: int(match[2])]
        columns = [
            ("version", "BIGINT"), ("timestamp", "TIMESTAMP"), ("userId", "VARCHAR"),
            ("userName", "VARCHAR"), ("operation", "VARCHAR"),
            ("operationParameters", "MAP(VARCHAR, VARCHAR)"), ("readVersion", "BIGINT"),
            ("isolationLevel", "VARCHAR"), ("isBlindAppend", "BOOLEAN"),
            ("operationMetrics", "MAP(VARCHAR, VARCHAR)"), ("userMetadata", "VARCHAR"),
            ("engineInfo", "VARCHAR"),
        ]  # fmt: skip
        rows = [
            (
                int(h["version"]),
                datetime.fromtimestamp(int(h["timestamp"]) / 1000, UTC).replace(tzinfo=None),
                self.federation.service_principal_id,
                self.pat_user,
                str(h.get("operation", "WRITE")),
                {str(k): str(v) for k, v in (h.get("operationParameters") or {}).items()},
                int(h["version"]) - 1 if int(h["version"]) > 0 else None,
                "WriteSerializable",
                str((h.get("operationParameters") or {}).get("mode")) == "Append",
                {str(k): str(v) for k, v in (h.get("operationMetrics") or {}).items()},
                None,
                str(h.get("engineInfo", "")),
            )
            for h in history
        ]
        if arrow_sink is not None:
            import pyarrow as pa

            arrow_sink.append(
                pa.Table.from_pylist([dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in rows])
            )
            return columns, []
        return columns, rows

    def _chunk_ipc(self, st: _Statement, index: int) -> bytes:
        import pyarrow as pa

        size = max(1, self.sql_chunk_rows)
        part = st.arrow.slice(index * size, size)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        return bytes(sink.getvalue())

    def _storage_signature(self, statement_id: str, index: int) -> str:
        import hashlib
        import hmac

        key = f"{self._part_id}-storage".encode()
        return hmac.new(key, f"{statement_id}/{index}".encode(), hashlib.sha256).hexdigest()

    def _external_link(self, st: _Statement, index: int) -> dict[str, Any]:
        """A presigned-style URL for one chunk, valid 15 minutes (§5 EXTERNAL_LINKS)."""
        size = max(1, self.sql_chunk_rows)
        count = self._chunk_count(st)
        rows = min(size, st.arrow.num_rows - index * size)
        link: dict[str, Any] = {
            "chunk_index": index,
            "row_offset": index * size,
            "row_count": rows,
            "byte_count": len(self._chunk_ipc(st, index)),
            "external_link": f"{self.host}/_storage/results/{st.id}/{index}?X-Amz-Expires=900"
            f"&X-Amz-Signature={self._storage_signature(st.id, index)}",
            "expiration": _utc(self.clock() + 900)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        if index + 1 < count:
            link["next_chunk_index"] = index + 1
            link["next_chunk_internal_link"] = (
                f"/api/2.0/sql/statements/{st.id}/result/chunks/{index + 1}"
            )
        return link

    def _arrow_manifest(self, st: _Statement) -> tuple[dict[str, Any], dict[str, Any]]:
        size = max(1, self.sql_chunk_rows)
        count = self._chunk_count(st)
        manifest = {
            "format": "ARROW_STREAM",
            "schema": {
                "column_count": len(st.columns),
                "columns": [
                    {"name": name, "position": pos, **spark_type(duck)}
                    for pos, (name, duck) in enumerate(st.columns)
                ],
            },
            "total_chunk_count": count,
            "chunks": [
                {
                    "chunk_index": i,
                    "row_offset": i * size,
                    "row_count": min(size, st.arrow.num_rows - i * size),
                    "byte_count": len(self._chunk_ipc(st, i)),
                }
                for i in range(count)
            ],
            "total_row_count": st.arrow.num_rows,
            "total_byte_count": sum(len(self._chunk_ipc(st, i)) for i in range(count)),
            "truncated": st.truncated,
        }
        result = {"external_links": [self._external_link(st, 0)]} if count else {}
        return manifest, result

    def _storage_get(self, path: str, query: str, auth: str) -> Reply:
        """Cloud storage behind an external link: no workspace credential is accepted (S3
        answers 400 to a presigned URL with an Authorization header), the signature is."""
        if auth != "none":
            return (
                400,
                b"InvalidArgument: Only one auth mechanism allowed",
                {"Content-Type": "application/xml"},
            )
        m = re.fullmatch(r"/_storage/results/([^/]+)/(\d+)", path)
        signature = parse_qs(query).get("X-Amz-Signature", [""])[0]
        if m is None or signature != self._storage_signature(m[1], int(m[2])):
            return (
                403,
                b"AccessDenied: the signature does not match",
                {"Content-Type": "application/xml"},
            )
        with self._lock:
            st = self.statements.get(m[1])
            if st is None or st.arrow is None or int(m[2]) >= self._chunk_count(st):
                return 404, b"NoSuchKey", {"Content-Type": "application/xml"}
            data = self._chunk_ipc(st, int(m[2]))
        return 200, data, {"Content-Type": "application/vnd.apache.arrow.stream"}

    # -- UC volumes (Files API) and one-time job runs (issue #17) ------------------------------

    @property
    def volumes_root(self) -> Path:
        """Where /Volumes/<catalog>/<schema>/<volume>/... lives on disk (the FUSE mount a
        job sees as /Volumes)."""
        return self.captures / "Volumes"

    def volume_path(self, path: str) -> Path:
        """The local file behind a /Volumes/... path; 404 for a volume that does not exist."""
        parts = [p for p in path.split("/") if p]
        if len(parts) < 4 or parts[0] != "Volumes" or ".." in parts:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Invalid path: {path}")
        if ".".join(parts[1:4]).lower() not in self.volumes:
            raise ApiError(
                404, "NOT_FOUND", f"The volume /Volumes/{'/'.join(parts[1:4])} does not exist."
            )
        return self.volumes_root.joinpath(*parts[1:])

    def _jobs_and_files(
        self, method: str, path: str, query: str, principal: str | None, raw: bytes
    ) -> Reply:
        from urllib.parse import unquote

        if path.startswith("/api/2.0/fs/files/"):
            local = self.volume_path(unquote(path.removeprefix("/api/2.0/fs/files")))
            if method == "PUT":
                overwrite = parse_qs(query).get("overwrite", ["true"])[0] != "false"
                if local.exists() and not overwrite:
                    raise ApiError(409, "ALREADY_EXISTS", f"The file {local.name} already exists.")
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:6]}")
                tmp.write_bytes(raw)
                tmp.replace(local)  # the Files API never shows a half-written file
                return 204, b"", {"Content-Type": "application/octet-stream"}
            if method == "GET":
                if not local.is_file():
                    raise ApiError(404, "NOT_FOUND", "The file does not exist.")
                modified = datetime.fromtimestamp(local.stat().st_mtime, UTC)
                return (
                    200,
                    local.read_bytes(),
                    {
                        "Content-Type": "application/octet-stream",
                        "Last-Modified": modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                    },
                )
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not supported here.")
        body: Any = json.loads(raw) if raw else {}
        q = {k: v[0] for k, v in parse_qs(query).items()}
        if method == "POST" and path == "/api/2.2/jobs/runs/submit":
            return self._submit_run(body, principal)
        if method == "GET" and path == "/api/2.2/jobs/runs/get":
            run = self._job_run(q.get("run_id"))
            with self._lock:
                return 200, self._run_body(run), {}
        if method == "GET" and path == "/api/2.2/jobs/runs/get-output":
            return self._run_output(q.get("run_id"))
        if method == "POST" and path == "/api/2.2/jobs/runs/cancel":
            self._cancel_run(self._job_run(body.get("run_id")))
            return 200, {}, {}
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _job_run(self, run_id: Any) -> JobRun:
        try:
            wanted = int(run_id)
        except (TypeError, ValueError):
            raise _bad("run_id is required.") from None
        for run in self.job_runs.values():
            if wanted in (run.run_id, run.task_run_id):
                return run
        raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {wanted} does not exist.")

    def _submit_run(self, body: dict[str, Any], principal: str | None) -> Reply:
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or len(tasks) != 1:
            raise _bad("The emulator runs one-time runs of exactly one task.")
        task = tasks[0]
        python = task.get("spark_python_task")
        if not isinstance(python, dict) or not str(python.get("python_file", "")).strip():
            raise _bad("Only spark_python_task with a python_file is emulated.")
        compute = [k for k in ("existing_cluster_id", "new_cluster", "job_cluster_key",
                               "environment_key") if task.get(k)]  # fmt: skip
        if len(compute) != 1:
            raise _bad(
                "A task needs exactly one of existing_cluster_id, new_cluster, job_cluster_key "
                "or environment_key (serverless)."
            )
        if compute == ["existing_cluster_id"] and task["existing_cluster_id"] not in self.clusters:
            raise _bad(f"Cluster {task['existing_cluster_id']} does not exist")
        if compute == ["new_cluster"] or compute == ["job_cluster_key"]:
            raise _bad("The emulator runs on an existing cluster or serverless compute only.")
        libraries = [lib["whl"] for lib in task.get("libraries") or [] if "whl" in lib]
        if compute == ["environment_key"]:
            envs = {e.get("environment_key"): e for e in body.get("environments") or []}
            env = envs.get(task["environment_key"])
            if env is None:
                raise _bad(f"Environment {task['environment_key']} is not defined in environments.")
            libraries += list(env.get("spec", {}).get("dependencies") or [])
        with self._lock:
            run_id = 1000 + 2 * len(self.job_runs)
            run = JobRun(
                run_id,
                run_id + 1,
                str(body.get("run_name") or "Untitled"),
                task,
                principal,
                int(body.get("timeout_seconds") or 0),
            )
            self.job_runs[run_id] = run
        threading.Thread(
            target=self._execute_run, args=(run, libraries), name=f"job-run-{run_id}", daemon=True
        ).start()
        return 200, {"run_id": run_id}, {}

    def _execute_run(self, run: JobRun, libraries: list[str]) -> None:
        """The task's Python file, run for real with its parameters: the volume paths map to
        files under volumes_root, and the environment is a job's (DATABRICKS_HOST and a
        token for this workspace, DATABRICKS_RUNTIME_VERSION, plus `job_env`). The wheel a
        task installs must exist and be a wheel; the code that runs is this interpreter's
        (the checkout under test), not the wheel's."""
        import subprocess
        import sys
        import zipfile

        def local(value: str) -> str:
            if value.startswith("/Volumes/"):
                with contextlib.suppress(ApiError):
                    return str(self.volume_path(value))
            return value

        with self._lock:
            run.start_time = _now_ms(self.clock)
        for library in libraries:
            if not library.startswith("/Volumes/"):
                continue
            try:
                ok = zipfile.is_zipfile(local(library))
            except OSError:
                ok = False
            if not ok:
                self._end_run(run, "FAILED", f"Library installation failed for library {library}")
                return
        python = run.task["spark_python_task"]
        script = Path(local(str(python["python_file"])))
        if not script.is_file():
            self._end_run(run, "FAILED", f"File {python['python_file']} not found.")
            return
        work = Path(tempfile.mkdtemp(prefix=f"job-run-{run.run_id}-", dir=self.captures))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "DATABRICKS_HOST": self.host,
            "DATABRICKS_TOKEN": sorted(self.tokens)[0],
            "DATABRICKS_RUNTIME_VERSION": "emulated",
            **({"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}),
            **self.job_env,
        }
        argv = [
            sys.executable,
            str(script),
            *[local(str(a)) for a in python.get("parameters") or []],
        ]
        log_path = work / "driver.log"
        with self._lock:
            if run.cancelled:
                self._end_locked(run, "CANCELED", "Run cancelled.")
                return
            run.argv = argv
            run.life_cycle, run.message = "RUNNING", "In run"
            with log_path.open("wb") as log:
                run.process = subprocess.Popen(
                    argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
        try:
            code = run.process.wait(timeout=run.timeout or None)
        except subprocess.TimeoutExpired:
            self._kill(run)
            self._end_run(run, "TIMEDOUT", f"Run timed out after {run.timeout} seconds.")
            return
        run.log = log_path.read_text(encoding="utf-8", errors="replace")[-5_000_000:]
        if run.cancelled:
            self._end_run(run, "CANCELED", "Run cancelled.")
        elif code == 0:
            self._end_run(run, "SUCCESS", "")
        else:
            # [INFERRED] the wording for a Python task that exits non-zero
            run.error = f"Python script exited with code {code}"
            self._end_run(
                run,
                "FAILED",
                f"Task {run.task.get('task_key')} failed with message: Workload failed, see run "
                "output for details.",
            )

    def _kill(self, run: JobRun) -> None:
        import signal

        if run.process is not None and run.process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(run.process.pid, signal.SIGKILL)

    def _end_run(self, run: JobRun, result: str, message: str) -> None:
        with self._lock:
            self._end_locked(run, result, message)

    def _end_locked(self, run: JobRun, result: str, message: str) -> None:
        if run.life_cycle == "TERMINATED":
            return
        run.life_cycle, run.result, run.message = "TERMINATED", result, message
        run.end_time = _now_ms(self.clock)

    def _cancel_run(self, run: JobRun) -> None:
        """Asynchronous, as on Databricks: the run reads TERMINATING, then TERMINATED/CANCELED
        once its process is gone."""
        with self._lock:
            if run.life_cycle == "TERMINATED":
                return
            run.cancelled = True
            run.life_cycle, run.message = "TERMINATING", "Run cancellation requested"
        self._kill(run)

    def _run_body(self, run: JobRun) -> dict[str, Any]:
        state: dict[str, Any] = {
            "life_cycle_state": run.life_cycle,
            "state_message": run.message,
            "user_cancelled_or_timedout": run.result in ("CANCELED", "TIMEDOUT"),
        }
        status: dict[str, Any] = {"state": run.life_cycle}
        if run.result is not None:
            state["result_state"] = run.result
            code, kind = _RESULT_STATUS[run.result]
            status["termination_details"] = {"code": code, "type": kind, "message": run.message}
        url = f"{self.host}/?o={WORKSPACE_ID}#job/{run.run_id}/run/{run.run_id}"
        task = {
            k: v
            for k, v in run.task.items()
            if k in ("task_key", "spark_python_task", "existing_cluster_id", "environment_key",
                     "libraries")
        }  # fmt: skip
        return {
            "job_id": run.run_id,
            "run_id": run.run_id,
            "run_name": run.run_name,
            "number_in_job": run.run_id,
            "creator_user_name": run.creator,
            "run_type": "SUBMIT_RUN",
            "format": "MULTI_TASK",
            "trigger": "ONE_TIME",
            "state": state,
            "status": status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "run_page_url": url,
            "tasks": [
                {
                    **task,
                    "run_id": run.task_run_id,
                    "state": state,
                    "status": status,
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                    "attempt_number": 0,
                    "run_page_url": url,
                }
            ],
        }

    def _run_output(self, run_id: Any) -> Reply:
        run = self._job_run(run_id)
        with self._lock:
            if run_id is not None and int(run_id) == run.run_id:
                raise _bad(
                    f"Retrieving the output of a run with multiple tasks is not supported. "
                    f"Please retrieve the output of each individual task run instead: "
                    f"{run.task_run_id}."
                )
            out: dict[str, Any] = {"metadata": self._run_body(run)["tasks"][0]}
            if run.log:
                out["logs"] = run.log
                out["logs_truncated"] = False
            if run.error:
                out["error"] = run.error
                out["error_trace"] = run.log[-2000:]
            return 200, out, {}

    # -- Unity Catalog -------------------------------------------------------------------------

    def _model_version_reply(
        self, full_name: str, version: str, query: dict[str, list[str]]
    ) -> Reply:
        if not version.isdigit():
            raise _bad(f"Model version {version!r} must be an integer.")
        mv = self.model_version(full_name, str(int(version)))
        if mv is None:
            raise ApiError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"Model version {full_name}/{version} does not exist.",
            )
        include_aliases = query.get("include_aliases", ["false"])[0] == "true"
        return 200, mv.info(include_aliases), {}

    def _alias_reply(self, full_name: str, alias: str) -> Reply:
        with self._lock:
            for mv in self.model_versions.values():
                if mv.full_name == full_name.lower() and alias in mv.aliases:
                    return 200, mv.info(True), {}
        raise ApiError(
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"Alias {alias} of registered model {full_name} does not exist.",
        )

    # -- HTTP ------------------------------------------------------------------------------------

    def _dispatch(
        self, method: str, path: str, query: str, body: Any, principal: str | None, raw: bytes
    ) -> Reply:
        q = parse_qs(query)
        text = raw.decode("utf-8", "replace")
        if method == "GET":
            if path == "/api/2.0/serving-endpoints":
                with self._lock:
                    return 200, {"endpoints": [e.summary() for e in self.endpoints.values()]}, {}
            if m := re.fullmatch(r"/api/2\.0/serving-endpoints/([^/]+)", path):
                with self._lock:
                    endpoint = self._get_endpoint(m[1])
                    self._poll(endpoint)
                    return 200, endpoint.detailed(), {}
            if m := re.fullmatch(
                r"/api/2\.0/serving-endpoints/([^/]+)/served-models/([^/]+)/(build-logs|logs)",
                path,
            ):
                return self._logs(m[1], m[2])
            if m := re.fullmatch(r"/api/2\.1/unity-catalog/models/([^/]+)/versions/([^/]+)", path):
                return self._model_version_reply(m[1], m[2], q)
            if m := re.fullmatch(r"/api/2\.1/unity-catalog/models/([^/]+)/aliases/([^/]+)", path):
                return self._alias_reply(m[1], m[2])
            if m := re.fullmatch(r"/api/2\.0/sql/statements/([^/]+)", path):
                return self._get_statement(m[1])
            if m := re.fullmatch(r"/api/2\.0/sql/statements/([^/]+)/result/chunks/(\d+)", path):
                return self._chunk_reply(m[1], int(m[2]))
        elif method == "POST":
            if path == "/api/2.0/serving-endpoints":
                return self._create(body, principal)
            if path == "/serving-endpoints/chat/completions":
                model = str(body.get("model", ""))
                return self.invoke(model, body, requester=principal, raw=text)
            if m := re.fullmatch(r"/serving-endpoints/([^/]+)/invocations", path):
                return self.invoke(m[1], body, requester=principal, raw=text)
            if m := re.fullmatch(
                r"/serving-endpoints/([^/]+)/served-models/([^/]+)/invocations", path
            ):
                return self.invoke(m[1], body, requester=principal, raw=text, served_model=m[2])
            if path == "/api/2.0/sql/statements":
                return self._submit_statement(body)
            if m := re.fullmatch(r"/api/2\.0/sql/statements/([^/]+)/cancel", path):
                return self._cancel_statement(m[1])
        elif method == "PUT":
            if m := re.fullmatch(r"/api/2\.0/serving-endpoints/([^/]+)/config", path):
                return self._update_config(m[1], body, principal)
            if m := re.fullmatch(r"/api/2\.0/serving-endpoints/([^/]+)/ai-gateway", path):
                return self._put_ai_gateway(m[1], body)
        elif method == "PATCH":
            if m := re.fullmatch(r"/api/2\.0/serving-endpoints/([^/]+)/tags", path):
                return self._patch_tags(m[1], body)
        elif method == "DELETE" and (
            m := re.fullmatch(r"/api/2\.0/serving-endpoints/([^/]+)", path)
        ):
            return self._delete(m[1])
        answered = self.objects.dispatch(method, path, q, body, principal)
        if answered is not None:
            return answered
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'")

    def _handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path, query = parts.path, parts.query
        auth, principal = self._identify(headers.get("Authorization"))
        record = RecordedRequest(
            method=method,
            path=path,
            query=query,
            auth=auth,
            principal=principal,
            workspace_id=headers.get("X-Databricks-Workspace-Id"),
            user_agent=headers.get("User-Agent", ""),
        )
        with self._lock:
            self.requests.append(record)
        reply = self._handle_recorded(method, path, query, auth, principal, raw_body)
        record.status = reply[0]
        return reply

    def _handle_recorded(
        self, method: str, path: str, query: str, auth: str, principal: str | None, raw: bytes
    ) -> Reply:
        if method == "GET" and path.startswith("/_storage/"):
            return self._storage_get(path, query, auth)
        if method == "GET" and path == "/.well-known/databricks-config":
            metadata = {
                "oidc_endpoint": f"{self.host}/oidc",
                "workspace_id": WORKSPACE_ID,
                "cloud": "AWS",
            }
            return 200, metadata, {}
        if method == "GET" and path == "/oidc/.well-known/oauth-authorization-server":
            discovery = {
                "issuer": f"{self.host}/oidc",
                "authorization_endpoint": f"{self.host}/oidc/v1/authorize",
                "token_endpoint": self.token_endpoint,
            }
            return 200, discovery, {}
        if method == "POST" and path == "/oidc/v1/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            return self._exchange(form)
        if auth not in ("pat", "oauth"):
            return 401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}, {}
        if path.startswith(("/api/2.0/fs/", "/api/2.2/jobs/runs/")):
            try:
                return self._jobs_and_files(method, path, query, principal, raw)
            except ApiError as err:
                return err.reply()
        body: Any = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return ApiError(
                    400, "MALFORMED_REQUEST", "Invalid JSON in the request body."
                ).reply()
        if not isinstance(body, dict):
            return ApiError(
                400, "MALFORMED_REQUEST", "The request body must be a JSON object."
            ).reply()
        try:
            return self._dispatch(method, path, query, body, principal, raw)
        except ApiError as err:
            return err.reply()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeDatabricks:
        if self.capture_dir is None:
            self.capture_dir = Path(tempfile.mkdtemp(prefix="fake-databricks-"))
            self._owns_capture_dir = True
        self.capture_dir = Path(self.capture_dir)
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._write_served_entities()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write (no Nagle delay)

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                status, body, headers = fake._handle(method, self.path, self.headers, raw)
                # bytes: a file or an Arrow chunk, sent as it is with its own Content-Type
                kind = headers.pop("Content-Type", "application/json")
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-databricks",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        for run in list(self.job_runs.values()):  # a job run's process ends with its workspace
            self._kill(run)
        if self.server is not None:
            with contextlib.suppress(OSError):
                self.server.shutdown()
                self.server.server_close()
        if self._owns_capture_dir and self.capture_dir is not None:
            shutil.rmtree(self.capture_dir, ignore_errors=True)

    def __enter__(self) -> FakeDatabricks:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ExchangeRefused(Exception):
    def __init__(self, description: str, error: str = "invalid_request") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeDatabricks]:
    """`with running(update_polls=0) as fake:` a started workspace, stopped after."""
    fake = FakeDatabricks(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

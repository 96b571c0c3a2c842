"""Workspace objects for the Databricks emulator (tests/fakes/databricks.py): Jobs `run-now`,
AI/BI (Lakeview) dashboards, workspace folders, SQL queries and SQL alerts.

`FakeDatabricks` routes these paths here (`fake.objects`); the shapes follow databricks-sdk
0.162's own request and response classes (`jobs.JobsAPI.run_now`, `dashboards.LakeviewAPI`,
`workspace.WorkspaceAPI.mkdirs`, `sql.QueriesAPI`, `sql.AlertsAPI`: the v2 alerts of
`/api/2.0/sql/alerts`), and their behaviour the Databricks CLI's test server
(libs/testserver: dashboards.go, jobs.go, alerts.go), which mirrors the backend:

Jobs (`/api/2.2/jobs/run-now`, also 2.1): `add_job(name, parameters)` defines a job; a run
  of an unknown job is 400 INVALID_PARAMETER_VALUE "Job <id> does not exist." (the SDK maps
  jobs' 400 to ResourceDoesNotExist only for GET; the status is inferred). `job_parameters`
  is a map of strings; an `idempotency_token` (at most 64 characters) that started a run
  returns that run again and starts none. The answer is `{"run_id", "number_in_job"}`.
  Every started run is in `job_runs` (run_id, job_id, job_parameters, idempotency_token,
  principal).
Workspace folders: `POST /api/2.0/workspace/mkdirs` (idempotent; parents made too).
  `/Users/<principal>` and `/Shared` exist from the start.
Lakeview (`/api/2.0/lakeview/dashboards`): create needs an existing `parent_path` (404 "Path
  (<p>) doesn't exist.", as the CLI's fake), defaults it to `/Users/<principal>`, drops a
  `/Workspace` prefix, and refuses a second dashboard of the same name in the same folder
  (409 RESOURCE_ALREADY_EXISTS "Node named '<name>.lvdash.json' already exists", the text
  users report from `lakeview create`). `serialized_dashboard` must be a JSON object whose
  widgets' queries name datasets it defines (400 otherwise); it is stored as sent plus a
  newline, with `pageType: PAGE_TYPE_CANVAS` added to each page (the backend's undocumented
  rewrite, as the CLI's fake notes). An update (PATCH) bumps the numeric `etag`, and a stale
  `etag` in the body is 409 ABORTED. `list` pages (`page_size`, `next_page_token`) and leaves
  `serialized_dashboard` out, as the BASIC view does; trashed dashboards are listed only with
  `show_trashed`. `POST .../{id}/published` publishes; DELETE trashes.
SQL queries (`/api/2.0/sql/queries`) and alerts (`/api/2.0/sql/alerts`): create wraps the
  object (`{"query": {...}}`, `{"alert": {...}}`), update is PATCH with an `update_mask`
  (required; `*` replaces all) and only the masked fields change, list answers `{"results"}`
  with `next_page_token`. An alert's `query_id` must name a query (404 otherwise), its
  condition needs `op` and `operand.column.name`; a new alert's `state` is UNKNOWN until the
  scheduler evaluates it (never, here). Duplicate display names are allowed, as on Databricks
  (`auto_resolve_display_name` only renames on request) - finding one's own object by name
  is the client's job.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Reply = tuple[int, Any, dict[str, str]]
PAGE = 100  # the list calls' default page size


def _error(status: int, code: str, message: str) -> Reply:
    return status, {"error_code": code, "message": message}, {}


def _bad(message: str) -> Reply:
    return _error(400, "INVALID_PARAMETER_VALUE", message)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], key: str) -> Reply:
    size = int(query.get("page_size", [str(PAGE)])[0] or PAGE)
    start = int(query.get("page_token", ["0"])[0] or 0)
    body: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        body["next_page_token"] = str(start + size)
    return 200, body, {}


def _masked(obj: dict[str, Any], patch: dict[str, Any], mask: str | None) -> Reply | None:
    """Apply an update_mask'ed PATCH; the error reply, or None when applied."""
    if not mask:
        return _bad("update_mask is required")
    fields = list(patch) if mask.strip() == "*" else [f.strip() for f in mask.split(",")]
    for name in fields:
        if name in patch:
            obj[name] = patch[name]
        else:
            obj.pop(name, None)
    return None


@dataclass
class WorkspaceObjects:
    clock: Callable[[], float]
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    job_runs: list[dict[str, Any]] = field(default_factory=list)
    folders: set[str] = field(default_factory=lambda: {"/", "/Shared", "/Users"})
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next_id: int = 900_000_000
    _tokens: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ Python API

    def add_job(self, name: str, parameters: dict[str, str] | None = None) -> int:
        """Define a job (its id is returned); `parameters` are its job-level defaults."""
        with self._lock:
            self._next_id += 1
            job_id = self._next_id
            self.jobs[job_id] = {"job_id": job_id, "name": name, "parameters": parameters or {}}
        return job_id

    def dashboard_named(self, name: str) -> dict[str, Any] | None:
        found = [d for d in self.dashboards.values() if d["display_name"] == name]
        return found[-1] if found else None

    # ------------------------------------------------------------------ routing

    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: dict[str, Any],
        principal: str | None,
    ) -> Reply | None:
        """The answer for these paths, or None for a path that is not ours."""
        with self._lock:
            self.folders.add(f"/Users/{principal or 'unknown'}")
            if method == "POST" and re.fullmatch(r"/api/2\.[12]/jobs/run-now", path):
                return self._run_now(body, principal)
            if method == "POST" and path == "/api/2.0/workspace/mkdirs":
                return self._mkdirs(body)
            if m := re.fullmatch(r"/api/2\.0/lakeview/dashboards(?:/([^/]+))?(/published)?", path):
                return self._lakeview(method, m[1], bool(m[2]), query, body, principal)
            if m := re.fullmatch(r"/api/2\.0/sql/(queries|alerts)(?:/([^/]+))?", path):
                return self._sql_object(method, m[1], m[2], query, body, principal)
        return None

    # ------------------------------------------------------------------ jobs

    def _run_now(self, body: dict[str, Any], principal: str | None) -> Reply:
        job_id = body.get("job_id")
        if not isinstance(job_id, int) or job_id not in self.jobs:
            return _bad(f"Job {job_id} does not exist.")
        params = body.get("job_parameters") or {}
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _bad("job_parameters must map names to string values")
        token = body.get("idempotency_token")
        if token is not None:
            if len(str(token)) > 64:
                return _bad("idempotency_token must be at most 64 characters")
            if token in self._tokens:
                run_id = self._tokens[token]
                return 200, {"run_id": run_id, "number_in_job": run_id}, {}
        self._next_id += 1
        run_id = self._next_id
        if token is not None:
            self._tokens[token] = run_id
        self.job_runs.append(
            {
                "run_id": run_id,
                "job_id": job_id,
                "job_parameters": {**self.jobs[job_id]["parameters"], **params},
                "idempotency_token": token,
                "principal": principal,
            }
        )
        return 200, {"run_id": run_id, "number_in_job": run_id}, {}

    # ------------------------------------------------------------------ folders

    def _mkdirs(self, body: dict[str, Any]) -> Reply:
        path = str(body.get("path") or "")
        if not path.startswith("/"):
            return _bad(f"Path ({path}) must be absolute")
        path = path.removeprefix("/Workspace") or "/"
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            self.folders.add("/" + "/".join(parts[:i]))
        return 200, {}, {}

    # ------------------------------------------------------------------ Lakeview

    def _check_serialized(self, text: Any) -> str | None:
        if text is None:
            return None
        try:
            doc = json.loads(text)
        except (TypeError, ValueError):
            return "serialized_dashboard is not valid JSON"
        if not isinstance(doc, dict):
            return "serialized_dashboard must be a JSON object"
        names = {d.get("name") for d in doc.get("datasets") or [] if isinstance(d, dict)}
        for page in doc.get("pages") or []:
            for item in page.get("layout") or []:
                for q in (item.get("widget") or {}).get("queries") or []:
                    dataset = (q.get("query") or {}).get("datasetName")
                    if dataset not in names:
                        return f"widget query refers to unknown dataset {dataset!r}"
        return None

    @staticmethod
    def _stored(text: str) -> str:
        doc = json.loads(text)
        for page in doc.get("pages") or []:
            page["pageType"] = "PAGE_TYPE_CANVAS"
        out = json.dumps(doc) if doc.get("pages") else text
        return out if out.endswith("\n") else out + "\n"

    def _lakeview(
        self,
        method: str,
        dashboard_id: str | None,
        publish: bool,
        query: dict[str, list[str]],
        body: dict[str, Any],
        principal: str | None,
    ) -> Reply:
        if dashboard_id is None:
            if method == "GET":
                trashed = query.get("show_trashed", ["false"])[0] == "true"
                items = [
                    {k: v for k, v in d.items() if k != "serialized_dashboard"}
                    for d in self.dashboards.values()
                    if trashed or d["lifecycle_state"] == "ACTIVE"
                ]
                return _page(items, query, "dashboards")
            if method == "POST":
                return self._create_dashboard(body, principal)
        elif dashboard_id not in self.dashboards:
            return _error(
                404, "RESOURCE_DOES_NOT_EXIST", f"Unable to find dashboard [{dashboard_id}]"
            )
        else:
            dash = self.dashboards[dashboard_id]
            if publish and method == "POST":
                self.published[dashboard_id] = {
                    "display_name": dash["display_name"],
                    "warehouse_id": body.get("warehouse_id") or dash.get("warehouse_id"),
                    "embed_credentials": bool(body.get("embed_credentials")),
                    "revision_create_time": _iso(self.clock()),
                }
                return 200, self.published[dashboard_id], {}
            if method == "GET" and not publish:
                return 200, dash, {}
            if method == "PATCH" and not publish:
                return self._update_dashboard(dash, body)
            if method == "DELETE" and not publish:
                dash["lifecycle_state"] = "TRASHED"
                self.published.pop(dashboard_id, None)
                return 200, {}, {}
        return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method}' on dashboards")

    def _create_dashboard(self, body: dict[str, Any], principal: str | None) -> Reply:
        name = body.get("display_name")
        if not name:
            return _bad("display_name is required")
        parent = str(body.get("parent_path") or f"/Users/{principal or 'unknown'}")
        parent = parent.removeprefix("/Workspace") or "/"
        if parent not in self.folders:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({parent}) doesn't exist.")
        path = f"{parent.rstrip('/')}/{name}.lvdash.json"
        if any(
            d["path"] == path and d["lifecycle_state"] == "ACTIVE" for d in self.dashboards.values()
        ):
            return _error(
                409,
                "RESOURCE_ALREADY_EXISTS",
                f"Unable to register dashboard: Node named '{name}.lvdash.json' already exists",
            )
        problem = self._check_serialized(body.get("serialized_dashboard"))
        if problem:
            return _bad(problem)
        now = _iso(self.clock())
        dashboard_id = secrets.token_hex(16)
        self.dashboards[dashboard_id] = {
            "dashboard_id": dashboard_id,
            "display_name": name,
            "parent_path": parent,
            "path": path,
            "serialized_dashboard": self._stored(body["serialized_dashboard"])
            if body.get("serialized_dashboard")
            else None,
            "warehouse_id": body.get("warehouse_id"),
            "etag": "80611980",
            "lifecycle_state": "ACTIVE",
            "create_time": now,
            "update_time": now,
        }
        return 200, self.dashboards[dashboard_id], {}

    def _update_dashboard(self, dash: dict[str, Any], body: dict[str, Any]) -> Reply:
        if body.get("etag") is not None and str(body["etag"]) != dash["etag"]:
            return _error(
                409,
                "ABORTED",
                "The dashboard was changed by someone else (etag mismatch); read it again",
            )
        problem = self._check_serialized(body.get("serialized_dashboard"))
        if problem:
            return _bad(problem)
        if body.get("display_name"):
            dash["display_name"] = body["display_name"]
            dash["path"] = f"{dash['parent_path'].rstrip('/')}/{body['display_name']}.lvdash.json"
        if body.get("serialized_dashboard"):
            dash["serialized_dashboard"] = self._stored(body["serialized_dashboard"])
        if "warehouse_id" in body:
            dash["warehouse_id"] = body["warehouse_id"]
        dash["etag"] = str(int(dash["etag"]) + 1)
        dash["update_time"] = _iso(self.clock())
        return 200, dash, {}

    # ------------------------------------------------------------------ SQL queries, alerts

    def _sql_object(
        self,
        method: str,
        kind: str,
        object_id: str | None,
        query: dict[str, list[str]],
        body: dict[str, Any],
        principal: str | None,
    ) -> Reply:
        store = self.queries if kind == "queries" else self.alerts
        wrapper = "query" if kind == "queries" else "alert"
        if object_id is None:
            if method == "GET":
                items = [o for o in store.values() if o["lifecycle_state"] == "ACTIVE"]
                return _page(items, query, "results")
            if method == "POST":
                given = body.get(wrapper)
                if not isinstance(given, dict) or not given.get("display_name"):
                    return _bad(f"{wrapper}.display_name is required")
                problem = self._check_alert(given) if kind == "alerts" else None
                if problem:
                    return problem
                now = _iso(self.clock())
                new = {
                    **given,
                    "id": str(uuid.uuid4()),
                    "owner_user_name": principal,
                    "lifecycle_state": "ACTIVE",
                    "create_time": now,
                    "update_time": now,
                }
                if kind == "alerts":
                    new["state"] = "UNKNOWN"
                store[new["id"]] = new
                return 200, new, {}
        elif object_id not in store:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"{wrapper} {object_id} does not exist")
        else:
            obj = store[object_id]
            if method == "GET":
                return 200, obj, {}
            if method == "PATCH":
                patch = body.get(wrapper) or {}
                candidate = dict(obj)
                failed = _masked(candidate, patch, body.get("update_mask"))
                if failed:
                    return failed
                problem = self._check_alert(candidate) if kind == "alerts" else None
                if problem:
                    return problem
                obj.clear()
                obj.update(candidate, update_time=_iso(self.clock()))
                return 200, obj, {}
            if method == "DELETE":
                obj["lifecycle_state"] = "TRASHED"
                return 200, {}, {}
        return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method}' on {kind}")

    def _check_alert(self, alert: dict[str, Any]) -> Reply | None:
        if alert.get("query_id") not in self.queries:
            return _error(
                404, "RESOURCE_DOES_NOT_EXIST", f"query {alert.get('query_id')} does not exist"
            )
        condition = alert.get("condition") or {}
        column = ((condition.get("operand") or {}).get("column") or {}).get("name")
        if not condition.get("op") or not column:
            return _bad("alert.condition needs op and operand.column.name")
        return None

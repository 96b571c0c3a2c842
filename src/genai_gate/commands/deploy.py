"""`genai-gate plan` and `genai-gate deploy` end to end.

config -> auth preflight -> endpoint state -> plan (pure) -> guards -> [apply] -> files,
evidence and the MLflow run. `plan` only reads, so read-only credentials are enough; on a
pull request without credentials it says so instead of failing. `deploy` never runs on a
pull request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_gate import __version__, evidence
from genai_gate.backends.databricks.auth import refuse_on_pull_request
from genai_gate.backends.databricks.endpoint_config import read_endpoint_config
from genai_gate.backends.databricks.endpoints import ApplyResult, Endpoints
from genai_gate.commands.run import Run
from genai_gate.config import LoadedConfig
from genai_gate.errors import AuthError, ConfigError, GateError
from genai_gate.provenance import collect
from genai_gate.report.plan import render_plan, render_unplanned
from genai_gate.rollout.plan import (
    TAG_STARTED,
    TAG_STEP_AT,
    EndpointState,
    Plan,
    TableConfig,
    entity_for,
    guard_problems,
    plan_rollout,
    rollout_for_challenger,
)
from genai_gate.tracking import default_tracking_uri, redact

SETTINGS_EXAMPLE = """endpoint: my-genai
model-name: main.genai.support_bot
model-version: 13
canary-percent: 10
inference-table: main.genai_logs"""


@dataclass(frozen=True)
class DeployReport:
    command: str  # plan | deploy
    endpoint: str
    plan: Plan | None
    applied: ApplyResult | None
    summary: str
    doc: dict[str, Any]
    notices: tuple[str, ...]

    def outputs(self) -> dict[str, str]:
        if self.applied is None:
            return {}
        after = self.applied.after
        return {
            "endpoint-config-version": str(after.config_version or ""),
            "endpoint-url": after.url or "",
            "routes": json.dumps(dict(after.routes), separators=(",", ":")),
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_settings(loaded: LoadedConfig) -> str:
    """Deploy's keys, checked together; returns the endpoint name."""
    cfg = loaded.config
    problems = []
    if cfg.endpoint is None:
        problems.append("endpoint: is required to plan or deploy")
    literal = cfg.endpoint_config is not None
    if literal and (cfg.model_name or cfg.model_version):
        problems.append(
            f"{loaded.label('endpoint-config')}: give either endpoint-config or "
            "model-name + model-version, not both"
        )
    if not literal:
        for key, value in (("model-name", cfg.model_name), ("model-version", cfg.model_version)):
            if value is None:
                problems.append(f"{loaded.label(key)}: is required to plan or deploy")
    if problems:
        raise ConfigError(
            f"{loaded.source}: the deploy settings are incomplete",
            problems=problems,
            fix=SETTINGS_EXAMPLE,
        )
    assert cfg.endpoint is not None
    return cfg.endpoint


def preflight(run: Run) -> None:
    """What `deploy` would refuse, found before the eval spends a minute: the settings, a
    pull request, credentials that cannot exist (no `id-token: write`, a fork), and a token
    the federation policy refuses (one read of the endpoint signs in for real)."""
    endpoint = check_settings(run.loaded)
    refuse_on_pull_request(run.ctx)
    run.workspace.endpoints().read(endpoint)


def build_plan(
    loaded: LoadedConfig, endpoint: str, state: EndpointState | None, now: str
) -> tuple[Plan, TableConfig | None]:
    cfg = loaded.config
    table = TableConfig.parse(cfg.inference_table) if cfg.inference_table else None
    if cfg.endpoint_config is not None:
        literal = read_endpoint_config(
            loaded.resolve(cfg.endpoint_config), loaded.label("endpoint-config"), now
        )
        if table is None:
            table = literal.table
        rollout, notices = literal.rollout, list(literal.notices)
        current = state.challenger() if state else None
        same = (
            current is not None
            and rollout.challenger is not None
            and current.name == rollout.challenger.name
            and current.same_model(rollout.challenger)
        )
        if same and state is not None and state.tags.get(TAG_STARTED):
            # the same canary keeps its start, so analysis keeps the traffic it has seen
            rollout = dataclasses.replace(
                rollout,
                started_at=state.tags[TAG_STARTED],
                step_at=state.tags.get(TAG_STEP_AT),
            )
    else:
        assert cfg.model_name is not None and cfg.model_version is not None
        challenger = entity_for(
            cfg.model_name,
            cfg.model_version,
            workload_size=cfg.workload_size,
            scale_to_zero=cfg.scale_to_zero,
        )
        rollout, notices = rollout_for_challenger(state, challenger, cfg.canary_percent, now)
    return plan_rollout(endpoint, state, rollout, table=table, notices=notices), table


def _check_plan(plan: Plan, table: TableConfig | None, endpoints: Endpoints) -> None:
    problems = guard_problems(plan, table_given=table is not None)
    served = {(e.model, e.version) for e in (plan.before.entities if plan.before else ())}
    for entity in plan.entities:
        if (entity.model, entity.version) in served or entity.model.count(".") != 2:
            continue
        if not endpoints.model_version_exists(entity.model, entity.version):
            problems.append(
                f"model-version: {entity.model} version {entity.version} does not exist in "
                "Unity Catalog (or the service principal cannot see it)"
            )
    if problems:
        raise ConfigError(
            f"the plan for endpoint {plan.endpoint} cannot be applied",
            problems=problems,
            fix="Register the version first (mlflow.register_model with the Unity Catalog "
            "registry), and name the capture schema:\n" + SETTINGS_EXAMPLE,
        )


def _write(out_dir: Path, name: str, doc: dict[str, Any], summary: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence.write_json_atomic(out_dir / f"{name}.json", doc)
    (out_dir / f"{name}.md").write_text(summary, encoding="utf-8")


def run_deploy(
    run: Run, *, apply: bool, progress: Callable[[str], None] = lambda _line: None
) -> DeployReport:
    command = "deploy" if apply else "plan"
    loaded, out_dir, environ, ctx = run.loaded, run.out_dir, run.environ, run.ctx
    endpoint = check_settings(loaded)
    if apply:
        refuse_on_pull_request(ctx)
    how = run.workspace.auth
    cfg = loaded.config

    def unplanned(reason: str) -> DeployReport:
        summary = render_unplanned(endpoint, reason)
        doc = {"command": command, "endpoint": endpoint, "computed": False, "reason": reason}
        _write(out_dir, "plan", doc, summary)
        return DeployReport(command, endpoint, None, None, summary, doc, (reason,))

    if not how.available and not apply and ctx.is_pull_request:
        return unplanned(
            f"No Databricks credentials on this pull request ({how.reason}), so the plan "
            "could not read the endpoint."
        )
    endpoints = run.workspace.endpoints(progress)

    try:
        state = endpoints.read(endpoint)
    except AuthError as exc:
        if apply or not ctx.is_pull_request:
            raise
        # a federation policy may trust only the default branch; the plan is a courtesy
        # on a pull request, and the push that deploys checks the credentials for real
        return unplanned(
            f"Databricks refused this pull request's credentials ({exc.message}), so the "
            "plan could not read the endpoint. To plan on pull requests, add a federation "
            "policy for the subject repo:<owner>/<repo>:pull_request with read access."
        )
    if apply and state is not None and state.updating:
        progress(f"endpoint {endpoint}: another update is in progress; waiting for it to end")
        endpoints.wait(endpoint, cfg.wait_timeout, ours=False)
        state = endpoints.read(endpoint)
    now = _now()
    plan, table = build_plan(loaded, endpoint, state, now)
    _check_plan(plan, table, endpoints)
    plan_doc = {"command": command, "computed": True, **plan.as_json()}
    summary = render_plan(plan, notices=loaded.notices)
    _write(out_dir, "plan", plan_doc, summary)
    if not apply:
        return DeployReport(command, endpoint, plan, None, summary, plan_doc, plan.notices)

    try:
        result = endpoints.apply(plan, cfg.wait_timeout)
    except GateError as exc:
        # a failed (and restored) deploy is the event an audit most needs to see
        failed = _record(loaded, plan, environ, now, exc)
        evidence.append(out_dir / "evidence.json", failed)
        _write(out_dir, "deploy", failed, render_plan(plan, applied="failed", notices=()))
        raise
    word = {
        "created": "created",
        "updated": f"updated to config version {result.after.config_version}",
        "unchanged": "already up to date (nothing to do)",
    }[result.action]
    summary = render_plan(plan, applied=word, notices=loaded.notices)
    record = _record(loaded, plan, environ, now, result)
    _write(out_dir, "deploy", record, summary)
    evidence.append(out_dir / "evidence.json", record)
    notices = list(plan.notices)
    uri = default_tracking_uri(out_dir, cfg.tracking_uri, environ)
    logged = _log_to_eval_run(out_dir, record, uri)
    if logged:
        notices.append(logged)
    return DeployReport(command, endpoint, plan, result, summary, record, tuple(notices))


def _record(
    loaded: LoadedConfig,
    plan: Plan,
    environ: Mapping[str, str],
    started_at: str,
    outcome: ApplyResult | GateError,
) -> dict[str, Any]:
    """The evidence record of a deploy that was applied, or that failed (and was restored)."""
    record: dict[str, Any] = {
        "kind": "deploy",
        "started_at": started_at,
        "recorded_at": _now(),
        "genai_gate_version": __version__,
        "endpoint": plan.endpoint,
        "config_version_before": plan.before.config_version if plan.before else None,
        "routes_before": dict(plan.before.routes) if plan.before else {},
        "champion": plan.rollout.champion.name,
        "challenger": plan.rollout.challenger.name if plan.rollout.challenger else None,
    }
    if isinstance(outcome, GateError):
        record |= {
            "action": "failed",
            "error": f"{outcome.title}: {outcome.message}",
            "exit_code": int(outcome.exit_code),
            "routes_planned": dict(plan.routes),
        }
    else:
        after = outcome.after
        record |= {
            "action": outcome.action,
            "config_version_after": after.config_version,
            "routes_after": dict(after.routes),
            "served_entities": [
                {"name": e.name, "model": e.model, "version": e.version} for e in after.entities
            ],
            "inference_table": after.table.table_name(plan.endpoint) if after.table else None,
            "tags": dict(after.tags),
        }
    record["provenance"] = collect(loaded.base_dir, environ).as_dict()
    return record


def _log_to_eval_run(out_dir: Path, record: dict[str, Any], uri: str) -> str | None:
    """Attach the deploy record to the eval run this job logged (results.json names it).

    A deploy that went live is not undone because MLflow is down: the failure becomes a
    notice, and the evidence file still holds the record.
    """
    results = out_dir / "results.json"
    if not results.is_file():
        return None
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
        run_id = doc.get("run_id")
    except (OSError, json.JSONDecodeError):
        return None
    evaluated = (doc.get("provenance") or {}).get("sha")
    deployed = (record.get("provenance") or {}).get("sha")
    if not run_id or (evaluated and deployed and evaluated != deployed):
        return None  # an older eval's results: this deploy is not what it gated
    from mlflow import MlflowClient

    try:
        client = MlflowClient(uri)
        client.log_dict(run_id, record, "deploy.json")
        client.set_tag(run_id, "genai-gate.endpoint", record["endpoint"])
        client.set_tag(
            run_id, "genai-gate.endpoint-config-version", str(record["config_version_after"])
        )
    except Exception as exc:  # the deploy happened; losing the MLflow copy must not hide that
        return (
            f"the deploy record was not attached to MLflow run {run_id} at {redact(uri)}: "
            f"{type(exc).__name__}"
        )
    return None

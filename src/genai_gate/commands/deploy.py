"""`genai-gate plan` and `genai-gate deploy` end to end.

config -> auth preflight -> endpoint state -> plan (pure) -> guards -> [apply] -> files,
evidence and the MLflow run. `plan` only reads, so read-only credentials are enough; on a
pull request without credentials it says so instead of failing. `deploy` never runs on a
pull request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genai_gate import __version__, artefacts, evidence
from genai_gate.backends.base import Applied, RolloutPlan
from genai_gate.baseline import TAG_RUN_ENDPOINT, TAG_RUN_MODEL, TAG_RUN_VERSION
from genai_gate.commands.run import Result, Run, refuse_on_pull_request
from genai_gate.config import LoadedConfig
from genai_gate.errors import AuthError, GateError
from genai_gate.provenance import collect
from genai_gate.report.plan import render_plan, render_unplanned
from genai_gate.tracking import default_tracking_uri, redact


@dataclass(frozen=True)
class DeployReport:
    command: str  # plan | deploy
    endpoint: str
    plan: RolloutPlan | None
    applied: Applied | None
    summary: str
    doc: dict[str, Any]
    notices: tuple[str, ...]

    @property
    def result(self) -> Result:
        """A plan that could not be computed (no credentials on a PR) judged nothing."""
        return Result.PASSED if self.plan is not None else Result.SKIPPED

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


def preflight(run: Run) -> None:
    """What `deploy` would refuse, found before the eval spends a minute: the settings, a
    pull request, credentials that cannot exist (no `id-token: write`, a fork), and a token
    the platform refuses (the backend signs in for real and checks its permissions)."""
    backend = run.backend()
    endpoint = backend.check_settings()
    refuse_on_pull_request(run.ctx)
    backend.preflight(endpoint)


def _write(out_dir: Path, name: str, doc: dict[str, Any], summary: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence.write_json_atomic(out_dir / f"{name}.json", doc)
    artefacts.write_text(out_dir / f"{name}.md", summary)


def run_deploy(
    run: Run, *, apply: bool, progress: Callable[[str], None] = lambda _line: None
) -> DeployReport:
    command = "deploy" if apply else "plan"
    loaded, out_dir, environ, ctx = run.loaded, run.out_dir, run.environ, run.ctx
    backend = run.backend(progress)
    endpoint = backend.check_settings()
    if apply:
        refuse_on_pull_request(ctx)
    cfg = loaded.config

    def unplanned(reason: str) -> DeployReport:
        summary = render_unplanned(endpoint, reason)
        doc = {"command": command, "endpoint": endpoint, "computed": False, "reason": reason}
        _write(out_dir, "plan", doc, summary)
        return DeployReport(command, endpoint, None, None, summary, doc, (reason,))

    if not backend.available and not apply and ctx.is_pull_request:
        return unplanned(
            f"No {backend.label} credentials on this pull request ({backend.unavailable_reason}),"
            " so the plan could not read the endpoint."
        )
    # signing in is outside the courtesy below: a wrong host or a broken setup fails the PR
    backend.connect()
    try:
        state = backend.read(endpoint)
    except AuthError as exc:
        if apply or not ctx.is_pull_request:
            raise
        # a federation policy may trust only the default branch; the plan is a courtesy
        # on a pull request, and the push that deploys checks the credentials for real
        return unplanned(
            f"{backend.label} refused this pull request's credentials ({exc.message}), so the "
            "plan could not read the endpoint. To plan on pull requests, add a federation "
            "policy for the subject repo:<owner>/<repo>:pull_request with read access."
        )
    if apply and state is not None and state.updating:
        progress(f"endpoint {endpoint}: another update is in progress; waiting for it to end")
        backend.wait_for_others(endpoint, cfg.wait_timeout)
        state = backend.read(endpoint)
    now = _now()
    plan = backend.plan_deploy(endpoint, state, now)
    plan_doc = {"command": command, "computed": True, **plan.as_json()}
    summary = render_plan(plan, notices=loaded.notices)
    _write(out_dir, "plan", plan_doc, summary)
    if not apply:
        return DeployReport(command, endpoint, plan, None, summary, plan_doc, plan.notices)

    try:
        result = backend.apply(plan, cfg.wait_timeout)
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
    plan: RolloutPlan,
    environ: Mapping[str, str],
    started_at: str,
    outcome: Applied | GateError,
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
            "inference_table": after.capture,
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
        client.set_tag(run_id, TAG_RUN_ENDPOINT, record["endpoint"])
        client.set_tag(
            run_id, "genai-gate.endpoint-config-version", str(record["config_version_after"])
        )
        # what this run gated onto the endpoint: `monitor` finds its reference by these
        deployed = record["challenger"] or record["champion"]
        for entity in record.get("served_entities") or []:
            if entity["name"] == deployed:
                client.set_tag(run_id, TAG_RUN_MODEL, entity["model"])
                client.set_tag(run_id, TAG_RUN_VERSION, entity["version"])
    except Exception as exc:  # the deploy happened; losing the MLflow copy must not hide that
        return (
            f"the deploy record was not attached to MLflow run {run_id} at {redact(uri)}: "
            f"{type(exc).__name__}"
        )
    return None

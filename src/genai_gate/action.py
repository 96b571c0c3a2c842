"""`genai-gate action`: what the GitHub Action runs. It picks the command from the event,
runs it, and reports where people look: step outputs, the job summary, annotations and one
sticky PR comment.

Both adapters (the composite `action.yml` and the container) only set `GENAI_GATE_*` and
call this; no logic lives in YAML or bash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from genai_gate.errors import ConfigError, GateError
from genai_gate.evaluate import PhaseProgress
from genai_gate.github import CommentResult, Context, Runner, read_context, upsert_sticky_comment
from genai_gate.report.summary import render_error
from genai_gate.run_eval import EvalReport, run_eval

COMMANDS = ("eval",)
_TRUE = ("true", "1", "yes", "on")
# Variables whose values must never show in a log, whatever prints them
_SECRET_ENV = (
    "GENAI_GATE_GITHUB_TOKEN",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "OPENAI_API_KEY",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@dataclass(frozen=True)
class ActionResult:
    command: str
    report: EvalReport
    comment: CommentResult | None


def choose_command(ctx: Context, explicit: str | None) -> str:
    """An explicit `command` input wins; otherwise the event decides.

    A pull request and a push are gated with `eval`. `schedule` and `workflow_dispatch` run
    `eval` as well until canary analysis exists; `plan`, `deploy` and `analyze` join here as
    they land.
    """
    if explicit and explicit.strip():
        command = explicit.strip()
        if command not in COMMANDS:
            raise ConfigError(
                f"command: {command!r} is not a command the action can run",
                fix="Leave `command` empty to decide from the event, or use one of: "
                + ", ".join(COMMANDS),
            )
        return command
    return "eval"


def comment_key(environ: Mapping[str, str]) -> str:
    """One sticky comment per PR and config: two gates in one workflow keep two comments."""
    config = environ.get("GENAI_GATE_CONFIG") or "genai-gate.yml"
    where = environ.get("GENAI_GATE_WORKING_DIRECTORY") or "."
    return hashlib.sha256(f"{where}::{config}".encode()).hexdigest()[:12]


def _mask_secrets(runner: Runner, environ: Mapping[str, str]) -> None:
    for name in _SECRET_ENV:
        runner.mask(environ.get(name))


def _comment(
    runner: Runner, ctx: Context, environ: Mapping[str, str], body: str
) -> CommentResult | None:
    if not ctx.is_pull_request:
        return None
    if (environ.get("GENAI_GATE_COMMENT") or "true").strip().lower() not in _TRUE:
        return None
    token = environ.get("GENAI_GATE_GITHUB_TOKEN") or ""
    if not token:
        runner.annotate(
            "notice",
            "No github-token was given, so the report is in the job summary only.",
            title="genai-gate",
        )
        return None
    result = upsert_sticky_comment(ctx, token, comment_key(environ), body)
    if result.action in ("no-permission", "failed"):
        runner.annotate(
            "notice" if result.action == "no-permission" else "warning",
            f"The PR comment was not written ({result.detail}); the report is in the job "
            "summary. To allow comments: permissions: pull-requests: write",
            title="genai-gate",
        )
    return result


def _workspace_path(path: Path, environ: Mapping[str, str]) -> str:
    """A path later steps can use: relative to the workspace, whatever working-directory was.

    In the container flavour this also avoids handing out a /github/workspace/... path.
    """
    absolute = path.resolve()
    workspace = environ.get("GITHUB_WORKSPACE")
    if workspace and absolute.is_relative_to(Path(workspace).resolve()):
        return str(absolute.relative_to(Path(workspace).resolve()))
    return str(absolute)


def run_action(
    *,
    config_path: str | None,
    out_dir: Path,
    environ: Mapping[str, str],
    progress: PhaseProgress | None = None,
) -> ActionResult:
    runner = Runner(environ)
    _mask_secrets(runner, environ)
    ctx = read_context(environ)
    command = "eval"
    try:
        command = choose_command(ctx, environ.get("GENAI_GATE_COMMAND"))
        with runner.group(f"genai-gate {command}"):
            report = run_eval(
                config_path=config_path, out_dir=out_dir, environ=environ, progress=progress
            )
    except GateError as exc:
        for name, value in (
            ("result", "error"),
            ("passed", "false"),
            ("metrics", "{}"),
            ("report-path", ""),
            ("run-id", ""),
        ):
            runner.set_output(name, value)
        summary = render_error(exc.title, exc.render(), command=command)
        runner.append_summary(summary)
        detail = "; ".join([exc.message, *exc.problems[:5]])
        runner.annotate("error", detail, title=f"genai-gate: {exc.title}")
        _comment(runner, ctx, environ, summary)
        raise
    doc = report.doc
    failed_tracking = report.tracking_error is not None
    runner.set_output("result", "error" if failed_tracking else doc["result"])
    runner.set_output("passed", "true" if doc["passed"] and not failed_tracking else "false")
    runner.set_output("metrics", json.dumps(doc["metrics"], separators=(",", ":"), sort_keys=True))
    runner.set_output("report-path", _workspace_path(report.results_path, environ))
    runner.set_output("run-id", doc.get("run_id") or "")
    runner.append_summary(report.summary)
    for check in doc["checks"]:
        if not check["passed"]:
            value = "missing" if check["value"] is None else f"{check['value']:.4g}"
            runner.annotate(
                "error",
                f"{check['metric']} = {value}, needs {check['op']} {check['threshold']:g}",
                title=f"genai-gate: {check['metric']}",
            )
    for failure in doc["failures"]:
        if not any(failure.startswith(c["metric"]) for c in doc["checks"]):
            runner.annotate("error", failure, title="genai-gate")
    if report.tracking_error is not None:
        runner.annotate(
            "error",
            report.tracking_error.message,
            title=f"genai-gate: {report.tracking_error.title}",
        )
    comment = _comment(runner, ctx, environ, report.summary)
    return ActionResult(command, report, comment)

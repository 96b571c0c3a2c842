"""`genai-gate action`: what the GitHub Action runs. It picks the command from the event,
runs it, and reports where people look: step outputs, the job summary, annotations and one
sticky PR comment.

Both adapters (the composite `action.yml` and the container) only set `GENAI_GATE_*` and
call this; no logic lives in YAML or bash.
"""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genai_gate import secrets
from genai_gate.commands.canary import AnalyzeReport, Mode, run_analyze
from genai_gate.commands.dashboard import DashboardReport, run_dashboard
from genai_gate.commands.deploy import DeployReport, preflight, run_deploy
from genai_gate.commands.eval import EvalReport, every_problem
from genai_gate.commands.job_eval import run_gate
from genai_gate.commands.monitor import MonitorReport, run_monitor
from genai_gate.commands.run import Result, Run
from genai_gate.config import Config, LoadedConfig, load_config
from genai_gate.config.load import InvalidConfig
from genai_gate.errors import ConfigError, GateError
from genai_gate.github import (
    CommentResult,
    Context,
    Runner,
    read_context,
    upsert_issue,
    upsert_sticky_comment,
)
from genai_gate.report.markdown import brief, fit_comment, join
from genai_gate.report.summary import render_error
from genai_gate.results import PhaseProgress

_WATCH: tuple[Mode, ...] = ("analyze", "promote", "rollback")
COMMANDS = ("eval", "plan", "deploy", *_WATCH, "monitor", "dashboard")
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class ActionResult:
    commands: tuple[str, ...]
    report: EvalReport | None
    deploy: DeployReport | None
    comment: CommentResult | None
    analysis: AnalyzeReport | None = None
    monitor: MonitorReport | None = None
    dashboard: DashboardReport | None = None

    @property
    def result(self) -> Result:
        ran = (
            r
            for r in (self.report, self.deploy, self.analysis, self.monitor, self.dashboard)
            if r is not None
        )
        return Result.overall(r.result for r in ran)


def choose_commands(
    explicit: str | None, ctx: Context, *, deploy: bool = False, watch: bool = False
) -> tuple[str, ...]:
    """An explicit `command` input wins; otherwise the event decides.

    A pull request is gated with `eval` and, when deploy is configured, shown the `plan`
    that merging would apply. A push to the default branch runs `eval`, then `deploy`.
    `schedule` and `workflow_dispatch` watch the canary (`analyze`, then apply its
    decision); with no canary in flight the router then runs `monitor` on the champion.
    Anything else runs `eval`.
    """
    if explicit and explicit.strip():
        command = explicit.strip()
        if command not in COMMANDS:
            raise ConfigError(
                f"command: {command!r} is not a command the action can run",
                fix="Leave `command` empty to decide from the event, or use one of: "
                + ", ".join(COMMANDS),
            )
        return (command,)
    if ctx.event_name in ("schedule", "workflow_dispatch"):
        return ("analyze",) if watch else ("eval",)
    if not deploy:
        return ("eval",)
    if ctx.is_pull_request:
        return ("eval", "plan")
    if ctx.event_name == "push" and ctx.on_default_branch:
        return ("eval", "deploy")
    return ("eval",)


def comment_key(environ: Mapping[str, str]) -> str:
    """One sticky comment per PR and gate: the job, folder, config, model and data name it,
    so two gates in one workflow (or matrix legs) keep a comment each."""
    parts = [
        environ.get(name, "")
        for name in (
            "GITHUB_JOB",
            "GENAI_GATE_WORKING_DIRECTORY",
            "GENAI_GATE_CONFIG",
            "GENAI_GATE_MODEL",
            "GENAI_GATE_DATA",
        )
    ]
    parts[2] = parts[2] or "genai-gate.yml"
    return hashlib.sha256("::".join(parts).encode()).hexdigest()[:12]


def _secrets(environ: Mapping[str, str], cfg: Config | None) -> list[str]:
    """Every secret value this run can see (secrets.py): masked in the log, scrubbed from
    every artefact, including the variables the config names as holding API keys."""
    named = [cfg.api_key_env, cfg.judge_api_key_env] if cfg is not None else []
    secrets.remember_environ(environ, named)
    return secrets.known()


def _scrub(text: str, _secrets: list[str]) -> str:
    return secrets.scrub(text)


# the files the composite flavour uploads as the run's artifact
ARTIFACT_FILES = ("results.json", "rows.jsonl", "summary.md")


def _scrub_files(out_dir: Path, secrets: list[str]) -> None:
    """No secret value reaches the uploaded artifact: a model can echo a key it was given."""
    for name in ARTIFACT_FILES:
        path = out_dir / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            clean = _scrub(text, secrets)
            if clean != text:
                path.write_text(clean, encoding="utf-8")


def _comment(
    runner: Runner, ctx: Context, environ: Mapping[str, str], token: str, body: str
) -> CommentResult | None:
    if not ctx.is_pull_request:
        return None
    if (environ.get("GENAI_GATE_COMMENT") or "true").strip().lower() not in _TRUE:
        return None
    if not token:
        runner.annotate(
            "notice",
            "No github-token was given, so the report is in the job summary only.",
            title="genai-gate",
        )
        return None
    result = upsert_sticky_comment(ctx, token, comment_key(environ), fit_comment(body))
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


def _report_failure(
    runner: Runner,
    secrets: list[str],
    *,
    command: str,
    title: str,
    text: str,
    detail: str,
    outputs: bool,
) -> str:
    for name, value in Result.ERROR.outputs().items():
        runner.set_output(name, value)
    if outputs:
        for name in ("report-path", "run-id"):
            runner.set_output(name, "")
        runner.set_output("metrics", "{}")
    summary = _scrub(render_error(title, text, command=command), secrets)
    runner.append_summary(summary)
    runner.annotate("error", _scrub(detail, secrets), title=f"genai-gate: {title}")
    return summary


def _eval_outputs(
    runner: Runner, report: EvalReport, environ: Mapping[str, str], secrets: list[str]
) -> str:
    doc = report.doc
    runner.set_output("metrics", json.dumps(doc["metrics"], separators=(",", ":"), sort_keys=True))
    runner.set_output("report-path", _workspace_path(report.results_path, environ))
    runner.set_output("run-id", doc.get("run_id") or "")
    summary = _scrub(report.summary, secrets)
    runner.append_summary(summary)
    for check in report.verdict.checks:
        if not check.passed:
            value = "missing" if check.value is None else f"{check.value:.4g}"
            runner.annotate(
                "error",
                _scrub(check.reason, secrets)
                if check.relative
                else f"{check.metric} = {value}, needs {check.op} {check.threshold:g}",
                title=f"genai-gate: {check.metric}",
            )
    check_reasons = {c.reason for c in report.verdict.checks}
    for failure in report.verdict.failures:
        if failure not in check_reasons:
            runner.annotate("error", _scrub(failure, secrets), title="genai-gate")
    if report.tracking_error is not None:
        runner.annotate(
            "error",
            _scrub(report.tracking_error.message, secrets),
            title=f"genai-gate: {report.tracking_error.title}",
        )
    return summary


def _deploy_outputs(runner: Runner, report: DeployReport, secrets: list[str]) -> str:
    for name, value in report.outputs().items():
        runner.set_output(name, value)
    for notice in report.notices:
        runner.annotate("notice", _scrub(notice, secrets), title=f"genai-gate {report.command}")
    summary = _scrub(report.summary, secrets)
    runner.append_summary(summary)
    return summary


def _analysis_outputs(
    runner: Runner,
    report: AnalyzeReport,
    ctx: Context,
    environ: Mapping[str, str],
    token: str,
    secrets: list[str],
) -> str:
    for name, value in report.outputs().items():
        runner.set_output(name, value)
    for notice in report.notices:
        runner.annotate("notice", _scrub(notice, secrets), title=f"genai-gate {report.mode}")
    summary = _scrub(report.summary, secrets)
    runner.append_summary(summary)
    if report.decision.action == "rollback":
        runner.annotate(
            "error",
            _scrub(f"{report.endpoint}: {report.decision.reason}", secrets),
            title="genai-gate: canary rolled back"
            if report.applied is not None
            else "genai-gate: canary unhealthy",
        )
        if report.open_issue and token:
            result = upsert_issue(
                ctx,
                token,
                f"canary:{report.endpoint}",
                f"genai-gate: canary on {report.endpoint} rolled back",
                fit_comment(summary),
            )
            if result.url:
                runner.annotate("notice", f"Canary issue {result.action}: {result.url}")
            elif result.action in ("no-permission", "failed"):
                runner.annotate(
                    "warning",
                    f"The canary issue was not written ({result.detail}). To allow it: "
                    "permissions: issues: write",
                    title="genai-gate",
                )
    return summary


def _monitor_outputs(
    runner: Runner, report: MonitorReport | DashboardReport, secrets: list[str]
) -> str:
    for name, value in report.outputs().items():
        runner.set_output(name, value)
    for notice in report.notices:
        runner.annotate("notice", _scrub(notice, secrets), title="genai-gate monitor")
    summary = _scrub(report.summary, secrets)
    runner.append_summary(summary)
    return summary


def run_action(
    *,
    config_path: str | None,
    out_dir: Path,
    environ: Mapping[str, str],
    progress: PhaseProgress | None = None,
    log: Callable[[str], None] = lambda _line: None,
) -> ActionResult:
    runner = Runner(environ)
    loaded: LoadedConfig | None = None
    refused: GateError | None = None
    try:
        loaded = load_config(config_path, environ=environ, require_data=False)
    except InvalidConfig as exc:
        refused = every_problem(exc)
    except GateError as exc:
        refused = exc  # raised below, where the failure report can be written
    secrets = _secrets(environ, loaded.config if loaded else None)
    for secret in secrets:
        runner.mask(secret)
    # the model and scorers are the PR's own code: they run without the comment token
    token = environ.get("GENAI_GATE_GITHUB_TOKEN") or ""
    if environ is os.environ:
        os.environ.pop("GENAI_GATE_GITHUB_TOKEN", None)
    ctx = read_context(environ)
    if ctx.event_name == "pull_request_target" and ctx.pr_is_fork:
        runner.annotate(
            "warning",
            "pull_request_target runs a fork's config and model code with this repository's "
            "secrets and a write token. Gate forks on pull_request instead.",
            title="genai-gate",
        )
    command = "eval"
    report: EvalReport | None = None
    deployed: DeployReport | None = None
    watched: AnalyzeReport | None = None
    monitored: MonitorReport | None = None
    charted: DashboardReport | None = None
    parts: list[str] = []
    try:
        if loaded is None:
            assert refused is not None
            raise refused
        run = Run(loaded, out_dir, environ)
        deploy, watch = run.backend().configured()
        commands = choose_commands(
            environ.get("GENAI_GATE_COMMAND"), ctx, deploy=deploy, watch=watch
        )
        if "deploy" in commands:
            # before the eval, so a missing `id-token: write` costs seconds, not an eval
            command = "deploy"
            preflight(run)
        if "eval" in commands:
            command = "eval"
            with runner.group("genai-gate eval"):
                report = run_gate(run, progress, log)
            parts.append(_eval_outputs(runner, report, environ, secrets))
        explicit = bool((environ.get("GENAI_GATE_COMMAND") or "").strip())
        for mode in (m for m in _WATCH if m in commands):
            command = mode
            with runner.group(f"genai-gate {mode}"):
                watched = run_analyze(run, mode=mode, apply=True, progress=log)
            if mode == "analyze" and not watched.in_flight and not explicit:
                # no canary: the schedule watches the champion instead (issue #16)
                watched = None
                commands = ("monitor",)
                break
            parts.append(_analysis_outputs(runner, watched, ctx, environ, token, secrets))
        if "monitor" in commands:
            command = "monitor"
            with runner.group("genai-gate monitor"):
                monitored = run_monitor(run, github_token=token, progress=log)
            parts.append(_monitor_outputs(runner, monitored, secrets))
        if "dashboard" in commands:
            command = "dashboard"
            with runner.group("genai-gate dashboard"):
                charted = run_dashboard(run, progress=log)
            parts.append(_monitor_outputs(runner, charted, secrets))
        gate_open = report is None or (report.verdict.passed and report.tracking_error is None)
        for command in (c for c in commands if c in ("plan", "deploy")):
            if command == "deploy" and not gate_open:
                parts.append("Deploy skipped: the gate did not pass.\n")
                runner.append_summary(parts[-1])
                continue
            with runner.group(f"genai-gate {command}"):
                deployed = run_deploy(run, apply=command == "deploy", progress=log)
            parts.append(_deploy_outputs(runner, deployed, secrets))
    except GateError as exc:
        parts.append(
            _report_failure(
                runner,
                secrets,
                command=command,
                title=exc.title,
                text=exc.render(),
                detail="; ".join([exc.message, *exc.problems[:5]]),
                outputs=report is None,
            )
        )
        _scrub_files(out_dir, secrets)
        _comment(runner, ctx, environ, token, brief(join(parts)))
        raise
    except Exception as exc:
        parts.append(
            _report_failure(
                runner,
                secrets,
                command=command,
                title="internal error",
                text=traceback.format_exc(),
                detail=f"{type(exc).__name__}: {exc}",
                outputs=report is None,
            )
        )
        _scrub_files(out_dir, secrets)
        _comment(runner, ctx, environ, token, brief(join(parts)))
        raise
    # one place decides `result` and `passed`, from every command that ran
    reports = (r for r in (report, deployed, watched, monitored, charted) if r is not None)
    for name, value in Result.overall(r.result for r in reports).outputs().items():
        runner.set_output(name, value)
    _scrub_files(out_dir, secrets)
    comment = _comment(runner, ctx, environ, token, brief(join(parts)))
    return ActionResult(commands, report, deployed, comment, watched, monitored, charted)

"""The `genai-gate` command. `main` is the only place that prints errors and picks exit codes.

Heavy imports (mlflow, pandas, pydantic) happen inside the commands, so `--version` and
`--help` stay fast.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from genai_gate import __version__
from genai_gate.errors import ConfigError, ExitCode, GateError

if TYPE_CHECKING:
    from genai_gate.commands.canary import AnalyzeReport, Mode
    from genai_gate.commands.dashboard import DashboardReport
    from genai_gate.commands.deploy import DeployReport
    from genai_gate.commands.eval import EvalReport
    from genai_gate.commands.monitor import MonitorReport
    from genai_gate.commands.run import Run
    from genai_gate.results import ResultsDoc

DEFAULT_OUT = "genai-gate-out"
F = TypeVar("F", bound=Callable[..., Any])


def _overrides(**flags: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None or value == () or value == "":
            continue
        out[key.replace("_", "-")] = value
    return out


def _parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    from genai_gate import strict_yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set {pair!r} is not KEY=VALUE",
                fix="For example: --set max-errors=2 --set experiment=nightly",
            )
        try:
            out[key.strip()] = strict_yaml.load(value) if value.strip() else value
        except strict_yaml.YamlProblem as exc:
            raise ConfigError(
                f"--set {pair!r}: the value {exc.message}", problems=exc.problems
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {pair!r}: the value is not valid YAML ({_yaml_problem(exc)})",
                fix="Quote the value, or close its brackets: --set 'scorers=[exact_match]'",
            ) from None
    return out


def _settings(sets: Sequence[str], **flags: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """`--set` pairs, then the named flags over them, each under the name the user typed."""
    overrides = _parse_sets(sets)
    origins = {key: f"--set {key}" for key in overrides}
    given = _overrides(**flags)
    overrides.update(given)
    origins.update({key: f"--{key}" for key in given})
    return overrides, origins


def _yaml_problem(exc: Exception) -> str:
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]


def _flag_value(flag: str, key: str, text: str, example: str) -> Any:
    import yaml

    from genai_gate.config import coerce_text

    try:
        return coerce_text(key, text)
    except (ValueError, yaml.YAMLError) as exc:
        problem = _yaml_problem(exc) if isinstance(exc, yaml.YAMLError) else str(exc)
        raise ConfigError(f"{flag}: {problem}", fix=f"For example: {example}") from None


def _print_verdict(doc: ResultsDoc, out_dir: Path) -> None:
    from genai_gate.report.summary import fmt, fmt_ci, rule_text
    from genai_gate.thresholds import ABSOLUTE_OPS

    word = "PASSED" if doc["passed"] else "FAILED"
    click.echo(f"genai-gate: {word} ({doc['rows']} rows, model {doc['model']})")
    base = doc.get("baseline")
    if base is not None:
        click.echo(f"baseline: {base['label']} ({base['pairs']} rows paired)")
    width = max((len(c["metric"]) for c in doc["checks"]), default=0)
    for c in doc["checks"]:
        value = "missing" if c["value"] is None else f"{c['value']:.4g}"
        mark = "ok  " if c["passed"] else "FAIL"
        line = f"  {mark} {c['metric']:<{width}}  {value:>9}  {rule_text(c)}"
        if c.get("delta") is not None:
            line += (
                f"  baseline {fmt(c['baseline'])}, Δ {c['delta']:+.4g} (95% CI {fmt_ci(c['ci'])})"
            )
        if c["op"] not in ABSOLUTE_OPS:
            line += f"  {c['status']}"
        click.echo(line)
    for failure in doc["failures"]:
        click.echo(f"  - {failure}")
    if doc.get("run_url"):
        click.echo(f"MLflow run: {doc['run_url']}")
    elif doc.get("run_id"):
        click.echo(f"MLflow run: {doc['run_id']} ({doc.get('tracking_uri')})")
    click.echo(f"Report: {out_dir / 'summary.md'}  Results: {out_dir / 'results.json'}")


config_option = click.option(
    "-c",
    "--config",
    "config",
    envvar="GENAI_GATE_CONFIG",
    default=None,
    help="Config file (default: genai-gate.yml, if present).",
)
out_option = click.option(
    "--out",
    "out",
    envvar="GENAI_GATE_OUT",
    default=DEFAULT_OUT,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for results and evidence.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="genai-gate")
def cli() -> None:
    """Gate, deploy and watch GenAI models the way code is shipped."""


@cli.command("eval")
@config_option
@out_option
@click.option("--data", help="Eval set (CSV, JSONL, JSON, Parquet).")
@click.option(
    "--model", help="python:module:function, models:/name/3, models:/name@alias, runs:/.."
)
@click.option("--scorers", help="Comma-separated scorer names.")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    metavar="'METRIC OP VALUE'",
    help="A threshold such as 'exact_match/mean >= 0.6'; repeatable.",
)
@click.option("--max-errors", help='Rows allowed to fail: a count or a share such as "5%".')
@click.option("--tracking-uri", help="MLflow tracking URI.")
@click.option("--experiment", help="MLflow experiment name.")
@click.option("--limit", type=int, help="Evaluate only the first N rows.")
@click.option(
    "--runner",
    type=click.Choice(["local", "spark"]),
    help="Evaluate with threads here (local) or over a Spark session (spark).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any config key, e.g. --set concurrency=4; repeatable.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option(
    "--progress-file",
    type=click.Path(dir_okay=False, path_type=Path),
    hidden=True,  # the row counter a Databricks job writes for the run that submitted it
)
def eval_command(
    config: str | None,
    out: Path,
    data: str | None,
    model: str | None,
    scorers: str | None,
    thresholds: tuple[str, ...],
    max_errors: str | None,
    tracking_uri: str | None,
    experiment: str | None,
    limit: int | None,
    runner: str | None,
    sets: tuple[str, ...],
    quiet: bool,
    progress_file: Path | None,
) -> None:
    """Evaluate the model on the eval set and gate on the thresholds."""
    from genai_gate.commands.eval import every_problem
    from genai_gate.commands.job_eval import run_gate
    from genai_gate.commands.run import Run
    from genai_gate.config import load_config
    from genai_gate.config.load import InvalidConfig
    from genai_gate.progress import Progress, ProgressFile

    overrides, origins = _settings(
        sets,
        data=data,
        model=model,
        max_errors=max_errors,
        tracking_uri=tracking_uri,
        experiment=experiment,
        limit=limit,
        runner=runner,
    )
    if scorers:
        overrides["scorers"] = _flag_value(
            "--scorers", "scorers", scorers, "--scorers exact_match,token_f1"
        )
        origins["scorers"] = "--scorers"
    if thresholds:
        given = _flag_value(
            "--threshold",
            "thresholds",
            "\n".join(thresholds),
            "--threshold 'exact_match/mean >= 0.6'",
        )
        # --threshold adds to --set thresholds=..., as it adds to the file's thresholds
        earlier = overrides.get("thresholds")
        overrides["thresholds"] = {**(earlier if isinstance(earlier, dict) else {}), **given}
        origins["thresholds"] = "--threshold"
    try:
        loaded = load_config(
            config, environ=os.environ, overrides=overrides, override_origins=origins
        )
    except InvalidConfig as exc:
        raise every_problem(exc) from None
    progress = Progress(enabled=not quiet)
    shown = ProgressFile(progress_file, progress) if progress_file is not None else progress
    report = run_gate(Run(loaded, out), shown, _stderr)
    _finish(report, out)
    raise click.exceptions.Exit(int(report.result.exit_code))


def _verdict_on_disk(report: EvalReport) -> None:
    """A pass is read back from results.json: exit 0 needs a written, complete verdict."""
    from genai_gate.errors import ServiceError

    try:
        written = json.loads(report.results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        written = {"error": str(exc)}
    if not isinstance(written, dict) or written.get("result") != report.doc["result"]:
        raise ServiceError(
            f"{report.results_path} does not hold the verdict that was decided "
            f"({report.doc['result']}), so the run cannot pass",
            fix="Check that nothing else writes to the --out folder while genai-gate runs "
            "(another step, a second gate with the same out), and re-run.",
        )


def _finish(report: EvalReport, out: Path) -> None:
    _verdict_on_disk(report)
    for notice in report.doc["notices"]:
        click.echo(f"notice: {notice}", err=True)
    _print_verdict(report.doc, out)
    # the gate's "no" is the answer that matters; a logging failure is reported beside it
    if report.tracking_error is not None:
        if report.verdict.passed:
            raise report.tracking_error
        click.echo(_safe(report.tracking_error.render()), err=True)


def _endpoint_options(*extra: Any, example: str) -> Callable[[F], F]:
    """-c, --out, --endpoint, [extra], --set and --json, shared by the endpoint commands."""

    def apply(f: F) -> F:
        for option in reversed(
            [
                config_option,
                out_option,
                click.option(
                    "--backend",
                    type=click.Choice(["databricks", "kserve"]),
                    help="The serving platform (default: the config's backend, else databricks).",
                ),
                click.option(
                    "--endpoint",
                    help="Serving endpoint name (the InferenceService with --backend kserve).",
                ),
                *extra,
                click.option(
                    "--set",
                    "sets",
                    multiple=True,
                    metavar="KEY=VALUE",
                    help=f"Any config key, e.g. --set {example}; repeatable.",
                ),
                click.option("--json", "as_json", is_flag=True, help="Print the record as JSON."),
            ]
        ):
            f = option(f)
        return f

    return apply


_deploy_options = _endpoint_options(
    click.option("--model-name", help="Unity Catalog model: catalog.schema.model."),
    click.option("--model-version", help="The challenger's version."),
    click.option("--canary-percent", type=int, help="The challenger's traffic share."),
    example="wait-timeout=30m",
)
_rollout_options = _endpoint_options(example="min-requests=50")


def _stderr(line: str) -> None:
    click.echo(line, err=True)


def _run(config: str | None, out: Path, overrides: dict[str, Any], origins: dict[str, str]) -> Run:
    """The one config load of an endpoint command (plan, deploy, analyze, ...)."""
    from genai_gate.commands.run import Run
    from genai_gate.config import load_config

    loaded = load_config(
        config,
        environ=os.environ,
        overrides=overrides,
        override_origins=origins,
        require_data=False,
    )
    return Run(loaded, out)


def _print_report(
    report: DeployReport | AnalyzeReport | MonitorReport | DashboardReport, as_json: bool
) -> None:
    """Notices to stderr; the record as JSON, or the markdown report and the outputs."""
    for notice in report.notices:
        click.echo(f"notice: {_safe(notice)}", err=True)
    if as_json:
        click.echo(json.dumps(report.doc, indent=2, default=str))
        return
    click.echo(_safe(report.summary))
    for name, value in report.outputs().items():
        click.echo(f"{name}: {value}")


def _run_deploy_command(
    apply: bool,
    config: str | None,
    out: Path,
    sets: tuple[str, ...],
    as_json: bool,
    **flags: Any,
) -> None:
    from genai_gate.commands.deploy import run_deploy

    overrides, origins = _settings(sets, **flags)
    report = run_deploy(_run(config, out, overrides, origins), apply=apply, progress=_stderr)
    _print_report(report, as_json)


@cli.command("plan")
@_deploy_options
def plan_command(**kwargs: Any) -> None:
    """Show what `deploy` would change on the serving endpoint (reads only)."""
    _run_deploy_command(False, **kwargs)


@cli.command("deploy")
@_deploy_options
def deploy_command(**kwargs: Any) -> None:
    """Roll the model version out as a canary: served entities, traffic, capture, tags."""
    _run_deploy_command(True, **kwargs)


def _run_rollout_command(
    mode: Mode,
    apply: bool,
    config: str | None,
    out: Path,
    sets: tuple[str, ...],
    as_json: bool,
    endpoint: str | None,
    backend: str | None,
) -> None:
    from genai_gate.commands.canary import run_analyze

    overrides, origins = _settings(sets, endpoint=endpoint, backend=backend)
    run = _run(config, out, overrides, origins)
    report = run_analyze(run, mode=mode, apply=apply, progress=_stderr)
    _print_report(report, as_json)
    raise click.exceptions.Exit(int(report.result.exit_code))


@cli.command("analyze")
@_rollout_options
@click.option(
    "--apply",
    is_flag=True,
    help="Act on the decision: advance, promote or roll back the canary.",
)
def analyze_command(apply: bool, **kwargs: Any) -> None:
    """Judge the canary's live traffic per served entity; exit 1 when it is unhealthy."""
    _run_rollout_command("analyze", apply, **kwargs)


@cli.command("promote")
@_rollout_options
def promote_command(**kwargs: Any) -> None:
    """Make the challenger the champion at 100% now (a manual override)."""
    _run_rollout_command("promote", True, **kwargs)


@cli.command("rollback")
@_rollout_options
def rollback_command(**kwargs: Any) -> None:
    """Send all traffic back to the champion and remove the challenger now."""
    _run_rollout_command("rollback", True, **kwargs)


@cli.command("monitor")
@_endpoint_options(
    click.option("--window", help='The traffic to judge, ending now: "24h", "7d", seconds.'),
    click.option(
        "--reference",
        help="run:<mlflow-run-id>, window:<from>..<to> or none (default: the "
        "eval run that gated the serving version).",
    ),
    example="on-drift=[annotate,retrain]",
)
def monitor_command(
    config: str | None,
    out: Path,
    endpoint: str | None,
    backend: str | None,
    window: str | None,
    reference: str | None,
    sets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Judge the champion's recent traffic against its reference; exit 1 on drift."""
    from genai_gate.commands.monitor import run_monitor

    overrides, origins = _settings(
        sets,
        endpoint=endpoint,
        backend=backend,
        monitor_window=window,
        monitor_reference=reference,
    )
    for key, flag in (("monitor-window", "--window"), ("monitor-reference", "--reference")):
        if key in origins:
            origins[key] = flag
    run = _run(config, out, overrides, origins)
    token = os.environ.get("GENAI_GATE_GITHUB_TOKEN") or os.environ.get("GITHUB_TOKEN") or ""
    report = run_monitor(run, github_token=token, progress=_stderr)
    _print_report(report, as_json)
    click.echo(f"Report: {out / 'monitor.md'}  HTML: {out / 'monitor.html'}", err=True)
    raise click.exceptions.Exit(int(report.result.exit_code))


@cli.command("dashboard")
@_endpoint_options(example="dashboard-path=/Shared/genai-gate")
def dashboard_command(
    config: str | None,
    out: Path,
    endpoint: str | None,
    backend: str | None,
    sets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create or update, by name, the AI/BI dashboard and SQL alerts over the endpoint."""
    from genai_gate.commands.dashboard import run_dashboard

    overrides, origins = _settings(sets, endpoint=endpoint, backend=backend)
    report = run_dashboard(_run(config, out, overrides, origins), progress=_stderr)
    _print_report(report, as_json)


@cli.command("action")
@config_option
@out_option
def action_command(config: str | None, out: Path) -> None:
    """Run as the GitHub Action: pick the command from the event, report to the PR.

    Settings come from GENAI_GATE_* (the action's inputs); outputs, the job summary,
    annotations and the sticky PR comment go to GitHub.
    """
    from genai_gate.commands.action import run_action
    from genai_gate.progress import Progress

    workdir = os.environ.get("GENAI_GATE_WORKING_DIRECTORY", "").strip()
    if workdir:
        # both adapters pass it here, so the container and the composite flavour agree
        try:
            os.chdir(workdir)
        except OSError as exc:
            raise ConfigError(
                f"working-directory: cannot enter {workdir!r} ({exc.strerror})",
                fix="Give a folder relative to the repository root:\n"
                "  with:\n    working-directory: services/chatbot",
            ) from None
    result = run_action(
        config_path=config,
        out_dir=out,
        environ=os.environ,
        progress=Progress(),
        log=lambda line: click.echo(line, err=True),
    )
    if result.comment is not None and result.comment.url:
        click.echo(f"PR comment {result.comment.action}: {result.comment.url}")
    if result.deploy is not None:
        click.echo(_safe(result.deploy.summary))
    if result.analysis is not None:
        click.echo(_safe(result.analysis.summary))
    if result.monitor is not None:
        click.echo(_safe(result.monitor.summary))
    if result.dashboard is not None:
        click.echo(_safe(result.dashboard.summary))
    if result.report is not None:
        _finish(result.report, out)
    raise click.exceptions.Exit(int(result.result.exit_code))


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of genai-gate.yml (for editor completion)."""
    from genai_gate.config import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


class _Scrubbed:
    """stdout or stderr, scrubbed of the run's secrets (secrets.py) on every write: the
    job log is masked by the runner, but a local terminal, a log file or a tee is not."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        from genai_gate.secrets import scrub

        # the runner's own mask command must reach it as it is: it hides the value in the log
        kept = text if text.startswith("::add-mask::") else scrub(text)
        self._inner.write(kept)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def main(argv: Sequence[str] | None = None) -> int:
    from genai_gate import secrets

    secrets.remember_environ(os.environ)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Scrubbed(sys.stdout), _Scrubbed(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None) -> int:
    try:
        # standalone_mode=False hands back click.exceptions.Exit's code as the return value
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="genai-gate",
            standalone_mode=False,
        )
    except GateError as exc:
        click.echo(_safe(exc.render()), err=True)
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception:
        # a bug, not a verdict: exit 1 would read as "the gate said no"
        click.echo(traceback.format_exc(), err=True)
        click.echo(
            "genai-gate hit an internal error (above). Please report it with the traceback.",
            err=True,
        )
        return int(ExitCode.SERVICE)
    return code if isinstance(code, int) else int(ExitCode.PASSED)


def _safe(text: str) -> str:
    """Keep text from the user's data (column names, file names) from acting as a workflow
    command: the runner reads any output line that starts with `::`."""
    return "\n".join(" " + ln if ln.lstrip().startswith("::") else ln for ln in text.splitlines())


def run() -> None:
    # the console script: a supervisor whose exit code only a recorded verdict decides
    from genai_gate.supervisor import entry

    entry(main)


if __name__ == "__main__":
    run()

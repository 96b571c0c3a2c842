"""`genai-gate eval` end to end: config -> preflight -> model -> scores -> gate -> files + MLflow.

Everything that can be checked without calling the model is checked first (config, scorers,
thresholds, data, expectations, the model import), so a typo costs seconds, not an
evaluation. The tracking store opens on a background thread while the model calls run, and
the verdict and the local files are written before the MLflow run starts, so the logging
cannot delay the answer and a tracking failure (exit 4) still leaves complete results behind;
results.json and summary.md are then rewritten, atomically, with the run's id.

With a baseline (issue #5) the baseline is resolved in the same preflight, then evaluated
after the candidate with the same rows, scorers, judges, runner and cache folder (or read
from an earlier run), paired row by row (compare.py), and the gate gets the comparison.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from genai_gate import __version__, artefacts, evidence, mlflow_loading, replay
from genai_gate.baseline import Baseline, Resolution, resolve_baseline
from genai_gate.commands.run import Result, Run, partition_workspace
from genai_gate.compare import (
    Comparison,
    RowChange,
    compare,
    pair_rows,
    regressed_rows,
    regression_directions,
)
from genai_gate.config import Config, LoadedConfig
from genai_gate.config.load import InvalidConfig
from genai_gate.data import load_dataset, load_table
from genai_gate.errors import ConfigError, DeadlineError, ExitCode, GateError, TrackingError
from genai_gate.evaluate import assemble, compute_metrics, evaluate, preflight
from genai_gate.gate import Verdict, decide
from genai_gate.github import run_links
from genai_gate.provenance import Provenance, collect
from genai_gate.report.results import (
    RunInfo,
    baseline_doc,
    results_doc,
    row_record,
    rows_jsonl,
    worst_rows,
)
from genai_gate.report.summary import render_summary
from genai_gate.results import (
    BaselineDoc,
    Dataset,
    EvalResult,
    PhaseProgress,
    ResultsDoc,
    RowError,
    RowResult,
)
from genai_gate.scorer import BoundScorer, build_scorers_now
from genai_gate.scoring.judges import judge_session
from genai_gate.scoring.registry import configured_scorers, raise_unbuilt
from genai_gate.scoring.verdicts import VerdictCache
from genai_gate.spark_runner import evaluate_on_spark
from genai_gate.tables import TableReader
from genai_gate.targets import Target, limits, resolve_target
from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.http_chat import check_key
from genai_gate.targets.limits import run_limits
from genai_gate.targets.openai_chat import DEFAULT_BASE, base_url
from genai_gate.tracking import (
    default_tracking_uri,
    ensure_local_store,
    finish_run,
    open_store,
    probe,
    redact,
    start_run,
    tracking_env,
    use_tracking_uri,
)


@dataclass(frozen=True)
class EvalReport:
    verdict: Verdict
    doc: ResultsDoc
    out_dir: Path
    results_path: Path
    summary_path: Path
    summary: str
    tracking_error: TrackingError | None

    @property
    def result(self) -> Result:
        """A passed gate whose run could not be recorded reads `error`, as its exit code 4."""
        if not self.verdict.passed:
            return Result.FAILED
        return Result.ERROR if self.tracking_error is not None else Result.PASSED


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _prefixed(progress: PhaseProgress | None, prefix: str) -> PhaseProgress | None:
    if progress is None:
        return None
    report = progress
    return lambda phase, done, total: report(f"{prefix}{phase}", done, total)


@dataclass(frozen=True)
class _Compared:
    comparisons: dict[str, Comparison]
    rows: tuple[RowResult, ...]  # the baseline's
    regressions: list[RowChange]
    doc: BaselineDoc  # results.json's `baseline`


def against_baseline(
    loaded: LoadedConfig,
    scorers: Sequence[BoundScorer],
    rows: Sequence[RowResult],
    metrics: Mapping[str, float],
    base_rows: Sequence[RowResult],
    base_metrics: Mapping[str, float],
) -> tuple[int, dict[str, Comparison], list[RowChange]]:
    """The candidate's rows paired with the baseline's: how many pairs, the comparison the
    rules against the baseline read, and the rows that got worse."""
    pairs = pair_rows(rows, base_rows)
    comparisons = compare(pairs, scorers, metrics, base_metrics)
    directions = regression_directions(loaded.thresholds, loaded.relative, scorers)
    return len(pairs), comparisons, regressed_rows(pairs, directions)


def gate(
    loaded: LoadedConfig,
    metrics: Mapping[str, float],
    *,
    rows: int,
    row_errors: Sequence[RowError],
    comparisons: Mapping[str, Comparison] | None,
    no_baseline: str | None,
    baseline_label: str,
) -> Verdict:
    """The verdict on a run's metrics and row errors: the config's thresholds and rules
    against the baseline, its error allowance and its stance on inconclusive comparisons."""
    cfg = loaded.config
    return decide(
        loaded.thresholds,
        metrics,
        rows=rows,
        row_errors=row_errors,
        allowed_errors=cfg.allowed_errors(rows),
        relative=loaded.relative,
        comparisons=comparisons,
        no_baseline=no_baseline,
        baseline_label=baseline_label,
        inconclusive=cfg.inconclusive,
    )


def _compare(
    loaded: LoadedConfig,
    scorers: Sequence[BoundScorer],
    result: EvalResult,
    baseline: Baseline,
    evaluated: EvalResult | None,
) -> _Compared:
    """The candidate's rows against the baseline's (evaluated now, or an earlier run's)."""
    if evaluated is not None:
        rows, metrics = evaluated.rows, evaluated.metrics
    else:
        rows, metrics = baseline.rows, compute_metrics(baseline.rows, scorers)
    pairs, comparisons, regressions = against_baseline(
        loaded, scorers, result.rows, result.metrics, rows, metrics
    )
    identity = dict(baseline.identity)
    served = getattr(baseline.target, "served_models", None)
    if callable(served):
        identity["served_models"] = served()
    doc = baseline_doc(
        ref=baseline.ref,
        label=baseline.label,
        kind=baseline.kind,
        identity=identity,
        rows=rows,
        metrics=metrics,
        comparisons=comparisons,
        pairs=pairs,
        regressed=len(regressions),
        cache=evaluated.cache if evaluated else None,
    )
    return _Compared(comparisons, rows, regressions, doc)


def run_eval(run: Run, progress: PhaseProgress | None = None) -> EvalReport:
    """Prepare (everything checkable without a model call), evaluate, decide, write, log."""
    for key, value in tracking_env().items():
        os.environ.setdefault(key, value)
    started_at = _now()
    _check_out(run.out_dir)
    evidence.check_trail(run.out_dir / "evidence.json")
    tracking_uri = default_tracking_uri(run.out_dir, run.loaded.config.tracking_uri, run.environ)
    # a dead tracking server is found in seconds, and then not called again (tracking.probe)
    unreachable: TrackingError | None = None
    try:
        probe(tracking_uri)
    except TrackingError as exc:
        unreachable = exc
    # the replay's attempt reads the data file; a full run after it reads it no more
    read: Dataset | None = None
    if unreachable is None:
        replayed, read = _replayed(run, tracking_uri, started_at)
        if replayed is not None:
            return replayed
    # a baseline or a deploy's champion may be read from the store before the first call
    store_first = not _store_can_wait(run.loaded.config)
    if store_first:
        ensure_local_store(tracking_uri)
    with use_tracking_uri(tracking_uri), run_limits(run.loaded.config.max_duration):
        prepared = _prepare(run, tracking_uri, read)
        target = prepared.target
        steps: list[tuple[str, Callable[[], object]]] = []
        if target is not None and target.remote and run.loaded.config.runner != "spark":
            # nothing needs MLflow before the model's first answer: it loads on a thread,
            # then builds the scorers there (mlflow_loading)
            steps.append(("scorers", partial(build_scorers_now, prepared.scorers)))
        else:
            # a python: model's own code may import MLflow on any thread: here, first
            mlflow_loading.ensure()
            raise_unbuilt(prepared.scorers)  # before any call
        # the store is created and opened on the thread while the calls run
        if not store_first:
            steps.append(("store", partial(ensure_local_store, tracking_uri)))
        if unreachable is None:
            steps.append(("open", partial(open_store, tracking_uri)))
        mlflow_loading.load_in_background(steps)
        evaluated = _evaluate(run, prepared, progress)
        mlflow_loading.ensure()  # whole before the logging imports it, if no row was scored
        # a scorer MLflow would not build failed each row that needed it: that is the
        # config's problem to report, not a verdict (the answers are cached)
        raise_unbuilt(prepared.scorers)
        # a new store is in place before the run is logged (opening it need not be: MLflow
        # opens one store per URI, under its lock); if it could not be made, again here,
        # where its error is reported
        if mlflow_loading.finished("store") is not None:
            ensure_local_store(tracking_uri)
        report = _report(run, prepared, evaluated, tracking_uri, started_at, unreachable)
        _check_limits(run, report)
        return report


def _store_can_wait(cfg: Config) -> bool:
    """Whether nothing before the first model call reads the tracking store: no baseline (a
    run: baseline is read from it) and no deploy endpoint (whose champion's eval run is
    looked up in it). Then a new local store is created on MLflow's loading thread."""
    none = cfg.baseline is None or cfg.baseline.lower() == "none"
    return none and cfg.endpoint is None


def _check_limits(run: Run, report: EvalReport) -> None:
    """A run cut short (max-duration, or a service that stopped answering) is exit 4, after
    its partial results were written: a verdict on some rows is not a verdict."""
    reasons = limits.tripped()
    if limits.cut_short():
        reasons.insert(0, f"the run reached max-duration ({run.loaded.config.max_duration:g} s)")
    if not reasons:
        return
    raise DeadlineError(
        "; ".join(reasons) + f". The partial results are in {report.results_path}",
        fix="If the service is down, fix it and re-run (answers already received are "
        "cached). If the run is just long, allow it more time or evaluate fewer rows:\n"
        "  max-duration: 3h\n  limit: 200",
    )


def _replay_target(run: Run, dataset: Dataset) -> tuple[bool, Target | None]:
    """The model whose cached answers a replay reads: (usable, target)."""
    if not run.loaded.config.model:
        return True, None
    target = resolve_target(
        run.loaded.config.model,
        run.loaded,
        input_keys=list(dataset.rows[0].inputs),
        workspace=run.workspace,
    )
    return bool(target.remote and hasattr(target, "cache_identity")), target


def _replayed(
    run: Run, tracking_uri: str, started_at: str
) -> tuple[EvalReport | None, Dataset | None]:
    """A run identical to one already evaluated and logged, from its replay record
    (replay.py), or None for a full run; and the data file's rows, if they were read.
    Anything that is not a clean replay (a config or data problem included: the full run
    reports it with everything else) is a full run."""
    loaded = run.loaded
    cfg = loaded.config
    if not replay.replayable(loaded):
        return None, None
    dataset: Dataset | None = None
    try:
        dataset = _read_data_file(loaded)
        usable, target = _replay_target(run, dataset)
        if cfg.judge:
            # the key a full run would send: a bad or missing one is that run's to report
            key_value = check_key(cfg.judge_api_key_env, run.environ.get(cfg.judge_api_key_env, ""))
            judge_base = base_url(cfg.judge_base_url or cfg.base_url, run.environ)
            usable = usable and bool(key_value or judge_base != DEFAULT_BASE)
    except GateError:
        return None, dataset
    if not usable:
        return None, dataset
    cache_dir = loaded.resolve(cfg.cache_dir)
    cache = ResponseCache(cache_dir)
    answers = replay.replay_key(loaded, dataset, target, cache, run.environ)
    found = replay.read_record(cache_dir, answers.key) if answers else None
    if found is None or answers is None or not replay.matches(found.rows, dataset, answers):
        return None, dataset
    if not replay.logged_run_exists(tracking_uri, found.run_id, run.environ):
        return None, dataset
    identity = target.identity if target is not None else None
    result = assemble(
        dataset,
        found.scorers,
        identity,
        found.rows,
        {"predict": 0.0, "score": 0.0},
        cache.stats() if target is not None else None,
    )
    judge_stats = None
    if any(s.judge for s in found.scorers):
        # the verdicts are the replayed run's: none was asked, none read from the judge cache
        judge_stats = {
            "model": cfg.judge,
            "calls": 0,
            "upstream_requests": 0,
            "failures": 0,
            "cache": None,
            "replayed": True,
        }
    prep = _Prepared(
        found.scorers,
        dataset,
        target,
        Resolution(None),
        [*found.notices, replay.notice(found, tracking_uri)],
    )
    return _report(
        run,
        prep,
        _Evaluated(result, None, judge_stats),
        tracking_uri,
        started_at,
        logged=(found.run_id, found.run_url),
    ), dataset


def _check_out(out_dir: Path) -> None:
    """The output folder can be written: found now, not after every model call."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, FileExistsError | NotADirectoryError):
            reason = "a file is in the way: it, or a folder above it, is a file"
        raise ConfigError(
            f"--out {out_dir}: cannot write the results there ({reason})",
            fix="Point --out at a folder genai-gate may create and write, e.g.\n"
            "  genai-gate eval --out genai-gate-out",
        ) from None


@dataclass(frozen=True)
class _Prepared:
    scorers: tuple[BoundScorer, ...]
    dataset: Dataset
    target: Target | None
    resolution: Resolution
    notices: list[str]


# the keys each input check reads: a check is left out when one of them is already known
# wrong, as its default would stand in and only add a misleading second problem
_SCORER_KEYS = frozenset(
    {"scorers", "thresholds", "judge", "guidelines", "custom-judges", "repeat", "min-pass"}
)
_DATA_KEYS = frozenset({"data", "columns", "limit", "model"})


def check_inputs(
    loaded: LoadedConfig,
    notices: list[str],
    reader: TableReader | None = None,
    read: Dataset | None = None,
) -> tuple[tuple[BoundScorer, ...], Dataset]:
    """The scorers and the eval set, checked together against each other: every problem is
    raised in one ConfigError, so that one run names them all. `reader` reads a uc: table;
    `read` is the data file's rows, if this run has read them already."""
    scorers, dataset, errors = _checked_inputs(loaded, notices, frozenset(), reader, read)
    _raise_together(errors)
    assert scorers is not None and dataset is not None  # both were built, or errors raised
    return scorers, dataset


def check_before_submitting(
    loaded: LoadedConfig,
) -> tuple[tuple[BoundScorer, ...], Dataset | None]:
    """What can be checked here before a job evaluates elsewhere (run-on: databricks): the
    scorers and thresholds, and a data file with its columns (a uc: table is the job's to
    read), so that a typo costs seconds, not a job. Returns the scorers and the data file's
    rows (None for a table), which the job's results are checked against."""
    scorers, dataset, errors = _checked_inputs(loaded, [], frozenset())
    _raise_together(errors)
    assert scorers is not None  # built, or errors raised
    return scorers, dataset


def _checked_inputs(
    loaded: LoadedConfig,
    notices: list[str],
    skip: frozenset[str],
    reader: TableReader | None = None,
    read: Dataset | None = None,
) -> tuple[tuple[BoundScorer, ...] | None, Dataset | None, list[GateError]]:
    cfg = loaded.config
    errors: list[GateError] = []
    scorers: tuple[BoundScorer, ...] | None = None
    dataset: Dataset | None = read
    if not skip & _SCORER_KEYS:
        try:
            # checked now, built on MLflow's loading thread or before the first call
            scorers = configured_scorers(loaded, notices, lazy=True)
        except GateError as exc:
            errors.append(exc)
    table = loaded.data_table
    # a table is read only with a reader: a config already known wrong signs in to nothing
    if dataset is None and not skip & _DATA_KEYS and (table is None or reader is not None):
        try:
            if table is not None and reader is not None:
                dataset = load_table(
                    table, reader, cfg.columns, limit=cfg.limit, use_outputs=cfg.model is None
                )
            else:
                dataset = _read_data_file(loaded)
        except GateError as exc:
            errors.append(exc)
    if scorers is not None and dataset is not None:
        try:
            preflight(loaded, dataset, scorers)
        except GateError as exc:
            errors.append(exc)
    return scorers, dataset, errors


def _read_data_file(loaded: LoadedConfig) -> Dataset:
    """The eval set from its file, as every eval reads it: one reading serves both the
    replay's attempt and the full run after it."""
    cfg = loaded.config
    return load_dataset(
        loaded.data_path, cfg.columns, limit=cfg.limit, use_outputs=cfg.model is None
    )


def _raise_together(errors: Sequence[GateError]) -> None:
    for exc in errors:
        if exc.exit_code != ExitCode.BAD_INPUT:
            raise exc  # a service, not an input: reported alone, with its own code
    if errors:
        raise errors[0] if len(errors) == 1 else _together(errors)


def every_problem(exc: InvalidConfig) -> GateError:
    """A config with wrong settings, and whatever its inputs (scorers, data, columns) have
    wrong too, checked on the rest of the config."""
    if exc.partial is None or exc.partial.config.data is None:
        return exc  # no eval set to check (a deploy-only config) or not enough valid to try
    more = _checked_inputs(exc.partial, [], exc.invalid)[2]
    if any(e.exit_code != ExitCode.BAD_INPUT for e in more):
        return exc
    return _together([exc, *more]) if more else exc


def _together(errors: Sequence[GateError]) -> ConfigError:
    problems = [p for e in errors for p in (e.problems or [e.message])]
    fixes = list(dict.fromkeys(e.fix.strip() for e in errors if e.fix.strip()))
    return ConfigError(
        f"{len(problems)} problem(s) in the settings and the inputs they name",
        problems=problems,
        fix="\n\n".join(fixes),
    )


def _prepare(run: Run, tracking_uri: str, read: Dataset | None = None) -> _Prepared:
    """Everything checkable before a model call; `read` is the data file's rows if they
    were read already (by the replay's attempt)."""
    loaded = run.loaded
    cfg = loaded.config
    notices = list(loaded.notices)
    scorers, dataset = check_inputs(
        loaded, notices, run.table_reader() if loaded.data_table is not None else None, read
    )
    if cfg.model and (cfg.columns.outputs or "outputs" in dataset.columns):
        notices.append(
            "the data has an outputs column, but a model is configured: "
            "the model's answers are evaluated and the column is ignored"
        )
    target = None
    if cfg.model:
        input_keys = list(dataset.rows[0].inputs)
        target = resolve_target(cfg.model, loaded, input_keys=input_keys, workspace=run.workspace)
    # the baseline is resolved (read, loaded, its digest checked) before any model call too
    resolution = resolve_baseline(
        loaded, dataset, scorers, workspace=run.workspace, tracking_uri=tracking_uri
    )
    notices += resolution.notices
    return _Prepared(scorers, dataset, target, resolution, notices)


@dataclass(frozen=True)
class _Evaluated:
    result: EvalResult
    compared: _Compared | None
    judge_stats: dict[str, Any] | None


def _evaluate(run: Run, prep: _Prepared, progress: PhaseProgress | None) -> _Evaluated:
    """The candidate, then the baseline, with the same rows, scorers, judges and cache."""
    loaded, scorers = run.loaded, prep.scorers
    cfg = loaded.config
    judge_cache = None
    transports: list[Any] = []
    scoring_context = None
    verdicts = None
    if any(s.judge for s in scorers):
        judge_cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
        verdicts = VerdictCache.for_config(cfg, judge_cache, run.environ)

        @contextlib.contextmanager
        def judging() -> Iterator[None]:
            with judge_session(cfg, judge_cache, run.environ, run.workspace) as transport:
                transports.append(transport)
                yield

        scoring_context = judging

    spark_judges: list[dict[str, Any]] = []

    def run_target(answering: Target | None, phases: PhaseProgress | None) -> EvalResult:
        if cfg.runner == "spark" and answering is prep.target:
            # the candidate on Spark; a baseline model is evaluated here, with threads
            result, judged = evaluate_on_spark(
                loaded,
                prep.dataset,
                scorers,
                answering,
                progress=phases,
                workspace=partition_workspace,
            )
            if judged is not None:
                spark_judges.append(judged)
            return result
        cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
        return evaluate(
            loaded,
            prep.dataset,
            scorers,
            answering,
            progress=phases,
            cache=cache,
            scoring_context=scoring_context,
            verdicts=verdicts,
        )

    result = run_target(prep.target, progress)
    baseline = prep.resolution.baseline
    baseline_eval = None
    if baseline is not None and baseline.target is not None:
        if not baseline.target.remote:
            mlflow_loading.ensure()  # its own code may import MLflow: not while it loads
        baseline_eval = run_target(baseline.target, _prefixed(progress, "baseline-"))
    judge_stats: dict[str, Any] | None = None
    if scoring_context is not None:
        totals: dict[str, int] = {}
        counted = [g.stats.as_dict() for g in transports] + spark_judges
        for stats in counted:
            for key, value in stats.items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        routes = sorted({str(s["route"]) for s in counted if s.get("route")})
        judge_stats = {
            "model": cfg.judge,
            **totals,
            # how MLflow's judges reached the judge: in-process, or the loopback fallback
            "route": ", ".join(routes),
            "cache": judge_cache.stats() if judge_cache else None,
        }
    compared = None
    if baseline is not None:
        compared = _compare(loaded, scorers, result, baseline, baseline_eval)
        if compared.doc["error_rows"]:
            prep.notices.append(
                f"the baseline failed on {compared.doc['error_rows']} of {len(compared.rows)} "
                "rows; those rows are left out of the comparison"
            )
    return _Evaluated(result, compared, judge_stats)


def eval_record(
    doc: ResultsDoc,
    loaded: LoadedConfig,
    prov: Provenance,
    *,
    started_at: str,
    data: dict[str, Any],
    effective: dict[str, Any],
    tracking_uri: str | None,
    run_id: str | None,
    baseline: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The evidence record of one eval, wherever it ran (here, or as a Databricks job)."""
    return {
        "kind": "eval",
        "started_at": started_at,
        "recorded_at": _now(),
        "genai_gate_version": __version__,
        "verdict": doc["result"],
        "data": data,
        "model": doc["model_identity"] or {"uri": doc["model"]},
        "baseline": baseline,
        "thresholds": doc["thresholds"],
        "metrics": doc["metrics"],
        "failures": doc["failures"],
        "errors": doc["errors"]["rows"],
        "config": {"source": loaded.source, "effective": effective},
        "mlflow": {
            "tracking_uri": tracking_uri,
            "experiment": loaded.config.experiment,
            "run_id": run_id,
        },
        "git": {"sha": prov.sha, "branch": prov.branch, "repository": prov.repository},
        "actor": prov.actor,
        "event": prov.event,
        "workflow_run_url": prov.workflow_run_url,
        **extra,
    }


def shown_config(cfg: Config) -> tuple[dict[str, Any], str]:
    """The effective config for the evidence (credentials in URIs redacted), and the keys
    that were set as YAML for the summary (not ~60 lines of defaults, mostly deploy keys)."""
    effective = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in ("tracking-uri", "base-url", "judge-base-url"):
        if key in effective:
            effective[key] = redact(effective[key])
    defaults = cfg.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    shown = {k: v for k, v in effective.items() if k in defaults}
    return effective, yaml.safe_dump(shown, sort_keys=False)


def data_evidence(doc: ResultsDoc) -> dict[str, Any]:
    """The evidence record's `data` block, from results.json's dataset."""
    data: dict[str, Any] = {
        "path": doc["dataset"]["path"],
        "digest": doc["dataset_digest"],
        "file_sha256": doc["dataset"]["file_sha256"],
        "rows": doc["rows"],
    }
    if "table" in doc["dataset"]:
        data["table"] = doc["dataset"]["table"]
    return data


def baseline_evidence(info: BaselineDoc | None) -> dict[str, Any] | None:
    """The evidence record's `baseline` block: what was compared with, not every delta."""
    if info is None:
        return None
    return {
        "ref": info["ref"],
        "label": info["label"],
        "kind": info["kind"],
        "model_identity": info["model_identity"],
        "pairs": info["pairs"],
        "metrics": info["metrics"],
    }


def _report(
    run: Run,
    prep: _Prepared,
    done: _Evaluated,
    tracking_uri: str,
    started_at: str,
    unreachable: TrackingError | None = None,
    logged: tuple[str, str | None] | None = None,
) -> EvalReport:
    """The verdict, the files (results, summary, rows, evidence), then the MLflow run;
    `logged` is the run that already holds a replayed evaluation (nothing is logged)."""
    loaded, out_dir = run.loaded, run.out_dir
    cfg = loaded.config
    result, compared, dataset = done.result, done.compared, prep.dataset
    baseline = prep.resolution.baseline
    verdict = gate(
        loaded,
        result.metrics,
        rows=len(result.rows),
        row_errors=result.row_errors,
        comparisons=compared.comparisons if compared else None,
        no_baseline=prep.resolution.unavailable,
        baseline_label=baseline.label if baseline else "the baseline",
    )

    prov = collect(loaded.base_dir, run.environ)
    out_dir.mkdir(parents=True, exist_ok=True)
    tags = {
        "genai_gate.version": __version__,
        "genai_gate.command": "eval",
        "mlflow.source.type": "JOB" if prov.in_actions else "LOCAL",
        "mlflow.source.name": prov.workflow_run_url or "genai-gate",
        **({"mlflow.source.git.commit": prov.sha} if prov.sha else {}),
        **({"mlflow.source.git.branch": prov.branch} if prov.branch else {}),
        **({"mlflow.user": prov.actor} if prov.actor else {}),
    }
    # the verdict and the local files come first: the MLflow logging cannot delay the answer
    # CI waits for (issue #14); results.json gets the run's id once the run exists
    info = RunInfo(
        run_id=logged[0] if logged else None,
        tracking_uri=redact(tracking_uri),
        run_url=logged[1] if logged else None,
        experiment=cfg.experiment,
    )
    doc = results_doc(
        result,
        verdict,
        loaded.thresholds,
        info,
        allowed_errors=cfg.allowed_errors(len(dataset.rows)),
        notices=prep.notices,
        relative=loaded.relative,
    )
    baseline_info = compared.doc if compared else None
    doc["baseline"] = baseline_info
    doc["provenance"] = prov.as_dict()
    served = getattr(prep.target, "served_models", None)
    if callable(served) and doc["model_identity"] is not None:
        # which served entities answered: the traffic split, seen from the eval
        doc["model_identity"]["served_models"] = served()
    doc["judge"] = done.judge_stats
    doc["tracking_uri"] = info.tracking_uri
    worst = worst_rows(result.rows, result.scorers, loaded.thresholds, cfg.worst_rows)
    # the evidence keeps the whole effective config; the summary shows the keys that were set
    effective, config_yaml = shown_config(cfg)
    regressions = compared.regressions[: cfg.worst_rows] if compared else ()

    links = run_links(run.environ)

    def render() -> str:
        return render_summary(
            doc, worst, config_yaml=config_yaml, regressions=regressions, links=links
        )

    results_path = out_dir / "results.json"
    summary_path = out_dir / "summary.md"
    rows_path = out_dir / "rows.jsonl"
    evidence_path = out_dir / "evidence.json"
    summary = render()
    evidence.write_json_atomic(results_path, doc)
    artefacts.write_text(summary_path, summary)
    artefacts.write_text(rows_path, rows_jsonl(result.rows))
    if compared is not None:
        artefacts.write_text(out_dir / "baseline_rows.jsonl", rows_jsonl(compared.rows))

    tracking_error: TrackingError | None = unreachable
    mlflow_run = None
    if unreachable is None and logged is None:
        try:
            mlflow_run = start_run(tracking_uri, cfg.experiment, cfg.run_name, tags)
        except TrackingError as exc:
            tracking_error = exc
    if mlflow_run is not None:
        # the same files as before, now naming the run; each replaced atomically
        info = dataclasses.replace(info, run_id=mlflow_run.run_id, run_url=mlflow_run.url)
        doc["run_id"], doc["run_url"] = info.run_id, info.run_url
        summary = render()
        evidence.write_json_atomic(results_path, doc)
        evidence.write_text_atomic(summary_path, summary)
    evidence.append(
        evidence_path,
        eval_record(
            doc,
            loaded,
            prov,
            started_at=started_at,
            data=data_evidence(doc),
            effective=effective,
            tracking_uri=info.tracking_uri,
            run_id=info.run_id,
            **({"replayed_from_run": logged[0]} if logged else {}),
            baseline=baseline_evidence(baseline_info),
        ),
    )

    if mlflow_run is not None:
        params = {
            "model": doc["model"],
            "data": str(dataset.path),
            "dataset_digest": dataset.digest,
            "rows": len(dataset.rows),
            "scorers": ",".join(s.name for s in prep.scorers),
            "thresholds": {t.metric: t.describe() for t in loaded.thresholds},
            "max_errors": cfg.max_errors,
            "concurrency": cfg.concurrency,
        }
        if loaded.relative:
            params["baseline_thresholds"] = {t.metric: t.describe() for t in loaded.relative}
        if baseline is not None:
            params["baseline"] = baseline.label
        metrics = {
            **result.metrics,
            "genai_gate/rows": float(len(result.rows)),
            "genai_gate/error_rows": float(doc["errors"]["rows"]),
            "genai_gate/passed": float(verdict.passed),
        }
        for name, comparison in (compared.comparisons if compared else {}).items():
            if comparison.baseline is not None:
                metrics[f"baseline/{name}"] = comparison.baseline
            if comparison.delta is not None:
                metrics[f"delta/{name}"] = comparison.delta
        try:
            finish_run(
                mlflow_run,
                params=params,
                metrics=metrics,
                dataset={
                    "name": dataset.path.name,
                    "digest": dataset.digest,
                    "source": str(dataset.path),
                },
                table=[row_record(r) for r in result.rows],
                artifacts=[results_path, summary_path, evidence_path],
                verdict_passed=verdict.passed,
                baseline_table=[row_record(r) for r in compared.rows] if compared else None,
            )
        except TrackingError as exc:
            tracking_error = exc
        if tracking_error is None:
            _keep_for_replay(run, prep, result, mlflow_run)
    return EvalReport(verdict, doc, out_dir, results_path, summary_path, summary, tracking_error)


def _keep_for_replay(run: Run, prep: _Prepared, result: EvalResult, logged: Any) -> None:
    """The replay record of a run that was logged whole, with no row to retry."""
    loaded = run.loaded
    if not replay.replayable(loaded) or limits.tripped() or limits.cut_short():
        return
    if any(r.error or r.scorer_errors for r in result.rows):
        return
    if prep.target is not None and not hasattr(prep.target, "cache_identity"):
        return
    cache_dir = loaded.resolve(loaded.config.cache_dir)
    answers = replay.replay_key(
        loaded, prep.dataset, prep.target, ResponseCache(cache_dir), run.environ
    )
    # kept only when the cache holds the very answers these rows were scored on
    if answers is not None and replay.matches(result.rows, prep.dataset, answers):
        replay.write_record(
            cache_dir,
            answers.key,
            rows=result.rows,
            scorers=prep.scorers,
            notices=prep.notices,
            run_id=logged.run_id,
            run_url=logged.url,
        )

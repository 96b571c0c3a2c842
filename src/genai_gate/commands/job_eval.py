"""`run-on: databricks`: evaluate in a Databricks job, gate here on what it wrote.

What goes to the job folder: the effective config (every key as this run loaded it, with
`data:` pointing into the bundle), the eval data file when `data:` is a file (a `uc:`
table stays where it is: the job reads it next to the data), the top-level module or
package of every `python:` model and scorer, and a wheel of this genai-gate (so the job
runs the code this run runs, with no access to GitHub needed). The job runs
`genai-gate eval --runner spark` and writes results.json, rows.jsonl and summary.md.

Here, the fetched files are checked (complete, one row record per row, the exit code the
job recorded, the digest of the data uploaded) and the verdict is decided again as a local
run decides it: this run's thresholds on the fetched metrics and row errors, and its rules
against the baseline on a comparison computed again from both sides' fetched rows. A
missing or partial result, or a verdict that does not agree check by check, is exit 4,
never a pass. Then summary.md is rendered here by the local run's renderer (with this
run's commit and workflow links, which the job cannot know), and the files, the evidence
and the outputs are written as a local run writes them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import yaml

import genai_gate
from genai_gate import artefacts, evidence, pyimport
from genai_gate.baseline import rows_from_records
from genai_gate.commands.eval import (
    EvalReport,
    against_baseline,
    baseline_evidence,
    check_before_submitting,
    data_evidence,
    eval_record,
    gate,
    run_eval,
    shown_config,
)
from genai_gate.commands.run import Run
from genai_gate.compare import Comparison, RowChange
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, ServiceError
from genai_gate.evaluate import compute_metrics, row_errors
from genai_gate.gate import Verdict
from genai_gate.github import run_links
from genai_gate.provenance import collect
from genai_gate.report.results import worst_rows
from genai_gate.report.summary import render_summary
from genai_gate.results import RESULTS_SCHEMA, Dataset, PhaseProgress, ResultsDoc, RowResult
from genai_gate.scorer import BoundScorer

JOB_ARGS = [
    "eval",
    "-c",
    "genai-gate.yml",
    "--out",
    "out",
    "--runner",
    "spark",
    "--progress-file",
    "progress.json",
    "-q",
]
# keys that say where and how to run this run, not what the job evaluates
_LOCAL_KEYS = ("run-on", "job-volume", "job-cluster-id", "runner", "spark-master")
_SKIP = {"__pycache__", ".git", ".venv", "node_modules"}


def run_gate(
    run: Run, progress: PhaseProgress | None = None, log: Callable[[str], None] = print
) -> EvalReport:
    """`eval` wherever the config says it runs: here, or in a Databricks job."""
    if run.loaded.config.run_on == "databricks":
        return run_on_databricks(run, log)
    return run_eval(run, progress)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def bundle(loaded: LoadedConfig) -> dict[str, bytes]:
    """The files the job needs, by their path in its folder."""
    cfg = loaded.config
    effective = cfg.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    for key in _LOCAL_KEYS:
        effective.pop(key, None)
    files: dict[str, bytes] = {}
    if loaded.data_table is None:
        source = loaded.data_path
        if source.is_dir():  # a Parquet folder, as Spark writes them
            for part in sorted(p for p in source.rglob("*") if p.is_file()):
                files[f"data/{source.name}/{part.relative_to(source)}"] = part.read_bytes()
        elif source.is_file():
            files[f"data/{source.name}"] = source.read_bytes()
        effective["data"] = f"data/{source.name}"
    refs = [cfg.model or "", *cfg.scorers]
    for ref in refs:
        if not ref.startswith(pyimport.PREFIX):
            continue
        top = pyimport.split_ref(ref)[0].split(".", 1)[0]
        folder, single = loaded.base_dir / top, loaded.base_dir / f"{top}.py"
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not _SKIP & set(path.relative_to(folder).parts):
                    files[f"{top}/{path.relative_to(folder)}"] = path.read_bytes()
        elif single.is_file():
            files[single.name] = single.read_bytes()
    files["genai-gate.yml"] = yaml.safe_dump(effective, sort_keys=False).encode()
    return files


@functools.cache
def _wheel() -> Path:
    """genai-gate's wheel, built once per process."""
    from genai_gate.commands.run import wheel_of

    return wheel_of(Path(genai_gate.__file__).parent, Path(tempfile.mkdtemp(prefix="gg-wheel-")))


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM (GitHub's cancel, after SIGINT) raises KeyboardInterrupt, as SIGINT does, so
    the job's run is cancelled before this process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_on_databricks(run: Run, log: Callable[[str], None]) -> EvalReport:
    loaded, cfg = run.loaded, run.loaded.config
    if not cfg.job_volume:
        raise ConfigError(
            "run-on: databricks needs a Unity Catalog volume for the job's files",
            fix="run-on: databricks\njob-volume: /Volumes/main/eval/genai-gate",
        )
    scorers, dataset = check_before_submitting(loaded)
    started_at = _now()
    run.out_dir.mkdir(parents=True, exist_ok=True)
    evidence.check_trail(run.out_dir / "evidence.json")
    files = bundle(loaded)
    wheel = _wheel()
    files[f"wheels/{wheel.name}"] = wheel.read_bytes()
    job = run.eval_job()
    log(f"databricks: uploading {len(files)} files to {job.folder}")
    job.upload(files)
    with _stopped_by_signals():
        ended = job.run(
            list(JOB_ARGS),
            f"wheels/{wheel.name}",
            name=f"genai-gate eval ({cfg.experiment})",
            timeout=cfg.max_duration,
            progress=log,
        )
    where = ended.url or f"run {ended.run_id}"
    if not ended.succeeded:
        raise ServiceError(
            f"the Databricks run {where} ended {ended.state}: {ended.message or 'no message'}",
            fix="Open the run's page for its log. A run that stopped on a config or data "
            "problem says so there; a cluster or library problem is the workspace's.",
        )
    return _gate_fetched(run, job, ended, started_at, scorers, dataset)


# what the job leaves in its folder for the verdict here; summary.md is not among them:
# the summary is rendered here, with this run's commit and workflow links, which the job
# (outside Actions) cannot know
FETCHED = ("out/exit.json", "out/results.json", "out/rows.jsonl", "out/baseline_rows.jsonl")


@dataclass(frozen=True)
class Fetched:
    """The job's files, checked: complete, one row record per row, a verdict recorded."""

    exit_code: int
    doc: ResultsDoc
    rows_text: str
    rows: tuple[RowResult, ...]
    baseline_text: str | None  # with a baseline: its rows, as the job evaluated them
    baseline_rows: tuple[RowResult, ...] | None


def _json(raw: bytes | None, name: str, where: str) -> Any:
    if raw is None:
        raise ServiceError(f"the Databricks run {where} left no {name}; there is no verdict")
    try:
        return json.loads(raw)
    except ValueError:
        raise ServiceError(f"{name} from the Databricks run {where} is not JSON") from None


def _rows(
    raw: bytes | None, name: str, count: int, scorer_names: set[str], where: str
) -> tuple[str, tuple[RowResult, ...]]:
    if raw is None:
        raise ServiceError(f"the Databricks run {where} left no {name}; there is no verdict")
    text = raw.decode()
    try:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise ServiceError(f"{name} from the Databricks run {where} is not JSON lines") from None
    if len(records) != count or not all(isinstance(r, dict) for r in records):
        raise ServiceError(
            f"the Databricks run {where} wrote {len(records)} row records in {name} for "
            f"{count} rows: the results are partial; no verdict"
        )
    return text, rows_from_records(records, scorer_names)


def read_fetched(files: Mapping[str, bytes | None], scorer_names: set[str], where: str) -> Fetched:
    """The fetched files (None: not there) as typed results, or ServiceError (exit 4)."""
    code = _json(files.get("out/exit.json"), "out/exit.json", where)
    doc = _json(files.get("out/results.json"), "out/results.json", where)
    exit_code = code.get("exit") if isinstance(code, dict) else None
    if exit_code not in (0, 1):
        raise ServiceError(f"the Databricks run {where} recorded exit {exit_code}; no verdict")
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != RESULTS_SCHEMA
        or doc.get("result") not in ("passed", "failed")
    ):
        raise ServiceError(f"the Databricks run {where} left incomplete results; no verdict")
    results = cast("ResultsDoc", doc)
    rows_text, rows = _rows(
        files.get("out/rows.jsonl"), "out/rows.jsonl", results["rows"], scorer_names, where
    )
    base = results.get("baseline")
    base_text, base_rows = None, None
    if base is not None:
        # the rules against the baseline are decided here again, from both sides' rows
        base_text, base_rows = _rows(
            files.get("out/baseline_rows.jsonl"),
            "out/baseline_rows.jsonl",
            base["rows"],
            scorer_names,
            where,
        )
    return Fetched(int(exit_code), results, rows_text, rows, base_text, base_rows)


def decide_again(
    loaded: LoadedConfig, scorers: Sequence[BoundScorer], fetched: Fetched
) -> tuple[Verdict, list[RowChange]]:
    """This run's thresholds and rules against the baseline, on the job's metrics and rows,
    as a local run decides them (commands/eval.py `_compare`, then gate.decide): the
    comparison is computed again from both sides' fetched rows. Also returns the rows that
    got worse than the baseline, for the summary."""
    doc = fetched.doc
    metrics = {k: v for k, v in doc["metrics"].items() if v is not None}
    comparisons: dict[str, Comparison] | None = None
    regressions: list[RowChange] = []
    no_baseline, label = None, "the baseline"
    base = doc.get("baseline")
    if base is not None and fetched.baseline_rows is not None:
        base_metrics = {k: v for k, v in base["metrics"].items() if v is not None}
        _, comparisons, regressions = against_baseline(
            loaded, scorers, fetched.rows, metrics, fetched.baseline_rows, base_metrics
        )
        label = base["label"]
    else:
        # the job could not read its baseline: its notice says why, and the rules against
        # the baseline fail with that reason, as they do locally
        prefix = "no comparison: "
        why = [n.removeprefix(prefix) for n in doc["notices"] if n.startswith(prefix)]
        no_baseline = why[0] if why else None
    verdict = gate(
        loaded,
        metrics,
        rows=doc["rows"],
        row_errors=row_errors(fetched.rows),
        comparisons=comparisons,
        no_baseline=no_baseline,
        baseline_label=label,
    )
    return verdict, regressions


def metrics_agree(fetched: Fetched, scorers: Sequence[BoundScorer]) -> bool:
    """Whether the job's metrics are what its fetched rows give, aggregated here: the gate
    decides on those metrics, so they must not be taken on the job's word."""
    mine = {k: v for k, v in compute_metrics(fetched.rows, scorers).items() if math.isfinite(v)}
    theirs = {k: v for k, v in fetched.doc["metrics"].items() if v is not None}
    return mine.keys() == theirs.keys() and all(
        math.isclose(mine[k], theirs[k], rel_tol=1e-9, abs_tol=1e-12) for k in mine
    )


def agrees(verdict: Verdict, fetched: Fetched) -> bool:
    """Whether the job's own verdict is the one decided here: every check's rule, outcome
    and status, the verdict, and the exit code the job recorded."""
    mine = [(c.metric, c.op, c.passed, c.as_dict()["status"]) for c in verdict.checks]
    theirs = [(c["metric"], c["op"], c["passed"], c["status"]) for c in fetched.doc["checks"]]
    return (
        mine == theirs
        and verdict.passed == fetched.doc["passed"]
        and verdict.passed == (fetched.exit_code == 0)
    )


def _gate_fetched(
    run: Run,
    job: Any,
    ended: Any,
    started_at: str,
    scorers: Sequence[BoundScorer],
    dataset: Dataset | None,
) -> EvalReport:
    loaded, cfg = run.loaded, run.loaded.config
    where = ended.url or f"run {ended.run_id}"
    fetched = read_fetched({n: job.fetch(n) for n in FETCHED}, {s.name for s in scorers}, where)
    doc = fetched.doc
    if dataset is not None and doc["dataset_digest"] != dataset.digest:
        raise ServiceError(
            f"the Databricks run {where} evaluated other rows ({doc['dataset_digest'][:19]}) "
            f"than {dataset.path} holds here ({dataset.digest[:19]}); no verdict",
            fix="Check that the job ran this bundle (job-volume holds its copy).",
        )
    if not metrics_agree(fetched, scorers):
        raise ServiceError(
            f"the metrics of the Databricks run {where} are not the ones its rows give here; "
            "no verdict",
            fix="Check that the job ran this config and genai-gate version (job-volume holds "
            "its copy).",
        )
    verdict, regressions = decide_again(loaded, scorers, fetched)
    if not agrees(verdict, fetched):
        raise ServiceError(
            f"the verdict of the Databricks run {where} ({doc['result']}, exit "
            f"{fetched.exit_code}) is not the one its metrics and rows give here; no verdict",
            fix="Check that the job ran this config (job-volume holds its copy).",
        )
    job_info = {"run_id": ended.run_id, "url": ended.url, "folder": ended.folder}
    prov = collect(loaded.base_dir, run.environ)
    doc["checks"] = [c.as_dict() for c in verdict.checks]
    doc["failures"] = list(verdict.failures)
    # where this run came from (the job knows no commit), and the data as this checkout
    # names it, not as the job's copy of it
    doc["provenance"] = prov.as_dict()
    doc["job"] = job_info
    if dataset is not None:
        doc["dataset"]["path"] = str(dataset.path)
    effective, config_yaml = shown_config(cfg)
    summary = render_summary(
        doc,
        worst_rows(fetched.rows, scorers, loaded.thresholds, cfg.worst_rows),
        config_yaml=config_yaml,
        regressions=regressions[: cfg.worst_rows],
        links=run_links(run.environ),
    )
    out = run.out_dir
    results_path, summary_path = out / "results.json", out / "summary.md"
    evidence.write_json_atomic(results_path, doc)
    artefacts.write_text(summary_path, summary)
    artefacts.write_text(out / "rows.jsonl", fetched.rows_text)
    if fetched.baseline_text is not None:
        artefacts.write_text(out / "baseline_rows.jsonl", fetched.baseline_text)
    evidence.append(
        out / "evidence.json",
        eval_record(
            doc,
            loaded,
            prov,
            started_at=started_at,
            data=data_evidence(doc),
            effective=effective,
            tracking_uri=doc.get("tracking_uri"),
            run_id=doc["run_id"],
            baseline=baseline_evidence(doc.get("baseline")),
            job=job_info,
        ),
    )
    return EvalReport(verdict, doc, out, results_path, summary_path, summary, None)

"""`run-on: databricks`: evaluate in a Databricks job, gate here on what it wrote.

What goes to the job folder: the effective config (every key as this run loaded it, with
`data:` pointing into the bundle), the eval data file when `data:` is a file (a `uc:`
table stays where it is: the job reads it next to the data), the top-level module or
package of every `python:` model and scorer, and a wheel of this genai-gate (so the job
runs the code this run runs, with no access to GitHub needed). The job runs
`genai-gate eval --runner spark` and writes results.json, rows.jsonl and summary.md.

Here, the fetched files are checked (complete, one row record per row, the exit code the
job recorded) and the verdict is decided again from the fetched metrics and row errors
with this run's thresholds: a missing or partial result, or a verdict that does not agree,
is exit 4, never a pass. Then the files, the evidence and the outputs are written as a
local run writes them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import yaml

import genai_gate
from genai_gate import artefacts, evidence, pyimport
from genai_gate.commands.eval import EvalReport, check_before_submitting, eval_record, run_eval
from genai_gate.commands.run import Run
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, ServiceError
from genai_gate.gate import Check, Verdict, decide
from genai_gate.provenance import collect
from genai_gate.results import RESULTS_SCHEMA, PhaseProgress, ResultsDoc, RowError
from genai_gate.thresholds import ABSOLUTE_OPS

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
    check_before_submitting(loaded)
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
    return _gate_fetched(run, job, ended, started_at)


def _fetched_json(job: Any, name: str, where: str) -> Any:
    raw = job.fetch(name)
    if raw is None:
        raise ServiceError(f"the Databricks run {where} left no {name}; there is no verdict")
    try:
        return json.loads(raw)
    except ValueError:
        raise ServiceError(f"{name} from the Databricks run {where} is not JSON") from None


def _gate_fetched(run: Run, job: Any, ended: Any, started_at: str) -> EvalReport:
    loaded, cfg = run.loaded, run.loaded.config
    where = ended.url or f"run {ended.run_id}"
    code = _fetched_json(job, "out/exit.json", where)
    doc = cast("ResultsDoc", _fetched_json(job, "out/results.json", where))
    rows_raw, summary_raw = job.fetch("out/rows.jsonl"), job.fetch("out/summary.md")
    exit_code = code.get("exit") if isinstance(code, dict) else None
    if exit_code not in (0, 1):
        raise ServiceError(f"the Databricks run {where} recorded exit {exit_code}; no verdict")
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != RESULTS_SCHEMA
        or doc.get("result") not in ("passed", "failed")
        or rows_raw is None
        or summary_raw is None
    ):
        raise ServiceError(f"the Databricks run {where} left incomplete results; no verdict")
    records = [json.loads(line) for line in rows_raw.decode().splitlines() if line.strip()]
    if len(records) != doc["rows"]:
        raise ServiceError(
            f"the Databricks run {where} wrote {len(records)} row records for {doc['rows']} "
            "rows: the results are partial; no verdict"
        )
    verdict = _decide_again(loaded, doc, records)
    if verdict.passed != doc["passed"] or verdict.passed != (exit_code == 0):
        raise ServiceError(
            f"the verdict of the Databricks run {where} ({doc['result']}, exit {exit_code}) is "
            "not the one its metrics give here; no verdict",
            fix="Check that the job ran this config (job-volume holds its copy).",
        )
    doc["job"] = {"run_id": ended.run_id, "url": ended.url, "folder": ended.folder}
    out = run.out_dir
    results_path, summary_path = out / "results.json", out / "summary.md"
    summary = summary_raw.decode()
    evidence.write_json_atomic(results_path, doc)
    artefacts.write_text(summary_path, summary)
    artefacts.write_text(out / "rows.jsonl", rows_raw.decode())
    data_doc: dict[str, Any] = {
        "path": doc["dataset"]["path"],
        "digest": doc["dataset_digest"],
        "file_sha256": doc["dataset"]["file_sha256"],
        "rows": doc["rows"],
    }
    if "table" in doc["dataset"]:
        data_doc["table"] = doc["dataset"]["table"]
    evidence.append(
        out / "evidence.json",
        eval_record(
            doc,
            loaded,
            collect(loaded.base_dir, run.environ),
            started_at=started_at,
            data=data_doc,
            effective=cfg.model_dump(mode="json", by_alias=True, exclude_none=True),
            tracking_uri=doc.get("tracking_uri"),
            run_id=doc["run_id"],
            job={"run_id": ended.run_id, "url": ended.url, "folder": ended.folder},
        ),
    )
    return EvalReport(verdict, doc, out, results_path, summary_path, summary, None)


def _decide_again(loaded: LoadedConfig, doc: ResultsDoc, records: list[dict[str, Any]]) -> Verdict:
    """This run's thresholds on the job's metrics and row errors. Rules against a baseline
    need the job's comparison, so their checks are the job's."""
    cfg = loaded.config
    metrics = {k: v for k, v in doc["metrics"].items() if v is not None}
    row_errors = [
        RowError(str(r.get("row")), stage, str(message))
        for r in records
        for stage, message in [
            *([("model", r["error"])] if r.get("error") else []),
            *[
                (k.removesuffix("/error_message"), v)
                for k, v in r.items()
                if k.endswith("/error_message")
            ],
        ]
    ]
    verdict = decide(
        loaded.thresholds,
        metrics,
        rows=doc["rows"],
        row_errors=row_errors,
        allowed_errors=cfg.allowed_errors(doc["rows"]),
        inconclusive=cfg.inconclusive,
    )
    if not loaded.relative:
        return verdict
    theirs = [c for c in doc["checks"] if c["op"] not in ABSOLUTE_OPS]
    failed = [c for c in theirs if not c["passed"]]
    checks = verdict.checks + tuple(
        Check(
            c["metric"],
            c["op"],
            c["threshold"],
            c["value"],
            c["passed"],
            "" if c["passed"] else c["status"],
            c["baseline"],
            c["delta"],
            (c["ci"][0], c["ci"][1]) if c["ci"] else None,
            c["status"],
        )
        for c in theirs
    )
    extra = tuple(f for f in doc["failures"] if f not in verdict.failures) if failed else ()
    return Verdict(verdict.passed and not failed, checks, verdict.failures + extra)

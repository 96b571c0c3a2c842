"""results.json, the per-row table and the worst rows: plain data from an EvalResult
(and, with a baseline, from its rows and the comparison)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genai_gate import __version__
from genai_gate.compare import Comparison
from genai_gate.gate import Verdict
from genai_gate.results import (
    RESULTS_SCHEMA,
    BaselineDoc,
    Dataset,
    DatasetDoc,
    EvalResult,
    ResultsDoc,
    RowResult,
    ThresholdDoc,
)
from genai_gate.scorer import BoundScorer
from genai_gate.thresholds import RelativeThreshold, Threshold


@dataclass(frozen=True)
class RunInfo:
    run_id: str | None
    tracking_uri: str | None
    run_url: str | None
    experiment: str


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _dataset_doc(dataset: Dataset) -> DatasetDoc:
    doc: DatasetDoc = {
        "path": str(dataset.path),
        "format": dataset.format,
        "rows": len(dataset.rows),
        "file_sha256": dataset.file_sha256,
    }
    if dataset.table is not None:
        doc["table"] = {"name": dataset.table.full_name, "version": dataset.table.version}
    return doc


def results_doc(
    result: EvalResult,
    verdict: Verdict,
    thresholds: Sequence[Threshold],
    run: RunInfo,
    *,
    allowed_errors: int,
    notices: Sequence[str],
    relative: Sequence[RelativeThreshold] = (),
) -> ResultsDoc:
    model = result.target.uri if result.target else "(outputs from the data)"
    return {
        "schema": RESULTS_SCHEMA,
        "passed": verdict.passed,
        "result": "passed" if verdict.passed else "failed",
        "metrics": {k: _finite(v) for k, v in sorted(result.metrics.items())},
        "checks": [c.as_dict() for c in verdict.checks],
        "failures": list(verdict.failures),
        "run_id": run.run_id,
        "run_url": run.run_url,
        "dataset_digest": result.dataset.digest,
        "model": model,
        "model_identity": result.target.as_dict() if result.target else None,
        "dataset": _dataset_doc(result.dataset),
        "scorers": [s.name for s in result.scorers],
        "thresholds": [ThresholdDoc(metric=t.metric, op=t.op, value=t.value) for t in thresholds]
        + [
            ThresholdDoc(metric=t.metric, op=t.op, value=t.limit, better=t.better) for t in relative
        ],
        "rows": len(result.rows),
        "errors": {
            "rows": len({e.where for e in result.row_errors}),
            "allowed": allowed_errors,
            "details": [
                {"where": e.where, "stage": e.stage, "message": e.message}
                for e in result.row_errors[:100]
            ],
        },
        "notices": list(notices),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "cache": result.cache,
        "genai_gate_version": __version__,
    }


def row_record(row: RowResult) -> dict[str, Any]:
    """One row in MLflow's result_df naming: <scorer>/value, /rationale, /error_message."""
    rec: dict[str, Any] = {
        "row": row.where,
        "inputs": row.inputs,
        "outputs": row.outputs,
        "expectations": row.expectations,
        "latency_ms": None if row.latency_ms is None else round(row.latency_ms, 3),
        "error": row.error,
    }
    for name, value in row.scores.items():
        rec[f"{name}/value"] = _finite(value)
    for name, text in row.rationales.items():
        rec[f"{name}/rationale"] = text
    for name, text in row.scorer_errors.items():
        rec[f"{name}/error_message"] = text
    return rec


def rows_jsonl(rows: Sequence[RowResult]) -> str:
    return "".join(json.dumps(row_record(r), default=str, ensure_ascii=False) + "\n" for r in rows)


def worst_rows(
    rows: Sequence[RowResult],
    scorers: Sequence[BoundScorer],
    thresholds: Sequence[Threshold],
    n: int,
) -> list[RowResult]:
    """Errors first, then the lowest scores on the quality metrics the gate raises a floor on."""
    if n <= 0:
        return []
    floors = {t.metric.split("/", 1)[0] for t in thresholds if t.op in (">=", ">")}
    if not floors:
        floors = {s.name for s in scorers if s.needs_expectations}

    def badness(row: RowResult) -> tuple[int, float]:
        if row.error or row.scorer_errors:
            return (0, 0.0)
        vals = [v for k, v in row.scores.items() if k in floors and v is not None]
        return (1, sum(vals) / len(vals)) if vals else (2, 0.0)

    ranked = sorted(rows, key=badness)
    if not floors:
        ranked = [r for r in ranked if r.error or r.scorer_errors]
    return ranked[:n]


def baseline_doc(
    *,
    ref: str,
    label: str,
    kind: str,
    identity: dict[str, Any],
    rows: Sequence[RowResult],
    metrics: dict[str, float],
    comparisons: dict[str, Comparison],
    pairs: int,
    regressed: int,
    cache: dict[str, Any] | None,
) -> BaselineDoc:
    """results.json's `baseline`: what was compared with, its metrics, and every delta."""
    return {
        "ref": ref,
        "label": label,
        "kind": kind,
        "model_identity": identity,
        "rows": len(rows),
        "error_rows": sum(1 for r in rows if r.error or r.scorer_errors),
        "pairs": pairs,
        "regressed_rows": regressed,
        "metrics": {k: _finite(v) for k, v in sorted(metrics.items())},
        "comparisons": [c.as_dict() for c in comparisons.values()],
        "cache": cache,
    }

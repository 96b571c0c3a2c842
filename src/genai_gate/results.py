"""The typed core of an evaluation: rows in, rows out, and what results.json holds.

Every layer reads these (data loading, targets, the runner, the gate, the comparison, the
reports), so this module imports no I/O and nothing of genai-gate but the scorer base type:
imports flow one way, towards here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from genai_gate.scorer import BoundScorer
from genai_gate.tables import TableRef

# (phase, done, total): progress of a run's phases (predict, score, baseline-predict, ...)
PhaseProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvalRow:
    index: int  # 0-based position in the file's records
    where: str  # "line 7" (JSONL) or "row 7": how a message points at it
    inputs: dict[str, Any]
    expectations: dict[str, Any] | None
    outputs: Any | None = None
    # the retrieved passages, as MLflow Document fields: {"page_content", "metadata"}
    context: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Dataset:
    path: Path
    format: str
    rows: tuple[EvalRow, ...]
    digest: str  # sha256 of the canonical rows: the same data in CSV or JSONL digests the same
    file_sha256: str
    columns: tuple[str, ...]
    has_outputs: bool
    context_column: str | None = None
    # a Unity Catalog table: its name and the Delta version read (file_sha256 is then the
    # sha256 of its records as read, in their sorted order)
    table: TableRef | None = None


@dataclass(frozen=True)
class TargetIdentity:
    """Enough to say later exactly which model answered: the evidence records this."""

    uri: str
    kind: str
    resolved: str | None = None  # e.g. models:/name/7 for models:/name@champion
    digest: str | None = None  # e.g. sha256 of a python model's source file
    details: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri, "kind": self.kind}
        if self.resolved:
            out["resolved"] = self.resolved
        if self.digest:
            out["digest"] = self.digest
        out.update(self.details)
        return out


@dataclass(frozen=True)
class RowError:
    where: str
    stage: str  # "model" or the scorer's name
    message: str


@dataclass(frozen=True)
class RowResult:
    index: int
    where: str
    inputs: dict[str, Any]
    expectations: dict[str, Any] | None
    outputs: Any
    latency_ms: float | None
    error: str | None
    scores: dict[str, float | None] = field(default_factory=dict)
    rationales: dict[str, str] = field(default_factory=dict)
    scorer_errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    dataset: Dataset
    target: TargetIdentity | None
    scorers: tuple[BoundScorer, ...]
    rows: tuple[RowResult, ...]
    metrics: dict[str, float]
    row_errors: tuple[RowError, ...]
    seconds: dict[str, float]
    cache: dict[str, Any] | None = None


# ---------------------------------------------------------------- results.json, typed
# The file is the gate's public record (its schema is RESULTS_SCHEMA); the summary, the CLI
# and the action read it through these types, so a renamed key is a type error, not a KeyError.

RESULTS_SCHEMA = "genai-gate.results/v1"


class CheckDoc(TypedDict):
    """One threshold's outcome (gate.Check)."""

    metric: str
    op: str
    threshold: float
    value: float | None
    passed: bool
    baseline: float | None
    delta: float | None
    ci: list[float] | None
    status: str


class ComparisonDoc(TypedDict):
    """One metric, candidate against baseline (compare.Comparison)."""

    metric: str
    candidate: float | None
    baseline: float | None
    delta: float | None
    ci: list[float] | None
    pairs: int


class ThresholdDoc(TypedDict):
    metric: str
    op: str
    value: float
    better: NotRequired[str]


class RowErrorDoc(TypedDict):
    where: str
    stage: str
    message: str


class ErrorsDoc(TypedDict):
    rows: int
    allowed: int
    details: list[RowErrorDoc]


class TableDoc(TypedDict):
    name: str  # catalog.schema.table
    version: int | None  # the Delta version read


class DatasetDoc(TypedDict):
    path: str
    format: str
    rows: int
    file_sha256: str
    table: NotRequired[TableDoc]


class BaselineDoc(TypedDict):
    """What the candidate was compared with, its metrics, and every delta."""

    ref: str
    label: str
    kind: str
    model_identity: dict[str, Any]
    rows: int
    error_rows: int
    pairs: int
    regressed_rows: int
    metrics: dict[str, float | None]
    comparisons: list[ComparisonDoc]
    cache: dict[str, Any] | None


class ResultsDoc(TypedDict):
    """results.json."""

    schema: str
    passed: bool
    result: str  # passed | failed
    metrics: dict[str, float | None]
    checks: list[CheckDoc]
    failures: list[str]
    run_id: str | None
    run_url: str | None
    dataset_digest: str
    model: str
    model_identity: dict[str, Any] | None
    dataset: DatasetDoc
    scorers: list[str]
    thresholds: list[ThresholdDoc]
    rows: int
    errors: ErrorsDoc
    notices: list[str]
    seconds: dict[str, float]
    cache: dict[str, Any] | None
    genai_gate_version: str
    # added once the run is logged and compared
    baseline: NotRequired[BaselineDoc | None]
    provenance: NotRequired[dict[str, Any]]
    judge: NotRequired[dict[str, Any] | None]
    tracking_uri: NotRequired[str | None]
    # run-on: databricks: the job that evaluated (run id, page, its folder on the volume)
    job: NotRequired[dict[str, Any]]

"""The offline scorers, each an MLflow `@scorer`, so MLflow runs and logs them like its own.

Why token F1 and ROUGE-L are written here rather than imported:
- token F1 (SQuAD) exists only as the SQuAD script or inside Hugging Face `evaluate`, which
  downloads the metric at run time and cannot run on an offline runner;
- `rouge-score` imports nltk at module load, measured at 4 s here: 40% of the whole 10 s
  budget for a 500-row gate. ROUGE-L is an LCS; `tests/unit/test_scorers.py` checks ours
  against `rouge-score` on the same strings, tokenizer included.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from genai_gate import mlflow_loading
from genai_gate.scorer import (
    AGGREGATIONS,
    LATENCY_METADATA_KEY,
    LazyScorer,
    ScorerInputError,
    as_text,
    normalize_answer,
    references,
)
from genai_gate.scoring import semantic

if TYPE_CHECKING:
    from mlflow.entities import Trace


def squad_f1(prediction: str, reference: str) -> float:
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(reference).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


# ---- ROUGE-L with rouge-score's default tokenizer (lowercase, [a-z0-9]+ tokens, no stemming)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    return [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]


def rouge_l_f(prediction: str, reference: str) -> float:
    target, pred = rouge_tokens(reference), rouge_tokens(prediction)
    if not target or not pred:
        return 0.0
    # one-row LCS table: O(len(pred)) memory
    prev = [0] * (len(pred) + 1)
    for t in target:
        cur = [0]
        for j, p in enumerate(pred, start=1):
            cur.append(prev[j - 1] + 1 if t == p else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(target)
    return 2 * precision * recall / (precision + recall)


# ---- the scorer functions (MLflow passes only the parameters a function names)


def _exact_match(outputs: Any, expectations: dict[str, Any] | None) -> bool:
    out = normalize_answer(as_text(outputs))
    return any(out == normalize_answer(r) for r in references(expectations, "exact_match"))


def _token_f1(outputs: Any, expectations: dict[str, Any] | None) -> float:
    out = as_text(outputs)
    return max(squad_f1(out, r) for r in references(expectations, "token_f1"))


def _rouge_l(outputs: Any, expectations: dict[str, Any] | None) -> float:
    out = as_text(outputs)
    return max(rouge_l_f(out, r) for r in references(expectations, "rouge_l"))


def _latency(trace: Trace | None) -> float:
    if trace is None:
        raise ScorerInputError("latency needs the row's trace")
    precise = trace.info.trace_metadata.get(LATENCY_METADATA_KEY)
    if precise is not None:
        return float(precise)
    if trace.info.execution_duration is None:
        raise ScorerInputError("the trace has no execution duration")
    return float(trace.info.execution_duration)


def _response_length(outputs: Any) -> int:
    return len(as_text(outputs))


BuiltinSpec = tuple[Callable[..., Any], tuple[str, ...], bool, str]

# name -> (function, default aggregations, needs expectations, what it measures)
BUILTINS: dict[str, BuiltinSpec] = {
    "exact_match": (
        _exact_match,
        ("mean",),
        True,
        "1 when the normalised answer equals a reference answer (SQuAD normalisation)",
    ),
    "token_f1": (
        _token_f1,
        ("mean", "median", "min"),
        True,
        "SQuAD token-overlap F1 against the best reference, 0 to 1",
    ),
    "rouge_l": (
        _rouge_l,
        ("mean", "median", "min"),
        True,
        "ROUGE-L F-measure against the best reference, 0 to 1",
    ),
    "latency": (
        _latency,
        ("mean", "p50", "p90", "p99", "max"),
        False,
        "wall time of the model call for the row, in milliseconds",
    ),
    "response_length": (
        _response_length,
        ("mean", "p90", "max"),
        False,
        "answer length in characters",
    ),
    semantic.NAME: (
        semantic.semantic_similarity,
        ("mean", "median", "min"),
        True,
        "cosine similarity of the answer's and the best reference's embeddings "
        "(all-MiniLM-L6-v2, offline), -1 to 1",
    ),
}
# scorers that see the whole run before its rows are scored one by one
PREPARE: dict[str, Callable[[list[tuple[Any, dict[str, Any] | None]]], None]] = {
    semantic.NAME: semantic.prepare,
}


def make_builtin(name: str, aggregations: tuple[str, ...]) -> LazyScorer:
    """The built-in as an MLflow @scorer, built on first use (MLflow's import is not needed
    to check the config: see LazyScorer)."""
    func, _, _, description = BUILTINS[name]
    if name == semantic.NAME:
        semantic.require()  # an optional extra: ConfigError with the install command

    def build() -> Any:
        mlflow_loading.ensure()
        from mlflow.genai.scorers import scorer

        return scorer(
            func,
            name=name,
            description=description,
            aggregations=[AGGREGATIONS[a] for a in aggregations],  # type: ignore[misc]
            # pure and fast; MLflow's default per-call timeout starts a thread per call
            timeout=0,
        )

    return LazyScorer(build)

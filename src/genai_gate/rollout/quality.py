"""Judge live traffic with the scorers that gated the pull request.

Production has no ground truth, so only reference-free scorers run here (safety,
relevance_to_query, guidelines, custom judges, code scorers without `expectations`); the
others are skipped with a notice. The logged request becomes the row's inputs (`query`: the
last user message) and the logged response its outputs, and the rows go through the same
`evaluate` (runner, retries, judge gateway, cache) as `eval`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_gate.config import LoadedConfig
from genai_gate.data import Dataset, EvalRow
from genai_gate.evaluate import evaluate_judged
from genai_gate.rollout.traffic import Exchange
from genai_gate.scoring.registry import BoundScorer, configured_scorers
from genai_gate.targets.cache import ResponseCache

# scored from the table's own columns (execution_duration_ms), not by a scorer
_NOT_FOR_TRAFFIC = {"latency"}


def reference_free(loaded: LoadedConfig, notices: list[str]) -> list[BoundScorer]:
    scorers = configured_scorers(loaded, notices)
    kept = [s for s in scorers if not s.needs_expectations and s.name not in _NOT_FOR_TRAFFIC]
    skipped = [s.name for s in scorers if s not in kept]
    if skipped:
        notices.append(
            f"live traffic has no expected answers, so {', '.join(skipped)} "
            "cannot judge it; the canary is judged by "
            + (", ".join(s.name for s in kept) or "errors and latency only")
        )
    return kept


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def as_row(index: int, exchange: Exchange) -> EvalRow | None:
    try:
        request = json.loads(exchange.request)
        response = json.loads(exchange.response)
    except json.JSONDecodeError:
        return None
    messages = request.get("messages") if isinstance(request, dict) else None
    users = [m for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
    if users:
        query = _text(users[-1].get("content", ""))
    elif isinstance(request, dict) and "prompt" in request:
        query = _text(request["prompt"])
    else:
        query = _text(request)
    choices = response.get("choices") if isinstance(response, dict) else None
    if choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        answer = _text(message.get("content") if message else choices[0].get("text", ""))
    elif isinstance(response, dict) and "predictions" in response:
        answer = _text(response["predictions"])
    else:
        answer = _text(response)
    return EvalRow(index, f"request {index + 1}", {"query": query}, None, answer)


def score_traffic(
    loaded: LoadedConfig,
    scorers: Sequence[BoundScorer],
    exchanges: Mapping[str, Sequence[Exchange]],
    environ: Mapping[str, str],
) -> dict[str, dict[str, list[float]]]:
    """Per served entity, per scorer: the score of each judged request."""
    out: dict[str, dict[str, list[float]]] = {}
    if not scorers:
        return out
    cfg = loaded.config
    cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
    for entity, sampled in exchanges.items():
        rows = tuple(r for i, e in enumerate(sampled) if (r := as_row(i, e)) is not None)
        if not rows:
            out[entity] = {}
            continue
        digest = hashlib.sha256(
            json.dumps([[r.inputs, r.outputs] for r in rows]).encode()
        ).hexdigest()
        dataset = Dataset(
            path=Path(f"inference-table:{entity}"),
            format="inference-table",
            rows=rows,
            digest=f"sha256:{digest}",
            file_sha256="",
            columns=("inputs", "outputs"),
            has_outputs=True,
        )
        result, _ = evaluate_judged(loaded, dataset, scorers, None, environ=environ, cache=cache)
        per_metric: dict[str, list[float]] = {}
        for row in result.rows:
            for name, value in row.scores.items():
                if value is not None:
                    per_metric.setdefault(f"{name}/mean", []).append(float(value))
        out[entity] = per_metric
    return out

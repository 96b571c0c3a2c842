"""Judge live traffic with the scorers that gated the pull request.

Production has no ground truth, so only reference-free scorers run here (safety,
relevance_to_query, guidelines, custom judges, code scorers without `expectations`); the
others are skipped with a notice. The logged request becomes the row's inputs (`query`: the
last user message) and the logged response its outputs, and the rows go through the same
`evaluate` (runner, retries, judge transport, cache) as `eval`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_gate.compare import regression_directions
from genai_gate.config import LoadedConfig
from genai_gate.evaluate import evaluate_judged
from genai_gate.results import Dataset, EvalRow
from genai_gate.rollout.measures import Exchange
from genai_gate.scorer import BoundScorer
from genai_gate.scoring.registry import configured_scorers
from genai_gate.targets.base import ServingWorkspace
from genai_gate.targets.cache import ResponseCache
from genai_gate.thresholds import Better

# scored from the table's own columns (execution_duration_ms), not by a scorer
_NOT_FOR_TRAFFIC = {"latency"}


def reference_free(loaded: LoadedConfig, notices: list[str]) -> list[BoundScorer]:
    scorers = configured_scorers(loaded, notices)
    kept = [
        s
        for s in scorers
        if not s.needs_expectations and not s.needs_context and s.name not in _NOT_FOR_TRAFFIC
    ]
    skipped = [s.name for s in scorers if s not in kept]
    if skipped:
        notices.append(
            f"live traffic has no expected answers or retrieved context, so "
            f"{', '.join(skipped)} cannot judge it; live traffic is judged by "
            + (", ".join(s.name for s in kept) or "errors and latency only")
        )
    return kept


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def prompt_of(inputs: Mapping[str, Any]) -> str:
    """An eval row's inputs as the user's message, the way `as_row` reads a logged request:
    the last user message of a chat, else the only input, else the inputs as JSON."""
    messages = inputs.get("messages")
    if isinstance(messages, list):
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            return _text(users[-1].get("content", ""))
    if len(inputs) == 1:
        return _text(next(iter(inputs.values())))
    return _text(dict(inputs))


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
    workspace: ServingWorkspace,
    notices: list[str] | None = None,
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
        result, _ = evaluate_judged(
            loaded, dataset, scorers, None, environ=environ, workspace=workspace, cache=cache
        )
        failed = sum(1 for r in result.rows if r.error or r.scorer_errors)
        if failed and notices is not None:
            first = next(
                (msg for r in result.rows for msg in r.scorer_errors.values()), "unreadable"
            )
            notices.append(
                f"{failed} of {len(result.rows)} judged request(s) of {entity} could not be "
                f"scored (first: {first[:200]}); those are left out, and too few scores hold "
                "the canary"
            )
        per_metric: dict[str, list[float]] = {}
        for row in result.rows:
            for name, value in row.scores.items():
                if value is not None:
                    per_metric.setdefault(f"{name}/mean", []).append(float(value))
        out[entity] = per_metric
    return out


def directions(
    loaded: LoadedConfig, scorers: Sequence[BoundScorer], notices: list[str]
) -> dict[str, Better]:
    """Which way is better for each judged metric: an LLM judge's pass rate is higher-is-
    better; a code scorer's direction comes from its threshold (`>=` or `<=`, or `better:`).
    A metric with no known direction is not judged, with a notice, rather than guessed."""
    named = regression_directions(loaded.thresholds, loaded.relative, scorers)
    out: dict[str, Better] = {}
    unknown = []
    for s in scorers:
        metric = f"{s.name}/mean"
        if s.judge:
            out[metric] = "higher"
        elif s.name in named:
            out[metric] = named[s.name]
        else:
            unknown.append(s.name)
    if unknown:
        notices.append(
            f"live traffic is not judged by {', '.join(unknown)}: no threshold says whether "
            "higher or lower is better. Give one, e.g. thresholds: {"
            f"{unknown[0]}/mean: {{at-least: 0.8}}}}"
        )
    return out

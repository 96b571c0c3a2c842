"""The scorer registry: config names -> MLflow Scorer objects, and which metrics they produce.

Checking thresholds against this registry happens before any model call, so a typo in a
metric name costs nothing.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_gate.errors import ConfigError, ModelLoadError
from genai_gate.pyimport import PREFIX, load_object
from genai_gate.thresholds import Threshold


@dataclass(frozen=True)
class BoundScorer:
    name: str
    scorer: Any  # mlflow.genai.scorers.Scorer; Any keeps mlflow out of import time
    aggregations: tuple[str, ...]
    needs_expectations: bool
    custom: bool
    # callable aggregations that a custom scorer brought along, by their names
    custom_aggregations: tuple[tuple[str, Any], ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(f"{self.name}/{a}" for a in self.aggregations)


SEED_LLM_METRICS = {
    "answer_correctness": "correctness",
}


def _unknown(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{name!r} is not a scorer genai-gate knows.{hint}"


def _custom(ref: str, base_dir: Path) -> tuple[Any, bool]:
    from mlflow.genai.scorers import Scorer, scorer

    try:
        obj = load_object(ref, base_dir, what="scorer")
    except ModelLoadError as exc:
        raise ConfigError(exc.message, fix=exc.fix) from exc
    if isinstance(obj, Scorer):
        built = obj
        sig = inspect.signature(obj.__call__)
    elif callable(obj):
        sig = inspect.signature(obj)
        allowed = {"inputs", "outputs", "expectations", "trace"}
        extra = [p for p in sig.parameters if p not in allowed]
        if extra:
            raise ConfigError(
                f"the scorer {ref!r} takes {extra}, which MLflow cannot pass",
                fix="A scorer takes any of inputs, outputs, expectations, trace:\n"
                "  def my_scorer(outputs, expectations) -> float: ...",
            )
        built = scorer(obj)
    else:
        raise ConfigError(f"{ref!r} is neither a function nor an MLflow Scorer")
    param = sig.parameters.get("expectations")
    needs = param is not None and param.default is inspect.Parameter.empty
    return built, needs


def build_scorers(
    names: Sequence[str], thresholds: Sequence[Threshold], base_dir: Path
) -> tuple[BoundScorer, ...]:
    """Resolve every configured scorer and check that every threshold can be produced."""
    from genai_gate.scoring.builtin import AGGREGATIONS, BUILTINS, make_builtin

    problems: list[str] = []
    wanted = list(names)
    if not wanted:
        # no `scorers:` given: the thresholds say which built-ins to run
        wanted = list(dict.fromkeys(t.metric.split("/", 1)[0] for t in thresholds))
        wanted = [w for w in wanted if w in BUILTINS] or ["exact_match"]

    extra_aggs: dict[str, list[str]] = {}
    for t in thresholds:
        scorer_name, agg = t.metric.split("/", 1)
        extra_aggs.setdefault(scorer_name, []).append(agg)

    bound: list[BoundScorer] = []
    seen: dict[str, str] = {}
    for ref in wanted:
        if ref in SEED_LLM_METRICS:
            problems.append(
                f"scorers: {ref!r} is the seed's legacy LLM metric; MLflow 3 replaced it with "
                f"{SEED_LLM_METRICS[ref]!r}, an LLM judge that needs a judge model"
            )
            continue
        if ref.startswith(PREFIX):
            obj, needs = _custom(ref, base_dir)
            name = str(obj.name)
            own = obj.aggregations or ["mean"]
            named = [(a if isinstance(a, str) else a.__name__) for a in own]
            customs = tuple((a.__name__, a) for a in own if not isinstance(a, str))
            aggs = tuple(dict.fromkeys(named))
            entry = BoundScorer(name, obj, aggs, needs, True, customs)
        elif ref in BUILTINS:
            name = ref
            defaults = BUILTINS[ref][1]
            entry = BoundScorer(name, None, defaults, BUILTINS[ref][2], False)
        else:
            problems.append("scorers: " + _unknown(ref, [*BUILTINS, "python:module:function"]))
            continue
        if name in seen:
            problems.append(
                f"scorers: {ref!r} and {seen[name]!r} are both named {name!r}; MLflow keys "
                "metrics by scorer name, so one would overwrite the other"
            )
            continue
        seen[name] = ref
        bound.append(entry)

    # thresholds may ask for an aggregation the scorer does not compute by default
    resolved: list[BoundScorer] = []
    by_name = {b.name: b for b in bound}
    for t in thresholds:
        scorer_name, agg = t.metric.split("/", 1)
        if scorer_name not in by_name:
            producible = sorted(m for b in bound for m in b.metrics)
            close = difflib.get_close_matches(t.metric, producible, n=1)
            problems.append(
                f"thresholds: {t.metric!r} names the scorer {scorer_name!r}, which is not "
                f"configured" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        elif agg not in AGGREGATIONS and agg not in by_name[scorer_name].aggregations:
            problems.append(
                f"thresholds: {t.metric!r}: {agg!r} is not an aggregation "
                f"(known: {', '.join(AGGREGATIONS)})"
            )
    for b in bound:
        aggs = tuple(dict.fromkeys([*b.aggregations, *extra_aggs.get(b.name, [])]))
        aggs = tuple(a for a in aggs if a in AGGREGATIONS or a in b.aggregations)
        obj = b.scorer if b.custom else make_builtin(b.name, aggs)
        resolved.append(
            BoundScorer(b.name, obj, aggs, b.needs_expectations, b.custom, b.custom_aggregations)
        )
    if problems:
        raise ConfigError(
            f"{len(problems)} scorer or threshold problem(s)",
            problems=problems,
            fix="Built-in scorers: " + ", ".join(BUILTINS) + ".\n"
            "Custom scorers: python:module:function (an MLflow @scorer or a plain function).\n"
            "Each threshold names a configured scorer and an aggregation:\n"
            "  scorers: [exact_match, latency]\n  thresholds:\n"
            '    exact_match/mean: ">= 0.6"\n    latency/p50: "<= 800"',
        )
    return tuple(resolved)

"""The scorer registry: config names -> MLflow Scorer objects, and which metrics they produce.

Checking thresholds against this registry happens before any model call, so a typo in a
metric name costs nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, ModelLoadError
from genai_gate.pyimport import PREFIX, load_object
from genai_gate.scorer import AGGREGATIONS, BoundScorer, build_scorers_now
from genai_gate.scoring.judges import CONTEXT_JUDGES, JUDGE_ALIASES, JUDGES, make_judge_scorer
from genai_gate.thresholds import RelativeThreshold, Threshold


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
    names: Sequence[str],
    thresholds: Sequence[Threshold | RelativeThreshold],
    base_dir: Path,
    *,
    judge: str | None = None,
    guidelines: Sequence[str] = (),
    repeat: int = 1,
    min_pass: int | None = None,
    custom_judges: Mapping[str, str] | None = None,
    notices: list[str] | None = None,
) -> tuple[BoundScorer, ...]:
    """Resolve every configured scorer and check that every threshold can be produced."""
    # builtin builds MLflow Scorer objects (lazily: see LazyScorer), and importing mlflow
    # takes seconds: only a run that scores pays for it
    from genai_gate.scoring.builtin import BUILTINS, PREPARE, make_builtin

    problems: list[str] = []
    fixes: list[str] = []  # fixes specific to a problem, shown before the general one
    wanted = list(names)
    if not wanted:
        # no `scorers:` given: the thresholds say which built-ins to run
        wanted = list(dict.fromkeys(t.metric.split("/", 1)[0] for t in thresholds))
        wanted = [w for w in wanted if w in BUILTINS or w in JUDGES] or ["exact_match"]

    extra_aggs: dict[str, list[str]] = {}
    for t in thresholds:
        scorer_name, agg = t.metric.split("/", 1)
        extra_aggs.setdefault(scorer_name, []).append(agg)

    bound: list[BoundScorer] = []
    seen: dict[str, str] = {}
    given_as: dict[str, str] = {}  # judge name -> the seed alias the user wrote
    instructions_of: dict[str, str] = {}  # custom judge name -> its instructions
    for ref in wanted:
        if ref in JUDGE_ALIASES:
            if notices is not None:
                notices.append(
                    f"scorer {ref!r} is the seed's legacy LLM metric; MLflow 3 replaced it "
                    f"with the {JUDGE_ALIASES[ref]!r} judge, which runs in its place"
                )
            given_as[JUDGE_ALIASES[ref]] = ref
            ref = JUDGE_ALIASES[ref]
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
        elif ref in JUDGES:
            name = ref
            entry = BoundScorer(
                name,
                None,
                ("mean",),
                JUDGES[ref][1],
                False,
                judge=True,
                repeat=repeat,
                min_pass=min_pass if min_pass is not None else repeat // 2 + 1,
                needs_context=ref in CONTEXT_JUDGES,
            )
        else:
            problems.append(
                "scorers: " + _unknown(ref, [*BUILTINS, *JUDGES, "python:module:function"])
            )
            continue
        if name in seen:
            problems.append(
                f"scorers: {ref!r} and {seen[name]!r} are both named {name!r}; MLflow keys "
                "metrics by scorer name, so one would overwrite the other"
            )
            continue
        seen[name] = ref
        bound.append(entry)

    # judges written in the config as instructions (MLflow's make_judge) run too
    for name, text in (custom_judges or {}).items():
        if name in seen or name in BUILTINS or name in JUDGES:
            problems.append(
                f"custom-judges: {name!r} is already a scorer's name; MLflow keys metrics by "
                "scorer name, so one would overwrite the other"
            )
            continue
        seen[name] = f"custom-judges.{name}"
        needs = re.search(r"\{\{\s*expectations\s*\}\}", text) is not None
        bound.append(
            BoundScorer(
                name,
                None,
                ("mean",),
                needs,
                False,
                judge=True,
                repeat=repeat,
                min_pass=min_pass if min_pass is not None else repeat // 2 + 1,
            )
        )
        instructions_of[name] = text

    # thresholds may ask for an aggregation the scorer does not compute by default
    resolved: list[BoundScorer] = []
    by_name = {b.name: b for b in bound}
    for t in thresholds:
        scorer_name, agg = t.metric.split("/", 1)
        if scorer_name not in by_name:
            producible = sorted(m for b in bound for m in b.metrics)
            if scorer_name in BUILTINS or scorer_name in JUDGES:
                # a real scorer left out of scorers:, not a typo of a configured one
                listed = ", ".join([*by_name, scorer_name])
                hint = f" (add it: scorers: [{listed}])"
            else:
                close = difflib.get_close_matches(t.metric, producible, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"thresholds: {t.metric!r} names the scorer {scorer_name!r}, which is not "
                f"configured" + hint
            )
        elif agg not in AGGREGATIONS and agg not in by_name[scorer_name].aggregations:
            problems.append(
                f"thresholds: {t.metric!r}: {agg!r} is not an aggregation "
                f"(known: {', '.join(AGGREGATIONS)})"
            )
    for b in bound:
        aggs = tuple(dict.fromkeys([*b.aggregations, *extra_aggs.get(b.name, [])]))
        aggs = tuple(a for a in aggs if a in AGGREGATIONS or a in b.aggregations)
        if b.custom:
            obj = b.scorer
        elif b.judge:
            try:
                obj = make_judge_scorer(
                    b.name,
                    [AGGREGATIONS[a] for a in aggs],
                    judge=judge,
                    guidelines=guidelines,
                    instructions=instructions_of.get(b.name),
                )
            except ConfigError as exc:
                alias = given_as.get(b.name)
                was = (
                    f"{alias!r} (the seed's legacy metric) is MLflow 3's {b.name!r} judge; "
                    if alias
                    else ""
                )
                problems.append(f"scorers: {was}{exc.message}")
                continue
        else:
            try:
                obj = make_builtin(b.name, aggs)
            except ConfigError as exc:
                problems.append(f"scorers: {exc.message}")
                fixes.append(exc.fix)
                continue
            b = dataclasses.replace(b, prepare=PREPARE.get(b.name))
        resolved.append(dataclasses.replace(b, scorer=obj, aggregations=aggs))
    if problems:
        general = (
            "Built-in scorers: " + ", ".join(BUILTINS) + ".\n"
            "LLM judges (need judge: openai:/<model>): " + ", ".join(JUDGES) + ".\n"
            "Custom scorers: python:module:function (an MLflow @scorer or a plain function).\n"
            "Each threshold names a configured scorer and an aggregation:\n"
            "  scorers: [exact_match, latency]\n  thresholds:\n"
            '    exact_match/mean: ">= 0.6"\n    latency/p50: "<= 800"'
        )
        # a problem with its own fix (a missing extra) needs no general lecture
        if len(fixes) < len(problems):
            fixes.append(general)
        raise ConfigError(
            f"{len(problems)} scorer or threshold problem(s)",
            problems=problems,
            fix="\n\n".join(fixes),
        )
    return tuple(resolved)


def configured_scorers(
    loaded: LoadedConfig, notices: list[str], *, lazy: bool = False
) -> tuple[BoundScorer, ...]:
    """The scorers a config asks for, with its judge settings, built (imports MLflow), or
    with `lazy` only checked, to be built on first use (see scorer.LazyScorer)."""
    try:
        scorers = _build_configured(loaded, notices)
        if not lazy:
            raise_unbuilt(scorers)
        return scorers
    except ConfigError as exc:
        # each problem under the name the user typed it (the file, --scorers, an env var)
        for key in ("scorers", "thresholds", "judge"):
            exc.problems = [
                loaded.label(key) + p.removeprefix(key) if p.startswith(f"{key}: ") else p
                for p in exc.problems
            ]
        raise


def raise_unbuilt(scorers: Sequence[BoundScorer]) -> None:
    """Build the lazy scorers now; ConfigError (exit 2) for each that MLflow refuses."""
    problems = build_scorers_now(scorers)
    if problems:
        raise ConfigError(
            f"{len(problems)} scorer(s) could not be built",
            problems=problems,
            fix="The scorers' settings passed genai-gate's checks and MLflow refused them: "
            "check the judge's name and the custom judges' instructions, or remove the "
            "scorer:\n  scorers: [exact_match, correctness]",
        )


def _build_configured(loaded: LoadedConfig, notices: list[str]) -> tuple[BoundScorer, ...]:
    cfg = loaded.config
    return build_scorers(
        cfg.scorers,
        [*loaded.thresholds, *loaded.relative],
        loaded.base_dir,
        judge=cfg.judge,
        guidelines=cfg.guidelines,
        repeat=cfg.repeat,
        min_pass=cfg.min_pass,
        custom_judges=cfg.custom_judges,
        notices=notices,
    )

"""Run the candidate over the eval set and score every row with MLflow scorers.

Why not `mlflow.genai.evaluate` as the engine: on a sqlite store it took 97-157 s for 100
trivial rows with default workers, and silently kept only 53 of 100 traces
(`../shared/reference/mlflow.md`). So our runner calls the model and the same MLflow
`Scorer` objects (through `Scorer.run`, MLflow's own entry point), aggregates the way
MLflow does, and `tracking.py` logs the run to MLflow in batch and counts it back.
`tests/integration/test_mlflow_parity.py` checks that the metrics equal
`mlflow.genai.evaluate`'s on the same data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np

from genai_gate import mlflow_loading
from genai_gate.config import Config, LoadedConfig
from genai_gate.data import CONTEXT_COLUMNS
from genai_gate.errors import ConfigError, DataError
from genai_gate.results import (
    Dataset,
    EvalResult,
    EvalRow,
    PhaseProgress,
    RowError,
    RowResult,
    TargetIdentity,
)
from genai_gate.scorer import (
    AGGREGATIONS,
    LATENCY_METADATA_KEY,
    BoundScorer,
    ScorerInputError,
    not_an_answer,
    references,
)
from genai_gate.scoring.judges import judge_session, wait_for_route
from genai_gate.scoring.traces import row_trace
from genai_gate.scoring.verdicts import VerdictCache
from genai_gate.targets import Target, limits
from genai_gate.targets.base import ServingWorkspace
from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.retry import remote_deadline
from genai_gate.targets.runner import Outcome, Pool, run_all

# one row's scores, rationales and scorer errors, each by metric name
ScoredRow = tuple[dict[str, float | None], dict[str, str], dict[str, str]]

_NUMPY_AGGS: dict[str, Callable[[Sequence[float]], Any]] = {
    "min": np.min,
    "max": np.max,
    "mean": np.mean,
    "median": np.median,
    "variance": np.var,
    "p90": lambda x: np.percentile(x, 90),
}


def preflight(loaded: LoadedConfig, dataset: Dataset, scorers: Sequence[BoundScorer]) -> None:
    """Everything that can be known wrong before the first model call."""
    cfg = loaded.config
    if cfg.model is None and not dataset.has_outputs:
        raise ConfigError(
            "no model is configured, and the data has no outputs column",
            fix="Name the model to evaluate:\n  model: python:app.model:predict\n"
            "or give precomputed answers:\n  columns:\n    outputs: answer",
        )
    calls_model = cfg.model is not None
    if not calls_model and any(s.name == "latency" and not s.custom for s in scorers):
        raise ConfigError(
            "the latency scorer measures model calls, and with precomputed outputs there are none",
            fix="Remove latency from scorers, or configure a model: to call.",
        )

    builtin_needy = [s.name for s in scorers if s.needs_expectations and not s.custom]
    unreadable: list[str] = []
    for r in dataset.rows:
        if r.expectations and builtin_needy:
            try:
                references(r.expectations, builtin_needy[0])
            except ScorerInputError as exc:
                unreadable.append(f"{r.where}: {exc}")
    if unreadable:
        raise DataError(
            f"{dataset.path}: {', '.join(builtin_needy)} cannot find the reference answer",
            problems=unreadable[:10]
            + ([f"... and {len(unreadable) - 10} more"] if len(unreadable) > 10 else []),
            fix="Put the reference under expected_response, or map a column to it:\n"
            "  columns:\n    expectations: answer",
        )
    _check_context(dataset, scorers)
    needy = [s.name for s in scorers if s.needs_expectations]
    if needy:
        lacking = [r.where for r in dataset.rows if not r.expectations]
        if lacking:
            shown = ", ".join(lacking[:10]) + (
                f" and {len(lacking) - 10} more" if len(lacking) > 10 else ""
            )
            raise DataError(
                f"{dataset.path}: {', '.join(needy)} compare with an expected answer, and "
                f"{len(lacking)} row(s) have none: {shown}",
                fix="Add the expected answers (an expectations or ground_truth column), map "
                "yours:\n  columns:\n    expectations: answer\n"
                "or use scorers that need no reference (latency, response_length).",
            )


CONTEXT_FIX = """\
Give each row the context the answer should rest on: a column with the text, or a list of
passages or documents, for example in JSONL
  {"inputs": {"question": "..."}, "retrieved_context": ["Paris is the capital of France."]}
or map the column that holds it:
  columns:
    context: passages"""


def _check_context(dataset: Dataset, scorers: Sequence[BoundScorer]) -> None:
    """Judges that read retrieved context need it on every row, known before any call."""

    needy = [s.name for s in scorers if s.needs_context]
    if not needy:
        return
    if dataset.context_column is None:
        raise ConfigError(
            f"{', '.join(needy)} judges the answer against the retrieved context, and "
            f"{dataset.path.name} has no context column (looked for "
            f"{', '.join(CONTEXT_COLUMNS)}; it has {', '.join(dataset.columns)})",
            fix=CONTEXT_FIX,
        )
    lacking = [r.where for r in dataset.rows if r.context is None]
    if lacking:
        shown = ", ".join(lacking[:10]) + (
            f" and {len(lacking) - 10} more" if len(lacking) > 10 else ""
        )
        raise DataError(
            f"{dataset.path}: {', '.join(needy)} needs retrieved context, and "
            f"{len(lacking)} row(s) have none in column {dataset.context_column!r}: {shown}",
            fix=CONTEXT_FIX,
        )


def _to_float(value: Any) -> float | None:
    """MLflow's cast: numbers and bools as floats, yes/no as 1/0, anything else excluded."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("yes", "no"):
            return 1.0 if low == "yes" else 0.0
    return None


def _make_trace(row: EvalRow, latency_ms: float | None, outputs: Any) -> Any:

    return row_trace(
        f"tr-genai-gate-{row.index}",
        inputs=row.inputs,
        outputs=outputs,
        context=row.context,
        latency_ms=latency_ms,
        metadata={} if latency_ms is None else {LATENCY_METADATA_KEY: repr(latency_ms)},
    )


def _ask(
    s: BoundScorer,
    row: EvalRow,
    outputs: Any,
    trace: Any,
    verdicts: VerdictCache | None,
    ask: int = 0,
) -> Any:
    """One run of a scorer; a judge's verdict comes from the verdict cache when it has it."""
    key = None
    if verdicts is not None and s.judge:
        question = {
            "inputs": row.inputs,
            "outputs": outputs,
            "expectations": row.expectations,
            "context": row.context,
        }
        key = verdicts.key(s.resolved, question, ask)
        hit = verdicts.get(key)
        if hit is not None:
            return hit
    if s.judge:
        wait_for_route()
    result = s.resolved.run(
        inputs=row.inputs, outputs=outputs, expectations=row.expectations, trace=trace
    )
    if key is not None and verdicts is not None:
        verdicts.put(key, result)
    return result


def _repeated(
    s: BoundScorer, row: EvalRow, outputs: Any, trace: Any, verdicts: VerdictCache | None
) -> Any:
    """Ask a flaky judge `repeat` times; the row passes when `min_pass` verdicts say yes."""
    from mlflow.entities import Feedback

    verdicts_said = []
    for ask in range(s.repeat):
        fb = _ask(s, row, outputs, trace, verdicts, ask)
        if isinstance(fb, list) and len(fb) == 1:
            fb = fb[0]  # RetrievalGroundedness answers one Feedback per RETRIEVER span
        if isinstance(fb, Feedback) and fb.error is not None:
            return fb
        verdicts_said.append(_to_float(fb.value if isinstance(fb, Feedback) else fb) or 0.0)
    yes = sum(1 for v in verdicts_said if v >= 1.0)
    return Feedback(
        name=s.name,
        value=yes >= s.min_pass,
        rationale=f"{yes} of {s.repeat} verdicts said yes (min-pass {s.min_pass})",
    )


def _score_row(
    row: EvalRow,
    outputs: Any,
    latency_ms: float | None,
    scorers: Sequence[BoundScorer],
    verdicts: VerdictCache | None = None,
) -> ScoredRow:
    mlflow_loading.ensure()
    from mlflow.entities import Feedback

    scores: dict[str, float | None] = {}
    rationales: dict[str, str] = {}
    errors: dict[str, str] = {}
    trace = _make_trace(row, latency_ms, outputs)
    for s in scorers:
        try:
            if s.repeat > 1:
                result = _repeated(s, row, outputs, trace, verdicts)
            else:
                result = _ask(s, row, outputs, trace, verdicts)
        except Exception as exc:
            errors[s.name] = f"{type(exc).__name__}: {exc}"
            continue
        items = result if isinstance(result, list) else [result]
        for item in items:
            name = s.name
            if isinstance(item, Feedback):
                if item.name and isinstance(result, list):
                    name = f"{s.name}/{item.name}" if item.name != s.name else s.name
                if item.error is not None:
                    msg = getattr(item.error, "error_message", None) or str(item.error)
                    errors[name] = str(msg)
                    continue
                if item.rationale:
                    rationales[name] = str(item.rationale)
                value = item.value
            else:
                value = item
            number = _to_float(value)
            if number is None or not math.isfinite(number):
                # MLflow leaves such a row out of the mean; a gate must not, or a scorer that
                # answers None on the hard rows would raise the score (fail closed)
                errors[name] = f"returned {value!r}, which is not a finite number, a bool or yes/no"
                continue
            scores[name] = number
    return scores, rationales, errors


def aggregate(
    values: Sequence[float], aggregations: Sequence[str], custom: Mapping[str, Any]
) -> dict[str, float]:

    out: dict[str, float] = {}
    for agg in aggregations:
        fn = custom.get(agg)
        if fn is None:
            spec = AGGREGATIONS[agg]
            fn = _NUMPY_AGGS[spec] if isinstance(spec, str) else spec
        out[agg] = float(fn(list(values)))
    return out


def compute_metrics(rows: Sequence[RowResult], scorers: Sequence[BoundScorer]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    by_name = {s.name: s for s in scorers}
    names: dict[str, BoundScorer] = {}
    for r in rows:
        for key in r.scores:
            names.setdefault(key, by_name.get(key.split("/", 1)[0]) or by_name[key])
    for key, s in names.items():
        values = [v for r in rows if (v := r.scores.get(key)) is not None and not math.isnan(v)]
        if not values:
            continue
        for agg, value in aggregate(values, s.aggregations, dict(s.custom_aggregations)).items():
            metrics[f"{key}/{agg}"] = value
    return metrics


def _latency(p: Outcome[Any]) -> float | None:
    return None if math.isnan(p.elapsed_ms) else p.elapsed_ms


def _phase(progress: PhaseProgress | None, phase: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return functools.partial(progress, phase)


def _predict(
    target: Target,
    rows: Sequence[EvalRow],
    cfg: Config,
    progress: PhaseProgress | None,
    cache: ResponseCache | None,
) -> list[Outcome[Any]]:
    if cache is not None and target.remote:
        return _predict_cached(target, rows, cfg, progress, cache)
    # a remote call may retry: its deadline covers every attempt and the backoff
    deadline = remote_deadline(cfg) if target.remote else cfg.timeout

    def one_by_one(some: Sequence[EvalRow]) -> list[Outcome[Any]]:
        return run_all(
            [functools.partial(target.predict, r) for r in some],
            concurrency=cfg.concurrency,
            timeout=deadline,
            on_progress=_phase(progress, "model") if some is rows else None,
        )

    size = len(rows) if cfg.batch_size == 0 else cfg.batch_size
    if not target.batched or size <= 1:
        return one_by_one(rows)
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    batches = run_all(
        [functools.partial(target.predict_batch, c) for c in chunks],
        concurrency=cfg.concurrency,
        timeout=deadline,
        on_progress=_phase(progress, "model"),
    )
    out: list[Outcome[Any]] = []
    for chunk, batch in zip(chunks, batches, strict=True):
        if batch.error is None and batch.value is not None:
            share = batch.elapsed_ms / len(chunk)
            out += [Outcome(answer, None, share) for answer in batch.value]
        else:
            # one bad row fails its whole batch; call the rows singly to find which
            out += one_by_one(chunk)
    return out


def _predict_cached(
    target: Target,
    rows: Sequence[EvalRow],
    cfg: Config,
    progress: PhaseProgress | None,
    cache: ResponseCache,
) -> list[Outcome[Any]]:
    """Answers from the cache where it has them; one call per remaining row, then stored.

    A cached answer keeps the latency it was measured with, so latency gates stay honest.
    """
    identity = target.cache_identity()  # type: ignore[attr-defined]
    keys = [cache.key(identity, r.inputs) for r in rows]
    found = [cache.get(k) for k in keys]
    todo = [i for i, entry in enumerate(found) if entry is None]

    def call_and_keep(i: int) -> tuple[Any, float]:
        # stored as each answer arrives, so a run cancelled at 60% keeps 60% of its calls
        t0 = time.perf_counter()
        answer = target.predict(rows[i])
        latency_ms = (time.perf_counter() - t0) * 1000
        # only a real answer is kept: an empty one would be replayed as if it were
        if isinstance(answer, str) and answer.strip():
            cache.put(keys[i], answer, latency_ms)
        return answer, latency_ms

    fresh = run_all(
        [functools.partial(call_and_keep, i) for i in todo],
        concurrency=cfg.concurrency,
        timeout=remote_deadline(cfg),
        on_progress=_phase(progress, "model"),
    )
    out: list[Outcome[Any]] = [
        Outcome(e.output, None, e.latency_ms) if e is not None else Outcome(None, "", 0.0)
        for e in found
    ]
    for i, outcome in zip(todo, fresh, strict=True):
        if outcome.value is None:
            out[i] = Outcome(None, outcome.error, outcome.elapsed_ms)
        else:
            # the latency the cache keeps, so a re-run's latency gate reads the same number
            answer, latency_ms = outcome.value
            out[i] = Outcome(answer, None, latency_ms)
    return out


def _answer_or_error(p: Outcome[Any]) -> Outcome[Any]:
    """A return value that is not text is that row's model error, never scored by its
    printed form (`None` would pass `response_length/max <= 100`)."""
    if p.error is not None:
        return p
    why = not_an_answer(p.value)
    return p if why is None else Outcome(None, why, p.elapsed_ms)


def scoring_deadline(cfg: Config, scorers: Sequence[BoundScorer]) -> float:
    """A row's scoring may make one judge call per judge and repeat, each with retries."""
    calls = sum(s.repeat for s in scorers if s.judge)
    return cfg.timeout + calls * remote_deadline(cfg) if calls else cfg.timeout


def _row_result(row: EvalRow, p: Outcome[Any], scored: Outcome[ScoredRow] | None) -> RowResult:
    """One row's record; a model error leaves it unscored, a scoring crash marks it '*'."""
    base = RowResult(row.index, row.where, row.inputs, row.expectations, p.value, _latency(p), None)
    if p.error is not None or scored is None:
        return dataclasses.replace(base, outputs=None, error=p.error or "not scored")
    if scored.error is not None or scored.value is None:
        return dataclasses.replace(
            base, scorer_errors={"*": scored.error or "scoring returned nothing"}
        )
    scores, rationales, errors = scored.value
    return dataclasses.replace(base, scores=scores, rationales=rationales, scorer_errors=errors)


def not_run(row: EvalRow) -> RowResult:
    """A row that max-duration left unstarted, recorded as the runner records one
    (runner.Pool: an error that says so, no answer); within `limits.run_limits`."""
    return _row_result(row, Outcome(None, limits.deadline_reason(), 0.0), None)


def _pipelined(
    target: Target,
    rows: Sequence[EvalRow],
    cfg: Config,
    scorers: Sequence[BoundScorer],
    progress: PhaseProgress | None,
    cache: ResponseCache | None,
    verdicts: VerdictCache | None,
) -> tuple[list[Outcome[Any]], dict[int, Outcome[ScoredRow]], dict[str, float]]:
    """Model calls and scoring in one pool: a row is scored as soon as its answer arrives.

    No barrier between the phases, so the pool keeps `concurrency` calls in flight while
    work remains (issue #14). A row's latency is its model call's alone: the pool times a
    job from the moment a worker starts it. Cached answers go straight to scoring.
    """
    t0 = time.perf_counter()
    n = len(rows)
    predictions: list[Outcome[Any] | None] = [None] * n
    scored: dict[int, Outcome[ScoredRow]] = {}
    keys: list[str] = []
    if cache is not None:
        identity = target.cache_identity()  # type: ignore[attr-defined]
        keys = [cache.key(identity, r.inputs) for r in rows]
    pool = Pool(cfg.concurrency)
    deadline = remote_deadline(cfg)
    score_deadline = scoring_deadline(cfg, scorers)

    def score(i: int, p: Outcome[Any]) -> None:
        # priority 0: a row's judge calls go before the next row's model call. While MLflow
        # still loads on its thread (mlflow_loading), a scoring job would only hold a worker
        # waiting for it: the model calls go first then, and these rows are scored later
        pool.submit(
            ("score", i),
            functools.partial(_score_row, rows[i], p.value, _latency(p), scorers, verdicts),
            timeout=score_deadline,
            priority=0 if mlflow_loading.loaded() else 2,
        )

    def score_answer(i: int, outcome: Outcome[Any]) -> None:
        # a call that came back after its deadline was already recorded as the row's error
        answer = _answer_or_error(outcome)
        if answer.error is None and predictions[i] is None:
            score(i, answer)

    for i, row in enumerate(rows):
        entry = cache.get(keys[i]) if cache is not None else None
        if entry is not None:
            # a cached answer keeps the latency it was measured with, so latency gates
            # stay honest
            predictions[i] = Outcome(entry.output, None, entry.latency_ms)
            score(i, predictions[i])  # type: ignore[arg-type]
        else:
            # a remote call may retry: its deadline covers every attempt and the backoff.
            # The row's scoring is queued by the worker itself as the answer arrives, so it
            # goes ahead of the next model call without waiting for this thread to wake
            pool.submit(
                ("model", i),
                functools.partial(target.predict, row),
                timeout=deadline,
                then=functools.partial(score_answer, i),
            )
    answered = sum(p is not None for p in predictions)
    model_total = n - answered
    model_done = 0
    failed = 0
    seconds: dict[str, float] = {"predict": 0.0}
    on_model = _phase(progress, "model")
    on_score = _phase(progress, "score")
    try:
        for key, outcome in pool.completed():
            stage, i = cast("tuple[str, int]", key)
            if stage == "model":
                outcome = _answer_or_error(outcome)
                predictions[i] = outcome
                model_done += 1
                seconds["predict"] = time.perf_counter() - t0
                if on_model is not None:
                    on_model(model_done, model_total)
                if outcome.error is not None:
                    failed += 1
                    continue
                # only a real answer is kept: an empty one would be replayed as if it were
                if cache is not None and isinstance(outcome.value, str) and outcome.value.strip():
                    cache.put(keys[i], outcome.value, outcome.elapsed_ms)
            else:
                scored[rows[i].index] = outcome
                if on_score is not None:
                    on_score(len(scored), n - failed)
    finally:
        pool.close()
    # "predict": until the last answer; "score": the scoring after it (the pipeline's tail)
    seconds["score"] = time.perf_counter() - t0 - seconds["predict"]
    done = [p for p in predictions if p is not None]
    if len(done) != n:
        raise RuntimeError(f"the pipeline lost {n - len(done)} of {n} answers")
    return done, scored, seconds


def _pipelines(
    target: Target, scorers: Sequence[BoundScorer], cfg: Config, cache: ResponseCache | None
) -> bool:
    """Whether model calls and scoring may overlap.

    Only for remote targets: their URL and key are fixed when they are resolved, while a
    python: model may read OPENAI_BASE_URL on each call, and during judging that points at
    the judges' own address. Not when `_predict` would send batches (an uncached batched
    endpoint), and not when a scorer's batch `prepare` needs every answer first.
    """
    batches = cache is None and target.batched and cfg.batch_size != 1
    return target.remote and not batches and not any(s.prepare for s in scorers)


def evaluate(
    loaded: LoadedConfig,
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    target: Target | None,
    *,
    progress: PhaseProgress | None = None,
    cache: ResponseCache | None = None,
    scoring_context: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    verdicts: VerdictCache | None = None,
) -> EvalResult:
    """Call the model and score the rows. `scoring_context` wraps the scoring (the judges'
    address must not be what the model under test sees: see `_pipelines`)."""
    cfg = loaded.config
    seconds: dict[str, float] = {}
    rows = dataset.rows

    by_index: dict[int, Outcome[ScoredRow]]
    if target is not None and _pipelines(target, scorers, cfg, cache):
        with scoring_context() if scoring_context is not None else contextlib.nullcontext():
            predictions, by_index, seconds = _pipelined(
                target, rows, cfg, scorers, progress, cache, verdicts
            )
    else:
        t0 = time.perf_counter()
        if target is not None:
            predictions = [
                _answer_or_error(p) for p in _predict(target, rows, cfg, progress, cache)
            ]
        else:
            predictions = [Outcome(r.outputs, None, math.nan) for r in rows]
        seconds["predict"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        scorable = [(r, p) for r, p in zip(rows, predictions, strict=True) if p.error is None]
        for s in scorers:
            if s.prepare is not None:
                # batch work over the whole run (semantic_similarity embeds every text at
                # once); a failure here resurfaces as each row's scorer error, so it fails
                # closed anyway
                with contextlib.suppress(Exception):
                    s.prepare([(p.value, r.expectations) for r, p in scorable])
        with scoring_context() if scoring_context is not None else contextlib.nullcontext():
            scored = run_all(
                [
                    functools.partial(_score_row, r, p.value, _latency(p), scorers, verdicts)
                    for r, p in scorable
                ],
                concurrency=cfg.concurrency,
                # a hung judge or custom scorer must not hold the job until GitHub's 6-hour
                # limit
                timeout=scoring_deadline(cfg, scorers),
                on_progress=_phase(progress, "score"),
            )
        seconds["score"] = time.perf_counter() - t1
        by_index = {r.index: s for (r, _), s in zip(scorable, scored, strict=True)}

    results = [
        _row_result(r, p, by_index.get(r.index)) for r, p in zip(rows, predictions, strict=True)
    ]
    return assemble(
        dataset,
        scorers,
        target.identity if target is not None else None,
        results,
        seconds,
        cache.stats() if cache is not None and target is not None and target.remote else None,
    )


def assemble(
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    target: TargetIdentity | None,
    results: Sequence[RowResult],
    seconds: dict[str, float],
    cache: dict[str, Any] | None,
) -> EvalResult:
    """The run's result from its rows, whichever runner scored them (threads here, or Spark
    partitions in spark_runner.py): the row errors and the metrics come from the rows."""
    return EvalResult(
        dataset=dataset,
        target=target,
        scorers=tuple(scorers),
        rows=tuple(results),
        metrics=compute_metrics(results, scorers),
        row_errors=row_errors(results),
        seconds=seconds,
        cache=cache,
    )


def row_errors(results: Sequence[RowResult]) -> tuple[RowError, ...]:
    """Each row's model error and scorer errors, as the gate counts them."""
    errors: list[RowError] = []
    for res in results:
        if res.error is not None:
            errors.append(RowError(res.where, "model", res.error))
        errors.extend(
            RowError(res.where, "scoring" if name == "*" else name, msg)
            for name, msg in res.scorer_errors.items()
        )
    return tuple(errors)


def evaluate_judged(
    loaded: LoadedConfig,
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    target: Target | None,
    *,
    environ: Mapping[str, str],
    workspace: ServingWorkspace,
    progress: PhaseProgress | None = None,
    cache: ResponseCache | None = None,
) -> tuple[EvalResult, dict[str, Any] | None]:
    """`evaluate`, with the judge session open around scoring when a scorer is an LLM judge;
    also returns the judge's call and cache figures."""
    if not any(s.judge for s in scorers):
        return evaluate(loaded, dataset, scorers, target, progress=progress, cache=cache), None
    cfg = loaded.config
    judge_cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
    transports: list[Any] = []

    @contextlib.contextmanager
    def judging() -> Iterator[None]:
        with judge_session(cfg, judge_cache, environ, workspace) as transport:
            transports.append(transport)
            yield

    result = evaluate(
        loaded,
        dataset,
        scorers,
        target,
        progress=progress,
        cache=cache,
        scoring_context=judging,
        verdicts=VerdictCache.for_config(cfg, judge_cache, environ),
    )
    stats = {
        "model": cfg.judge,
        **(transports[0].stats.as_dict() if transports else {}),
        "cache": judge_cache.stats() if judge_cache else None,
    }
    return result, stats

"""`runner: spark`: the rows spread over a Spark session, scored by the same code as locally.

The driver sends each partition its rows and the loaded config, which is data. The target
and the scorers are the user's code (a `python:` module, an `openai:` client, judges), so
each partition builds them again from the config (once per Python worker, then reused) and
runs `evaluate` on its rows: the same pipeline, retries, cache and judges as the local
runner. The rows come back as the same `RowResult`s, and `evaluate.assemble` turns them
into the run's result, so the gate, the baseline comparison, the reports and the MLflow
logging cannot tell the runners apart.

`concurrency` is the whole cluster's: at most `slots = min(cores, concurrency)` tasks run
at once, and each gets `concurrency // slots` workers (and `requests-per-minute / slots`),
so model and judge calls in flight never exceed `concurrency`. There are up to four
partitions per slot: a finished partition is progress the driver can report (Spark's
status tracker counts finished tasks), and a slow one holds back less of the run.

`max-duration` ends a Spark run as it ends a local one: each partition's runner stops at the
run's deadline and records its unfinished rows as errors, a partition that starts after it
records all of its rows so, and the driver gathers every row; the command then writes the
partial results and exits 4. Only a partition stuck past the deadline where no deadline
reaches (a model's import) makes the driver cancel the job, with no partial results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, DeadlineError, ServiceError
from genai_gate.evaluate import assemble, evaluate_judged, not_run
from genai_gate.results import Dataset, EvalResult, EvalRow, PhaseProgress, RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.scoring.registry import configured_scorers
from genai_gate.targets import Target, limits, resolve_target
from genai_gate.targets.base import ServingWorkspace
from genai_gate.targets.cache import ResponseCache

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

SPARK_FIX = (
    "runner: spark needs pyspark (and Java 17 or later when it runs locally): install\n"
    "genai-gate with its spark extra (the action: extras: spark), or pip install pyspark;\n"
    "or evaluate with threads:\n  runner: local"
)
# partitions per task slot: progress by finished partition, without rebuilding much
_PARTITIONS_PER_SLOT = 4
# how long after max-duration the driver waits for the partitions to return what they
# finished, before it cancels the job; within limits.GRACE, so the results are still written
_STRAGGLER_GRACE = limits.GRACE / 2
# environment variables a partition may need that a cluster's workers do not inherit
_SHARED_ENV = (
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
)


@dataclass(frozen=True)
class Layout:
    """How the rows are split: `partitions` tasks, at most `slots` at once, `per_task`
    workers each; per_task * slots <= concurrency."""

    partitions: int
    slots: int
    per_task: int

    @classmethod
    def plan(cls, rows: int, cores: int, concurrency: int) -> Layout:
        slots = max(1, min(cores, concurrency, rows))
        per_task = max(1, concurrency // slots)
        # more partitions than slots only when a slot is a core: then Spark itself runs no
        # more than `cores` of them at once
        many = cores <= concurrency
        partitions = min(rows, slots * _PARTITIONS_PER_SLOT) if many else slots
        return cls(max(1, partitions), slots, per_task)

    def rpm(self, requests_per_minute: float | None) -> float | None:
        return None if requests_per_minute is None else requests_per_minute / self.slots


@dataclass(frozen=True)
class Shipped:
    """What every partition receives: data only (the config, the layout's share of the
    limits, the environment it needs); the model and scorers are built from it there."""

    loaded: LoadedConfig
    input_keys: tuple[str, ...]
    environ: dict[str, str]
    # max-duration's end on the wall clock (a cluster's clocks are synchronised; a monotonic
    # clock is per machine): a partition that starts late gets what is left, not a full share
    deadline_at: float | None
    workspace: Callable[[LoadedConfig, Mapping[str, str]], ServingWorkspace] | None


def session(master: str | None) -> tuple[SparkSession, bool]:
    """The running session (a Databricks job's own, or one this process started), else a
    new local one; True when this call started it (and so should stop it)."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("runner: spark, and pyspark is not installed", fix=SPARK_FIX) from None
    started = SparkContext._active_spark_context is None
    if started:
        # the Python workers must be this interpreter (its packages, its genai-gate)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("genai-gate")
    if started and not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        builder = (
            builder.master(master or "local[*]")
            .config("spark.ui.enabled", "false")
            # genai-gate reports progress itself; Spark's bar would garble a CI log
            .config("spark.ui.showConsoleProgress", "false")
        )
    try:
        spark = builder.getOrCreate()
        if started:
            spark.sparkContext.setLogLevel("ERROR")
        return spark, started
    except Exception as exc:  # no Java, a bad master URL: py4j raises its own types
        raise ConfigError(
            f"runner: spark could not start a Spark session: {str(exc).splitlines()[0]}",
            fix=SPARK_FIX,
        ) from None


# ------------------------------------------------------------------ inside a partition

# the target and scorers a Python worker built, by config: a reused worker builds them once
_BUILT: dict[bytes, tuple[Target | None, tuple[BoundScorer, ...]]] = {}
_BUILD_LOCK = threading.Lock()


def _built(shipped: Shipped, key: bytes) -> tuple[Target | None, tuple[BoundScorer, ...]]:
    with _BUILD_LOCK:
        if key not in _BUILT:
            loaded, cfg = shipped.loaded, shipped.loaded.config
            target = None
            if cfg.model:
                target = resolve_target(
                    cfg.model,
                    loaded,
                    input_keys=list(shipped.input_keys),
                    workspace=_workspace(shipped),
                )
            _BUILT[key] = (target, configured_scorers(loaded, []))
        return _BUILT[key]


def evaluate_partition(shipped: Shipped, key: bytes, rows: Sequence[EvalRow]) -> dict[str, Any]:
    """One partition: its rows through `evaluate`, as locally; returns its rows' results
    and its figures (seconds, cache, judge calls)."""
    for name, value in shipped.environ.items():
        os.environ[name] = value
    loaded = shipped.loaded
    cfg = loaded.config
    left = None if shipped.deadline_at is None else shipped.deadline_at - time.time()
    # max-duration names the limit in the rows' errors; the partition has what is left of it.
    # At the deadline its runner records the rows it had not finished as errors, as the local
    # runner does, so the partition still returns every row and the driver writes them
    with limits.run_limits(cfg.max_duration, remaining=left):
        if limits.expired():
            # started after the deadline: no model is built and no row is run
            limits.mark_cut_short()
            results, seconds, cache_stats, judge = [not_run(r) for r in rows], {}, None, None
        else:
            target, scorers = _built(shipped, key)
            dataset = Dataset(
                path=loaded.base_dir,
                format="partition",
                rows=tuple(rows),
                digest="",
                file_sha256="",
                columns=(),
                has_outputs=cfg.model is None,
            )
            cache = ResponseCache(loaded.resolve(cfg.cache_dir)) if cfg.cache else None
            result, judge = evaluate_judged(
                loaded,
                dataset,
                scorers,
                target,
                environ=os.environ,
                workspace=_workspace(shipped),
                cache=cache,
            )
            results, seconds, cache_stats = list(result.rows), result.seconds, result.cache
        return {
            "rows": results,
            "seconds": seconds,
            "cache": cache_stats,
            "judge": judge,
            "cut_short": limits.cut_short(),
            "tripped": limits.tripped(),
        }


def _workspace(shipped: Shipped) -> ServingWorkspace:
    if shipped.workspace is None:
        return _NoWorkspace()
    return shipped.workspace(shipped.loaded, os.environ)


class _NoWorkspace:
    """No serving platform in the partition: an `endpoints:/` model or judge says so."""

    available = False
    unavailable_reason = "runner: spark was given no serving workspace"

    def _refuse(self) -> ConfigError:
        return ConfigError(
            "an endpoints:/ model or judge has no workspace to call inside Spark partitions",
            fix="Use runner: local, or set DATABRICKS_HOST and DATABRICKS_TOKEN for the job.",
        )

    def endpoint_target(self, name: str, *, pin: str | None, settings: Mapping[str, Any]) -> Target:
        raise self._refuse()

    def chat_route(self) -> tuple[str, Callable[[], dict[str, str]]]:
        raise self._refuse()


def _partition_fn(
    shipped: Shipped,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    key = pickle.dumps((shipped.loaded.config, shipped.loaded.base_dir, shipped.input_keys))

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        rows = [pickle.loads(b) for frame in batches for b in frame["row"]]  # noqa: S301
        if not rows:
            return
        outcome = evaluate_partition(shipped, key, rows)
        results: list[RowResult] = list(outcome.pop("rows"))
        figures = pickle.dumps(outcome)
        yield pd.DataFrame(
            {
                "index": [r.index for r in results] + [-1],
                "result": [pickle.dumps(r) for r in results] + [figures],
            }
        )

    return run


# ------------------------------------------------------------------ the driver


@dataclass
class SparkFigures:
    seconds: dict[str, float]
    cache: dict[str, Any] | None
    judge: dict[str, Any] | None


def _sum(parts: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    present = [p for p in parts if p]
    if not present:
        return None
    total: dict[str, Any] = {}
    for part in present:
        for k, v in part.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                total[k] = total.get(k, 0) + v
            elif isinstance(v, dict):
                total[k] = _sum([total.get(k), v])
            else:
                total.setdefault(k, v)
    return total


def evaluate_on_spark(
    loaded: LoadedConfig,
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    target: Target | None,
    *,
    progress: PhaseProgress | None = None,
    workspace: Callable[[LoadedConfig, Mapping[str, str]], ServingWorkspace] | None = None,
    spark: SparkSession | None = None,
) -> tuple[EvalResult, dict[str, Any] | None]:
    """Evaluate every row on Spark; the result is the local runner's, row for row. Also
    returns the judges' call figures, summed over the partitions."""
    cfg = loaded.config
    t0 = time.perf_counter()
    owned = False
    if spark is None:
        spark, owned = session(cfg.spark_master)
    started = time.perf_counter() - t0
    try:
        rows = dataset.rows
        layout = Layout.plan(len(rows), spark.sparkContext.defaultParallelism, cfg.concurrency)
        share = cfg.model_copy(
            update={
                "concurrency": layout.per_task,
                "requests_per_minute": layout.rpm(cfg.requests_per_minute),
            }
        )
        keys = {cfg.api_key_env, cfg.judge_api_key_env, *_SHARED_ENV}
        shipped = Shipped(
            loaded=dataclasses.replace(loaded, config=share),
            input_keys=tuple(rows[0].inputs) if rows else (),
            environ={k: os.environ[k] for k in sorted(keys) if k in os.environ},
            deadline_at=None if (left := limits.remaining()) is None else time.time() + left,
            workspace=workspace,
        )
        collected, seconds = _run_job(spark, shipped, rows, layout, progress)
    finally:
        if owned:
            spark.stop()
    seconds["spark_start"] = started
    results: dict[int, RowResult] = {}
    figures: list[dict[str, Any]] = []
    for index, blob in collected:
        item = pickle.loads(blob)  # noqa: S301 - written by our own partitions, above
        if index < 0:
            figures.append(item)
        elif index in results:
            raise ServiceError(f"Spark returned row {index} twice; the run cannot be trusted")
        else:
            results[index] = item
    missing = [r.where for r in rows if r.index not in results]
    if missing:
        raise ServiceError(
            f"Spark returned no result for {len(missing)} of {len(rows)} rows "
            f"({', '.join(missing[:5])}...)",
            fix="Re-run; if it repeats, check the executors' logs for lost tasks.",
        )
    for fig in figures:
        if fig["cut_short"]:
            limits.mark_cut_short()
        for reason in fig["tripped"]:
            limits.trip(reason)
    ordered = [results[r.index] for r in rows]
    cache = _sum([f["cache"] for f in figures])
    judge = _sum([f["judge"] for f in figures])
    result = assemble(
        dataset,
        scorers,
        target.identity if target is not None else None,
        ordered,
        seconds,
        cache if target is not None and target.remote else None,
    )
    return result, judge


def _run_job(
    spark: SparkSession,
    shipped: Shipped,
    rows: Sequence[EvalRow],
    layout: Layout,
    progress: PhaseProgress | None,
) -> tuple[list[tuple[int, bytes]], dict[str, float]]:
    """Run the partitions; report finished rows while they run; cancel on max-duration."""
    import pandas as pd

    frame = pd.DataFrame(
        {"position": range(len(rows)), "row": [pickle.dumps(r) for r in rows]},
    )
    per = math.ceil(len(rows) / layout.partitions)
    sdf = spark.createDataFrame(frame, schema="position long, row binary")
    # rows in order, `per` to a partition, so a finished task is a known count of rows
    spread = sdf.repartitionByRange(layout.partitions, "position")
    out = spread.mapInPandas(_partition_fn(shipped), schema="index long, result binary")
    group = f"genai-gate-{os.getpid()}-{time.monotonic_ns()}"
    box: list[Any] = []

    def collect() -> None:
        spark.sparkContext.setJobGroup(group, "genai-gate eval", interruptOnCancel=True)
        try:
            box.append([(int(r["index"]), bytes(r["result"])) for r in out.collect()])
        except BaseException as exc:  # handed to the waiting thread
            box.append(exc)

    t0 = time.perf_counter()
    worker = threading.Thread(target=collect, name="genai-gate-spark", daemon=True)
    worker.start()
    tracker = spark.sparkContext.statusTracker()
    reported = -1
    while worker.is_alive():
        worker.join(1.0)
        left = limits.remaining()
        if left is not None and left < -_STRAGGLER_GRACE:
            # the partitions stop at the deadline themselves; one still running this long
            # after it is stuck where no deadline reaches (user code, a model load)
            spark.sparkContext.cancelJobGroup(group)
            limits.mark_cut_short()
            worker.join(30.0)
            raise DeadlineError(
                f"the run reached max-duration ({shipped.loaded.config.max_duration:g} s), and "
                f"a Spark partition was still running {_STRAGGLER_GRACE:g} s later: the Spark "
                "job was cancelled, and no partial results could be gathered",
                fix="Allow more time (max-duration: 3h) or evaluate fewer rows (limit: 200); "
                "if a partition hangs, the executors' logs say where.",
            )
        done = 0
        for job in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else []:
                stage_info = tracker.getStageInfo(stage)
                if stage_info and stage_info.numTasks == layout.partitions:
                    done = max(done, stage_info.numCompletedTasks)
        finished = min(len(rows), done * per)
        if progress is not None and finished != reported:
            progress("model", finished, len(rows))
            reported = finished
    outcome = box[0] if box else ServiceError("the Spark job ended without an answer")
    if isinstance(outcome, BaseException):
        raise ServiceError(
            f"the Spark job failed: {str(outcome).strip().splitlines()[0][:500]}",
            fix="A row's failure is recorded as that row's error, so this is Spark's own "
            "(lost executors, out of memory); the executors' logs say more.",
        ) from None
    if progress is not None:
        progress("model", len(rows), len(rows))
    return outcome, {"evaluate": time.perf_counter() - t0}


@contextlib.contextmanager
def shared_session(master: str | None) -> Iterator[SparkSession]:
    """A session for several evaluations (a benchmark, a test module), stopped after."""
    spark, owned = session(master)
    try:
        yield spark
    finally:
        if owned:
            spark.stop()

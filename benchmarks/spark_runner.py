"""Threads against Spark `local[2]` (issue #17): rows/s, a session's fixed cost, break-even.

    .venv/bin/python benchmarks/spark_runner.py                  # 4,000 rows, then extrapolated
    .venv/bin/python benchmarks/spark_runner.py --rows 100000    # the issue's size (~14 min here)
    .venv/bin/python benchmarks/spark_runner.py --remote-only    # just part 2

1. CPU-bound: a `python:` model that answers at once, scored by `semantic_similarity` (the
   numpy MiniLM of the semantic extra) plus `exact_match` and `token_f1`. Both engines run
   in this process on the same loaded config and rows: `evaluate` (threads) and
   `evaluate_on_spark` on a `local[2]` session. Printed: the session's start-up, a 20-row
   Spark run (the fixed cost of a job: Python workers start, import genai-gate, build the
   model and load MiniLM), rows/s of each engine on `--rows`, and the row count from which
   Spark pays off: fixed / (1/threads_rate - 1/spark_rate), when Spark is the faster one.
2. A remote target at a fixed rate limit: `openai:/fake-model` against the tests' fake
   server (in this process, `--latency` per call), `requests-per-minute: --rpm`, code
   scorers only. The wall time of each engine against rows / limit: a limit is a limit,
   whatever spreads the calls.

It prints the figures and asserts nothing. The machine is shared: run it when it is quiet,
and compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from synthetic import make_rows  # benchmarks/ is the script's folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = """
def predict(question):
    # the reference, reworded a little: semantic_similarity has real work to do
    n = question.rsplit(" ", 1)[-1].rstrip("?")
    return f"It holds {int(n) % 17} marbles, the {question.split()[3]} one"
"""


def _project(root: Path, rows: int, extra: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bench_model.py").write_text(MODEL)
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in make_rows(rows)))
    config = root / "genai-gate.yml"
    config.write_text("data: qa.jsonl\nconcurrency: 8\ncache: false\n" + extra)
    return config


def _prepared(config: Path, workspace: Any = None) -> tuple[Any, Any, Any, Any]:
    from genai_gate.commands.eval import check_inputs
    from genai_gate.config import load_config
    from genai_gate.targets import resolve_target

    loaded = load_config(str(config), environ={})
    scorers, dataset = check_inputs(loaded, [])
    assert loaded.config.model is not None
    target = resolve_target(
        loaded.config.model, loaded, input_keys=["question"], workspace=workspace
    )
    return loaded, dataset, scorers, target


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def cpu_bound(spark: Any, rows: int, tmp: Path) -> None:
    from genai_gate.evaluate import evaluate
    from genai_gate.spark_runner import evaluate_on_spark

    extra = (
        "model: python:bench_model:predict\nscorers: [semantic_similarity, exact_match, token_f1]\n"
    )
    small = _prepared(_project(tmp / "small", 20, extra))
    _, fixed = _timed(lambda: evaluate_on_spark(*small, spark=spark))
    print(f"  a 20-row Spark job (workers start, import, build model and MiniLM): {fixed:.1f} s")
    big = _prepared(_project(tmp / "big", rows, extra))
    local, t_local = _timed(lambda: evaluate(*big))
    (on_spark, _), t_spark = _timed(lambda: evaluate_on_spark(*big, spark=spark))
    gap = max(abs(local.metrics[k] - on_spark.metrics[k]) for k in local.metrics)
    rows_gap = max(
        abs((a.scores.get(k) or 0.0) - (b.scores.get(k) or 0.0))
        for a, b in zip(local.rows, on_spark.rows, strict=True)
        for k in a.scores
    )
    r_local, r_spark = rows / t_local, rows / t_spark
    print(f"  {rows} rows, threads (concurrency 8): {t_local:.1f} s = {r_local:.0f} rows/s")
    print(f"  {rows} rows, Spark local[2]:          {t_spark:.1f} s = {r_spark:.0f} rows/s")
    # MiniLM embeds each partition's texts in its own batches: float32 sums in another order
    print(f"  largest metric difference: {gap:.2g}; largest row score difference: {rows_gap:.2g}")
    if rows < 100_000:
        print(
            f"  extrapolated to 100,000 rows: threads {100_000 / r_local:.0f} s, "
            f"Spark {100_000 / r_spark:.0f} s (+ session start)"
        )
    if r_spark > r_local:
        even = fixed / (1 / r_local - 1 / r_spark)
        print(f"  Spark pays off from about {even:,.0f} rows on this machine")
    else:
        print("  on these cores Spark does not overtake threads: it pays off only with more cores")


def remote(spark: Any, rows: int, rpm: float, latency: float, tmp: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAI

    from genai_gate.evaluate import evaluate
    from genai_gate.spark_runner import evaluate_on_spark

    with FakeOpenAI(api_key="sk-bench", latency=latency) as server:
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        extra = (
            f"model: openai:/fake-model\nbase-url: {server.base_url}\n"
            f"requests-per-minute: {rpm}\nscorers: [exact_match, token_f1]\n"
        )
        prepared = _prepared(_project(tmp / "remote", rows, extra))
        limit = rows / (rpm / 60)
        print(f"  {rows} rows at {rpm:g} requests/min: rows / limit = {limit:.1f} s")
        _, t_local = _timed(lambda: evaluate(*prepared))
        print(f"  threads:          {t_local:.1f} s ({t_local / limit:.2f} x the limit)")
        _, t_spark = _timed(lambda: evaluate_on_spark(*prepared, spark=spark))
        print(f"  Spark local[2]:   {t_spark:.1f} s ({t_spark / limit:.2f} x the limit)")
        print(f"  calls: {server.answered}, max in flight {server.max_in_flight}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--remote-rows", type=int, default=200)
    parser.add_argument("--rpm", type=float, default=1200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--remote-only", action="store_true")
    args = parser.parse_args()

    from genai_gate.spark_runner import session
    from genai_gate.tracking import tracking_env

    # what `genai-gate eval` sets first (run_eval), before the session's workers start: with
    # MLflow's telemetry on, every scorer call would also walk the stack (inspect.stack)
    for key, value in tracking_env().items():
        os.environ.setdefault(key, value)
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        (spark, owned), started = _timed(lambda: session("local[2]"))
        print(f"Spark local[2] session start: {started:.1f} s")
        try:
            if not args.remote_only:
                print("1. CPU-bound scoring (semantic_similarity + 2 code scorers)")
                cpu_bound(spark, args.rows, Path(tmp))
            print("2. a remote target at a fixed rate limit")
            remote(spark, args.remote_rows, args.rpm, args.latency, Path(tmp))
        finally:
            if owned:
                spark.stop()
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

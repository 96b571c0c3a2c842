"""Canary analysis over a large local inference table: wall time and peak RSS (issue #7).

    uv run python benchmarks/canary_analysis.py                      # 1M and 10M rows
    uv run python benchmarks/canary_analysis.py --rows 1000000 --repeat 1 --keep
    uv run python benchmarks/canary_analysis.py --threads 1 --explain

For each size it writes (once; `--keep` keeps it for the next run) synthetic rows of the AI
Gateway payload table (tests/fakes/databricks.py PAYLOAD_COLUMNS) for the endpoint `bot`,
two served entities (90/10, different error rates and latencies, short request/response
JSON), as `<data>/main.mon.bot_payload/part-*.parquet` (1M rows a file), plus the copy of
the system table `<data>/system.serving.served_entities.parquet`. The columns are made with
numpy and pyarrow one file at a time: no list or DataFrame of all the rows is ever built.

Then, in a fresh process per run (so its peak RSS is that run's alone), what `genai-gate
analyze --inference-data ...` does with the table: `local_source(...)`, `stats(endpoint, since_ms)`
and `sample(...)` of `--sample` rows for each served entity. The child prints JSON: its RSS
after importing genai_gate.backends.databricks.inference_table and duckdb (the baseline),
the wall time of each step, its peak RSS (VmHWM; see _peak_kib), DuckDB's threads and
memory_limit, and whether pandas, pyarrow or numpy were ever imported. The parent checks the
counts against what it generated and prints a table with the targets (10M rows: analysis
under 10 s, peak RSS under 1 GiB).

"Never loaded whole": the table's in-memory size (Arrow, and pandas' `memory_usage(deep=True)`
of a slice, scaled) is printed next to the peak RSS; the child never imports pandas.

It asserts nothing. Exit 0 when the measurement ran, 2 when a process failed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path("/tmp/genai-gate-bench/canary")
DATA_VERSION = 1  # bump when the generated data changes, so old caches are not reused

ENDPOINT = "bot"
PAYLOAD_DIR = "main.mon.bot_payload"
ENTITIES_FILE = "system.serving.served_entities.parquet"
ROWS_PER_FILE = 1_000_000
SEED = 7
START = datetime(2025, 6, 1, tzinfo=UTC)  # the first request; the rollout starts an hour later
SPAN = timedelta(hours=25)
SINCE = START + timedelta(hours=1)
MAX_MS = 120_000  # durations are clipped here (the histogram for exact percentiles)

TARGET_S = 10.0  # 10M rows
TARGET_RSS_MIB = 1024.0
TARGET_ROWS = 10_000_000


# ---------------------------------------------------------------- the two served entities


ENTITIES: list[dict[str, Any]] = [
    # share of routed rows, error rate, logging-error rate, latency (median ms, sigma)
    {
        "id": "0b9f6a1e-5d4c-4a3b-9e2f-1c7d8e9f0a11",
        "name": "bot-champion",
        "version": "3",
        "share": 0.9,
        "errors": 0.005,
        "logging": 0.001,
        "median_ms": 600.0,
        "sigma": 0.45,
    },
    {
        "id": "7c2e4b9a-3f1d-4e8c-b6a5-2d9e0f1a2b22",
        "name": "bot-challenger",
        "version": "4",
        "share": 0.1,
        "errors": 0.02,
        "logging": 0.003,
        "median_ms": 720.0,
        "sigma": 0.6,
    },
]
UNROUTED = 0.002  # 429s rejected before routing: served_entity_id is null
OTHER_ENDPOINT_ID = "9d8c7b6a-5e4f-4a3b-8c2d-1e0f9a8b7c33"  # in the system table only

TOPICS = [
    "Where is my order",
    "How do I reset my password for account",
    "Can I change the delivery address of order",
    "Why was I charged twice for invoice",
    "Cancel my subscription",
    "What is the refund status of ticket",
    "Is the blue jacket in stock, item",
    "Talk to a human about case",
]
ANSWERS = [
    "Your order ships on Tuesday",
    "I sent a reset link to your e-mail",
    "The address can change until the parcel ships",
    "The second charge is a hold and drops off in 3 days",
    "Your subscription ends at the close of this billing period",
    "The refund was issued and takes 5 to 7 days",
    "It is in stock in sizes S to XL",
    "A colleague will reply within the hour",
]
REQUESTERS = [
    "a1b2c3d4-0000-4000-8000-000000000001",
    "a1b2c3d4-0000-4000-8000-000000000002",
    "user@example.com",
]


# ---------------------------------------------------------------- generating the data


def _fixed_strings(chars: npt.NDArray[np.uint8]) -> Any:
    """An Arrow string array over an (n, width) uint8 array, without a Python object per row."""
    import numpy as np
    import pyarrow as pa

    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    data = np.ascontiguousarray(chars)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _uuids(rng: np.random.Generator, n: int) -> Any:
    import numpy as np

    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = hexdigits[rng.integers(0, 16, size=(n, 32), dtype=np.uint8)]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)):
        width = {0: 8, 20: 12}.get(src, 4)
        out[:, dst : dst + width] = digits[:, src : src + width]
    out[:, 14] = ord("4")  # a version-4 uuid
    return _fixed_strings(out)


def _chunk(
    rng: np.random.Generator,
    n: int,
    t0_us: int,
    t1_us: int,
    since_us: int,
    tally: dict[str, Any],
) -> Any:
    """One file's rows as an Arrow table; `tally` gets the expected aggregates."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    times = np.sort(rng.integers(t0_us, t1_us, size=n, dtype=np.int64))
    u = rng.random(n)
    which = np.where(u < ENTITIES[0]["share"] * (1 - UNROUTED), 0, 1).astype(np.int8)
    which[u >= 1 - UNROUTED] = -1
    status = np.full(n, 200, dtype=np.int32)
    durations = np.zeros(n, dtype=np.int64)
    logging = np.zeros(n, dtype=bool)
    for i, ent in enumerate(ENTITIES):
        mask = which == i
        k = int(mask.sum())
        failed = rng.random(k) < ent["errors"]
        status[np.flatnonzero(mask)[failed]] = rng.choice(
            np.array([500, 503, 400], dtype=np.int32), size=int(failed.sum())
        )
        durations[mask] = np.clip(
            np.rint(rng.lognormal(np.log(ent["median_ms"]), ent["sigma"], size=k)), 1, MAX_MS
        ).astype(np.int64)
        logging[mask] = rng.random(k) < ent["logging"]
    unrouted = which == -1
    status[unrouted] = 429
    durations[unrouted] = rng.integers(1, 5, size=int(unrouted.sum()))

    after = times >= since_us
    for i, ent in enumerate(ENTITIES):
        mask = (which == i) & after
        t = tally[ent["name"]]
        t["requests"] += int(mask.sum())
        t["errors"] += int((mask & (status != 200)).sum())
        t["logging_errors"] += int((mask & logging).sum())
        t["hist"] += np.bincount(durations[mask], minlength=MAX_MS + 1)
    tally["unrouted"] += int(unrouted.sum())

    number = pc.cast(pa.array(rng.integers(100_000, 1_000_000, size=n)), pa.string())
    topic = rng.integers(0, len(TOPICS), size=n)
    question = pa.array(TOPICS).take(pa.array(topic))
    answer = pa.array(ANSWERS).take(pa.array(topic))
    request = pc.binary_join_element_wise(
        '{"messages": [{"role": "user", "content": "', question, " ", number, '?"}]}', ""
    )
    response = pc.binary_join_element_wise(
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": "',
        answer,
        " (ref ",
        number,
        ')."}, "finish_reason": "stop"}], "object": "chat.completion"}',
        "",
    )
    failed_or_429 = pa.array(status != 200)
    response = pc.if_else(failed_or_429, pa.scalar(None, pa.string()), response)

    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(logging, out=offsets[1:])
    codes = pa.ListArray.from_arrays(
        pa.array(offsets),
        pa.array(["MAX_RESPONSE_SIZE_EXCEEDED"]).take(pa.array(np.zeros(offsets[-1], np.int32))),
    )
    entity_ids = pa.array([e["id"] for e in ENTITIES] + [None], pa.string())
    columns = {
        "databricks_request_id": _uuids(rng, n),
        "request_date": pa.array((times // 86_400_000_000).astype(np.int32), pa.date32()),
        "client_request_id": pa.nulls(n, pa.string()),
        "request_time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "status_code": pa.array(status, pa.int32()),
        "sampling_fraction": pa.array(np.ones(n)),
        "execution_duration_ms": pa.array(durations, pa.int64()),
        "request": request,
        "response": response,
        "logging_error_codes": codes,
        "served_entity_id": entity_ids.take(pa.array(np.where(which < 0, 2, which))),
        "requester": pa.array(REQUESTERS).take(pa.array(rng.integers(0, len(REQUESTERS), size=n))),
    }
    return pa.table(columns)


def _entities_table() -> Any:
    import pyarrow as pa

    rows = []
    for ent, (endpoint, eid) in zip(
        [*ENTITIES, {"name": "other-model", "version": "1"}],
        [
            (ENDPOINT, ENTITIES[0]["id"]),
            (ENDPOINT, ENTITIES[1]["id"]),
            ("other", OTHER_ENDPOINT_ID),
        ],
        strict=True,
    ):
        rows.append(
            {
                "served_entity_id": eid,
                "account_id": "acc-0001",
                "workspace_id": "1234567890",
                "created_by": "genai-gate@example.com",
                "endpoint_name": endpoint,
                "endpoint_id": f"ep-{endpoint}",
                "served_entity_name": ent["name"],
                "entity_type": "CUSTOM_MODEL",
                "entity_name": f"main.models.{endpoint}",
                "entity_version": ent["version"],
                "endpoint_config_version": int(ent["version"]),
                "task": "llm/v1/chat",
                "external_model_config": None,
                "foundation_model_config": None,
                "custom_model_config": {
                    "min_concurrency": 0,
                    "max_concurrency": 4,
                    "compute_type": "CPU",
                },
                "feature_spec_config": None,
                "change_time": START,
                "endpoint_delete_time": None,
            }
        )
    text = [
        "served_entity_id",
        "account_id",
        "workspace_id",
        "created_by",
        "endpoint_name",
        "endpoint_id",
        "served_entity_name",
        "entity_type",
        "entity_name",
        "entity_version",
    ]
    schema = pa.schema(
        [
            *((name, pa.string()) for name in text),
            ("endpoint_config_version", pa.int32()),
            ("task", pa.string()),
            ("external_model_config", pa.string()),
            ("foundation_model_config", pa.string()),
            (
                "custom_model_config",
                pa.struct(
                    [
                        ("min_concurrency", pa.int64()),
                        ("max_concurrency", pa.int64()),
                        ("compute_type", pa.string()),
                    ]
                ),
            ),
            ("feature_spec_config", pa.string()),
            ("change_time", pa.timestamp("us", tz="UTC")),
            ("endpoint_delete_time", pa.timestamp("us", tz="UTC")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _quantile(hist: npt.NDArray[np.int64], q: float) -> int:
    """The exact nearest-rank quantile of integer durations from their histogram."""
    import numpy as np

    cum = np.cumsum(hist)
    return int(np.searchsorted(cum, max(1, int(np.ceil(q * cum[-1])))))


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def generate(folder: Path, rows: int, row_group: int) -> dict[str, Any]:
    """Write the payload files and the system table; return the manifest."""
    import numpy as np
    import pyarrow.parquet as pq

    t_start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    payload = folder / PAYLOAD_DIR
    payload.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    start_us = int(START.timestamp() * 1_000_000)
    span_us = int(SPAN.total_seconds() * 1_000_000)
    since_us = int(SINCE.timestamp() * 1_000_000)
    tally: dict[str, Any] = {
        e["name"]: {
            "requests": 0,
            "errors": 0,
            "logging_errors": 0,
            "hist": np.zeros(MAX_MS + 1, dtype=np.int64),
        }
        for e in ENTITIES
    }
    tally["unrouted"] = 0
    arrow_bytes = 0
    pandas_bytes_per_row = 0.0
    files = (rows + ROWS_PER_FILE - 1) // ROWS_PER_FILE
    done = 0
    for i in range(files):
        n = min(ROWS_PER_FILE, rows - done)
        t0 = start_us + span_us * done // rows
        t1 = start_us + span_us * (done + n) // rows
        table = _chunk(rng, n, t0, t1, since_us, tally)
        arrow_bytes += int(table.nbytes)
        if i == 0:
            # what pandas would hold: memory_usage(deep=True) of a slice, per row
            part = table.slice(0, min(n, 100_000))
            frame = part.to_pandas()
            pandas_bytes_per_row = float(frame.memory_usage(deep=True).sum()) / part.num_rows
            del frame, part
        pq.write_table(
            table,
            payload / f"part-{i:05d}.parquet",
            row_group_size=row_group,
            compression="snappy",
        )
        done += n
        del table
        if sys.stdout.isatty():
            print(f"   wrote {done:,} / {rows:,} rows", end="\r", flush=True)
    if sys.stdout.isatty():
        print()
    pq.write_table(_entities_table(), folder / ENTITIES_FILE)
    expected: dict[str, Any] = {}
    for ent in ENTITIES:
        t = tally[ent["name"]]
        hist = t.pop("hist")
        expected[ent["name"]] = {
            **t,
            "p50": _quantile(hist, 0.5),
            "p95": _quantile(hist, 0.95),
            "p99": _quantile(hist, 0.99),
        }
    manifest = {
        "version": DATA_VERSION,
        "rows": rows,
        "row_group": row_group,
        "files": files,
        "since": SINCE.strftime("%Y-%m-%d %H:%M:%S"),
        "expected": expected,
        "unrouted": tally["unrouted"],
        "disk_bytes": _du(folder),
        "arrow_bytes": arrow_bytes,
        "pandas_bytes": int(pandas_bytes_per_row * rows),
        "generate_s": time.perf_counter() - t_start,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def dataset(
    rows: int, row_group: int, cache: Path, regenerate: bool
) -> tuple[Path, dict[str, Any], bool]:
    """The cached data set for this size, generated when missing; True when generated now."""
    folder = cache / f"rows-{rows}-rg-{row_group}-v{DATA_VERSION}"
    manifest_file = folder / "manifest.json"
    if manifest_file.exists() and not regenerate:
        manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        return folder, manifest, False
    print(f"== generating {rows:,} rows into {folder}")
    return folder, generate(folder, rows, row_group), True


# ---------------------------------------------------------------- the child: one analysis


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss_now_kib() -> int:
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    """This process's peak RSS (VmHWM), in KiB.

    Not getrusage's ru_maxrss: Linux carries it across fork and exec, so a child started by
    a parent holding 800 MiB (the generator, after writing a file) reports at least 800 MiB.
    VmHWM belongs to the address space that exec created (the child's JSON keeps both).
    """
    return _status_kib("VmHWM")


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads: less noisy than wall time on a
    shared machine."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def child(folder: Path, since: str, threads: int | None, k: int, explain: bool) -> int:
    t_import = time.perf_counter()
    import duckdb  # the engine imports it on first use; count it in the baseline

    from genai_gate.backends.databricks.inference_table import stats_sql
    from genai_gate.backends.databricks.local_table import DuckEngine, local_source

    import_s = time.perf_counter() - t_import
    base_rss = _rss_now_kib()

    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    source = local_source(str(folder / PAYLOAD_DIR), folder, {})
    engine = source.engine
    assert isinstance(engine, DuckEngine)
    if threads is not None:
        engine.con.execute(f"SET threads = {int(threads)}")
    t1 = time.perf_counter()
    since_ms = int(
        datetime.strptime(since, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000
    )
    stats = source.stats(ENDPOINT, since_ms)
    t2 = time.perf_counter()
    stats_peak = _peak_kib()
    samples = {name: source.sample(ENDPOINT, name, since_ms, k) for name in sorted(stats)}
    t3 = time.perf_counter()
    cpu = _cpu_s() - cpu0
    peak = _peak_kib()

    setting = engine.con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    plan = ""
    if explain:
        sql = stats_sql("gateway", source.payload, source.entities)
        text = sql.replace(":endpoint", f"'{ENDPOINT}'").replace(":since_ms", str(since_ms))
        rows = engine.con.execute("EXPLAIN ANALYZE " + text).fetchall()
        plan = "\n".join(str(r[-1]) for r in rows)
    out = {
        "duckdb": duckdb.__version__,
        "threads": setting[0] if setting else None,
        "memory_limit": setting[1] if setting else None,
        "import_s": import_s,
        "open_s": t1 - t0,
        "stats_s": t2 - t1,
        "sample_s": t3 - t2,
        "analysis_s": t3 - t0,
        "cpu_s": cpu,
        "baseline_rss_kib": base_rss,
        "stats_peak_kib": stats_peak,
        "peak_kib": peak,
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "stats": {
            name: {
                "requests": e.requests,
                "errors": e.errors,
                "logging_errors": e.logging_errors,
                "p50": e.p50_ms,
                "p95": e.p95_ms,
                "p99": e.p99_ms,
            }
            for name, e in stats.items()
        },
        "samples": {name: len(v) for name, v in samples.items()},
        "sample_first": {name: v[0].request[:80] if v else None for name, v in samples.items()},
        # the analysis path must not need any of these: only aggregates come back, as tuples
        "imported": {m: m in sys.modules for m in ("pandas", "pyarrow", "numpy", "polars")},
        "plan": plan,
    }
    print(json.dumps(out))
    return 0


def run_child(
    folder: Path,
    manifest: dict[str, Any],
    threads: int | None,
    k: int,
    explain: bool,
    src: Path,
) -> dict[str, Any] | None:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        str(folder),
        "--since",
        str(manifest["since"]),
        "--sample",
        str(k),
    ]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if explain:
        argv.append("--explain")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        print(f"ERROR: the analysis process exited {done.returncode}:\n{done.stderr[-3000:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


# ---------------------------------------------------------------- the report


def _mib(kib: float) -> float:
    return kib / 1024.0


def check_counts(manifest: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Differences between what was generated and what stats() returned."""
    problems = []
    for name, want in manifest["expected"].items():
        have = got.get(name)
        if have is None:
            problems.append(f"{name}: missing from stats()")
            continue
        for key in ("requests", "errors", "logging_errors"):
            if have[key] != want[key]:
                problems.append(f"{name}: {key} {have[key]} != {want[key]} generated")
    if set(got) - set(manifest["expected"]):
        problems.append(f"unexpected entities: {sorted(set(got) - set(manifest['expected']))}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="sizes (1M 10M)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="SET threads in DuckDB (default: backends/files.py's connect())",
    )
    parser.add_argument("--repeat", type=int, default=3, help="analysis runs per size (3)")
    parser.add_argument("--sample", type=int, default=50, help="sample per entity (50)")
    parser.add_argument(
        "--row-group", type=int, default=ROWS_PER_FILE, help="Parquet row-group rows (1M)"
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"data folder ({CACHE})")
    parser.add_argument(
        "--keep", action="store_true", help="keep generated data for the next run (the cache)"
    )
    parser.add_argument("--regenerate", action="store_true", help="ignore a cached data set")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of stats")
    parser.add_argument(
        "--src",
        type=Path,
        default=REPO / "src",
        help="import genai_gate from this folder (a modified copy, to measure a change)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.since, args.threads, args.sample, args.explain)
    if not 0 < args.row_group <= ROWS_PER_FILE:
        parser.error(f"--row-group must be 1..{ROWS_PER_FILE}")

    print(f"== canary analysis benchmark, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    rows_out = []
    failed = False
    generated: list[Path] = []
    for rows in args.rows:
        folder, manifest, fresh = dataset(rows, args.row_group, args.cache, args.regenerate)
        if fresh:
            generated.append(folder)
        gen = f"{manifest['generate_s']:.1f}" + ("" if fresh else " (cached)")
        print(
            f"== {rows:,} rows: {manifest['files']} files, {manifest['disk_bytes'] / 2**20:,.0f} "
            f"MiB on disk; in memory {manifest['arrow_bytes'] / 2**20:,.0f} MiB as Arrow, "
            f"~{manifest['pandas_bytes'] / 2**20:,.0f} MiB as pandas; generation {gen} s"
        )
        results = []
        for r in range(args.repeat):
            res = run_child(
                folder, manifest, args.threads, args.sample, args.explain and r == 0, args.src
            )
            if res is None:
                failed = True
                break
            results.append(res)
            problems = check_counts(manifest, res["stats"])
            problems += [
                f"{name}: sample() returned {got} rows, not {args.sample}"
                for name, got in res["samples"].items()
                if got != args.sample
            ]
            print(
                f"   run {r + 1}: analysis {res['analysis_s']:.2f} s (open {res['open_s']:.2f}, "
                f"stats {res['stats_s']:.2f}, samples {res['sample_s']:.2f}; "
                f"CPU {res['cpu_s']:.2f} s); process {res['process_s']:.2f} s; "
                f"peak RSS {_mib(res['peak_kib']):.0f} MiB "
                f"({_mib(res['stats_peak_kib']):.0f} after stats), "
                f"baseline {_mib(res['baseline_rss_kib']):.0f} MiB; "
                f"counts {'match' if not problems else 'DIFFER'}"
            )
            for p in problems:
                print(f"   WARNING: {p}")
            if res["plan"]:
                print(res["plan"])
        if not results:
            continue
        last = results[-1]
        print(
            f"   DuckDB {last['duckdb']}: threads {last['threads']}, memory_limit "
            f"{last['memory_limit']}; imported by the analysis: "
            + ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in last["imported"].items())
        )
        print(
            f"   {'entity':16} {'requests':>10} {'errors':>8} {'log err':>8} "
            f"{'p50':>12} {'p95':>12} {'p99':>12}   (got / exact)"
        )
        for name, want in manifest["expected"].items():
            have = last["stats"].get(name, {})
            print(
                f"   {name:16} {have.get('requests', 0):>10,} {have.get('errors', 0):>8,} "
                f"{have.get('logging_errors', 0):>8,} "
                + " ".join(f"{have.get(q) or 0:>6.0f}/{want[q]:<5}" for q in ("p50", "p95", "p99"))
            )
        walls = [x["analysis_s"] for x in results]
        peaks = [_mib(x["peak_kib"]) for x in results]
        rows_out.append(
            {
                "rows": rows,
                "disk": manifest["disk_bytes"] / 2**20,
                "arrow": manifest["arrow_bytes"] / 2**20,
                "pandas": manifest["pandas_bytes"] / 2**20,
                "gen": gen,
                "wall_min": min(walls),
                "wall_med": statistics.median(walls),
                "wall_max": max(walls),
                "process": statistics.median(x["process_s"] for x in results),
                "cpu": statistics.median(x["cpu_s"] for x in results),
                "peak": max(peaks),
                "delta": max(_mib(x["peak_kib"] - x["baseline_rss_kib"]) for x in results),
                "base": _mib(last["baseline_rss_kib"]),
                "threads": last["threads"],
            }
        )

    if rows_out:
        print()
        print(
            "| rows | on disk MiB | Arrow / pandas MiB | generation s "
            "| analysis s (min / med / max) | CPU s | process s | peak RSS MiB | RSS delta MiB "
            "| threads | targets |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for o in rows_out:
            if o["rows"] >= TARGET_ROWS:
                ok_s = o["wall_max"] < TARGET_S
                ok_m = o["peak"] < TARGET_RSS_MIB
                target = (
                    f"< {TARGET_S:g} s: {'met' if ok_s else 'MISSED'}; "
                    f"< 1 GiB: {'met' if ok_m else 'MISSED'}"
                )
            else:
                target = f"< 1 GiB: {'met' if o['peak'] < TARGET_RSS_MIB else 'MISSED'}"
            print(
                f"| {o['rows']:,} | {o['disk']:,.0f} | {o['arrow']:,.0f} / {o['pandas']:,.0f} | "
                f"{o['gen']} | {o['wall_min']:.2f} / {o['wall_med']:.2f} / {o['wall_max']:.2f} | "
                f"{o['cpu']:.2f} | {o['process']:.2f} | "
                f"{o['peak']:.0f} | {o['delta']:.0f} | {o['threads']} | {target} |"
            )
        print(
            "baseline RSS after importing duckdb and "
            "genai_gate.backends.databricks.inference_table: "
            f"{rows_out[-1]['base']:.0f} MiB; RSS delta = peak - baseline"
        )

    if args.keep:
        for folder in generated:
            print(f"kept: {folder}")
    else:
        for folder in generated:
            shutil.rmtree(folder, ignore_errors=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Canary analysis over KServe's logged inference events: wall time and peak RSS (issue #15).

    uv run python benchmarks/kserve_analysis.py                      # 1M and 10M pairs
    uv run python benchmarks/kserve_analysis.py --pairs 1000000 --repeat 1 --keep

For each size it writes (once; `--keep` keeps it for the next run) the CloudEvents that
KServe's agent logs (tests/fakes/kserve/FACTS.md section 4) for the InferenceService `bot`:
two revisions routed 90/10 (different error and latency profiles), a request event and, for
a call that answered 200, a response event sharing its id, as Parquet parts with the sink's
columns (`<data>/part-*.parquet`, 1M pairs a file), over 25 hours of which the first is
before `since`. Some requests were not logged (a response alone: a logging error), and 1% of
the events belong to another service on the same sink. Columns are made with numpy and
pyarrow one file at a time.

Then, in a fresh process per run (so its peak RSS is that run's alone), what `genai-gate
analyze` does with `inference-log:` pointing at the folder: `LoggedEvents(...)`,
`stats(endpoint, since_ms)` and `sample(...)` of `--sample` exchanges per revision. The child prints
JSON; the parent checks the counts against what it generated and prints a table with the
targets (10M pairs: analysis under 10 s, peak RSS under 1 GiB).

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path("/tmp/genai-gate-bench/kserve")
DATA_VERSION = 1

SERVICE = "bot"
NAMESPACE = "models"
PAIRS_PER_FILE = 1_000_000
SEED = 11
START = datetime(2026, 6, 1, tzinfo=UTC)
SPAN = timedelta(hours=25)
SINCE = START + timedelta(hours=1)
TARGET_S = 10.0
TARGET_RSS_MIB = 1024.0
TARGET_PAIRS = 10_000_000
REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"

REVISIONS: list[dict[str, Any]] = [
    # share, failed calls (no response), requests not logged, latency (median ms, sigma)
    {
        "name": "bot-predictor-00001",
        "share": 0.9,
        "errors": 0.005,
        "unlogged": 0.001,
        "median_ms": 600.0,
        "sigma": 0.45,
    },
    {
        "name": "bot-predictor-00002",
        "share": 0.1,
        "errors": 0.02,
        "unlogged": 0.003,
        "median_ms": 720.0,
        "sigma": 0.6,
    },
]
PODS = ["5c867f557c-nlsrf", "5c867f557c-x2k9p", "77d9b8c6f4-q8w2e"]
OTHER_SHARE = 0.01  # events of another InferenceService on the same sink
PROMPTS = [
    "Where is my order",
    "How do I reset my password",
    "Can I change the delivery address",
    "Why was I charged twice",
    "Cancel my subscription",
    "What is the refund status",
    "Is the blue jacket in stock",
    "Talk to a human",
]


def _strings(rows: npt.NDArray[np.uint8]) -> Any:
    """An Arrow string array over an (n, width) uint8 array, without a Python object per row."""
    import numpy as np
    import pyarrow as pa

    n, width = rows.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(rows))]
    )


def _uuids(rng: np.random.Generator, n: int) -> Any:
    import numpy as np

    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    digits = hexdigits[rng.integers(0, 16, size=(n, 32), dtype=np.uint8)]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        out[:, dst : dst + width] = digits[:, src : src + width]
    out[:, 14] = ord("4")
    return _strings(out)


def _times(us: npt.NDArray[np.int64]) -> Any:
    import numpy as np
    import pyarrow as pa

    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return pa.array(np.char.add(text.astype(str), "Z"), type=pa.string())


def _chunk(rng: np.random.Generator, n: int, t0: int, t1: int, since: int, tally: Any) -> Any:
    """One file: n pairs as events; `tally` gets the expected aggregates."""
    import numpy as np
    import pyarrow as pa

    asked = np.sort(rng.integers(t0, t1, size=n, dtype=np.int64))
    other = rng.random(n) < OTHER_SHARE
    which = np.where(rng.random(n) < REVISIONS[0]["share"], 0, 1)
    latency_ms = np.zeros(n)
    failed = np.zeros(n, dtype=bool)
    unlogged = np.zeros(n, dtype=bool)
    for i, rev in enumerate(REVISIONS):
        mask = which == i
        k = int(mask.sum())
        latency_ms[mask] = np.clip(rng.lognormal(np.log(rev["median_ms"]), rev["sigma"], k), 1, 1e5)
        failed[mask] = rng.random(k) < rev["errors"]
        unlogged[mask] = rng.random(k) < rev["unlogged"]
    answered = asked + np.rint(latency_ms * 1000).astype(np.int64)
    has_request = ~unlogged
    has_response = ~failed
    # the expected figures, windowed per event as the reader does
    req_in = has_request & (asked >= since) & ~other
    res_in = has_response & (answered >= since) & ~other
    for i, rev in enumerate(REVISIONS):
        mask = which == i
        t = tally[rev["name"]]
        t["requests"] += int((mask & (req_in | res_in)).sum())
        t["errors"] += int((mask & req_in & ~res_in).sum())
        t["logging_errors"] += int((mask & ~req_in & res_in).sum())
        t["latencies"].append((answered - asked)[mask & req_in & res_in] / 1000.0)

    ids = _uuids(rng, n)
    rev_names = np.array([r["name"] for r in REVISIONS], dtype=object)
    pod = np.array(PODS, dtype=object)[rng.integers(0, len(PODS), size=n)]
    source = np.char.add(np.char.add(rev_names[which].astype(str), "-deployment-"), pod.astype(str))
    service = np.where(other, "other-bot", SERVICE)
    prompt = rng.integers(0, len(PROMPTS), size=n)
    number = rng.integers(100_000, 1_000_000, size=n).astype(str)
    asks = np.char.add(
        np.char.add('{"messages": [{"role": "user", "content": "', np.array(PROMPTS)[prompt]),
        np.char.add(np.char.add(" ", number), '?"}]}'),
    )
    replies = np.char.add(
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": "Answer ',
        np.char.add(number, '"}, "finish_reason": "stop"}]}'),
    )

    def events(kind: str, mask: npt.NDArray[np.bool_], times: Any, data: Any) -> Any:
        rows = int(mask.sum())
        when = _times(times[mask])
        return pa.table(
            {
                "specversion": pa.array(["1.0"] * rows),
                "id": ids.filter(pa.array(mask)),
                "type": pa.array([kind] * rows),
                "source": pa.array(source[mask], type=pa.string()),
                "time": when,
                "datacontenttype": pa.array(["application/json"] * rows),
                "recordedtime": when,
                "inferenceservicename": pa.array(service[mask], type=pa.string()),
                "namespace": pa.array([NAMESPACE] * rows),
                "component": pa.array(["predictor"] * rows),
                "endpoint": pa.array([""] * rows),
                "metadata": pa.array(["{}"] * rows),
                "data": pa.array(data[mask], type=pa.string()),
            }
        )

    return pa.concat_tables(
        [
            events(REQUEST, has_request, asked, asks),
            events(RESPONSE, has_response, answered, replies),
        ]
    )


def generate(folder: Path, pairs: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    t_start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    events_dir = folder / "events"  # what the sink wrote; the manifest stays beside it
    events_dir.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    start_us = int(START.timestamp() * 1e6)
    span_us = int(SPAN.total_seconds() * 1e6)
    since_us = int(SINCE.timestamp() * 1e6)
    tally: dict[str, Any] = {
        r["name"]: {"requests": 0, "errors": 0, "logging_errors": 0, "latencies": []}
        for r in REVISIONS
    }
    events = 0
    done = 0
    files = (pairs + PAIRS_PER_FILE - 1) // PAIRS_PER_FILE
    for i in range(files):
        n = min(PAIRS_PER_FILE, pairs - done)
        t0 = start_us + span_us * done // pairs
        t1 = start_us + span_us * (done + n) // pairs
        table = _chunk(rng, n, t0, t1, since_us, tally)
        events += table.num_rows
        pq.write_table(table, events_dir / f"part-{i:05d}.parquet", row_group_size=1_000_000)
        done += n
        del table
        if sys.stdout.isatty():
            print(f"   wrote {done:,} / {pairs:,} pairs", end="\r", flush=True)
    if sys.stdout.isatty():
        print()
    expected = {}
    for name, t in tally.items():
        lat = np.concatenate(t.pop("latencies"))
        expected[name] = {
            **t,
            "p50": float(np.quantile(lat, 0.5)),
            "p95": float(np.quantile(lat, 0.95)),
        }
    manifest = {
        "version": DATA_VERSION,
        "pairs": pairs,
        "events": events,
        "files": files,
        "since_ms": int(SINCE.timestamp() * 1000),
        "expected": expected,
        "disk_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        "generate_s": time.perf_counter() - t_start,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def dataset(pairs: int, cache: Path, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    folder = cache / f"pairs-{pairs}-v{DATA_VERSION}"
    manifest_file = folder / "manifest.json"
    if manifest_file.exists() and not regenerate:
        return folder, json.loads(manifest_file.read_text())
    print(f"== generating {pairs:,} pairs into {folder}")
    return folder, generate(folder, pairs)


# ---------------------------------------------------------------- the child: one analysis


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child(folder: Path, since_ms: int, k: int) -> int:
    t_import = time.perf_counter()
    import duckdb

    from genai_gate.backends.kserve.logs import LoggedEvents

    import_s = time.perf_counter() - t_import
    base = _status_kib("VmRSS")
    use = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = use.ru_utime + use.ru_stime
    t0 = time.perf_counter()
    logs = LoggedEvents(str(folder / "events"), folder, NAMESPACE)
    stats = logs.stats(SERVICE, since_ms)
    t1 = time.perf_counter()
    stats_peak = _status_kib("VmHWM")
    samples = {name: logs.sample(SERVICE, name, since_ms, k) for name in sorted(stats)}
    t2 = time.perf_counter()
    use = resource.getrusage(resource.RUSAGE_SELF)
    cpu = use.ru_utime + use.ru_stime - cpu0
    con = logs._connection()
    setting = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    print(
        json.dumps(
            {
                "duckdb": duckdb.__version__,
                "threads": setting[0] if setting else None,
                "memory_limit": setting[1] if setting else None,
                "import_s": import_s,
                "stats_s": t1 - t0,
                "sample_s": t2 - t1,
                "analysis_s": t2 - t0,
                # user + system seconds, all threads: steadier than wall time when shared
                "cpu_s": cpu,
                "baseline_kib": base,
                "stats_peak_kib": stats_peak,
                "peak_kib": _status_kib("VmHWM"),
                "stats": {
                    name: {
                        "requests": s.requests,
                        "errors": s.errors,
                        "logging_errors": s.logging_errors,
                        "p50": s.p50_ms,
                        "p95": s.p95_ms,
                    }
                    for name, s in stats.items()
                },
                "samples": {name: len(v) for name, v in samples.items()},
                "imported": {m: m in sys.modules for m in ("pandas", "pyarrow", "numpy")},
            }
        )
    )
    return 0


def _run_child(folder: Path, manifest: dict[str, Any], k: int, src: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), str(manifest["since_ms"]), str(k)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def _check(manifest: dict[str, Any], out: dict[str, Any]) -> list[str]:
    problems = []
    for name, want in manifest["expected"].items():
        got = out["stats"].get(name)
        if got is None:
            problems.append(f"{name}: missing")
            continue
        for key in ("requests", "errors", "logging_errors"):
            if got[key] != want[key]:
                problems.append(f"{name} {key}: {got[key]} (expected {want[key]})")
        for key in ("p50", "p95"):
            # approx_quantile (a t-digest, as Databricks' percentile_approx): within 2%
            if got[key] is None or abs(got[key] - want[key]) > 0.02 * want[key]:
                problems.append(f"{name} {key}: {got[key]} (expected {want[key]:.1f})")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        return child(Path(argv[1]), int(argv[2]), int(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1_000_000, TARGET_PAIRS])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--src", type=Path, default=REPO / "src")
    args = parser.parse_args(argv)
    rows = []
    try:
        for pairs in args.pairs:
            folder, manifest = dataset(pairs, CACHE, args.regenerate)
            runs = [_run_child(folder, manifest, args.sample, args.src) for _ in range(args.repeat)]
            for problem in _check(manifest, runs[0]):
                print(f"WARNING: {pairs:,} pairs: {problem}")
            wall = [r["analysis_s"] for r in runs]
            peak = [r["peak_kib"] / 1024 for r in runs]
            rows.append((pairs, manifest, wall, peak, runs[0]))
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    except RuntimeError as exc:
        print(f"a run failed: {exc}", file=sys.stderr)
        return 2
    print()
    print(
        "| pairs | events | Parquet on disk | analysis (median s) | CPU s | peak RSS (max MiB) "
        "| target |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    for pairs, manifest, wall, peak, first in rows:
        target = f"< {TARGET_S:g} s, < {TARGET_RSS_MIB:g} MiB" if pairs >= TARGET_PAIRS else ""
        print(
            f"| {pairs:,} | {manifest['events']:,} | {manifest['disk_bytes'] / 2**20:,.0f} MiB "
            f"| {statistics.median(wall):.2f} (stats {first['stats_s']:.2f}, samples "
            f"{first['sample_s']:.2f}) | {first['cpu_s']:.1f} | {max(peak):,.0f} | {target} |"
        )
        if pairs >= TARGET_PAIRS:
            if statistics.median(wall) > TARGET_S:
                print(f"WARNING: {pairs:,} pairs took {statistics.median(wall):.1f} s")
            if max(peak) > TARGET_RSS_MIB:
                print(f"WARNING: {pairs:,} pairs peaked at {max(peak):,.0f} MiB")
    first = rows[-1][4]
    print(
        f"\nDuckDB {first['duckdb']}, threads {first['threads']}, memory_limit "
        f"{first['memory_limit']}; baseline RSS {first['baseline_kib'] / 1024:.0f} MiB; "
        f"imported: {first['imported']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`genai-gate monitor` over a large local inference table with a judged sample (issue #16):
wall time, peak RSS, and the share of it spent judging.

    uv run python benchmarks/monitor.py                       # 10M rows, 500 judged, 100 ms
    uv run python benchmarks/monitor.py --rows 1000000 --keep # smaller, keep the data
    uv run python benchmarks/monitor.py --reference           # also judge a reference window

The rows are canary_analysis.py's synthetic AI Gateway payload table (the same generator:
two served entities, 90/10, errors, latencies, short chat JSON), written as Parquet with
its copy of `system.serving.served_entities`, but timed over the 25 hours before now, since
monitor judges a window that ends now (the cache is reused for 20 days, then regenerated).

In this process: the Databricks emulator serves endpoint `bot` (its champion is the
90% entity, `bot-champion`) and the fake OpenAI server plays the judge (`safety`, an MLflow
LLM judge) with `--latency` seconds a call. In a fresh child process (so its peak RSS is
its own): `run_monitor` with `inference-data` on the files (DuckDB), `monitor-window: 30d`,
`sample-size: --sample`, `monitor-inputs: --inputs`, the verdict cache off, and
`monitor-reference: none` (or, with `--reference`, the first 6 hours of the table as a
window reference, which judges a second sample). The child times reading the window (the
SQL: stats over the window and the sample of prompts), setting up the scorers (MLflow's
judges imported), judging (the time inside `score_traffic`), each through a wrapper that
only times the real call, and the whole run, and reports its peak RSS (VmHWM).

It asserts nothing. Exit 0 when the measurement ran, 2 when a process failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import canary_analysis as data  # benchmarks/ is the script's folder
from remote_model import KEY, KEY_ENV, MODEL, REPO, bypass_proxies_for_loopback, child_env

CACHE = Path("/tmp/genai-gate-bench/monitor")
DATA_VERSION = 1
STALE_DAYS = 20  # the window is 30 days: data older than this is regenerated


def generate(folder: Path, rows: int) -> dict[str, Any]:
    """canary_analysis's rows, over the 25 hours before now."""
    import numpy as np
    import pyarrow.parquet as pq

    t_start = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    payload = folder / data.PAYLOAD_DIR
    payload.mkdir(parents=True)
    rng = np.random.default_rng(data.SEED)
    end = datetime.now(UTC)
    start_us = int((end - data.SPAN).timestamp() * 1_000_000)
    span_us = int(data.SPAN.total_seconds() * 1_000_000)
    tally: dict[str, Any] = {
        e["name"]: {
            "requests": 0,
            "errors": 0,
            "logging_errors": 0,
            "hist": np.zeros(data.MAX_MS + 1, dtype=np.int64),
        }
        for e in data.ENTITIES
    }
    tally["unrouted"] = 0
    done = 0
    files = (rows + data.ROWS_PER_FILE - 1) // data.ROWS_PER_FILE
    for i in range(files):
        n = min(data.ROWS_PER_FILE, rows - done)
        t0 = start_us + span_us * done // rows
        t1 = start_us + span_us * (done + n) // rows
        table = data._chunk(rng, n, t0, t1, start_us, tally)
        pq.write_table(table, payload / f"part-{i:05d}.parquet", compression="snappy")
        done += n
        del table
    pq.write_table(data._entities_table(), folder / data.ENTITIES_FILE)
    manifest = {
        "version": DATA_VERSION,
        "rows": rows,
        "start": (end - data.SPAN).isoformat(),
        "generated_at": end.isoformat(),
        "champion_requests": tally[data.ENTITIES[0]["name"]]["requests"],
        "disk_bytes": data._du(folder),
        "generate_s": time.perf_counter() - t_start,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def dataset(rows: int, cache: Path, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    folder = cache / f"rows-{rows}-v{DATA_VERSION}"
    manifest_file = folder / "manifest.json"
    if manifest_file.exists() and not regenerate:
        manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        made = datetime.fromisoformat(manifest["generated_at"])
        if datetime.now(UTC) - made < timedelta(days=STALE_DAYS):
            return folder, manifest
    print(f"== generating {rows:,} rows into {folder}")
    return folder, generate(folder, rows)


# ---------------------------------------------------------------- the child: one monitor run


def child(args: argparse.Namespace) -> int:
    import genai_gate.commands.monitor as monitor
    from genai_gate.commands.run import Run
    from genai_gate.config import load_config

    root = Path(args.workdir)
    spent: dict[str, float] = {"read": 0.0, "scorers": 0.0, "judge": 0.0}

    def timed(name: str, inner: Any) -> Any:
        def call(*a: Any, **kw: Any) -> Any:  # timing only: the call is the real one
            t0 = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - t0

        return call

    # the window's SQL, the scorers' set-up (MLflow's import) and the judge calls, timed
    for name, attribute in (
        ("read", "_read_window"),
        ("scorers", "reference_free"),
        ("judge", "score_traffic"),
    ):
        setattr(monitor, attribute, timed(name, getattr(monitor, attribute)))
    base_rss = data._rss_now_kib()
    loaded = load_config(str(root / "genai-gate.yml"), environ=os.environ, require_data=False)
    run = Run(loaded, root / "out", os.environ)
    t0 = time.perf_counter()
    cpu0 = data._cpu_s()
    report = monitor.run_monitor(run)
    total = time.perf_counter() - t0
    record = report.doc
    print(
        json.dumps(
            {
                "total_s": total,
                "cpu_s": data._cpu_s() - cpu0,
                "read_s": spent["read"],
                "scorers_s": spent["scorers"],
                "judge_s": spent["judge"],
                "peak_kib": data._peak_kib(),
                "base_kib": base_rss,
                "verdict": record["verdict"],
                "requests": (record["traffic"] or {}).get("requests"),
                "judged": record["sample"]["judged"],
                "prompts": record["sample"]["prompts"],
                "reference": record["reference"]["label"],
            }
        )
    )
    return 0


def write_config(root: Path, folder: Path, judge_url: str, args: argparse.Namespace) -> None:
    reference = "none"
    if args.reference:
        start = datetime.now(UTC) - data.SPAN - timedelta(hours=1)
        end = start + timedelta(hours=7)
        reference = f"window:{start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}"
    (root / "genai-gate.yml").write_text(
        "\n".join(
            [
                "endpoint: bot",
                f"inference-data: {folder / data.PAYLOAD_DIR}",
                "scorers: [safety]",
                f"judge: openai:/{MODEL}",
                f"judge-base-url: {judge_url}",
                f"judge-api-key-env: {KEY_ENV}",
                f"sample-size: {args.sample}",
                f"monitor-inputs: {args.inputs}",
                "monitor-window: 30d",
                f"monitor-reference: {reference}",
                f"concurrency: {args.concurrency}",
                "cache: false",
                f"tracking-uri: sqlite:///{root / 'mlflow.db'}",
                "",
            ]
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sample", type=int, default=500, help="judged requests (500)")
    parser.add_argument("--inputs", type=int, default=1000, help="prompts for input drift")
    parser.add_argument("--latency", type=float, default=0.1, help="judge call, seconds (0.1)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="judge a reference window too")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--keep", action="store_true", help="keep the data for the next run")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    sys.path.insert(0, str(REPO))
    bypass_proxies_for_loopback()
    from tests.fakes.databricks import PAT, FakeDatabricks, ServedEntity
    from tests.fakes.openai_server import FakeOpenAI

    folder, manifest = dataset(args.rows, args.cache, args.regenerate)
    print(
        f"data: {manifest['rows']:,} rows, {manifest['disk_bytes'] / 2**20:.0f} MiB Parquet, "
        f"{manifest['champion_requests']:,} of the champion"
    )
    workspace = FakeDatabricks().start()
    champion = data.ENTITIES[0]
    workspace.add_endpoint(
        data.ENDPOINT,
        ServedEntity(
            str(champion["name"]),
            f"main.models.{data.ENDPOINT}",
            str(champion["version"]),
            served_entity_id=str(champion["id"]),
        ),
    )
    judge = FakeOpenAI(api_key=KEY, latency=args.latency).start()
    failed = 0
    try:
        for i in range(args.repeat):
            root = Path(tempfile.mkdtemp(prefix="genai-gate-monitor-"))
            write_config(root, folder, judge.base_url, args)
            env = {
                **child_env(),
                "DATABRICKS_HOST": workspace.host,
                "DATABRICKS_TOKEN": PAT,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])
                ),
            }
            calls = judge.calls
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, __file__, "--child", "--workdir", str(root)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            wall = time.perf_counter() - t0
            shutil.rmtree(root, ignore_errors=True)
            if done.returncode != 0:
                print(
                    f"ERROR: the monitor process exited {done.returncode}:\n{done.stderr[-3000:]}"
                )
                failed += 1
                continue
            got = json.loads(done.stdout.strip().splitlines()[-1])
            judge_calls = judge.calls - calls
            ideal = judge_calls * args.latency / args.concurrency
            rest = got["total_s"] - got["read_s"] - got["scorers_s"] - got["judge_s"]
            print(
                f"\n== run {i + 1}: {args.rows:,} rows, {got['judged']} judged, "
                f"judge {args.latency * 1000:.0f} ms a call, C={args.concurrency} ==\n"
                f"process wall        {wall:6.2f} s (start-up and imports included)\n"
                f"monitor             {got['total_s']:6.2f} s  (CPU {got['cpu_s']:.2f} s)\n"
                f"  read the window   {got['read_s']:6.2f} s  (DuckDB: stats over "
                f"{got['requests']:,} requests + a sample of {got['prompts']} prompts)\n"
                f"  scorers' set-up   {got['scorers_s']:6.2f} s  (MLflow's judges imported)\n"
                f"  judging           {got['judge_s']:6.2f} s  "
                f"= {100 * got['judge_s'] / got['total_s']:.0f}% of the run "
                f"({judge_calls} judge calls; N*L/C = {ideal:.2f} s)\n"
                f"  the rest          {rest:6.2f} s  (sign-in with databricks-sdk's import, "
                "endpoint read, opening the files, input tests, reports, evidence)\n"
                f"peak RSS            {got['peak_kib'] / 1024:6.0f} MiB "
                f"(after imports: {got['base_kib'] / 1024:.0f} MiB)\n"
                f"verdict             {got['verdict']} (reference: {got['reference']})"
            )
    finally:
        judge.stop()
        workspace.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

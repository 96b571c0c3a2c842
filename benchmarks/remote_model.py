"""genai-gate eval against a remote (OpenAI-compatible) model: concurrency, 429s, the cache.

    .venv/bin/python benchmarks/remote_model.py                     # 500 rows, 100 ms, C=16
    .venv/bin/python benchmarks/remote_model.py --rows 100          # quick check
    .venv/bin/python benchmarks/remote_model.py --latency 0.2 --concurrency 32 --keep

The fake OpenAI-compatible server of the tests (tests/fakes/openai_server.py) runs in this
process, on a background thread, with an API key; `genai-gate eval` runs as its own process
with `model: openai:/fake-model`, `base-url:` pointing at the fake and `api-key-env:` set.
Into a temporary folder it writes N synthetic Q&A rows and the configs; a warm-up run on a
few rows creates the sqlite tracking store (its migrations take seconds) and is not timed.
Then, with the server answering each request after `--latency` seconds:

  1. genai-gate, cache off, `--concurrency` rows in flight: wall time of the command, the
     model phase (results.json seconds.predict), against the physical limit N*L/C.
  2. A naive serial loop in this process, the way a hand-written `my_model` calls an
     endpoint: one `requests.post` per row, one after another.
  3. genai-gate again, with 10% of requests answered 429 (seeded) and `Retry-After: 1`.
  4. genai-gate with the cache on: one run fills it, an identical second run should make
     no remote call at all (the server's counter says).

It prints every figure and a table at the end; it asserts nothing. Exit 0 when the
measurement ran, 2 when a process failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthetic import make_rows  # benchmarks/ is the script's folder

if TYPE_CHECKING:
    from tests.fakes.openai_server import FakeOpenAI, Message

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENAI_GATE = Path(sys.executable).parent / "genai-gate"

MODEL = "fake-model"
KEY_ENV = "BENCH_FAKE_LLM_KEY"  # not GENAI_GATE_*: that prefix is read as settings
KEY = "sk-bench-fake-0123456789abcdef"
SCORERS = ("exact_match", "latency")
THRESHOLDS = {"exact_match/mean": ">= 0.3", "latency/p50": "<= 5000"}
FAIL_429_RATIO = 0.1
RETRY_AFTER_S = 1.0
SEED = 0
MEAN_JITTER_S = 0.125  # RetryPolicy.delay adds uniform(0, 0.25) s to Retry-After
WARMUP_ROWS = 5
TIMEOUT_S = 900.0  # one process; far above any expected run
TARGET_FACTOR, TARGET_SLACK_S = 1.15, 3.0  # wall <= 1.15 x N*L/C + 3 s

QUESTION = re.compile(r"What is in the (\w+) (\w+) number (\d+)\?")


def bench_answer(model: str, messages: list[Message]) -> str:
    """The fake's answer: a third exact, a third reworded, a third wrong (deterministic)."""
    from tests.fakes.openai_server import last_user_text

    m = QUESTION.fullmatch(last_user_text(messages))
    if m is None:
        return "I do not know"
    colour, thing, n = m.group(1), m.group(2), int(m.group(3))
    if n % 3 == 0:
        return f"The {colour} {thing} number {n} holds {n % 17} marbles"
    if n % 3 == 1:
        return f"{n % 17} marbles are in the {thing} number {n}, the {colour} one"
    return f"About {(n + 5) % 17} marbles"


def write_workspace(root: Path, rows: int, base_url: str, concurrency: int) -> dict[str, Path]:
    """data.jsonl and two configs (cache off, cache on) under root; returns the configs."""
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_rows(rows)), encoding="utf-8")
    common: dict[str, Any] = {
        "data": data.name,
        "model": f"openai:/{MODEL}",
        "base-url": base_url,
        "api-key-env": KEY_ENV,
        "scorers": list(SCORERS),
        "thresholds": THRESHOLDS,
        "concurrency": concurrency,
        "tracking-uri": f"sqlite:///{(root / 'mlflow.db').resolve()}",
        "experiment": "genai-gate-remote-bench",
    }
    configs = {
        "nocache": {**common, "cache": False},
        "cache": {**common, "cache": True, "cache-dir": str(root / "cache")},
    }
    paths = {}
    for name, config in configs.items():
        path = root / f"genai-gate-{name}.yml"
        # JSON is YAML: no yaml import needed to write the config
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        paths[name] = path
    return paths


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env[KEY_ENV] = KEY
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    env.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("MLFLOW_TRACKING_URI", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        env.pop(name, None)
    return env


def bypass_proxies_for_loopback() -> None:
    """A proxy in the environment must not sit between the clients and the local fake."""
    for name in ("NO_PROXY", "no_proxy"):
        current = [p for p in os.environ.get(name, "").split(",") if p]
        os.environ[name] = ",".join([*current, "127.0.0.1", "localhost"])


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    """The fake's counters after one measured step."""

    calls: int
    answered: int
    status_429: int
    max_in_flight: int
    connections: int

    @classmethod
    def snapshot(cls, fake: FakeOpenAI) -> Server:
        return cls(
            calls=fake.calls,
            answered=fake.answered,
            status_429=fake.status_counts[429],
            max_in_flight=fake.max_in_flight,
            connections=fake.connections,
        )


@dataclass(frozen=True)
class GGRun:
    wall_s: float
    returncode: int
    passed: bool
    rows: int
    failed_rows: int
    seconds: dict[str, float]
    cache: dict[str, Any] | None
    outputs: list[Any]
    latencies_ms: list[float]
    server: Server


def run_genai_gate(
    fake: FakeOpenAI,
    root: Path,
    cfg: Path,
    tag: str,
    faults: Mapping[str, Any],
    limit: int | None = None,
) -> GGRun:
    """One `genai-gate eval` process against the fake, counters reset and faults set first."""
    out = root / f"gg-{tag}"
    out.mkdir()
    argv = [str(GENAI_GATE), "eval", "-c", str(cfg), "--out", str(out), "-q"]
    if limit is not None:
        argv += ["--limit", str(limit)]
    fake.reset()
    fake.configure(**faults)
    with (out / "stdout.txt").open("wb") as so, (out / "stderr.txt").open("wb") as se:
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                argv, env=child_env(), cwd=root, stdout=so, stderr=se, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"genai-gate eval ({tag}) took more than {TIMEOUT_S:g} s") from None
        wall = time.perf_counter() - t0
    server = Server.snapshot(fake)
    results = out / "results.json"
    # 0 passed, 1 gate failed (still a complete run); anything else is a real failure
    if done.returncode not in (0, 1) or not results.exists():
        text = (out / "stderr.txt").read_text(encoding="utf-8", errors="replace").strip()
        raise BenchError(
            f"genai-gate eval ({tag}) exited {done.returncode} after {wall:.1f} s:\n{text[-3000:]}"
        )
    doc = json.loads(results.read_text(encoding="utf-8"))
    records = [
        json.loads(line)
        for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return GGRun(
        wall_s=wall,
        returncode=done.returncode,
        passed=bool(doc["passed"]),
        rows=int(doc["rows"]),
        failed_rows=int(doc["errors"]["rows"]),
        seconds={str(k): float(v) for k, v in doc.get("seconds", {}).items()},
        cache=doc.get("cache"),
        outputs=[r.get("outputs") for r in records],
        latencies_ms=[float(r["latency_ms"]) for r in records if r.get("latency_ms") is not None],
        server=server,
    )


@dataclass(frozen=True)
class SerialRun:
    wall_s: float
    outputs: list[str]
    server: Server


def naive_serial(fake: FakeOpenAI, questions: Sequence[str], latency: float) -> SerialRun:
    """One `requests.post` per row, one after another: a hand-written model's loop."""
    import requests

    fake.reset()
    fake.configure(latency=latency)
    url = f"{fake.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {KEY}"}
    outputs = []
    t0 = time.perf_counter()
    for question in questions:
        body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
        resp = requests.post(url, json=body, headers=headers, timeout=60)
        if resp.status_code != 200:
            raise BenchError(f"naive loop: HTTP {resp.status_code}: {resp.text[:300]}")
        outputs.append(str(resp.json()["choices"][0]["message"]["content"]))
    wall = time.perf_counter() - t0
    return SerialRun(wall, outputs, Server.snapshot(fake))


def _status(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report(
    rows: int,
    latency: float,
    concurrency: int,
    plain: GGRun,
    serial: SerialRun,
    limited: GGRun,
    fill: GGRun,
    rerun: GGRun,
) -> int:
    """Print the figures; return how many warnings were printed."""
    warnings = 0
    limit = rows * latency / concurrency
    target = TARGET_FACTOR * limit + TARGET_SLACK_S

    print()
    print(f"== remote_model: {rows} rows, latency {latency * 1000:g} ms, concurrency {concurrency}")
    print(f"physical limit N*L/C = {rows} x {latency:g} s / {concurrency} = {limit:.3f} s")

    print()
    print("1. genai-gate eval, cache off")
    predict = plain.seconds.get("predict")
    print(
        f"   wall {plain.wall_s:.2f} s (whole command), model phase {_fmt(predict)} s "
        f"(results.json seconds.predict), score {_fmt(plain.seconds.get('score'))} s"
    )
    print(
        f"   predict/limit {_fmt(None if predict is None else predict / limit, '.3f')}, "
        f"wall/limit {plain.wall_s / limit:.3f}, outside the model phase "
        f"{_fmt(None if predict is None else plain.wall_s - predict)} s "
        "(start-up, data, scoring, MLflow logging, reports)"
    )
    print(
        f"   target wall <= {TARGET_FACTOR:g} x {limit:.3f} + {TARGET_SLACK_S:g} = {target:.2f} s: "
        f"{_status(plain.wall_s <= target)}"
    )
    s = plain.server
    print(
        f"   server: {s.calls} calls, {s.answered} answered, max in flight {s.max_in_flight} "
        f"(of {concurrency}), {s.connections} TCP connections; failed rows {plain.failed_rows}"
    )

    print()
    print("2. naive serial loop (requests.post per row, in this process)")
    speedup_wall = serial.wall_s / plain.wall_s
    print(
        f"   wall {serial.wall_s:.2f} s for {serial.server.answered} calls "
        f"({serial.wall_s / max(1, len(serial.outputs)) * 1000:.1f} ms a row; "
        f"floor N*L = {rows * latency:.2f} s)"
    )
    speedup_predict = "" if predict is None else f", {serial.wall_s / predict:.1f}x its model phase"
    print(f"   genai-gate speed-up: {speedup_wall:.1f}x on wall time{speedup_predict}")
    same = sum(a == b for a, b in zip(serial.outputs, plain.outputs, strict=False))
    print(f"   answers identical to genai-gate's, row by row: {same} of {len(serial.outputs)}")
    if same != len(serial.outputs) or len(plain.outputs) != len(serial.outputs):
        warnings += 1
        print("   WARNING: the naive loop and genai-gate got different answers")

    print()
    print(
        f"3. genai-gate eval, {FAIL_429_RATIO:.0%} of requests answered 429 "
        f"(seed {SEED}, Retry-After: {RETRY_AFTER_S:g})"
    )
    s = limited.server
    predict3 = limited.seconds.get("predict")
    print(
        f"   wall {limited.wall_s:.2f} s, model phase {_fmt(predict3)} s; "
        f"wall/limit {limited.wall_s / limit:.3f}, predict/limit "
        f"{_fmt(None if predict3 is None else predict3 / limit, '.3f')}"
    )
    print(
        f"   server: {s.calls} calls = {s.answered} answered + {s.status_429} x 429; "
        f"max in flight {s.max_in_flight}"
    )
    # each 429 costs its latency (the fake sleeps before answering) and then parks the worker
    # that got it for Retry-After plus jitter: that worker takes no other row meanwhile
    busy = s.calls * latency
    parked = s.status_429 * (RETRY_AFTER_S + MEAN_JITTER_S)
    floor = (busy + parked) / concurrency
    print(
        f"   worker time: {s.calls} calls x {latency:g} s = {busy:.1f} s in requests, "
        f"+ {s.status_429} x ({RETRY_AFTER_S:g} + {MEAN_JITTER_S:g} mean jitter) s = "
        f"{parked:.1f} s waiting Retry-After ({parked / max(busy + parked, 1e-9):.0%})"
    )
    print(
        f"   / {concurrency} workers = {floor:.2f} s: the model phase if the workers were "
        f"never idle (was {_fmt(None if predict3 is None else predict3 / floor, '.2f')}x that)"
    )
    retried = [ms for ms in limited.latencies_ms if ms >= (RETRY_AFTER_S + latency) * 1000]
    slowest = max(limited.latencies_ms, default=0.0) / 1000
    print(
        f"   rows that waited out a Retry-After (row latency >= {RETRY_AFTER_S + latency:g} s): "
        f"{len(retried)}; slowest row {slowest:.2f} s, a floor for the model phase on its own"
    )
    print(
        f"   failed rows (results.json errors.rows): {limited.failed_rows}   target 0: "
        f"{_status(limited.failed_rows == 0)}"
    )

    print()
    print("4. genai-gate eval, cache on: a run that fills it, then an identical re-run")
    for label, r in (("fill", fill), ("re-run", rerun)):
        c = r.cache or {}
        phase = _fmt(r.seconds.get("predict"), ".3f")
        print(
            f"   {label:7} wall {r.wall_s:.2f} s, model phase {phase}"
            f" s, remote calls {r.server.calls}, cache hits {c.get('hits', '-')} / misses "
            f"{c.get('misses', '-')}, failed rows {r.failed_rows}"
        )
    print(
        f"   target: no remote call on the re-run: {_status(rerun.server.calls == 0)} "
        f"({rerun.server.calls} calls)"
    )
    if rerun.cache is None:
        warnings += 1
        print("   WARNING: results.json has no cache stats for the re-run")
    if rerun.outputs != fill.outputs:
        warnings += 1
        print("   WARNING: the re-run's answers differ from the run that filled the cache")

    print()
    header = (
        f"{'run':36} {'wall s':>7} {'predict s':>9} {'wall/lim':>8} {'calls':>6} "
        f"{'429s':>5} {'failed':>6}  target"
    )
    print(header)
    print("-" * (len(header) + 26))

    def line(
        label: str, wall: float, pred: float | None, srv: Server, failed: int | None, note: str
    ) -> None:
        print(
            f"{label:36} {wall:7.2f} {_fmt(pred):>9} {wall / limit:8.2f} {srv.calls:6d} "
            f"{srv.status_429:5d} {'-' if failed is None else failed:>6}  {note}".rstrip()
        )

    line(
        f"1 genai-gate C={concurrency}, cache off",
        plain.wall_s,
        predict,
        plain.server,
        plain.failed_rows,
        f"wall <= {target:.2f} s: {_status(plain.wall_s <= target)}",
    )
    line(
        "2 naive serial requests.post",
        serial.wall_s,
        None,
        serial.server,
        None,
        f"baseline; genai-gate {speedup_wall:.1f}x faster",
    )
    line(
        f"3 genai-gate, {FAIL_429_RATIO:.0%} 429 + Retry-After",
        limited.wall_s,
        predict3,
        limited.server,
        limited.failed_rows,
        f"failed rows 0: {_status(limited.failed_rows == 0)}",
    )
    line(
        "4a genai-gate, cache fill",
        fill.wall_s,
        fill.seconds.get("predict"),
        fill.server,
        fill.failed_rows,
        "",
    )
    line(
        "4b genai-gate, cache re-run",
        rerun.wall_s,
        rerun.seconds.get("predict"),
        rerun.server,
        rerun.failed_rows,
        f"remote calls 0: {_status(rerun.server.calls == 0)}",
    )
    return warnings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time genai-gate eval against a local OpenAI-compatible fake server."
    )
    parser.add_argument("--rows", type=int, default=500, help="synthetic rows (default 500)")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds the server takes per request (0.1)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="genai-gate's concurrency (default 16)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder and print its path"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.concurrency < 1 or args.latency <= 0:
        parser.error("--rows and --concurrency must be at least 1, --latency above 0")
    if not GENAI_GATE.exists():
        parser.error(f"{GENAI_GATE} not found: run with the project's .venv/bin/python")

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.fakes.openai_server import FakeOpenAI

    bypass_proxies_for_loopback()
    latency: float = args.latency
    root = Path(tempfile.mkdtemp(prefix="genai-gate-remote-"))
    fake = FakeOpenAI(api_key=KEY, answer=bench_answer, seed=SEED).start()
    try:
        cfgs = write_workspace(root, args.rows, fake.base_url, args.concurrency)
        print(f"workspace: {root}  fake server: {fake.base_url}", flush=True)

        t0 = time.perf_counter()
        run_genai_gate(fake, root, cfgs["nocache"], "warmup", {}, limit=WARMUP_ROWS)
        print(
            f"warm-up on {WARMUP_ROWS} rows (creates the store): {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        plain = run_genai_gate(fake, root, cfgs["nocache"], "plain", {"latency": latency})
        print(f"1. genai-gate, cache off: {plain.wall_s:.2f} s", flush=True)

        questions = [r["inputs"]["question"] for r in make_rows(args.rows)]
        serial = naive_serial(fake, questions, latency)
        print(f"2. naive serial loop: {serial.wall_s:.2f} s", flush=True)

        faults = {
            "latency": latency,
            "fail_429_ratio": FAIL_429_RATIO,
            "retry_after": RETRY_AFTER_S,
        }
        limited = run_genai_gate(fake, root, cfgs["nocache"], "429", faults)
        print(f"3. genai-gate, {FAIL_429_RATIO:.0%} 429: {limited.wall_s:.2f} s", flush=True)

        fill = run_genai_gate(fake, root, cfgs["cache"], "cache-fill", {"latency": latency})
        print(f"4a. genai-gate, cache fill: {fill.wall_s:.2f} s", flush=True)
        rerun = run_genai_gate(fake, root, cfgs["cache"], "cache-rerun", {"latency": latency})
        print(f"4b. genai-gate, cache re-run: {rerun.wall_s:.2f} s", flush=True)

        warnings = report(args.rows, latency, args.concurrency, plain, serial, limited, fill, rerun)
        if warnings:
            print(f"\n{warnings} warning(s) above")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        fake.stop()
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

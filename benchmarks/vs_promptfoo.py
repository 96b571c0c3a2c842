"""genai-gate against promptfoo 0.121 on the same rows: first run, cache fill, cached re-run (#14).

    .venv/bin/python benchmarks/vs_promptfoo.py                       # 200 and 500 rows, 3 repeats
    .venv/bin/python benchmarks/vs_promptfoo.py --rows 20 --repeat 1  # quick check

promptfoo 0.121.x is installed with npm into `--promptfoo-dir` (default
/tmp/genai-gate-bench/promptfoo, outside the repository) on the first run and reused after;
without npm the script says so and exits 2. The fake OpenAI-compatible server of the tests
(tests/fakes/openai_server.py) runs in this process with `--latency` a request and plays the
model and the judge for both tools. For each `--rows` N the same synthetic rows (synthetic.py)
are written twice: genai-gate's data.jsonl with a config like pipeline.py's (model and judge
`openai:/fake-model` at the fake, scorers [correctness, latency]), and promptfoo's tests.jsonl
with a config whose provider `openai:chat:fake-model` and whose `llm-rubric` grader both point
at the fake (`apiBaseUrl`, `apiKeyEnvar`). Both send the question as the one user message and
make one judge call a row, with the same concurrency (`concurrency:` and `-j`).

After an untimed warm-up of each tool on 5 rows (genai-gate's sqlite store and promptfoo's
database are created and shared by the runs after), `--repeat` times and for each N, each tool
runs as its own process, timed by wall clock with its CPU time from `os.wait4`:

  1. the first run, cache off (genai-gate `cache: false`; promptfoo `--no-cache`);
  2. a run that fills a fresh cache (genai-gate `cache: true` with its own `cache-dir`;
     promptfoo's cache on, `PROMPTFOO_CACHE_PATH` a fresh folder);
  3. the identical re-run on that cache, which should make no call at the fake.

The tools alternate step by step (first, first, fill, fill, re-run, re-run), and which goes first
swaps every repeat, so that the machine's load falls on both alike. The fake counts the calls of
every step. The table gives, per tool and N, the median of each step, the re-run as a share of
the first run, the calls and the CPU time, then the ratios genai-gate / promptfoo, with the load
average. It asserts nothing (goal of the issue: a cached re-run under 25% of the first run and
faster than promptfoo's); findings are WARNING lines. Exit 0 when the measurement ran, 2 when a
process failed or npm is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import write_config  # benchmarks/ is the script's folder
from remote_model import (
    GENAI_GATE,
    KEY,
    KEY_ENV,
    MODEL,
    REPO,
    BenchError,
    bench_answer,
    bypass_proxies_for_loopback,
    child_env,
)
from synthetic import make_rows

if TYPE_CHECKING:
    from tests.fakes.openai_server import FakeOpenAI, Message

PROMPTFOO_SPEC = "promptfoo@0.121"
PROMPTFOO_SERIES = "0.121."
PROMPTFOO_DIR = Path(tempfile.gettempdir()) / "genai-gate-bench" / "promptfoo"
NPM_TIMEOUT_S = 900.0
TIMEOUT_S = 900.0  # one process; far above any expected run
WARMUP_ROWS = 5
TOOLS = ("genai-gate", "promptfoo")
STEPS = ("first", "fill", "rerun")
CALLS_PER_ROW = 2  # one model call and one judge call
RUBRIC = "The output gives the same fact as this expected response: {{expected_response}}"
# promptfoo's llm-rubric prompt (its DEFAULT_GRADING_PROMPT) wraps the rubric in this tag
PROMPTFOO_RUBRIC_TAG = "<Rubric>"
# promptfoo exits 100 when a test failed its assertions: still a complete run
PROMPTFOO_OK_CODES = (0, 100)


def fake_reply(model: str, messages: list[Message]) -> str:
    """The fake's answer to a request without a JSON response_format.

    genai-gate's judge asks for a json_schema and gets the fake's judge object. promptfoo's
    llm-rubric asks in its prompt for {reason, pass, score}, without a response_format. The
    fake's reply to such a prompt, {"result": "yes", "rationale": ...}, has no `pass`, and
    promptfoo reads a missing `pass` as a pass: every row would pass whatever the verdict. So
    the verdict (the fake's default judge) goes out in promptfoo's own shape."""
    from tests.fakes.openai_server import default_judge, judge_payload, prompt_text

    text = prompt_text(messages)
    if PROMPTFOO_RUBRIC_TAG in text:
        verdict = default_judge(messages)
        ok = verdict == "yes"
        reason = f"The fake judge answered {verdict!r} to this rubric."
        return json.dumps({"reason": reason, "pass": ok, "score": 1.0 if ok else 0.0})
    if "json" in text.lower():  # any other judge without a schema: what the fake answers
        verdict = default_judge(messages)
        return json.dumps(judge_payload(None, verdict, f"The fake judge answered {verdict!r}."))
    return bench_answer(model, messages)


# -- promptfoo: install, config, environment ---------------------------------------------------


@dataclass(frozen=True)
class Promptfoo:
    exe: Path
    version: str
    node: str


def _installed_version(prefix: Path) -> str | None:
    package = prefix / "node_modules" / "promptfoo" / "package.json"
    exe = prefix / "node_modules" / ".bin" / "promptfoo"
    if not package.exists() or not exe.exists():
        return None
    version = json.loads(package.read_text(encoding="utf-8")).get("version")
    return str(version) if isinstance(version, str) else None


def install_promptfoo(prefix: Path) -> Promptfoo:
    """promptfoo 0.121.x under prefix: installed with npm once, reused after."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise BenchError(
            "npm (and node) not found on PATH: promptfoo is installed with npm. Install "
            "Node.js 20 or newer with npm, then run this again."
        )
    version = _installed_version(prefix)
    if version is None or not version.startswith(PROMPTFOO_SERIES):
        prefix.mkdir(parents=True, exist_ok=True)
        print(f"installing {PROMPTFOO_SPEC} into {prefix} (npm, once) ...", flush=True)
        t0 = time.perf_counter()
        argv = [npm, "install", "--prefix", str(prefix), PROMPTFOO_SPEC, "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"npm install took more than {NPM_TIMEOUT_S:g} s") from None
        version = _installed_version(prefix)
        if done.returncode != 0 or version is None:
            raise BenchError(
                f"npm install {PROMPTFOO_SPEC} exited {done.returncode}:\n"
                f"{(done.stderr or done.stdout)[-3000:]}"
            )
        print(f"installed promptfoo {version} in {time.perf_counter() - t0:.0f} s", flush=True)
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return Promptfoo(prefix / "node_modules" / ".bin" / "promptfoo", version, node_version)


def write_promptfoo_config(
    folder: Path, rows: Sequence[dict[str, Any]], base_url: str, concurrency: int
) -> Path:
    """tests.jsonl (the rows as promptfoo vars) and promptfooconfig.yaml in folder."""
    tests = folder / "tests.jsonl"
    tests.write_text(
        "".join(
            json.dumps(
                {
                    "vars": {
                        "question": r["inputs"]["question"],
                        "expected_response": r["expectations"]["expected_response"],
                    }
                }
            )
            + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    provider: dict[str, Any] = {
        "id": f"openai:chat:{MODEL}",
        "config": {"apiBaseUrl": base_url, "apiKeyEnvar": KEY_ENV},
    }
    config = {
        "description": "genai-gate vs promptfoo benchmark",
        "prompts": ["{{question}}"],
        "providers": [provider],
        "defaultTest": {
            "options": {"provider": provider},
            "assert": [{"type": "llm-rubric", "value": RUBRIC}],
        },
        "tests": f"file://{tests.name}",
        "evaluateOptions": {"maxConcurrency": concurrency},
        "sharing": False,
    }
    path = folder / "promptfooconfig.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
    return path


def promptfoo_env(home: Path, cache: Path) -> dict[str, str]:
    env = child_env()
    env.update(
        {
            "PROMPTFOO_CONFIG_DIR": str(home),  # its database and logs, not ~/.promptfoo
            "PROMPTFOO_CACHE_PATH": str(cache),
            "PROMPTFOO_CACHE_TYPE": "disk",
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_DISABLE_SHARING": "1",
            "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",
            "PROMPTFOO_DISABLE_RUNTIME_WARNINGS": "1",  # the Node 20 notice
            "PROMPTFOO_SELF_HOSTED": "1",
            "NO_COLOR": "1",
        }
    )
    env.pop("PROMPTFOO_CACHE_ENABLED", None)
    return env


# -- one process, timed ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    tool: str
    step: str
    wall_s: float
    cpu_s: float
    calls: int
    max_in_flight: int
    rows: int
    passed_rows: int  # rows the judge passed (promptfoo) or judged yes (genai-gate)
    error_rows: int


def _timed(argv: list[str], env: dict[str, str], cwd: Path, out: Path) -> tuple[float, float, int]:
    """Run argv to its end: (wall s, CPU s of the child and what it waited for, exit code)."""
    out.mkdir(parents=True)
    with (out / "stdout.txt").open("wb") as so, (out / "stderr.txt").open("wb") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=so, stderr=se)
        killer = threading.Timer(TIMEOUT_S, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - t0
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if wall >= TIMEOUT_S:
        raise BenchError(f"{argv[0]} took more than {TIMEOUT_S:g} s (killed)")
    return wall, usage.ru_utime + usage.ru_stime, code


def _tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace").strip()[-3000:]


def run_genai_gate(
    fake: FakeOpenAI, cfg: Path, out: Path, step: str, latency: float, limit: int | None = None
) -> Run:
    argv = [str(GENAI_GATE), "eval", "-c", str(cfg), "--out", str(out), "-q"]
    if limit is not None:
        argv += ["--limit", str(limit)]
    fake.reset()
    fake.configure(latency=latency)
    wall, cpu, code = _timed(argv, child_env(), cfg.parent, out)
    calls, in_flight = fake.calls, fake.max_in_flight
    results = out / "results.json"
    # 0 passed, 1 gate failed (still a complete run); anything else is a real failure
    if code not in (0, 1) or not results.exists():
        raise BenchError(
            f"genai-gate eval ({out.name}) exited {code} after {wall:.1f} s:\n"
            f"{_tail(out / 'stderr.txt')}"
        )
    doc = json.loads(results.read_text(encoding="utf-8"))
    rows = [
        json.loads(line)
        for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    passed = sum(1 for r in rows if _yes(r, "correctness"))
    errors = int(doc["errors"]["rows"])
    return Run("genai-gate", step, wall, cpu, calls, in_flight, int(doc["rows"]), passed, errors)


def _yes(row: dict[str, Any], scorer: str) -> bool:
    """Whether a rows.jsonl record has `scorer` judged yes (its `<scorer>/value` is 1)."""
    return row.get(f"{scorer}/value") in (1, 1.0, True)


def run_promptfoo(
    fake: FakeOpenAI,
    pf: Promptfoo,
    cfg: Path,
    out: Path,
    step: str,
    latency: float,
    *,
    home: Path,
    cache: Path | None,
    concurrency: int,
    limit: int | None = None,
) -> Run:
    """One `promptfoo eval`; cache None runs it with --no-cache (and an unused fresh folder)."""
    results = out / "results.json"
    argv = [
        str(pf.exe),
        "eval",
        "-c",
        str(cfg),
        "-o",
        str(results),
        "-j",
        str(concurrency),
        "--no-table",
        "--no-progress-bar",
        "--no-share",
    ]
    if cache is None:
        argv.append("--no-cache")
    if limit is not None:
        argv += ["--filter-first-n", str(limit)]
    env = promptfoo_env(home, cache or out / "unused-cache")
    fake.reset()
    fake.configure(latency=latency)
    wall, cpu, code = _timed(argv, env, cfg.parent, out)
    calls, in_flight = fake.calls, fake.max_in_flight
    if code not in PROMPTFOO_OK_CODES or not results.exists():
        raise BenchError(
            f"promptfoo eval ({out.name}) exited {code} after {wall:.1f} s:\n"
            f"{_tail(out / 'stderr.txt')}\n{_tail(out / 'stdout.txt')}"
        )
    stats = json.loads(results.read_text(encoding="utf-8"))["results"]["stats"]
    passed, failed, errors = (int(stats.get(k, 0)) for k in ("successes", "failures", "errors"))
    rows = passed + failed + errors
    return Run("promptfoo", step, wall, cpu, calls, in_flight, rows, passed, errors)


# -- the measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    """One N and one repeat: the rows, both tools' configs, fresh caches."""

    path: Path
    gg_nocache: Path
    gg_cache: Path
    pf_config: Path


def make_folder(
    root: Path, rows: int, repeat: int, base_url: str, concurrency: int, store: Path
) -> Folder:
    path = root / f"n{rows}" / f"r{repeat}"
    path.mkdir(parents=True)
    data = make_rows(rows)
    (path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    return Folder(
        path,
        write_config(path, base_url, concurrency, cache=False, store=store),
        write_config(path, base_url, concurrency, cache=True, store=store),
        write_promptfoo_config(path, data, base_url, concurrency),
    )


def one_repeat(
    fake: FakeOpenAI,
    pf: Promptfoo,
    folder: Folder,
    home: Path,
    latency: float,
    concurrency: int,
    promptfoo_first: bool,
) -> list[Run]:
    runs: list[Run] = []
    order = ("promptfoo", "genai-gate") if promptfoo_first else TOOLS
    for step in STEPS:
        for tool in order:
            out = folder.path / f"{'gg' if tool == 'genai-gate' else 'pf'}-{step}"
            if tool == "genai-gate":
                cfg = folder.gg_nocache if step == "first" else folder.gg_cache
                run = run_genai_gate(fake, cfg, out, step, latency)
            else:
                cache = None if step == "first" else folder.path / "pf-cache"
                run = run_promptfoo(
                    fake,
                    pf,
                    folder.pf_config,
                    out,
                    step,
                    latency,
                    home=home,
                    cache=cache,
                    concurrency=concurrency,
                )
            print(
                f"  {tool:10} {step:5} {run.wall_s:6.2f} s  CPU {run.cpu_s:5.2f} s  "
                f"calls {run.calls:4d} (max {run.max_in_flight} in flight)  rows {run.rows} "
                f"(judged pass {run.passed_rows}, "
                f"errors {run.error_rows})",
                flush=True,
            )
            runs.append(run)
    return runs


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _calls(runs: Sequence[Run]) -> str:
    values = sorted({r.calls for r in runs})
    return "/".join(str(v) for v in values) if values else "-"


def report(
    results: dict[int, list[Run]], rows_list: Sequence[int], loads: Sequence[tuple[float, ...]]
) -> int:
    """Print the table and the ratios; return the number of WARNING lines."""
    warnings = 0
    print()
    header = (
        f"{'tool':10} {'N':>4} {'first s':>8} {'fill s':>7} {'re-run s':>8} {'re-run %':>8} "
        f"{'calls first/fill/re-run':>23} {'CPU first/fill/re-run s':>24}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[tuple[str, int, str], float] = {}
    cpus: dict[tuple[str, int, str], float] = {}
    for n in rows_list:
        for tool in TOOLS:
            by_step = {s: [r for r in results[n] if r.tool == tool and r.step == s] for s in STEPS}
            for s in STEPS:
                medians[tool, n, s] = _median([r.wall_s for r in by_step[s]])
                cpus[tool, n, s] = _median([r.cpu_s for r in by_step[s]])
            share = medians[tool, n, "rerun"] / medians[tool, n, "first"]
            calls = "/".join(_calls(by_step[s]) for s in STEPS)
            cpu = "/".join(f"{cpus[tool, n, s]:.1f}" for s in STEPS)
            print(
                f"{tool:10} {n:4d} {medians[tool, n, 'first']:8.2f} "
                f"{medians[tool, n, 'fill']:7.2f} {medians[tool, n, 'rerun']:8.2f} "
                f"{share:8.0%} {calls:>23} {cpu:>24}"
            )
    print()
    print(f"{'genai-gate / promptfoo':24} {'first':>6} {'fill':>6} {'re-run':>7}   CPU (same)")
    for n in rows_list:
        wall = [medians["genai-gate", n, s] / medians["promptfoo", n, s] for s in STEPS]
        cpu_ratio = [cpus["genai-gate", n, s] / cpus["promptfoo", n, s] for s in STEPS]
        print(
            f"{'N=' + str(n):24} {wall[0]:6.2f} {wall[1]:6.2f} {wall[2]:7.2f}   "
            + " ".join(f"{c:.2f}" for c in cpu_ratio)
        )
    print()
    shown = "; ".join(" ".join(f"{v:.2f}" for v in t) for t in loads)
    print(f"load average (1, 5, 15 min) at the start and the end: {shown}")

    for n in rows_list:
        expected = CALLS_PER_ROW * n
        for run in results[n]:
            where = f"{run.tool} N={n} {run.step}"
            if run.step == "rerun" and run.calls:
                warnings += 1
                print(f"WARNING: {where} made {run.calls} calls at the fake (expected 0)")
            if run.step != "rerun" and run.calls != expected:
                warnings += 1
                print(f"WARNING: {where} made {run.calls} calls (expected {expected})")
            if run.rows != n or run.error_rows:
                warnings += 1
                print(f"WARNING: {where}: {run.rows} rows, {run.error_rows} with errors")
            if run.passed_rows != run.rows:
                warnings += 1
                print(f"WARNING: {where}: the judge passed {run.passed_rows} of {run.rows} rows")
    return warnings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds a request (0.1)")
    parser.add_argument("--concurrency", type=int, default=8, help="both tools' (default 8)")
    parser.add_argument("--promptfoo-dir", type=Path, default=PROMPTFOO_DIR)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if min(args.rows) < 1 or args.repeat < 1 or args.concurrency < 1 or args.latency < 0:
        parser.error("--rows, --repeat and --concurrency must be at least 1, --latency >= 0")
    if not GENAI_GATE.exists():
        parser.error(f"{GENAI_GATE} not found: run with the project's .venv/bin/python")
    try:
        pf = install_promptfoo(args.promptfoo_dir.resolve())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.fakes.openai_server import FakeOpenAI

    bypass_proxies_for_loopback()
    root = Path(tempfile.mkdtemp(prefix="genai-gate-vs-promptfoo-"))
    store, home = root / "mlflow.db", root / "promptfoo-home"
    # judge_without_schema off: promptfoo's rubric prompt says "JSON" but has no
    # response_format, and must reach fake_reply to get its verdict in promptfoo's shape
    fake = FakeOpenAI(api_key=KEY, answer=fake_reply, judge_without_schema=False).start()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"{started}: genai-gate {metadata.version('genai-gate')}, promptfoo {pf.version} "
        f"(node {pf.node}), {os.cpu_count()} CPUs; N={args.rows}, L={args.latency * 1000:g} ms, "
        f"C={args.concurrency}, {args.repeat} repeat(s); workspace {root}",
        flush=True,
    )
    loads = [os.getloadavg()]
    results: dict[int, list[Run]] = {n: [] for n in args.rows}
    try:
        warm = make_folder(root / "warmup", WARMUP_ROWS, 0, fake.base_url, args.concurrency, store)
        t0 = time.perf_counter()
        run_genai_gate(fake, warm.gg_nocache, warm.path / "gg", "warmup", 0.0)
        run_promptfoo(
            fake,
            pf,
            warm.pf_config,
            warm.path / "pf",
            "warmup",
            0.0,
            home=home,
            cache=None,
            concurrency=args.concurrency,
        )
        print(f"warm-up on {WARMUP_ROWS} rows: {time.perf_counter() - t0:.1f} s", flush=True)
        for r in range(1, args.repeat + 1):
            for n in args.rows:
                promptfoo_first = r % 2 == 0
                print(
                    f"repeat {r}, N={n} ({'promptfoo' if promptfoo_first else 'genai-gate'} "
                    f"first), load {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
                    flush=True,
                )
                folder = make_folder(root, n, r, fake.base_url, args.concurrency, store)
                results[n] += one_repeat(
                    fake, pf, folder, home, args.latency, args.concurrency, promptfoo_first
                )
        loads.append(os.getloadavg())
        warnings = report(results, args.rows, loads)
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

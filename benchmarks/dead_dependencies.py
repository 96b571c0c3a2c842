"""How long genai-gate takes to fail on a dead dependency, and what the supervisor costs.

    .venv/bin/python benchmarks/dead_dependencies.py [--rows 40] [--timeout 120]

Prints, for a small python: project (`--rows` rows):
- the supervisor's cost: `genai-gate eval` (supervisor + work process) against the work
  process alone (`python -m genai_gate` with the verdict variable set), median of 3;
- a tracking server on a refused port, and one that accepts and never answers;
- an openai:/ model server that hangs on every request (`--timeout`, the default retries
  and concurrency: the circuit breaker's trip time).
Asserts nothing; exit 0 when every measurement ran.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fakes.openai_server import FakeOpenAI

EXE = Path(sys.executable).with_name("genai-gate")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENAI_GATE_", "GITHUB_"))}
    env.pop("MLFLOW_TRACKING_URI", None)
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def _project(root: Path, rows: int, extra: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "m.py").write_text("def predict(question):\n    return question\n")
    (root / "qa.jsonl").write_text(
        "".join(
            json.dumps(
                {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"q{i}"}}
            )
            + "\n"
            for i in range(rows)
        )
    )
    (root / "genai-gate.yml").write_text(
        "data: qa.jsonl\nmodel: python:m:predict\nscorers: [exact_match]\ncache: false\n"
        "thresholds:\n  exact_match/mean: '>= 0.5'\n" + extra
    )


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    return time.perf_counter() - t0, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=120.0, help="the model's timeout")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        _project(root, args.rows)
        sup, alone = [], []
        # one untimed run first: the first process after a while pays for cold disk caches
        _timed([str(EXE), "eval", "-q", "--out", str(root / "warm")], root, _env())
        for i in range(3):
            # each in a fresh --out: the first run in a folder also creates its MLflow store
            sup.append(
                _timed([str(EXE), "eval", "-q", "--out", str(root / f"sup{i}")], root, _env())[0]
            )
            marker = str(Path(tmp) / f"verdict{i}.json")
            alone.append(
                _timed(
                    [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", f"{root}/w{i}"],
                    root,
                    _env(GENAI_GATE_VERDICT_FILE=marker),
                )[0]
            )
        print(
            f"eval, {args.rows} rows: supervised {statistics.median(sup):.2f} s, "
            f"work process alone {statistics.median(alone):.2f} s, "
            f"supervisor cost {statistics.median(sup) - statistics.median(alone):+.2f} s"
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = s.getsockname()[1]
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        for name, port in (("refused port", refused), ("silent port", silent.getsockname()[1])):
            seconds, code = _timed(
                [
                    str(EXE),
                    "eval",
                    "-q",
                    "--out",
                    str(root / name.replace(" ", "-")),
                    "--tracking-uri",
                    f"http://127.0.0.1:{port}",
                ],
                root,
                _env(),
            )
            print(f"tracking server, {name}: exit {code} after {seconds:.1f} s")
        silent.close()
        fake = FakeOpenAI(api_key="sk-bench-0123456789abcdef").start()
        fake.configure(hang_first=10**9, hang_seconds=3600.0)
        (root / "genai-gate.yml").write_text(
            "data: qa.jsonl\nmodel: openai:/fake-model\n"
            f"base-url: {fake.base_url}\napi-key-env: BENCH_KEY\n"
            "scorers: [exact_match]\ncache: false\nthresholds:\n  exact_match/mean: '>= 0.5'\n"
            f"timeout: {args.timeout}\n"
        )
        seconds, code = _timed(
            [str(EXE), "eval", "-q", "--out", str(root / "hung")],
            root,
            _env(BENCH_KEY="sk-bench-0123456789abcdef"),
        )
        fake.stop()
        print(
            f"model server that hangs (timeout {args.timeout:g} s, default retries and "
            f"concurrency): exit {code} after {seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

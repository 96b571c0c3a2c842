"""Start-up time of the `genai-gate` console script: `--version` and `--help`.

    .venv/bin/python benchmarks/startup.py                # 20 runs of each
    .venv/bin/python benchmarks/startup.py --runs 50 --importtime

Each run is a fresh process (the console script in the venv's bin folder, as CI calls it),
timed by wall clock around subprocess.run. One untimed run of each command goes first, so
the figures are warm-cache figures. Prints min/median/max per command against the target
(< 0.3 s). --importtime adds the slowest imports of `genai_gate.cli` (python -X importtime).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TARGET_S = 0.3
GENAI_GATE = Path(sys.executable).parent / "genai-gate"


def time_runs(argv: Sequence[str], runs: int) -> list[float]:
    env = dict(os.environ)
    subprocess.run(list(argv), env=env, capture_output=True, check=True)  # warm-up, untimed
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(list(argv), env=env, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    return walls


def slowest_imports(top: int) -> list[tuple[int, int, str]]:
    """(cumulative us, self us, module) of the slowest imports behind genai_gate.cli."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import genai_gate.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cum_us), int(self_us), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time genai-gate --version and --help.")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command (20)")
    parser.add_argument(
        "--exe", type=Path, default=GENAI_GATE, help=f"console script (default {GENAI_GATE})"
    )
    parser.add_argument(
        "--importtime", action="store_true", help="also list the slowest imports of the CLI"
    )
    args = parser.parse_args(argv)
    if not args.exe.exists():
        parser.error(f"{args.exe} not found: run with the project's .venv/bin/python")

    print(f"== startup: {args.exe}, {args.runs} runs each (after 1 untimed warm-up run)")
    print(f"{'command':24} {'min':>8} {'median':>8} {'max':>8}  target < {TARGET_S:g} s")
    for flag in ("--version", "--help"):
        walls = time_runs([str(args.exe), flag], args.runs)
        lo, med, hi = min(walls), statistics.median(walls), max(walls)
        verdict = "MET" if hi < TARGET_S else ("MET (median)" if med < TARGET_S else "MISSED")
        print(f"genai-gate {flag:13} {lo:7.3f}s {med:7.3f}s {hi:7.3f}s  {verdict}")

    # the interpreter alone, to tell our imports from Python's own start-up
    walls = time_runs([sys.executable, "-c", "pass"], args.runs)
    print(
        f"{'python -c pass':24} {min(walls):7.3f}s {statistics.median(walls):7.3f}s "
        f"{max(walls):7.3f}s  (baseline)"
    )

    if args.importtime:
        print()
        print("slowest imports behind `import genai_gate.cli` (cumulative ms, self ms):")
        for cum, own, name in slowest_imports(12):
            print(f"  {cum / 1000:8.1f} {own / 1000:8.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

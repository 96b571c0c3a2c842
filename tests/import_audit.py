"""Run genai-gate in its own process and see which threads load MLflow (issue #14,
`mlflow_loading`).

An audit hook (a sitecustomize on PYTHONPATH) records, for every `mlflow` module loaded,
the thread, and whether the `mlflow` package was still initialising: while it is, no other
thread may load any part of it (MLflow's import cycles break then, with "partially
initialized module" errors). `audited` asserts that, and returns the threads that loaded
the package itself."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HOOK = """\
import os, sys, threading

def _record(event, args):
    if event == "import" and (args[0] == "mlflow" or args[0].startswith("mlflow.")):
        spec = getattr(sys.modules.get("mlflow"), "__spec__", None)
        busy = int(bool(getattr(spec, "_initializing", False)))
        with open(os.environ["GG_MLFLOW_IMPORT_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{threading.current_thread().name} {args[0]} {busy}\\n")

sys.addaudithook(_record)
"""


def audited(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`python -m genai_gate ARGV` under the hook: the finished process, and the threads
    that loaded the `mlflow` package (in order)."""
    hook = tmp_path / "import-audit"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    log = hook / "imports.log"
    log.unlink(missing_ok=True)
    path = os.pathsep.join([str(hook), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, "-m", "genai_gate", *argv],
        cwd=cwd,
        env={**env, "PYTHONPATH": path, "GG_MLFLOW_IMPORT_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    loads = [line.split() for line in lines]
    package = [thread for thread, module, _ in loads if module == "mlflow"]
    # while the package initialises, only the thread that loads it loads any part of it
    others = {(t, m) for t, m, busy in loads if busy == "1" and t not in package}
    assert not others, f"loaded on another thread while mlflow initialised: {sorted(others)}"
    return done, package

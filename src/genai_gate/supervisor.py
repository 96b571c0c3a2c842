"""The `genai-gate` process is a small supervisor; the work runs in a child process.

A model, a scorer or a judge is the user's code and runs inside the work process. Whatever
it does to that process (`os._exit(0)` at import or on a row, a C extension calling
`exit(0)`, a non-daemon thread that never ends, a signal), the supervisor's exit code
comes only from a verdict that the work process wrote after the command had finished:

- the child writes its exit code into a marker file as its very last step, then leaves with
  `os._exit`, so a thread the model left behind cannot keep the job alive;
- the parent returns that code only when the marker exists and agrees with the child's
  exit status; anything else (no marker, a different status, a signal) is exit 4 with a
  message that says the run ended without a verdict.

Only the standard library is imported here, so the supervisor costs one interpreter start
(see benchmarks/supervisor_overhead.py), not a second import of mlflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

# the child's marker file; set by the parent, read (and removed from the environment) by the
# child at start, so user code does not find it there by accident
VERDICT_ENV = "GENAI_GATE_VERDICT_FILE"
SERVICE = 4


def _no_verdict(status: int) -> str:
    if status < 0:
        try:
            how = f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            how = f"was killed by signal {-status}"
    else:
        how = f"exited with status {status}"
    return (
        f"genai-gate: the evaluation process {how} before it wrote a verdict. Something in "
        "the process ended it early: the model, a scorer or a judge (os._exit(), sys.exit() "
        "from C code, a crash), or the machine (out of memory, a kill). No result was "
        "decided, so this run fails (exit 4).\n"
        "How to fix: run the model on one row by hand (python -c 'from app.model import "
        "predict; print(predict(...))') and look for a call that ends the process; a model "
        "must return an answer or raise an exception."
    )


def read_verdict(path: Path) -> int | None:
    """The exit code the child recorded, or None when it recorded none (or garbage)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    code = doc.get("exit") if isinstance(doc, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def decide(status: int, recorded: int | None) -> tuple[int, str | None]:
    """The supervisor's exit code and the message to print, from the child's status and its
    recorded verdict. Fail closed: only a recorded code equal to the status counts."""
    if recorded is not None and recorded == status:
        return status, None
    return SERVICE, _no_verdict(status)


def supervise(argv: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="genai-gate-") as tmp:
        marker = Path(tmp) / "verdict.json"
        env = {**os.environ, VERDICT_ENV: str(marker)}
        # its own process group: a Ctrl-C or a cancel reaches it once, forwarded from here
        child = subprocess.Popen(
            [sys.executable, "-m", "genai_gate", *argv], env=env, process_group=0
        )

        def forward(signum: int, _frame: FrameType | None) -> None:
            # a cancelled job (SIGINT, then SIGTERM) reaches the work process, which writes
            # what it has and records its own exit
            child.send_signal(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            status = child.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        code, message = decide(status, read_verdict(marker))
    if message:
        sys.stderr.write(message + "\n")
    return code


def _watch_parent() -> None:
    """End the work process when the supervisor is gone (killed with -9): it runs in its
    own process group, so nothing else would stop it writing into the folder that the
    next run uses. Polled, because PR_SET_PDEATHSIG is Linux-only and not in the stdlib."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(SERVICE)

    threading.Thread(target=watch, name="genai-gate-parent-watch", daemon=True).start()


def _leave(marker: str, code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # the marker is written atomically: a half-written one must not read as a verdict
    tmp = Path(f"{marker}.tmp")
    tmp.write_text(json.dumps({"exit": code}), encoding="utf-8")
    tmp.replace(marker)
    # os._exit: a non-daemon thread left by the model must not hold the job open after
    # the verdict (threading's shutdown would join it forever)
    os._exit(code)


def run_child(main: Callable[[], int]) -> None:
    """The work process: run the command, record its code, and leave at once."""
    from genai_gate.targets import limits

    marker = os.environ.pop(VERDICT_ENV)
    _watch_parent()

    def overrun(message: str) -> None:
        sys.stderr.write(message + "\n")
        _leave(marker, SERVICE)

    limits.on_overrun(overrun)
    code = SERVICE
    try:
        code = main()
    finally:
        _leave(marker, code)


# the commands that run the user's code or decide a verdict; --version, --help and schema
# run no user code and keep their one-interpreter start-up
SUPERVISED = frozenset({"eval", "action", "plan", "deploy", "analyze", "promote", "rollback"})


def entry(main: Callable[[], int]) -> None:
    if os.environ.get(VERDICT_ENV):
        run_child(main)
    argv = sys.argv[1:]
    if SUPERVISED.isdisjoint(argv):
        sys.exit(main())
    sys.exit(supervise(argv))

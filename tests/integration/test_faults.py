"""Process and dependency faults, each followed by a re-run on the same --out (issue #12).

These run the real `genai-gate` console entry (`python -m genai_gate`: the supervisor and
its work process), because the faults end or hang a process: a model that calls
`os._exit(0)`, one that hangs at import or leaves a thread running, a cancel at each phase,
a model server that hangs, a tracking server that is dead. Every one must end with a
non-zero exit that names what happened, never with exit 0 and no verdict, and the next run
on the same folder must work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.integration

ROWS = [
    {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"q{i}"}}
    for i in range(6)
]
GOOD = "def predict(question):\n    return question\n"
CONFIG = """\
data: qa.jsonl
model: python:{module}:predict
scorers: [exact_match]
thresholds:
  exact_match/mean: ">= 0.5"
cache: false
"""


def _env(**extra: str) -> dict[str, str]:
    return child_env(**extra)


def _gate(
    root: Path, *args: str, env: dict[str, str] | None = None, wait: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", str(root / "out"), *args],
        cwd=root,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=wait,
    )


def _project(root: Path, module: str, source: str, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source, encoding="utf-8")
    (root / "good_model.py").write_text(GOOD, encoding="utf-8")
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (root / "genai-gate.yml").write_text(CONFIG.format(module=module) + extra, encoding="utf-8")
    return root


def _rerun_passes(root: Path) -> None:
    """The fault is gone: the same folder, the same out, a model that works."""
    done = _gate(root, "--model", "python:good_model:predict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((root / "out" / "results.json").read_text())["result"] == "passed"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("import os\nos._exit(0)\n" + GOOD, id="at-import"),
        pytest.param(
            "import os\ndef predict(question):\n"
            "    if question == 'q3':\n        os._exit(0)\n    return question\n",
            id="on-a-row",
        ),
    ],
)
def test_a_model_that_ends_the_process_fails_closed(tmp_path: Path, source: str) -> None:
    root = _project(tmp_path / "p", "dying", source)
    done = _gate(root)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "before it wrote a verdict" in done.stderr
    assert "PASSED" not in done.stdout
    assert not (root / "out" / "results.json").exists()
    _rerun_passes(root)


def test_a_hung_import_ends_at_its_deadline(tmp_path: Path) -> None:
    source = "import time\ntime.sleep(3600)\n" + GOOD
    root = _project(tmp_path / "p", "hanging", source, "timeout: 3\n")
    done = _gate(root, wait=120)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "did not finish in 3 s" in done.stderr
    _rerun_passes(root)


def test_a_leaked_thread_does_not_hold_the_exit(tmp_path: Path) -> None:
    source = "import threading, time\n" + GOOD.replace(
        "    return question",
        "    threading.Thread(target=time.sleep, args=(3600,)).start()\n    return question",
    )
    root = _project(tmp_path / "p", "leaky", source)
    done = _gate(root, wait=240)  # without the fix this never returns
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    _rerun_passes(root)


def test_max_duration_ends_with_partial_results(tmp_path: Path) -> None:
    source = "import time\ndef predict(question):\n    time.sleep(1.5)\n    return question\n"
    root = _project(tmp_path / "p", "slow", source, "max-duration: 15\nconcurrency: 1\n")
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS * 4))
    done = _gate(root, wait=240)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "max-duration" in done.stderr
    doc = json.loads((root / "out" / "results.json").read_text())
    assert doc["result"] == "failed"
    # how many rows were answered first depends on the machine; every row is accounted for
    assert doc["rows"] == 24 and doc["errors"]["rows"] > 0
    messages = {d["message"] for d in doc["errors"]["details"]}
    assert any("max-duration" in m for m in messages), messages
    assert len((root / "out" / "rows.jsonl").read_text().splitlines()) == 24
    _rerun_passes(root)


@pytest.fixture
def hung_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key="sk-test-hung-0123456789").start()
    fake.configure(hang_first=10_000, hang_seconds=30.0)
    try:
        yield fake
    finally:
        fake.stop()


def test_a_hung_model_server_trips_the_breaker(tmp_path: Path, hung_server: FakeOpenAI) -> None:
    root = _project(tmp_path / "p", "unused", GOOD)
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS * 20))
    extra = (
        f"base-url: {hung_server.base_url}\napi-key-env: FAKE_KEY\n"
        "timeout: 1\nretries: 1\nconcurrency: 4\n"
    )
    (root / "genai-gate.yml").write_text(
        CONFIG.format(module="unused").replace("python:unused:predict", "openai:/gpt-fake") + extra
    )
    t0 = time.monotonic()
    done = _gate(root, env=_env(FAKE_KEY="sk-test-hung-0123456789"), wait=300)
    print(f"hung model server: failed in {time.monotonic() - t0:.1f} s")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "stopped calling the model server" in done.stderr
    assert (root / "out" / "results.json").exists()  # the partial results
    _rerun_passes(root)


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_dead_tracking_server_fails_in_seconds(tmp_path: Path, kind: str) -> None:
    root = _project(tmp_path / "p", "good", GOOD)
    listener = None
    if kind == "refused":
        port = _refused_port()
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # accepts (the kernel does) and never answers
        port = listener.getsockname()[1]
    try:
        t0 = time.monotonic()
        done = _gate(root, "--tracking-uri", f"http://127.0.0.1:{port}", wait=120)
        print(f"dead tracking server ({kind}): failed in {time.monotonic() - t0:.1f} s")
    finally:
        if listener is not None:
            listener.close()
    # the gate passed, but its run could not be recorded: exit 4, with the files on disk
    assert done.returncode == 4, done.stdout + done.stderr
    assert "tracking server" in done.stderr and "not logged to MLflow" in done.stderr
    assert json.loads((root / "out" / "results.json").read_text())["result"] == "passed"
    _rerun_passes(root)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("after", [1.0, 4.0, 8.0])
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_cancel_at_any_phase_leaves_a_folder_that_works(
    tmp_path: Path, after: float, how: signal.Signals
) -> None:
    """Killed or interrupted at each phase (imports, store creation, model calls, report):
    the next run on the same --out passes (no half-built MLflow store, no stale verdict)."""
    source = "import time\ndef predict(question):\n    time.sleep(0.5)\n    return question\n"
    root = _project(tmp_path / "p", "slowish", source)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", str(root / "out")],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    # a cancelled job signals the whole tree: the work process (first), then the supervisor
    for pid in [*_children(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, how)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 or "PASSED" in out, out + err
    _rerun_passes(root)


def test_answers_are_cached_as_they_arrive_and_survive_a_kill(tmp_path: Path) -> None:
    """kill -9 in the middle of the model calls: the answers received so far are in the
    cache (each written whole), and the re-run asks only for the others."""
    questions = [f"q{i}" for i in range(20)]
    fake = FakeOpenAI(api_key="sk-test-cache-0123456789", answers={q: q for q in questions})
    fake.start().configure(latency=0.5)
    try:
        root = _project(tmp_path / "p", "unused", GOOD)
        (root / "qa.jsonl").write_text(
            "".join(
                json.dumps({"inputs": {"question": q}, "expectations": {"expected_response": q}})
                + "\n"
                for q in questions
            )
        )
        (root / "genai-gate.yml").write_text(
            CONFIG.format(module="unused")
            .replace("python:unused:predict", "openai:/gpt-fake")
            .replace("cache: false", "cache: true")
            + f"base-url: {fake.base_url}\napi-key-env: FAKE_KEY\nconcurrency: 2\n"
        )
        env = _env(FAKE_KEY="sk-test-cache-0123456789")
        proc = subprocess.Popen(
            [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", str(root / "out")],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while fake.answered < 6 and proc.poll() is None:
            time.sleep(0.1)
        for pid in [*_children(proc.pid), proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        answered = fake.answered
        assert answered < len(questions)
        cached = list((root / ".genai-gate-cache").rglob("*.json"))
        assert len(cached) >= answered - 2  # at most the calls in flight were lost
        for path in cached:  # every entry is whole: written aside, then renamed
            assert "output" in json.loads(path.read_text())
        fake.wait_idle()  # the dead run's last request may still sit unread in its socket
        fake.configure(latency=0.0)
        before = fake.calls
        done = _gate(root, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert fake.calls - before == len(questions) - len(cached)
    finally:
        fake.stop()


def test_a_store_whose_build_was_cut_short_is_never_used(tmp_path: Path) -> None:
    """The sqlite store is built under a temporary name and renamed: a build killed half-way
    leaves only that file, which the next run removes (its process is gone) and rebuilds."""
    root = _project(tmp_path / "p", "good", GOOD)
    out = root / "out"
    out.mkdir()
    stale = out / ".mlflow.db.999999999.building"  # no such process
    stale.write_bytes(b"SQLite format 3\x00 half a migration")
    _rerun_passes(root)
    assert not stale.exists()
    assert (out / "mlflow.db").exists()

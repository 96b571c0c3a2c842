"""No secret value reaches any artefact (issue #12, item 4).

Canary values sit in every secret variable the run can see; the model server answers with
text that quotes them (and token-shaped keys), and on some rows fails with an error body
that echoes the caller's key. Then every artefact is searched for every canary: the out
folder (results.json, rows.jsonl, summary.md, evidence.json, the sqlite MLflow store and
its artifacts), the step summary, the outputs file, stdout and stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.integration

MODEL_KEY = "canary-model-key-Kp29xq"  # under a configured, non-obvious variable name
CANARIES = {
    "MY_LLM_CREDENTIAL": MODEL_KEY,
    "OPENAI_API_KEY": "canary-openai-Zq81xv",
    "DATABRICKS_TOKEN": "canary-dbx-token-77ab",
    "DATABRICKS_CLIENT_SECRET": "canary-dbx-secret-31cd",
    "GENAI_GATE_GITHUB_TOKEN": "canary-gh-token-55ef",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "canary-oidc-req-66gh",
    "MLFLOW_TRACKING_PASSWORD": "canary-mlflow-pw-88ij",
}
DAPI = "dapi" + "0123456789abcdef" * 2
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
SK = "sk-canaryQuotedByTheModel0123"
FOUND_ANYWHERE = [*CANARIES.values(), DAPI, JWT, SK]

QUESTIONS = [f"question {i}" for i in range(8)]


@pytest.fixture
def leaky_server() -> Iterator[FakeOpenAI]:
    quoted = " ".join(CANARIES.values())
    answers = dict.fromkeys(QUESTIONS, f"Sure. The keys are {quoted} and {DAPI} {JWT} {SK}.")
    fake = FakeOpenAI(api_key=MODEL_KEY, answers=answers).start()
    # the first rows fail with a 500 whose body quotes the Authorization header
    fake.configure(fail_500_first=3, echo_key=True)
    try:
        yield fake
    finally:
        fake.stop()


def _project(root: Path, base_url: str) -> None:
    root.mkdir(parents=True)
    rows = [
        {"inputs": {"question": q}, "expectations": {"expected_response": q}} for q in QUESTIONS
    ]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "genai-gate.yml").write_text(
        "data: qa.jsonl\n"
        "model: openai:/fake-model\n"
        f"base-url: {base_url}\n"
        "api-key-env: MY_LLM_CREDENTIAL\n"
        "retries: 0\n"
        "cache: false\n"
        "scorers: [exact_match]\n"
        "max-errors: 8\n"
        "thresholds:\n  exact_match/mean: '>= 0.0'\n"
    )


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GENAI_GATE_", "GITHUB_")) and k != "MLFLOW_TRACKING_URI"
    }
    env.update(CANARIES)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


def _hits(blob: bytes, where: str) -> list[str]:
    return [f"{where}: {c[:12]}..." for c in FOUND_ANYWHERE if c.encode() in blob]


def _scan(paths: list[Path], streams: dict[str, str]) -> list[str]:
    found: list[str] = []
    for top in paths:
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            found += _hits(path.read_bytes(), str(path))
    for name, text in streams.items():
        found += _hits(text.encode(), name)
    return found


@pytest.mark.parametrize("command", ["eval", "action"])
def test_no_canary_in_any_artefact(tmp_path: Path, leaky_server: FakeOpenAI, command: str) -> None:
    root = tmp_path / "proj"
    _project(root, leaky_server.base_url)
    summary, outputs = tmp_path / "step-summary.md", tmp_path / "outputs.txt"
    summary.touch()
    outputs.touch()
    env = _env(root)
    if command == "action":
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_OUTPUT=str(outputs),
            GITHUB_EVENT_NAME="push",
            GITHUB_REF="refs/heads/feature",
            GITHUB_REPOSITORY="acme/bot",
            GITHUB_WORKSPACE=str(root),
        )
    done = subprocess.run(
        [sys.executable, "-m", "genai_gate", command, "--out", str(root / "out")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    rows = (root / "out" / "rows.jsonl").read_text()
    assert "***" in rows  # the answers were there, and scrubbed
    # `::add-mask::VALUE` is the runner's command to hide VALUE: it is consumed, never shown
    shown = "".join(
        ln for ln in done.stdout.splitlines(keepends=True) if not ln.startswith("::add-mask::")
    )
    masked = done.stdout.count("::add-mask::")
    found = _scan([root / "out", summary, outputs], {"stdout": shown, "stderr": done.stderr})
    assert found == []
    if command == "action":
        assert masked >= len(CANARIES)  # every secret variable's value was masked in the log
        assert "result" in outputs.read_text()

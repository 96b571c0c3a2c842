"""MLflow is imported once, by one thread (issue #14, `mlflow_loading`): for a remote model,
the loading thread, so the model's first calls do not wait the second it takes; for a
`python:` model, the main thread before any call, since the model's own code may import
MLflow on any thread. Either way the run gates, judges and logs as before.

Seen from inside the work process by `tests.import_audit`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, child_env
from tests.fakes.openai_server import FakeOpenAI
from tests.import_audit import audited

pytestmark = pytest.mark.integration

KEY = "sk-loading-0123456789abcdef"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def run_with_hook(
    project: Project, tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    return audited(
        ["eval", "-q", "--out", str(project.out)],
        cwd=project.root,
        env=child_env(LLM_KEY=KEY),
        tmp_path=tmp_path,
    )


def test_a_remote_models_run_loads_mlflow_on_its_loading_thread(
    project: Project, llm: FakeOpenAI, tmp_path: Path
) -> None:
    project.jsonl(
        "qa.jsonl",
        [
            {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": "ok"}}
            for i in range(12)
        ],
    )
    project.config(
        "data: qa.jsonl\nmodel: openai:/fake-model\n"
        f"base-url: {llm.base_url}\napi-key-env: LLM_KEY\n"
        f"judge: openai:/fake-model\njudge-base-url: {llm.base_url}\njudge-api-key-env: LLM_KEY\n"
        "scorers: [correctness, exact_match, latency]\ncache: false\n"
        'thresholds:\n  correctness/mean: ">= 0.5"\n  latency/p50: "<= 60000"\n'
    )
    done, threads = run_with_hook(project, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert threads == ["genai-gate-mlflow"]  # once, and not on the path to the first call
    doc = json.loads((project.out / "results.json").read_text(encoding="utf-8"))
    assert doc["metrics"]["correctness/mean"] == 1.0
    assert doc["judge"]["calls"] == 12
    assert doc["run_id"]  # logged, and read back, after the loading thread's import


def test_a_python_models_run_loads_mlflow_before_any_call(project: Project, tmp_path: Path) -> None:
    project.write("echo_model.py", "def predict(question):\n    return question\n")
    project.jsonl(
        "qa.jsonl",
        [{"inputs": {"question": "q"}, "expectations": {"expected_response": "q"}}],
    )
    project.config(
        "data: qa.jsonl\nmodel: python:echo_model:predict\nscorers: [exact_match]\n"
        'thresholds:\n  exact_match/mean: ">= 1"\n'
    )
    done, threads = run_with_hook(project, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert threads == ["MainThread"]

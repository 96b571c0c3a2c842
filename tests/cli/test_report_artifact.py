"""The uploaded report files (results.json, rows.jsonl, summary.md) carry no secret value,
even when the model echoes one: the action scrubs them as it scrubs the job summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genai_gate.commands.action import ARTIFACT_FILES
from tests.action_env import github_env
from tests.conftest import Project

SECRET = "sk-test-0123456789-secret"
LEAKY = """
import os

def predict(question):
    return "the key is " + os.environ["OPENAI_API_KEY"]
"""


def test_no_secret_reaches_the_artifact(cli: Any, project: Project, tmp_path: Path) -> None:
    project.write("leaky.py", LEAKY)
    project.config("data: qa.jsonl\nmodel: python:leaky:predict\n")
    env = github_env(tmp_path / "gh", event="push", payload={}, ref="refs/heads/main")
    r = cli(
        "action",
        env={
            **env,
            "GENAI_GATE_CONFIG": str(project.root / "genai-gate.yml"),
            "GENAI_GATE_OUT": str(project.out),
            "OPENAI_API_KEY": SECRET,
        },
    )
    assert r.code == 0, r.text
    rows = (project.out / "rows.jsonl").read_text()
    assert "the key is ***" in rows
    for name in ARTIFACT_FILES:
        assert SECRET not in (project.out / name).read_text(), name
    assert SECRET not in (tmp_path / "gh" / "summary").read_text()

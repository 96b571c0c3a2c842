from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import QUICKSTART, Project


def test_quickstart_passes(cli: Any, tmp_path: Path) -> None:
    r = cli("eval", "-c", str(QUICKSTART / "genai-gate.yml"), "-q")
    assert r.code == 0, r.text
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["passed"] is True
    assert doc["rows"] == 30
    assert doc["run_id"]


def test_strict_quickstart_fails_with_exit_1(cli: Any, tmp_path: Path) -> None:
    r = cli("eval", "-c", str(QUICKSTART / "genai-gate-strict.yml"), "-q")
    assert r.code == 1, r.text
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    failed = {c["metric"] for c in doc["checks"] if not c["passed"]}
    assert failed == {"exact_match/mean", "rouge_l/min"}


def test_project_fixture(cli: Any, project: Project) -> None:
    project.config(
        "data: qa.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_match]\n"
        'thresholds:\n  exact_match/mean: ">= 0.7"\n'
    )
    r = cli("eval", "-c", str(project.root / "genai-gate.yml"), "-q", "--out", str(project.out))
    assert r.code == 0, r.text
    assert project.results()["metrics"]["exact_match/mean"] == 0.75

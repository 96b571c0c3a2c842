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
    r = project.eval(cli)
    assert r.code == 0, r.text
    assert project.results()["metrics"]["exact_match/mean"] == 0.75


def test_seed_example_runs_on_mlflow_3(cli: Any, tmp_path: Path) -> None:
    r = cli("eval", "-c", str(QUICKSTART.parent / "seed" / "genai-gate.yml"), "-q")
    assert r.code == 0, r.text
    assert "'latency_p50_ms' is the seed pipeline's name" in r.err
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["model_identity"]["call_style"] == "dataframe"
    assert {c["metric"] for c in doc["checks"]} == {"token_f1/mean", "latency/p50"}


def test_batches_isolate_the_bad_row(cli: Any, project: Project) -> None:
    project.write(
        "batch_model.py",
        "def answer(df):\n"
        "    if any('boom' in q for q in df['question']):\n"
        "        raise RuntimeError('cannot answer boom')\n"
        "    return [q.upper() for q in df['question']]\n",
    )
    project.jsonl(
        "b.jsonl",
        [
            {"inputs": {"question": q}, "expectations": {"expected_response": q}}
            for q in ["a", "b", "boom", "c", "d"]
        ],
    )
    project.config(
        "data: b.jsonl\nmodel: python:batch_model:answer\nbatch-size: 2\n"
        "scorers: [exact_match]\nmax-errors: 1\n"
    )
    r = project.eval(cli)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["exact_match/mean"] == 1.0
    assert doc["errors"]["rows"] == 1
    assert doc["errors"]["details"][0]["where"] == "line 3"
    assert "cannot answer boom" in doc["errors"]["details"][0]["message"]

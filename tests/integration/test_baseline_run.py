"""`baseline: run:<id>` against a real `mlflow server`: an earlier run's rows, no calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.conftest import Project

pytestmark = pytest.mark.integration

ROWS = 60
MODELS = """
import os

def _answer(name, question, wrong_every):
    with open(os.path.join(os.path.dirname(__file__), name + ".calls"), "a") as fh:
        fh.write(question + "\\n")
    i = int(question[1:])
    return "wrong" if i % 10 < wrong_every else f"a{i}"

def old(question):
    return _answer("old", question, 1)

def new(question):
    return _answer("new", question, 2)
"""


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    p = Project(tmp_path / "runbase")
    p.write("run_models.py", MODELS)
    p.jsonl(
        "qa.jsonl",
        [
            {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"a{i}"}}
            for i in range(ROWS)
        ],
    )
    return p


def calls(project: Project, name: str) -> int:
    path = project.root / f"{name}.calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def evaluate(cli: Any, project: Project, server: str, config: str, *flags: str) -> Any:
    project.config(f"data: qa.jsonl\nexperiment: it-baseline-run\n{config}")
    return project.eval(cli, "--tracking-uri", server, *flags)


def test_a_run_baseline_calls_nothing(cli: Any, proj: Project, mlflow_server: str) -> None:
    first = evaluate(
        cli, proj, mlflow_server, "model: python:run_models:old\nscorers: [exact_match]\n"
    )
    assert first.code == 0, first.text
    old_run = proj.results()["run_id"]
    assert calls(proj, "old") == ROWS

    second = evaluate(
        cli,
        proj,
        mlflow_server,
        f"model: python:run_models:new\nbaseline: run:{old_run}\nscorers: [exact_match]\n"
        "thresholds:\n  exact_match/mean: {at-least: 0.5, max-drop: 0.02}\n",
    )
    assert calls(proj, "old") == ROWS  # zero baseline calls: the rows came from the run
    assert calls(proj, "new") == ROWS
    assert second.code == 1, second.text  # 0.8 against 0.9 on the same 6 rows: regressed
    doc = proj.results()
    base = doc["baseline"]
    assert (base["kind"], base["ref"], base["pairs"]) == ("run", f"run:{old_run}", ROWS)
    assert base["label"] == f"run:{old_run} (python:run_models:old)"
    assert base["model_identity"] == {
        "uri": "python:run_models:old",
        "kind": "mlflow-run",
        "run_id": old_run,
    }
    drop = doc["checks"][1]
    assert drop["baseline"] == pytest.approx(0.9) and drop["delta"] == pytest.approx(-0.1)
    assert drop["status"] == "regressed"
    assert base["regressed_rows"] == 6

    # the new run records the comparison, and the verification counted it back
    client = MlflowClient(mlflow_server)
    run = client.get_run(doc["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["baseline/exact_match/mean"] == pytest.approx(0.9)
    assert run.data.metrics["delta/exact_match/mean"] == pytest.approx(-0.1)
    artifacts = [a.path for a in client.list_artifacts(doc["run_id"])]
    assert {"eval_results.json", "baseline_results.json"} <= set(artifacts)


def test_a_run_on_other_data_is_refused(cli: Any, proj: Project, mlflow_server: str) -> None:
    first = evaluate(
        cli, proj, mlflow_server, "model: python:run_models:old\nscorers: [exact_match]\n"
    )
    assert first.code == 0, first.text
    old_run = proj.results()["run_id"]
    before = calls(proj, "new")
    r = evaluate(
        cli,
        proj,
        mlflow_server,
        f"model: python:run_models:new\nbaseline: run:{old_run}\nscorers: [exact_match]\n",
        "--limit",
        "20",
    )
    assert r.code == 2, r.text
    assert f"genai-gate.yml: baseline: the run {old_run} evaluated other data" in r.err
    assert f"({ROWS} rows of " in r.err and "(20 rows of " in r.err
    assert calls(proj, "new") == before  # refused before any model call


def test_an_unknown_run_is_refused(cli: Any, proj: Project, mlflow_server: str) -> None:
    r = evaluate(
        cli,
        proj,
        mlflow_server,
        "model: python:run_models:new\nbaseline: run:0123456789abcdef0123456789abcdef\n",
    )
    assert r.code == 2, r.text
    assert "there is no MLflow run '0123456789abcdef0123456789abcdef' at http://127.0.0.1" in r.err
    assert calls(proj, "new") == 0


def test_a_metric_the_baseline_run_never_scored_fails_closed(
    cli: Any, proj: Project, mlflow_server: str
) -> None:
    first = evaluate(
        cli, proj, mlflow_server, "model: python:run_models:old\nscorers: [exact_match]\n"
    )
    old_run = proj.results()["run_id"]
    assert first.code == 0, first.text
    r = evaluate(
        cli,
        proj,
        mlflow_server,
        f"model: python:run_models:new\nbaseline: run:{old_run}\n"
        "scorers: [exact_match, token_f1]\n"
        "thresholds:\n  token_f1/mean: {at-least: 0.5, max-drop: 0.05}\n",
    )
    assert r.code == 1, r.text
    assert (
        f"token_f1/mean has no baseline value: run:{old_run} (python:run_models:old) "
        "produced no token_f1/mean"
    ) in r.out
    assert proj.results()["checks"][1]["status"] == "no-baseline"

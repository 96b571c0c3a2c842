"""Against a real `mlflow server` (sqlite backend) that the test session starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from tests.conftest import QA_ROWS, Project

pytestmark = pytest.mark.integration

CONFIG = """\
data: qa.jsonl
model: {model}
scorers: [exact_match, token_f1, latency]
thresholds:
  exact_match/mean: ">= 0.7"
  latency/p50: "<= 800"
experiment: {experiment}
"""


def test_eval_logs_a_complete_run(cli: Any, project: Project, mlflow_server: str) -> None:
    project.config(CONFIG.format(model="python:qa_model:predict", experiment="it-logging"))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REPOSITORY": "acme/bot",
        "GITHUB_RUN_ID": "42",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    r = project.eval(cli, "--tracking-uri", mlflow_server, env=env)
    assert r.code == 0, r.text
    doc = project.results()
    run_id = doc["run_id"]
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("it-logging")
    assert experiment is not None
    assert (
        doc["run_url"] == f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/{run_id}"
    )

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for name, value in doc["metrics"].items():
        assert run.data.metrics[name] == pytest.approx(value)
    assert run.data.metrics["genai_gate/rows"] == 4
    assert run.data.params["dataset_digest"] == doc["dataset_digest"]
    assert run.data.params["model"] == "python:qa_model:predict"
    assert run.data.tags["mlflow.source.git.commit"] == env["GITHUB_SHA"]
    assert run.data.tags["mlflow.source.name"] == "https://github.com/acme/bot/actions/runs/42"
    assert run.data.tags["genai_gate.verdict"] == "passed"
    assert run.inputs is not None
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["qa.jsonl"]

    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"eval_results.json", "results.json", "summary.md", "evidence.json"} <= names
    local = Path(client.download_artifacts(run_id, "eval_results.json", str(project.root)))
    table = json.loads(local.read_text())
    assert len(table["data"]) == len(QA_ROWS)
    assert "exact_match/value" in table["columns"]
    evidence = json.loads(
        Path(client.download_artifacts(run_id, "evidence.json", str(project.root))).read_text()
    )
    record = evidence["records"][-1]
    assert record["mlflow"]["run_id"] == run_id
    assert record["git"]["sha"] == env["GITHUB_SHA"]
    assert record["actor"] == "octocat"
    assert record["data"]["digest"] == doc["dataset_digest"]


MODEL_CODE = """
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

ANSWERS = {"What is 2+2?": "4", "Capital of France?": "Paris", "Color of the sky?": "blue",
           "Largest planet?": "Jupiter"}

class QA(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None):
        return [ANSWERS.get(q, "?") for q in model_input["question"]]

mlflow.models.set_model(QA())
"""


def test_registered_model_by_alias(cli: Any, project: Project, mlflow_server: str) -> None:
    code = project.write("model_code.py", MODEL_CODE)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("it-registry")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            registered_model_name="qa-bot",
            input_example=__import__("pandas").DataFrame({"question": ["What is 2+2?"]}),
        )
    client = MlflowClient(mlflow_server)
    version = info.registered_model_version
    client.set_registered_model_alias("qa-bot", "champion", str(version))

    project.config(CONFIG.format(model="models:/qa-bot@champion", experiment="it-registry"))
    r = project.eval(cli, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["exact_match/mean"] == 1.0
    assert doc["model_identity"]["resolved"] == f"models:/qa-bot/{version}"
    assert doc["model_identity"]["kind"] == "mlflow"

    project.config(CONFIG.format(model="models:/qa-bot/99", experiment="it-registry"))
    r = project.eval(cli, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert r.code == 2, r.text
    assert "models:/qa-bot/99" in r.err

    # the registered champion as the baseline of a python candidate
    candidate = CONFIG.format(model="python:qa_model:predict", experiment="it-registry")
    project.config(candidate + "baseline: models:/qa-bot@champion\n")
    r = project.eval(cli, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert r.code == 0, r.text
    base = project.results()["baseline"]
    assert base["label"] == f"models:/qa-bot@champion (models:/qa-bot/{version})"
    assert base["metrics"]["exact_match/mean"] == 1.0
    assert base["comparisons"][0]["delta"] == -0.25  # the echo model misses one of four
    project.config(candidate + "baseline: models:/qa-bot/99\n")
    r = project.eval(cli, env={"MLFLOW_TRACKING_URI": mlflow_server})
    assert r.code == 2, r.text
    assert "genai-gate.yml: baseline: cannot load the model models:/qa-bot/99" in r.err


def test_unreachable_tracking_server_exits_4_and_keeps_results(cli: Any, project: Project) -> None:
    project.config(CONFIG.format(model="python:qa_model:predict", experiment="x"))
    r = project.eval(
        cli,
        "--tracking-uri",
        "http://127.0.0.1:9",
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"},
    )
    assert r.code == 4, r.text
    assert "MLflow tracking error" in r.err and "127.0.0.1:9" in r.err
    doc = project.results()
    assert doc["passed"] is True and doc["run_id"] is None
    assert len((project.out / "rows.jsonl").read_text().splitlines()) == len(QA_ROWS)

"""A cached re-run that only reads (issue #14): every answer cached and the run identical to
one already logged, so the re-run reads its scores back, makes no call, imports no MLflow,
and points at the MLflow run that holds them. Anything that differs is a full run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.conftest import Project, child_env
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.integration

KEY = "sk-replay-0123456789abcdef"
ROWS = [
    {"inputs": {"question": f"What is {i} + {i}?"}, "expectations": {"expected_response": "ok"}}
    for i in range(6)
]


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=KEY).start()
    yield fake
    fake.stop()


def setup(project: Project, llm: FakeOpenAI, thresholds: str, extra: str = "") -> None:
    project.jsonl("qa.jsonl", ROWS)
    project.config(
        "data: qa.jsonl\nmodel: openai:/fake-model\n"
        f"base-url: {llm.base_url}\napi-key-env: LLM_KEY\n"
        f"judge: openai:/fake-model\njudge-base-url: {llm.base_url}\n"
        "judge-api-key-env: LLM_KEY\n"
        "scorers: [correctness, response_length, latency]\n"
        f"cache-dir: {project.root / 'cache'}\n"
        f"thresholds:\n{thresholds}" + extra
    )


def run(cli: Any, project: Project) -> Any:
    return project.eval(cli, env={"LLM_KEY": KEY})


def runs_in(project: Project) -> list[str]:
    with sqlite3.connect(project.out / "mlflow.db") as con:
        return [r[0] for r in con.execute("SELECT run_uuid FROM runs ORDER BY start_time")]


def test_an_identical_cached_rerun_reads_its_scores_back_and_logs_no_copy(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    assert run(cli, project).code == 0
    first = project.results()
    first_rows = (project.out / "rows.jsonl").read_text(encoding="utf-8")
    calls = llm.calls
    assert calls == 12  # a model call and a judge call per row

    r = run(cli, project)
    assert r.code == 0, r.text
    again = project.results()
    assert llm.calls == calls  # no model call, no judge call
    assert again["run_id"] == first["run_id"]  # the run that holds this evaluation
    assert runs_in(project) == [first["run_id"]]  # and no copy of it
    assert again["metrics"] == first["metrics"]
    assert again["checks"] == first["checks"] and again["passed"] is True
    assert (project.out / "rows.jsonl").read_text(encoding="utf-8") == first_rows
    assert again["cache"]["hits"] == len(ROWS) and again["cache"]["misses"] == 0
    assert again["judge"]["calls"] == 0
    assert any(f"MLflow run {first['run_id']} holds" in n for n in again["notices"])
    summary = (project.out / "summary.md").read_text(encoding="utf-8")
    assert first["run_id"] in summary and "not logged again" in summary
    # the audit trail has one record per run, both naming the run that holds the metrics
    records = json.loads((project.out / "evidence.json").read_text(encoding="utf-8"))
    records = records["records"] if isinstance(records, dict) else records
    assert [rec["mlflow"]["run_id"] for rec in records][-2:] == [first["run_id"]] * 2
    assert "replayed_from_run" not in records[-2]
    assert records[-1]["replayed_from_run"] == first["run_id"]


def test_a_replayed_run_imports_no_mlflow(project: Project, llm: FakeOpenAI) -> None:
    """The point of a replay: no MLflow start-up. Measured with Python's own import log in
    the work process (PYTHONPROFILEIMPORTTIME reaches the supervisor's child too)."""
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    env = child_env(LLM_KEY=KEY)
    argv = [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", str(project.out)]
    done = [
        subprocess.run(
            argv,
            cwd=project.root,
            env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        for _ in range(2)
    ]
    assert [d.returncode for d in done] == [0, 0], done[-1].stdout + done[-1].stderr

    def imported(stderr: str) -> set[str]:
        return {
            line.rsplit("|", 1)[-1].strip()
            for line in stderr.splitlines()
            if line.startswith("import time:")
        }

    assert "mlflow" in imported(done[0].stderr)  # the first run evaluates and logs
    second = imported(done[1].stderr)
    assert "genai_gate.replay" in second
    assert not {m for m in second if m == "mlflow" or m.startswith("mlflow.")}
    assert "sqlalchemy" not in second


def test_a_changed_threshold_is_a_full_run(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    assert run(cli, project).code == 0
    first = project.results()
    setup(project, llm, '  response_length/max: "<= 3"\n')
    assert run(cli, project).code == 1  # decided on the new threshold, closed
    again = project.results()
    assert again["run_id"] != first["run_id"]
    assert runs_in(project) == [first["run_id"], again["run_id"]]
    assert not any("not logged again" in n for n in again["notices"])


def test_a_deleted_run_is_not_pointed_at(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    assert run(cli, project).code == 0
    first = project.results()["run_id"]
    MlflowClient(f"sqlite:///{project.out / 'mlflow.db'}").delete_run(first)
    assert run(cli, project).code == 0
    again = project.results()["run_id"]
    assert again != first  # logged anew: the deleted run no longer holds the evaluation
    # and that run is now the one a third run points at
    assert run(cli, project).code == 0
    assert project.results()["run_id"] == again


def test_a_row_that_failed_is_asked_again(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    """A run with a row error leaves no replay record: the re-run retries that row."""
    llm.configure(always_500=True)
    setup(project, llm, '  correctness/mean: ">= 0.5"\n', "retries: 0\nmax-errors: 100%\n")
    run(cli, project)
    assert not (project.root / "cache" / "runs").exists()
    llm.configure(always_500=False)
    calls = llm.calls
    assert run(cli, project).code == 0
    assert llm.calls > calls


def test_a_replay_against_a_tracking_server(
    cli: Any, project: Project, llm: FakeOpenAI, mlflow_server: str
) -> None:
    """On a tracking server, the earlier run is looked up through MLflow's REST API."""
    setup(project, llm, '  correctness/mean: ">= 0.5"\n', f"tracking-uri: {mlflow_server}\n")
    assert run(cli, project).code == 0
    first = project.results()
    calls = llm.calls
    assert run(cli, project).code == 0
    again = project.results()
    assert llm.calls == calls and again["run_id"] == first["run_id"]
    assert again["run_url"] == first["run_url"]
    experiment = MlflowClient(mlflow_server).get_experiment_by_name("genai-gate")
    assert experiment is not None
    found = MlflowClient(mlflow_server).search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_id = '{first['run_id']}'"
    )
    assert len(found) == 1


def test_a_damaged_record_is_a_full_run(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    assert run(cli, project).code == 0
    first = project.results()["run_id"]
    records = list((project.root / "cache" / "runs").glob("*.json"))
    assert len(records) == 1
    good = records[0].read_text(encoding="utf-8")
    records[0].write_text(good[: len(good) // 2], encoding="utf-8")  # cut short
    assert run(cli, project).code == 0
    second = project.results()["run_id"]
    assert second != first
    # valid JSON of the wrong shape (a row's scores as text) is no record either
    doc = json.loads(records[0].read_text(encoding="utf-8"))
    doc["rows"][0]["scores"] = "all good"
    records[0].write_text(json.dumps(doc), encoding="utf-8")
    assert run(cli, project).code == 0
    assert project.results()["run_id"] not in (first, second)


def test_a_record_of_other_answers_is_not_replayed(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    """The rows of a record must be this data's rows with exactly the cached answers: a
    record whose answers differ (a run beside this one on the same cache) is a full run."""
    setup(project, llm, '  correctness/mean: ">= 0.5"\n')
    assert run(cli, project).code == 0
    first = project.results()["run_id"]
    (record,) = (project.root / "cache" / "runs").glob("*.json")
    doc = json.loads(record.read_text(encoding="utf-8"))
    doc["rows"][0]["outputs"] = "an answer this run never got"
    record.write_text(json.dumps(doc), encoding="utf-8")
    calls = llm.calls
    assert run(cli, project).code == 0
    assert project.results()["run_id"] != first  # evaluated and logged anew
    assert llm.calls == calls  # from the cache: the answers were there, the record was not right

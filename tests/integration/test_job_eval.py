"""`run-on: databricks` against the emulator: upload, submit, progress, fetch, gate; the
summary rendered here with this run's links, and rules against the serving champion
decided here again from both sides' fetched rows.

The emulator really runs the submitted task: `launch.py` from the uploaded bundle, with the
bundle's config and files, in a subprocess of this checkout's interpreter; the eval there is
`genai-gate eval --runner spark` on a local Spark session, logging to the emulator's stand-in
for the workspace's MLflow (a sqlite store, through MLFLOW_TRACKING_URI in the job's env).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import QA_ROWS, Project
from tests.fakes.databricks import FakeDatabricks, ServedEntity

pytestmark = pytest.mark.integration

VOLUME = "/Volumes/main/eval/jobs/ci"


@pytest.fixture
def workspace(
    databricks_workspace: FakeDatabricks, databricks_pat_env: dict[str, str], tmp_path: Path
) -> FakeDatabricks:
    databricks_workspace.job_env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'workspace-mlflow.db'}",
    }
    return databricks_workspace


def _config(project: Project, extra: str = "") -> None:
    project.config(
        "data: qa.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_match, token_f1]\n"
        "thresholds:\n  exact_match/mean: '>= 0.5'\n"
        f"job-volume: {VOLUME}\n" + extra
    )


def _rows(path: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "latency_ms"}
        for line in path.read_text().splitlines()
    ]


def _github(project: Project) -> dict[str, str]:
    """What a workflow run's environment gives the links: the job, outside Actions, has none."""
    return {
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/bot",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_WORKSPACE": str(project.root),
    }


def _context_line(summary: str) -> str:
    return summary.splitlines()[2]


@pytest.mark.slow
def test_the_job_round_trip_gives_the_local_verdict_metrics_and_report(
    project: Project, cli: Any, workspace: FakeDatabricks
) -> None:
    _config(project)
    github = _github(project)
    local = project.eval(cli, env=github)
    assert local.code == 0, local.text
    local_doc, local_rows = project.results(), _rows(project.out / "rows.jsonl")

    remote = Project(project.root / "remote")  # its own --out, the same config
    result = remote.eval(
        cli, "--set", "run-on=databricks", config=str(project.root / "genai-gate.yml"), env=github
    )
    assert result.code == 0, result.text
    doc = remote.results()
    assert doc["passed"] is True and doc["metrics"] == local_doc["metrics"]
    assert doc["checks"] == local_doc["checks"]
    assert doc["dataset_digest"] == local_doc["dataset_digest"]
    assert doc["dataset"] == local_doc["dataset"]  # the data as the checkout names it
    assert doc["provenance"] == local_doc["provenance"]  # where the PR ran, not the job
    assert _rows(remote.out / "rows.jsonl") == local_rows

    # summary.md is rendered here, by the local run's renderer, from the fetched results:
    # the same report, with the commit and workflow run the job cannot know, and the job
    summary, local_summary = (
        (remote.out / "summary.md").read_text(),
        (project.out / "summary.md").read_text(),
    )
    line = _context_line(summary)
    commit = (
        "[0123456](<https://github.com/acme/bot/commit/0123456789abcdef0123456789abcdef01234567>)"
    )
    assert line.startswith(
        f"commit {commit} · [workflow run](<https://github.com/acme/bot/actions/runs/4242>) · "
    )
    (run,) = workspace.job_runs.values()
    assert f" · [Databricks run {run.run_id}](<{doc['job']['url']}>) · " in line
    assert "MLflow run" in line and doc["run_id"] in line  # the workspace's, as the job logged
    assert _context_line(local_summary).startswith(f"commit {commit} · [workflow run]")
    # the rest is the local run's summary line for line; the config shows the flag's key too
    rest = [x for x in summary.splitlines() if x != line and x != "run-on: databricks"]
    assert rest == [x for x in local_summary.splitlines() if x != _context_line(local_summary)]

    assert run.result == "SUCCESS"
    assert doc["job"]["run_id"] == run.run_id and doc["job"]["url"].endswith(f"/{run.run_id}")
    assert run.argv[3:] == ["eval", "-c", "genai-gate.yml", "--out", "out", "--runner", "spark",
                            "--progress-file", "progress.json", "-q"]  # fmt: skip
    # the run's progress and its page reached the log
    assert f"databricks: run {run.run_id} RUNNING" in result.err
    assert "#job/" in result.err
    folder = workspace.volume_path(doc["job"]["folder"])
    assert sorted(p.name for p in (folder / "wheels").iterdir())[0].startswith("genai_gate-")
    assert (folder / "qa_model.py").is_file() and (folder / "data" / "qa.jsonl").is_file()
    assert json.loads((folder / "out" / "exit.json").read_text()) == {"exit": 0}
    record = json.loads((remote.out / "evidence.json").read_text())["records"][-1]
    assert record["job"]["run_id"] == run.run_id
    assert record["data"]["digest"] == local_doc["dataset_digest"]
    # the same audit record as a local run (the commit included), and where it ran
    local_record = json.loads((project.out / "evidence.json").read_text())["records"][-1]
    assert set(record) == set(local_record) | {"job"}
    assert record["git"] == local_record["git"]
    assert record["thresholds"] == local_record["thresholds"]
    uploads = [r for r in workspace.requests if r.method == "PUT" and "/fs/files/" in r.path]
    assert uploads and {r.auth for r in uploads} == {"pat"}


ANSWERS = {row["inputs"]["question"]: row["expectations"]["expected_response"] for row in QA_ROWS}


@pytest.fixture
def champion(workspace: FakeDatabricks) -> FakeDatabricks:
    """qa-bot's champion answers every row right; the project's model misses one of four."""

    def right(messages: list[dict[str, Any]]) -> str:
        return ANSWERS.get(str(messages[-1]["content"]), "?")

    workspace.add_endpoint("qa-bot", ServedEntity("champion", "main.ml.qa", "3", right, 100))
    return workspace


def _against_champion(project: Project, max_drop: float) -> None:
    project.config(
        "data: qa.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_match]\n"
        "baseline: endpoints:/qa-bot\n"
        f"thresholds:\n  exact_match/mean: {{at-least: 0.5, max-drop: {max_drop}}}\n"
        f"run-on: databricks\njob-volume: {VOLUME}\n"
    )


@pytest.mark.slow
def test_a_rule_against_the_serving_champion_that_fails_in_the_job_fails_here(
    project: Project, cli: Any, champion: FakeDatabricks
) -> None:
    _against_champion(project, 0.1)  # 0.75 against 1.0: Δ -0.25, 4 pairs give no interval
    result = project.eval(cli, env=_github(project))
    assert result.code == 1, result.text
    (run,) = champion.job_runs.values()
    assert run.result == "SUCCESS"  # the gate said no; the job did its work
    folder = champion.volume_path(project.results()["job"]["folder"])
    assert json.loads((folder / "out" / "exit.json").read_text()) == {"exit": 1}
    assert dict(champion.served) == {"champion": 4}  # the job called the champion's route
    doc = project.results()
    check = doc["checks"][1]
    assert (check["op"], check["value"], check["baseline"], check["delta"]) == (
        "max-drop", 0.75, 1.0, -0.25,
    )  # fmt: skip
    assert (check["passed"], check["status"]) == (False, "inconclusive")
    assert doc["baseline"]["ref"] == "endpoints:/qa-bot" and doc["baseline"]["pairs"] == 4
    # both sides' rows are here, as after a local run, and the report names the row that
    # got worse and the champion
    assert len((project.out / "baseline_rows.jsonl").read_text().splitlines()) == 4
    summary = (project.out / "summary.md").read_text()
    assert "exact\\_match/mean fell 25 points" in summary
    assert "Rows that got worse than the baseline (1)" in summary
    assert "**Baseline** <code>endpoints\\:/qa-bot \\(champion champion\\: main.ml.qa v3" in summary
    assert "[workflow run](<https://github.com/acme/bot/actions/runs/4242>)" in summary
    record = json.loads((project.out / "evidence.json").read_text())["records"][-1]
    assert record["verdict"] == "failed" and record["baseline"]["ref"] == "endpoints:/qa-bot"


@pytest.mark.slow
def test_a_rule_against_the_serving_champion_that_passes_in_the_job_passes_here(
    project: Project, cli: Any, champion: FakeDatabricks
) -> None:
    _against_champion(project, 0.3)
    result = project.eval(cli)
    assert result.code == 0, result.text
    check = project.results()["checks"][1]
    assert (check["op"], check["delta"], check["passed"]) == ("max-drop", -0.25, True)
    assert "Rows that got worse than the baseline (1)" in (project.out / "summary.md").read_text()


@pytest.mark.slow
def test_a_job_whose_rules_say_otherwise_than_here_is_no_verdict(
    project: Project, cli: Any, champion: FakeDatabricks
) -> None:
    # the job's environment lets an inconclusive rule pass; this run's config does not
    champion.job_env["GENAI_GATE_INCONCLUSIVE"] = "pass"
    _against_champion(project, 0.1)
    result = project.eval(cli)
    assert result.code == 4, result.text
    (run,) = champion.job_runs.values()
    folder = Path(run.argv[2])  # the bundle's folder, as the job saw it
    assert json.loads((folder / "out" / "exit.json").read_text()) == {"exit": 0}
    assert "(passed, exit 0) is not the one its metrics and rows give here; no verdict" in (
        result.err
    )
    assert not (project.out / "results.json").exists()


def test_a_run_that_fails_is_exit_4_with_its_url_and_error(
    project: Project, cli: Any, workspace: FakeDatabricks
) -> None:
    _config(project, "run-on: databricks\n")
    # the job's own environment carries a setting the job cannot use: exit 2 there
    workspace.job_env["GENAI_GATE_MAX_ERRORS"] = "several"
    result = project.eval(cli)
    assert result.code == 4, result.text
    (run,) = workspace.job_runs.values()
    assert run.result == "FAILED"
    assert f"#job/{run.run_id}/run/{run.run_id}" in result.err
    assert "GENAI_GATE_MAX_ERRORS" in result.err  # the task's log tail, from runs/get-output
    assert not (project.out / "results.json").exists()


def test_a_job_that_ends_without_a_verdict_is_exit_4(
    project: Project, cli: Any, workspace: FakeDatabricks
) -> None:
    # the driver imports the model, which ends the process: the run "succeeds", unverdicted
    project.write("qa_model.py", "import os\nos._exit(0)\n")
    _config(project, "run-on: databricks\n")
    result = project.eval(cli)
    assert result.code == 4, result.text
    assert "left no out/exit.json" in result.err
    (run,) = workspace.job_runs.values()
    assert run.result == "SUCCESS"


def test_a_volume_is_required(project: Project, cli: Any, workspace: FakeDatabricks) -> None:
    project.config("data: qa.jsonl\nmodel: python:qa_model:predict\nrun-on: databricks\n")
    result = project.eval(cli)
    assert result.code == 2, result.text
    assert "job-volume: /Volumes/" in result.err
    assert not workspace.job_runs


def test_a_cancelled_ci_job_cancels_the_databricks_run(
    project: Project, workspace: FakeDatabricks, databricks_pat_env: dict[str, str]
) -> None:
    project.write("slow_model.py", "import time\n\ndef predict(question):\n    time.sleep(60)\n")
    project.config(
        "data: qa.jsonl\nmodel: python:slow_model:predict\nscorers: [exact_match]\n"
        f"run-on: databricks\njob-volume: {VOLUME}\n"
    )
    script = Path(sys.executable).with_name("genai-gate")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GENAI_GATE_", "GITHUB_"))
    } | databricks_pat_env
    gate = subprocess.Popen(
        [str(script), "eval", "-c", str(project.root / "genai-gate.yml"), "--out",
         str(project.out), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(
        r.life_cycle == "RUNNING" for r in workspace.job_runs.values()
    ):
        assert gate.poll() is None, gate.communicate()
        time.sleep(0.2)
    (run,) = workspace.job_runs.values()
    gate.send_signal(signal.SIGTERM)  # GitHub's cancel
    _, err = gate.communicate(timeout=120)
    assert gate.returncode != 0
    assert run.cancelled, err
    end = time.monotonic() + 60  # runs/cancel is asynchronous, as on Databricks
    while run.life_cycle != "TERMINATED" and time.monotonic() < end:
        time.sleep(0.1)
    assert run.result == "CANCELED", err
    assert run.process.poll() is not None  # the job's process is gone too
    assert f"databricks: run {run.run_id} cancelled" in err
    assert not (project.out / "results.json").exists()

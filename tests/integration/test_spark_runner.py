"""`runner: spark` on a real local Spark session (`local[2]`, pyspark from the dev group).

One session serves the whole module: starting one costs seconds. The partitions are real
Python workers (separate processes), so the model, the scorers and the judges are rebuilt
there from the config, as on a cluster.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genai_gate.commands.eval import check_inputs
from genai_gate.config import load_config
from genai_gate.evaluate import evaluate
from genai_gate.results import RowResult
from genai_gate.spark_runner import evaluate_on_spark, shared_session
from genai_gate.targets import resolve_target
from tests.conftest import Project
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.integration

MODEL = """
import os


def predict(question):
    n = int(question.split("-")[1])
    calls = os.environ.get("CALLS_LOG")
    if calls:
        with open(calls, "a", encoding="utf-8") as log:
            log.write(question + "\\n")
    if n == 13:
        raise ValueError("row 13 is broken")
    if n % 7 == 0:
        return "something else entirely"
    return question.upper() if n % 3 else "the answer is " + question
"""


@pytest.fixture(scope="module")
def calls_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the model logs its calls. Set before the session starts: Spark's Python workers
    keep the environment the session was started with, as a cluster's executors do."""
    path = tmp_path_factory.mktemp("calls") / "calls.log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CALLS_LOG", str(path))
        yield path


@pytest.fixture(scope="module")
def spark(calls_log: Path) -> Iterator[Any]:
    if shutil.which("java") is None:
        pytest.skip("runner: spark needs Java 17+ for a local session, and java is not on PATH")
    pytest.importorskip("pyspark", reason="pyspark comes from the dev group (genai-gate[spark])")
    with shared_session("local[2]") as session:
        yield session


def _project(root: Path, rows: int, extra: str = "") -> Project:
    p = Project(root)
    p.write("spark_model.py", MODEL)
    p.jsonl(
        "qa.jsonl",
        [
            {"inputs": {"question": f"q-{i}"}, "expectations": {"expected_response": f"q-{i}"}}
            for i in range(rows)
        ],
    )
    p.config(
        "data: qa.jsonl\nmodel: python:spark_model:predict\n"
        "scorers: [exact_match, token_f1, response_length]\n"
        "thresholds:\n  exact_match/mean: '>= 0.6'\n  token_f1/mean: '>= 0.5'\n"
        "max-errors: 1\nconcurrency: 4\n" + extra
    )
    return p


def _same(row: RowResult) -> RowResult:
    # the one thing that differs between two runs of the same rows: the measured time
    import dataclasses

    return dataclasses.replace(row, latency_ms=None)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_thousand_rows_give_the_local_runners_rows(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "p", 10_000)
    loaded = load_config(str(project.root / "genai-gate.yml"), environ={})
    scorers, dataset = check_inputs(loaded, [])
    target = resolve_target(
        "python:spark_model:predict",
        loaded,
        input_keys=["question"],
        workspace=None,  # type: ignore[arg-type]
    )
    local = evaluate(loaded, dataset, scorers, target)
    on_spark, _ = evaluate_on_spark(loaded, dataset, scorers, target, spark=spark)
    assert len(on_spark.rows) == 10_000
    assert [_same(r) for r in on_spark.rows] == [_same(r) for r in local.rows]
    assert on_spark.metrics == local.metrics
    assert on_spark.row_errors == local.row_errors
    assert [e.where for e in on_spark.row_errors] == ["line 14"]


def test_the_cli_gives_the_same_verdict_files_and_metrics(
    spark: Any, cli: Any, tmp_path: Path
) -> None:
    project = _project(tmp_path / "p", 300)
    local = project.eval(cli)
    local_doc, local_rows = project.results(), (project.out / "rows.jsonl").read_text()
    project = Project(project.root / "second")  # another --out, the same config
    config = str(project.root.parent / "genai-gate.yml")
    on_spark = project.eval(cli, "--runner", "spark", config=config)
    assert (local.code, on_spark.code) == (1, 1), on_spark.text  # exact_match 0.57 < 0.6
    doc = project.results()
    assert doc["metrics"] == local_doc["metrics"]
    assert doc["checks"] == local_doc["checks"]
    assert doc["passed"] == local_doc["passed"] and doc["errors"] == local_doc["errors"]

    def rows(text: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "latency_ms"}
            for line in text.splitlines()
        ]

    assert rows((project.out / "rows.jsonl").read_text()) == rows(local_rows)
    assert doc["seconds"]["spark_start"] >= 0  # the session was the module's, already up


def test_a_row_that_raises_is_called_and_counted_once(
    spark: Any, cli: Any, tmp_path: Path, calls_log: Path
) -> None:
    project = _project(tmp_path / "p", 40)
    calls_log.write_text("")
    # the partitions are other processes: the model logs each call to a file
    result = project.eval(cli, "--runner", "spark")
    calls = calls_log
    assert result.code == 1, result.text
    doc = project.results()
    assert doc["errors"]["rows"] == 1
    assert [d["where"] for d in doc["errors"]["details"]] == ["line 14"]
    assert "row 13 is broken" in doc["errors"]["details"][0]["message"]
    logged = calls.read_text().splitlines()
    assert sorted(logged) == sorted(f"q-{i}" for i in range(40))  # each row once


def test_concurrency_is_the_whole_clusters(spark: Any, cli: Any, tmp_path: Path) -> None:
    """Model and judge calls of both partitions together never exceed `concurrency`."""
    with FakeOpenAI(api_key="sk-fake", latency=0.05) as server:
        project = Project(tmp_path / "p")
        project.jsonl(
            "qa.jsonl",
            [
                {"inputs": {"question": f"q-{i}"}, "expectations": {"expected_response": "x"}}
                for i in range(48)
            ],
        )
        project.config(
            "data: qa.jsonl\nmodel: openai:/gpt-4o-mini\n"
            f"base-url: {server.base_url}\njudge: openai:/gpt-4o-mini\n"
            f"judge-base-url: {server.base_url}\n"
            "scorers: [relevance_to_query]\n"
            "thresholds:\n  relevance_to_query/mean: '>= 0'\n"
            "concurrency: 3\ncache: false\n"
        )
        result = project.eval(cli, "--runner", "spark", env={"OPENAI_API_KEY": "sk-fake"})
        assert result.code == 0, result.text
        assert server.answered == 96  # a model call and a judge call per row
        assert 1 <= server.max_in_flight <= 3
        assert project.results()["judge"]["calls"] >= 48


SLOW_MODEL = """
import time


def predict(question):
    if int(question.split("-")[1]) >= 10:
        time.sleep(120)  # past max-duration: the runner gives up on it
    return question
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_max_duration_leaves_partial_results_as_the_local_runner_does(
    spark: Any, cli: Any, tmp_path: Path
) -> None:
    """Rows 0-9 answer at once, the others would take two minutes each. At max-duration (60 s:
    a partition's start costs ~10 s on a started session, with room for a busy runner) both
    runners write every row (the answered ones, and the others as not finished), the same
    files, and exit 4. On Spark (8 partitions of 5 rows, 2 at a time) partitions 0 and 1
    finish, 2 and 3 are cut at the deadline, and 4 to 7 start after it and run nothing."""
    local = Project(tmp_path / "p")
    local.write("slow_rows.py", SLOW_MODEL)
    local.jsonl(
        "qa.jsonl",
        [
            {"inputs": {"question": f"q-{i}"}, "expectations": {"expected_response": f"q-{i}"}}
            for i in range(40)
        ],
    )
    local.config(
        "data: qa.jsonl\nmodel: python:slow_rows:predict\nscorers: [exact_match]\n"
        "thresholds:\n  exact_match/mean: '>= 0.2'\n"
        "concurrency: 2\nmax-duration: 60\ntimeout: 300\ncache: false\n"
    )
    threads = local.eval(cli)
    on_spark = Project(local.root / "spark")  # another --out, the same config
    spark_run = on_spark.eval(cli, "--runner", "spark", config=str(local.root / "genai-gate.yml"))
    not_finished = "not finished: the run reached max-duration (60 s)"

    def rows(project: Project) -> list[dict[str, Any]]:
        text = (project.out / "rows.jsonl").read_text()
        return [
            {k: v for k, v in json.loads(line).items() if k != "latency_ms"}
            for line in text.splitlines()
        ]

    for run, project in ((threads, local), (spark_run, on_spark)):
        assert run.code == 4, run.text
        assert "the run reached max-duration (60 s). The partial results are in" in run.err
        doc = project.results()
        assert (doc["result"], doc["rows"]) == ("failed", 40)
        assert {d["message"] for d in doc["errors"]["details"]} == {not_finished}
        assert sorted(p.name for p in project.out.glob("*.*")) == [
            "evidence.json", "mlflow.db", "results.json", "rows.jsonl", "summary.md"
        ]  # fmt: skip
        record = json.loads((project.out / "evidence.json").read_text())["records"][-1]
        assert record["verdict"] == "failed"
        # the rows past the first ten were never answered, on either runner
        assert [r["error"] for r in rows(project)[10:]] == [not_finished] * 30
    assert rows(on_spark)[10:] == rows(local)[10:]
    # the first ten were answered on both; the threads runner scores after the last answer
    # (that is, after the deadline), a partition as soon as its own rows are answered
    assert [r["outputs"] for r in rows(local)[:10]] == [f"q-{i}" for i in range(10)]
    assert {r["*/error_message"] for r in rows(local)[:10]} == {not_finished}
    assert [r["exact_match/value"] for r in rows(on_spark)[:10]] == [1.0] * 10
    assert on_spark.results()["metrics"]["exact_match/mean"] == 1.0
    assert on_spark.results()["errors"]["rows"] == 30
    assert "30 of 40 rows failed" in on_spark.results()["failures"][-1]

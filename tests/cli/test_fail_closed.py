"""Regressions from review: paths where a gate could pass, leak, or blame the wrong input."""

from __future__ import annotations

from typing import Any

from tests.conftest import QA_ROWS, Project

BASE = "data: qa.jsonl\nmodel: python:qa_model:predict\n"


def test_a_scorer_answering_none_on_hard_rows_cannot_lift_the_score(
    cli: Any, project: Project
) -> None:
    # 1.0 on the rows it likes, None (or text) on the others: MLflow would average only the 1.0s
    project.write(
        "picky_scorer.py",
        "def picky(outputs):\n"
        "    if outputs == 'no idea':\n        return None\n"
        "    return 1.0 if outputs != '4' else 'n/a'\n",
    )
    project.config(
        BASE + 'scorers: [python:picky_scorer:picky]\nthresholds:\n  picky/mean: ">= 0.99"\n'
    )
    r = project.eval(cli)
    assert r.code == 1, r.text
    doc = project.results()
    assert doc["errors"]["rows"] == 2
    messages = [d["message"] for d in doc["errors"]["details"]]
    assert any("returned None, which is not a finite number" in m for m in messages)
    assert any("returned 'n/a'" in m for m in messages)
    # allowed explicitly, the same run passes on the rows that scored
    r = project.eval(cli, "--max-errors", "2")
    assert r.code == 0, r.text


def test_infinite_scores_are_errors_not_crashes(cli: Any, project: Project) -> None:
    project.write("inf_scorer.py", "def inf(outputs):\n    return float('inf')\n")
    project.config(
        BASE + "scorers: [python:inf_scorer:inf, exact_match]\n"
        'thresholds:\n  exact_match/mean: ">= 0.5"\n'
    )
    r = project.eval(cli)
    assert r.code == 1, r.text
    assert "Traceback" not in r.text
    assert project.results()["errors"]["rows"] == len(QA_ROWS)


def test_a_hung_scorer_times_out(cli: Any, project: Project) -> None:
    project.write(
        "slow_scorer.py",
        "import time\n\ndef slow(outputs):\n"
        "    if outputs == 'Paris':\n        time.sleep(30)\n    return 1\n",
    )
    project.config(BASE + "timeout: 1\nscorers: [python:slow_scorer:slow]\n")
    r = project.eval(cli)
    assert r.code == 1, r.text
    details = project.results()["errors"]["details"]
    assert [(d["where"], d["message"]) for d in details] == [("line 2", "timed out after 1 s")]


def test_model_that_cannot_take_every_input_key_is_a_config_error(
    cli: Any, project: Project
) -> None:
    project.jsonl(
        "two.jsonl",
        [{"inputs": {"question": "q", "context": "c"}, "expectations": {"expected_response": "a"}}],
    )
    project.config("data: two.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_match]\n")
    r = project.eval(cli)
    assert r.code == 2, r.text
    assert "takes no context" in r.err
    assert "inputs: [question]" in r.err


def test_credentials_never_reach_reports(cli: Any, project: Project) -> None:
    project.config(
        BASE + "scorers: [exact_match]\ntracking-uri: http://gate:s3cr3t-pw@127.0.0.1:9\n"
    )
    r = project.eval(
        cli,
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"},
    )
    assert r.code == 4, r.text
    assert "s3cr3t-pw" not in r.text
    for name in ("summary.md", "results.json", "evidence.json", "rows.jsonl"):
        assert "s3cr3t-pw" not in (project.out / name).read_text(), name


def test_a_failed_gate_stays_a_failure_when_logging_fails_too(cli: Any, project: Project) -> None:
    project.config(BASE + 'thresholds:\n  exact_match/mean: ">= 0.99"\n')
    r = project.eval(
        cli,
        "--tracking-uri",
        "http://127.0.0.1:9",
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"},
    )
    assert r.code == 1, r.text
    assert "MLflow tracking error" in r.err


def test_errors_name_the_flag_that_was_typed(cli: Any, project: Project) -> None:
    project.config(BASE + 'thresholds:\n  exact_match/mean: ">= 0.5"\n')
    r = project.eval(cli, "--set", "concurrency=0")
    assert r.code == 2
    assert "--set concurrency" in r.err
    r = project.eval(cli, "--threshold", "token_f1/mean >= lots")
    assert r.code == 2
    assert "--threshold" in r.err and "--thresholds" not in r.err


def test_delta_folders_are_refused(cli: Any, project: Project) -> None:
    (project.root / "qa.parquet" / "_delta_log").mkdir(parents=True)
    project.config("data: qa.parquet\nmodel: python:qa_model:predict\n")
    r = project.eval(cli)
    assert r.code == 2
    assert "is a Delta table" in r.err

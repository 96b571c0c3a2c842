"""run-on: databricks, the pure parts: what goes to the job's folder, the fetched files
checked, and the verdict decided again from them, rules against the baseline included
(commands/job_eval.py); the job's row counter (progress.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_gate.commands.job_eval import (
    agrees,
    bundle,
    decide_again,
    metrics_agree,
    read_fetched,
)
from genai_gate.config import load_config
from genai_gate.errors import ServiceError
from genai_gate.progress import ProgressFile
from genai_gate.results import RESULTS_SCHEMA
from genai_gate.scoring.registry import configured_scorers


def _loaded(root: Path, text: str) -> Any:
    (root / "genai-gate.yml").write_text(text)
    return load_config(str(root / "genai-gate.yml"), environ={"GENAI_GATE_MAX_ERRORS": "2"})


def test_the_bundle_holds_the_effective_config_the_data_and_the_python_code(
    tmp_path: Path,
) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "qa.jsonl").write_text('{"inputs": {"q": "a"}}\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "model.py").write_text("def predict(q): return q\n")
    (tmp_path / "app" / "__pycache__").mkdir()
    (tmp_path / "app" / "__pycache__" / "model.pyc").write_bytes(b"\0")
    (tmp_path / "my_scorers.py").write_text("def length(outputs): return len(outputs)\n")
    (tmp_path / "unrelated.py").write_text("")
    loaded = _loaded(
        tmp_path,
        "data: evals/qa.jsonl\nmodel: python:app.model:predict\n"
        "scorers: [exact_match, 'python:my_scorers:length']\nrun-on: databricks\n"
        "job-volume: /Volumes/main/eval/jobs\nrunner: spark\nconcurrency: 16\n",
    )
    files = bundle(loaded)
    assert sorted(files) == [
        "app/__init__.py",
        "app/model.py",
        "data/qa.jsonl",
        "genai-gate.yml",
        "my_scorers.py",
    ]
    config = yaml.safe_load(files["genai-gate.yml"])
    assert config["data"] == "data/qa.jsonl"
    assert config["concurrency"] == 16 and config["max-errors"] == 2  # the environment's too
    assert not {"run-on", "job-volume", "runner"} & set(config)


def test_a_table_stays_where_it_is(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, "data: uc:main.eval.qa@3\nscorers: [exact_match]\n")
    files = bundle(loaded)
    assert sorted(files) == ["genai-gate.yml"]
    assert yaml.safe_load(files["genai-gate.yml"])["data"] == "uc:main.eval.qa@3"


def _doc(metric: float, rows: int = 4, **more: Any) -> dict[str, Any]:
    return {
        "schema": RESULTS_SCHEMA,
        "result": "passed",
        "passed": True,
        "metrics": {"exact_match/mean": metric},
        "rows": rows,
        "checks": [],
        "failures": [],
        "notices": [],
        **more,
    }


RECORDS: list[dict[str, Any]] = [
    {"row": "line 1", "error": None, "exact_match/value": 1.0},
    {"row": "line 2", "error": "ValueError: boom"},
    {"row": "line 3", "error": None, "exact_match/error_message": "no reference"},
    {"row": "line 4", "error": None, "exact_match/value": 0.0},
]


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _fetched(doc: dict[str, Any], records: list[dict[str, Any]], **files: bytes | None) -> Any:
    got = {
        "out/exit.json": json.dumps({"exit": 0 if doc["passed"] else 1}).encode(),
        "out/results.json": json.dumps(doc).encode(),
        "out/rows.jsonl": _jsonl(records),
        **{f"out/{name.replace('_jsonl', '.jsonl')}": raw for name, raw in files.items()},
    }
    return read_fetched(got, {"exact_match"}, "run 7")


def _scored(loaded: Any) -> Any:
    return configured_scorers(loaded, [])


def test_the_verdict_is_decided_again_from_the_fetched_metrics_and_row_errors(
    tmp_path: Path,
) -> None:
    loaded = _loaded(tmp_path, "data: qa.jsonl\nthresholds:\n  exact_match/mean: '>= 0.5'\n")
    scorers = _scored(loaded)
    # two rows failed and max-errors (from the environment) allows two
    assert decide_again(loaded, scorers, _fetched(_doc(0.5), RECORDS))[0].passed
    assert not decide_again(loaded, scorers, _fetched(_doc(0.4), RECORDS))[0].passed
    more = [
        *RECORDS,
        {"row": "line 5", "error": "TimeoutError"},
        {"row": "line 6", "*/error_message": "crash"},
    ]
    verdict = decide_again(loaded, scorers, _fetched(_doc(0.9, rows=6), more))[0]
    assert not verdict.passed
    assert "4 of 6 rows failed" in verdict.failures[0]


def test_the_job_s_metrics_must_be_what_its_rows_give(tmp_path: Path) -> None:
    """The gate decides on the metrics: a job whose metrics its own rows do not give (0.5 is
    the mean of rows 1 and 4) is no verdict, not a pass on its word."""
    loaded = _loaded(tmp_path, "data: qa.jsonl\nthresholds:\n  exact_match/mean: '>= 0.5'\n")
    scorers = _scored(loaded)
    assert metrics_agree(_fetched(_doc(0.5), RECORDS), scorers)
    assert not metrics_agree(_fetched(_doc(0.9), RECORDS), scorers)
    assert not metrics_agree(_fetched(_doc(0.5), RECORDS[:1] * 4), scorers)  # mean 1.0


@pytest.mark.parametrize(
    ("files", "why"),
    [
        ({"exit_json": None}, "left no out/exit.json; there is no verdict"),
        ({"exit_json": b'{"exit": 4}'}, "recorded exit 4; no verdict"),
        ({"rows_jsonl": _jsonl(RECORDS[:3])}, "wrote 3 row records in out/rows.jsonl for 4 rows"),
        ({"rows_jsonl": b"{"}, "out/rows.jsonl from the Databricks run run 7 is not JSON lines"),
        ({"results_json": b'{"schema": "x"}'}, "left incomplete results"),
        ({}, "left no out/baseline_rows.jsonl; there is no verdict"),
        ({"baseline_rows_jsonl": _jsonl(RECORDS[:1])}, "wrote 1 row records in out/baseline_rows"),
    ],
)
def test_missing_or_partial_files_are_no_verdict(files: dict[str, bytes | None], why: str) -> None:
    doc = _doc(0.5, baseline={"rows": 4, "label": "b", "metrics": {}})
    got: dict[str, bytes | None] = {
        "out/exit.json": b'{"exit": 0}',
        "out/results.json": json.dumps(doc).encode(),
        "out/rows.jsonl": _jsonl(RECORDS),
    }
    for name, raw in files.items():
        got["out/" + name.replace("_json", ".json")] = raw
    with pytest.raises(ServiceError, match=re.escape(why)):
        read_fetched(got, {"exact_match"}, "run 7")


def _qa(i: int, value: float) -> dict[str, Any]:
    return {"row": f"line {i}", "inputs": {"q": f"q{i}"}, "error": None, "exact_match/value": value}


def test_rules_against_the_baseline_are_decided_again_from_both_sides_rows(
    tmp_path: Path,
) -> None:
    """20 pairs: the candidate misses 10 rows the baseline answered (Δ -0.5)."""
    loaded = _loaded(
        tmp_path,
        "data: qa.jsonl\nbaseline: endpoints:/qa-bot\n"
        "thresholds:\n  exact_match/mean: {better: higher, max-drop: 0.1}\n",
    )
    scorers = _scored(loaded)
    cand = [_qa(i, 0.0 if i < 10 else 1.0) for i in range(20)]
    base = [_qa(i, 1.0) for i in range(20)]
    label = "endpoints:/qa-bot (champion)"
    baseline = {"rows": 20, "label": label, "metrics": {"exact_match/mean": 1.0}}
    job_check = {
        "metric": "exact_match/mean",
        "op": "max-drop",
        "passed": False,
        "status": "regressed",
    }
    doc = _doc(0.5, rows=20, baseline=baseline, checks=[job_check], passed=False, result="failed")
    fetched = _fetched(doc, cand, baseline_rows_jsonl=_jsonl(base))
    verdict, worse = decide_again(loaded, scorers, fetched)
    (check,) = verdict.checks
    assert (check.op, check.value, check.baseline, check.delta) == ("max-drop", 0.5, 1.0, -0.5)
    assert check.status == "regressed" and not verdict.passed
    assert label in check.reason
    assert [c.candidate.where for c in worse] == [f"line {i}" for i in range(10)]
    assert agrees(verdict, fetched)
    # a job whose own check passed (another config there) does not agree: no verdict
    passing = {**job_check, "passed": True, "status": "within-max-drop"}
    doc = {**doc, "checks": [passing], "passed": True, "result": "passed"}
    fetched = _fetched(doc, cand, baseline_rows_jsonl=_jsonl(base))
    assert not agrees(decide_again(loaded, scorers, fetched)[0], fetched)


def test_a_job_without_its_baseline_fails_the_rules_with_its_reason(tmp_path: Path) -> None:
    loaded = _loaded(
        tmp_path,
        "data: qa.jsonl\nbaseline: endpoints:/qa-bot\n"
        "thresholds:\n  exact_match/mean: {better: higher, max-drop: 0.1}\n",
    )
    why = "the endpoint could not be read: 403"
    doc = _doc(1.0, baseline=None, notices=[f"no comparison: {why}"])
    verdict, _ = decide_again(loaded, _scored(loaded), _fetched(doc, RECORDS))
    assert verdict.checks[0].status == "no-baseline"
    assert verdict.failures[0] == f"exact_match/mean cannot be compared: {why}"


def test_the_job_writes_its_row_counter_for_the_run_that_follows_it(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    progress = ProgressFile(tmp_path / "p" / "progress.json", lambda *a: seen.append(a))
    progress("model", 10, 100)
    progress("model", 11, 100)  # within a second: not written again
    assert json.loads((tmp_path / "p" / "progress.json").read_text()) == {
        "phase": "model calls",
        "done": 10,
        "total": 100,
    }
    progress("model", 100, 100)  # the end of a phase is always written
    assert json.loads((tmp_path / "p" / "progress.json").read_text())["done"] == 100
    assert len(seen) == 3

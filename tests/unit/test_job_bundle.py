"""run-on: databricks, the pure parts: what goes to the job's folder, and the verdict decided
again from the fetched files (commands/job_eval.py); the job's row counter (progress.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from genai_gate.commands.job_eval import _decide_again, bundle
from genai_gate.config import load_config
from genai_gate.progress import ProgressFile


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


def _doc(metric: float) -> dict[str, Any]:
    return {"metrics": {"exact_match/mean": metric}, "rows": 4, "checks": [], "failures": []}


RECORDS = [
    {"row": "line 1", "error": None, "exact_match/value": 1.0},
    {"row": "line 2", "error": "ValueError: boom"},
    {"row": "line 3", "error": None, "exact_match/error_message": "no reference"},
    {"row": "line 4", "error": None, "exact_match/value": 0.0},
]


def test_the_verdict_is_decided_again_from_the_fetched_metrics_and_row_errors(
    tmp_path: Path,
) -> None:
    loaded = _loaded(tmp_path, "data: qa.jsonl\nthresholds:\n  exact_match/mean: '>= 0.5'\n")
    # two rows failed and max-errors (from the environment) allows two
    assert _decide_again(loaded, _doc(0.5), RECORDS).passed  # type: ignore[arg-type]
    assert not _decide_again(loaded, _doc(0.4), RECORDS).passed  # type: ignore[arg-type]
    more = [*RECORDS, {"row": "line 5", "error": "TimeoutError"}]
    verdict = _decide_again(loaded, _doc(0.9), more)  # type: ignore[arg-type]
    assert not verdict.passed
    assert "3 of 4 rows failed" in verdict.failures[0]


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

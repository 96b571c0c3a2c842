"""`baseline:` end to end through the CLI: a model baseline, and what fails closed.

An endpoint's champion in the Databricks emulator and the default baseline of a deploy config
are in tests/integration/test_baseline_endpoint.py; the `run:<id>` baseline against a real
tracking server in tests/integration/test_baseline_run.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

ROWS = 300
# the baseline answers 85% of the rows right, the candidate 80%: a 5-point drop on the same
# 15 rows, paired
MODELS = """
import os

def _log(name):
    with open(os.path.join(os.path.dirname(__file__), name + ".calls"), "a") as fh:
        fh.write("x\\n")

def right(question, wrong_every):
    i = int(question[1:])
    return "wrong" if i % 20 < wrong_every else f"a{i}"

def baseline(question):
    _log("baseline")
    return right(question, 3)

def candidate(question):
    _log("candidate")
    return right(question, 4)

def same(question):
    _log("same")
    return right(question, 3)

def broken(question):
    raise RuntimeError("the old model is down")
"""


def calls(project: Project, name: str) -> int:
    path = project.root / f"{name}.calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def paired(tmp_path: Path) -> Project:
    p = Project(tmp_path / "paired")
    p.write("pair_models.py", MODELS)
    p.jsonl(
        "qa.jsonl",
        [
            {"inputs": {"question": f"q{i}"}, "expectations": {"expected_response": f"a{i}"}}
            for i in range(ROWS)
        ],
    )
    return p


def config(model: str, baseline: str, thresholds: str, extra: str = "") -> str:
    return (
        f"data: qa.jsonl\nmodel: python:pair_models:{model}\nbaseline: {baseline}\n"
        f"scorers: [exact_match, latency]\nthresholds:\n{thresholds}{extra}"
    )


MAX_DROP = "  exact_match/mean: {at-least: 0.5, max-drop: 0.02}\n"


def test_a_five_point_drop_against_a_model_baseline_fails(cli: Any, paired: Project) -> None:
    paired.config(config("candidate", "python:pair_models:baseline", MAX_DROP))
    r = paired.eval(cli)
    assert r.code == 1, r.text
    assert (calls(paired, "candidate"), calls(paired, "baseline")) == (ROWS, ROWS)
    doc = paired.results()
    floor, drop = doc["checks"]
    assert (floor["op"], floor["passed"], floor["status"]) == (">=", True, "passed")
    assert drop["op"] == "max-drop" and drop["threshold"] == 0.02
    assert (drop["passed"], drop["status"]) == (False, "regressed")
    assert drop["value"] == pytest.approx(0.80) and drop["baseline"] == pytest.approx(0.85)
    assert drop["delta"] == pytest.approx(-0.05)
    assert drop["ci"][1] < -0.02
    assert floor["delta"] == drop["delta"]  # the absolute check shows the comparison too
    base = doc["baseline"]
    assert base["kind"] == "model" and base["ref"] == "python:pair_models:baseline"
    assert (base["rows"], base["pairs"], base["regressed_rows"]) == (ROWS, ROWS, 15)
    assert base["metrics"]["exact_match/mean"] == pytest.approx(0.85)
    assert {c["metric"] for c in base["comparisons"]} >= {"exact_match/mean", "latency/p90"}
    assert any("worse by more than max-drop 0.02 allows" in f for f in doc["failures"])
    assert "baseline: python:pair_models:baseline (300 rows paired)" in r.out
    assert "regressed" in r.out

    summary = (paired.out / "summary.md").read_text()
    assert "**Baseline** `python:pair_models:baseline` · 300 of 300 rows paired" in summary
    assert "| metric | candidate | baseline | Δ | 95% CI | threshold | status |" in summary
    assert "| `exact_match/mean` | 0.8 | 0.85 | -0.05 |" in summary
    assert "| max-drop 0.02 | ❌ regressed |" in summary
    assert "| metric | candidate | baseline | Δ | 95% CI |\n" in summary  # the other metrics
    assert "<summary>Rows that got worse than the baseline (5 of 15)</summary>" in summary
    assert '| line 4 | {"question": "q3"} | a3 | wrong | exact_match 1 | exact_match 0 |' in summary
    assert len((paired.out / "baseline_rows.jsonl").read_text().splitlines()) == ROWS

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{paired.out / 'mlflow.db'}")
    run = client.get_run(doc["run_id"])
    assert run.data.metrics["baseline/exact_match/mean"] == pytest.approx(0.85)
    assert run.data.metrics["delta/exact_match/mean"] == pytest.approx(-0.05)
    assert run.data.params["baseline"] == "python:pair_models:baseline"
    assert "baseline_results.json" in [a.path for a in client.list_artifacts(doc["run_id"])]


def test_the_same_answers_are_not_flagged(cli: Any, paired: Project) -> None:
    paired.config(config("same", "python:pair_models:baseline", MAX_DROP))
    r = paired.eval(cli)
    assert r.code == 0, r.text
    check = paired.results()["checks"][1]
    assert (check["delta"], check["ci"], check["status"]) == (0.0, [0.0, 0.0], "within-max-drop")
    assert paired.results()["baseline"]["regressed_rows"] == 0


def test_a_baseline_that_fails_every_row_fails_the_rule_closed(cli: Any, paired: Project) -> None:
    paired.config(config("same", "python:pair_models:broken", MAX_DROP, "limit: 20\n"))
    r = paired.eval(cli)
    assert r.code == 1, r.text
    assert "the baseline failed on 20 of 20 rows" in r.err
    doc = paired.results()
    assert doc["checks"][0]["passed"] is True  # the absolute floor still holds
    drop = doc["checks"][1]
    assert (drop["passed"], drop["status"], drop["baseline"]) == (False, "no-baseline", None)
    assert (
        "exact_match/mean has no baseline value: python:pair_models:broken produced no"
        in (doc["failures"][0])
    )
    assert doc["errors"]["rows"] == 0  # the baseline's errors are not the candidate's


def test_without_a_baseline_nothing_changes(cli: Any, paired: Project) -> None:
    paired.config(
        "data: qa.jsonl\nmodel: python:pair_models:same\nlimit: 10\n"
        'thresholds:\n  exact_match/mean: ">= 0.5"\n'
    )
    r = paired.eval(cli)
    assert r.code == 0, r.text
    doc = paired.results()
    assert doc["baseline"] is None
    assert doc["checks"][0] == {
        "metric": "exact_match/mean",
        "op": ">=",
        "threshold": 0.5,
        "value": 0.7,
        "passed": True,
        "baseline": None,
        "delta": None,
        "ci": None,
        "status": "passed",
    }
    assert "| metric | value | threshold | status |" in (paired.out / "summary.md").read_text()
    assert not (paired.out / "baseline_rows.jsonl").exists()


@pytest.mark.parametrize(
    ("baseline", "needle"),
    [
        ("runs:/0123abcd", "baseline: 'runs:/0123abcd' names a run but no model in it"),
        ("endpoints:/a/b/c", "is not endpoints:/<name> or endpoints:/<name>/<served-entity>"),
        ("ftp:/x", "genai-gate.yml: baseline: model: 'ftp:/x' is not a model genai-gate can"),
    ],
)
def test_bad_baselines_are_config_errors(
    cli: Any, paired: Project, baseline: str, needle: str
) -> None:
    paired.config(config("same", baseline, MAX_DROP))
    r = paired.eval(cli)
    assert r.code == 2, r.text
    assert needle in r.err
    assert calls(paired, "same") == 0  # found before any model call


def test_baseline_none_with_a_rule_against_it_is_a_config_error(cli: Any, paired: Project) -> None:
    paired.config(config("same", "none", MAX_DROP))
    r = paired.eval(cli)
    assert r.code == 2, r.text
    assert "genai-gate.yml: baseline: none, and 1 threshold(s) compare with a baseline" in r.err

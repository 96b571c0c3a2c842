"""Our engine and `mlflow.genai.evaluate` give the same metrics for the same scorers and data.

This is what lets genai-gate skip MLflow's slow harness while keeping MLflow's semantics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest

from genai_gate.scoring.registry import build_scorers
from genai_gate.thresholds import Threshold
from tests.conftest import Project

pytestmark = pytest.mark.integration

ROWS = [
    (
        "What is MLflow?",
        "An open source platform for the ML lifecycle",
        "MLflow is an open source platform for the machine learning lifecycle",
    ),
    ("Capital of France?", "Paris", "Paris"),
    ("2+2?", "4", "four"),
    ("Largest planet?", "Jupiter is the largest planet", "Jupiter"),
    ("Sky colour?", "The sky is blue on a clear day", "blue"),
    ("Who wrote Hamlet?", "Shakespeare", "William Shakespeare"),
]


def test_metrics_equal_mlflow_genai_evaluate(
    cli: Any, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.jsonl(
        "parity.jsonl",
        [
            {"inputs": {"question": q}, "outputs": out, "expectations": {"expected_response": exp}}
            for q, exp, out in ROWS
        ],
    )
    project.write(
        "parity_scorers.py", "def words(outputs) -> int:\n    return len(str(outputs).split())\n"
    )
    project.config(
        "data: parity.jsonl\n"
        "scorers: [exact_match, token_f1, rouge_l, response_length, "
        "python:parity_scorers:words]\n"
        'thresholds:\n  token_f1/p90: ">= 0"\n  response_length/max: "<= 1000"\n'
    )
    r = project.eval(cli)
    assert r.code == 0, r.text
    ours = project.results()["metrics"]

    scorers = build_scorers(
        ["exact_match", "token_f1", "rouge_l", "response_length", "python:parity_scorers:words"],
        [Threshold("token_f1/p90", ">=", 0), Threshold("response_length/max", "<=", 1000)],
        project.root,
    )
    monkeypatch.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", "1")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'parity.db'}")
    mlflow.set_experiment("parity")
    theirs = mlflow.genai.evaluate(
        data=[
            {"inputs": {"question": q}, "outputs": out, "expectations": {"expected_response": exp}}
            for q, exp, out in ROWS
        ],
        scorers=[b.resolved for b in scorers],
    ).metrics
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key

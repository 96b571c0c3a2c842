"""`genai-gate plan` and `deploy` against the Databricks emulator, signed in with GitHub OIDC.

The real databricks-sdk talks over loopback to tests/fakes/databricks.py, which verifies
real RS256 JWTs from tests/fakes/github_oidc.py against a federation policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genai_gate.evidence import read_records, verify_chain
from tests.action_env import github_env, pr_payload, read_outputs
from tests.conftest import REPO, CliResult
from tests.fakes.databricks import FakeDatabricks, ServedEntity
from tests.fakes.github_oidc import FakeGitHubOIDC

pytestmark = pytest.mark.integration

CONFIG = """
endpoint: bot
model-name: main.ml.bot
model-version: 13
inference-table: main.mon
"""


@pytest.fixture
def ws(databricks_workspace: FakeDatabricks) -> FakeDatabricks:
    fake = databricks_workspace
    fake.update_polls = 0  # updates settle on the next GET, so the SDK waiter never sleeps
    for version in ("12", "13", "14"):
        fake.register_model_version("main.ml.bot", version)
    return fake


def serving_v12(fake: FakeDatabricks) -> None:
    ep = fake.add_endpoint("bot", ServedEntity("bot-12", "main.ml.bot", "12"))
    ep.ai_gateway = {
        "inference_table_config": {
            "catalog_name": "main",
            "schema_name": "mon",
            "table_name_prefix": "bot",
            "enabled": True,
        }
    }


@pytest.fixture
def job(ws: FakeDatabricks, databricks_job: Callable[..., dict[str, str]]) -> dict[str, str]:
    """A push on main in a job with `id-token: write` and the workspace in its env."""
    return databricks_job("push")


def deploy(
    cli: Any,
    tmp_path: Path,
    env: dict[str, str],
    *args: str,
    config: str = CONFIG,
    command: str = "deploy",
) -> CliResult:
    cfg = tmp_path / "genai-gate.yml"
    cfg.write_text(config)
    result: CliResult = cli(command, "-c", str(cfg), "--out", str(tmp_path / "out"), *args, env=env)
    return result


def routes(fake: FakeDatabricks, name: str = "bot") -> dict[str, int]:
    detailed = fake.endpoints[name].detailed()
    return {
        r.get("served_entity_name") or r["served_model_name"]: r["traffic_percentage"]
        for r in detailed["config"]["traffic_config"]["routes"]
    }


def tags(fake: FakeDatabricks, name: str = "bot") -> dict[str, str]:
    return {t["key"]: t["value"] for t in fake.endpoints[name].tags}


def writes(fake: FakeDatabricks) -> list[Any]:
    """The API calls that could change the workspace (a plan or a refusal makes none)."""
    return [r for r in fake.requests if r.method != "GET" and r.path.startswith("/api/")]


def start_someone_elses_update(fake: FakeDatabricks) -> None:
    """Another client (a person, another workflow) updates the traffic and does not wait."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import Route, TrafficConfig

    w = WorkspaceClient(host=fake.host, token=fake.pat_env()["DATABRICKS_TOKEN"], auth_type="pat")
    w.serving_endpoints.update_config(
        "bot",
        traffic_config=TrafficConfig(
            routes=[Route(served_model_name="bot-12", traffic_percentage=100)]
        ),
    )


def no_secrets(fake: FakeDatabricks, issuer: FakeGitHubOIDC, *texts: str) -> None:
    secrets = [*issuer.issued, *fake.oauth_tokens, issuer.request_token]
    for whole in texts:
        # `::add-mask::<token>` is how the runner learns to hide a token; it is never shown
        text = "\n".join(ln for ln in whole.splitlines() if not ln.startswith("::add-mask::"))
        for secret in secrets:
            assert secret not in text


def test_first_deploy_creates_the_endpoint_through_github_oidc(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, github_oidc: FakeGitHubOIDC, job: dict[str, str]
) -> None:
    result = deploy(cli, tmp_path, job)
    assert result.code == 0, result.text
    assert routes(ws) == {"bot-13": 100}
    assert tags(ws) == {"genai-gate.champion": "bot-13", "genai-gate.step": "100"}
    gateway = ws.endpoints["bot"].detailed()["ai_gateway"]["inference_table_config"]
    assert (gateway["catalog_name"], gateway["schema_name"], gateway["enabled"]) == (
        "main",
        "mon",
        True,
    )
    assert "Deploy `bot`: created" in result.out
    # signed in with the exchanged token only: no PAT, and every API call authenticated by OIDC
    api = [r for r in ws.requests if r.path.startswith("/api/")]
    assert api and {r.auth for r in api} == {"oauth"}
    # one exchange, reused for every call until it expires (session.py)
    assert ws.exchanges == 1 and len(api) > 1

    out = tmp_path / "out"
    record = read_records(out / "evidence.json")[-1]
    assert record["kind"] == "deploy" and record["action"] == "created"
    assert record["routes_after"] == {"bot-13": 100}
    assert record["provenance"]["sha"] == "f" * 40
    assert (
        record["provenance"]["workflow_run_url"] == "https://github.test/acme/bot/actions/runs/99"
    )
    deployed = json.loads((out / "deploy.json").read_text())
    assert deployed["config_version_after"] == 1
    no_secrets(ws, github_oidc, result.text, (out / "deploy.md").read_text(), json.dumps(deployed))


def test_canary_then_an_idempotent_rerun(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    # through the action, as `uses: genai-gate@v1` with `command: deploy` runs it
    (tmp_path / "genai-gate.yml").write_text(CONFIG)
    first = cli(
        "action",
        env={
            **job,
            "GENAI_GATE_COMMAND": "deploy",
            "GENAI_GATE_CONFIG": str(tmp_path / "genai-gate.yml"),
            "GENAI_GATE_OUT": str(tmp_path / "out"),
        },
    )
    assert first.code == 0, first.text
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}
    assert ws.endpoints["bot"].config_version == 2
    assert tags(ws)["genai-gate.challenger"] == "bot-13"
    assert tags(ws)["genai-gate.step"] == "10"
    outputs = read_outputs(Path(job["GITHUB_OUTPUT"]))
    assert outputs["endpoint-config-version"] == "2"
    assert json.loads(outputs["routes"]) == {"bot-12": 90, "bot-13": 10}
    assert outputs["endpoint-url"].endswith("/serving-endpoints/bot/invocations")

    puts_before = sum(
        1
        for r in ws.requests
        if r.method in ("PUT", "PATCH", "POST") and r.path.startswith("/api/")
    )
    again = deploy(cli, tmp_path, job)
    assert again.code == 0, again.text
    assert "already up to date (nothing to do)" in again.out
    puts_after = sum(
        1
        for r in ws.requests
        if r.method in ("PUT", "PATCH", "POST") and r.path.startswith("/api/")
    )
    assert puts_after == puts_before
    assert ws.endpoints["bot"].config_version == 2
    records = read_records(tmp_path / "out" / "evidence.json")
    assert [r["action"] for r in records] == ["updated", "unchanged"]
    assert verify_chain(records) == []


def test_a_409_is_waited_out_and_retried(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    ws.conflict_next = 2
    result = deploy(cli, tmp_path, job)
    assert result.code == 0, result.text
    assert result.err.count("another update is in flight (409)") == 2
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}


def test_update_failed_restores_the_previous_config(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    ws.fail_next_updates = 1
    result = deploy(cli, tmp_path, job)
    assert result.code == 4, result.text
    assert "did not take the new config" in result.err
    assert "The previous served entities and routes were restored (bot-12 100%)" in result.err
    assert routes(ws) == {"bot-12": 100}
    assert [e.name for e in ws.endpoints["bot"].entities] == ["bot-12"]
    assert "genai-gate.challenger" not in tags(ws)  # the tags never describe what is not serving


def test_a_timeout_restores_once_the_update_has_ended(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    # the deploy's one poll sees IN_PROGRESS and its 1 s runs out while the waiter sleeps;
    # the restore then waits (longer) for the update to end before putting v12 back
    ws.update_polls = 1
    result = deploy(cli, tmp_path, job, "--set", "wait-timeout=1")
    assert result.code == 4, result.text
    assert "still updating after 1 s (wait-timeout)" in result.err
    assert "were restored (bot-12 100%)" in result.err
    assert routes(ws) == {"bot-12": 100}


def test_a_wrong_subject_is_refused_with_the_claims_and_a_policy(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, github_oidc: FakeGitHubOIDC, job: dict[str, str]
) -> None:
    ws.federation.subject = "repo:acme/shop:environment:production"
    result = deploy(cli, tmp_path, job)
    assert result.code == 3, result.text
    assert "does not accept the token's subject (sub)" in result.err
    assert "(for debugging only)" in result.err
    assert "sub: repo:acme/shop:ref:refs/heads/main" in result.err
    assert "service-principal-federation-policy create" in result.err
    assert '"subject": "repo:acme/shop:ref:refs/heads/main"' in result.err
    no_secrets(ws, github_oidc, result.text)


def test_a_wrong_audience_is_refused(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, github_oidc: FakeGitHubOIDC, job: dict[str, str]
) -> None:
    ws.federation.audiences = ["https://github.com/acme"]
    result = deploy(cli, tmp_path, job)
    assert result.code == 3, result.text
    assert "does not accept the token's audience (aud)" in result.err
    assert f"aud: {ws.token_endpoint}" in result.err


def test_an_endpoint_mid_update_is_shown_and_waited_for(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    ws.update_polls = 2
    start_someone_elses_update(ws)
    plan = deploy(cli, tmp_path, job, command="plan")
    assert plan.code == 0, plan.text
    assert "The endpoint is updating now (to config 2)" in plan.out
    ws.update_polls = 0
    result = deploy(cli, tmp_path, job)
    assert result.code == 0, result.text
    assert "another update is in progress; waiting for it to end" in result.err
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}


def test_an_expired_token_is_refused(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, github_oidc: FakeGitHubOIDC, job: dict[str, str]
) -> None:
    github_oidc.lifetime = -120
    result = deploy(cli, tmp_path, job)
    assert result.code == 3, result.text
    assert "had expired" in result.err


def test_without_id_token_permission_nothing_is_called(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    env = {k: v for k, v in job.items() if not k.startswith("ACTIONS_ID_TOKEN_")}
    result = deploy(cli, tmp_path, env)
    assert result.code == 3, result.text
    assert "id-token: write" in result.err
    assert not [r for r in ws.requests if r.path.startswith("/api/")]


def test_deploy_is_refused_on_a_pull_request(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, github_oidc: FakeGitHubOIDC
) -> None:
    env = github_env(tmp_path / "gh", event="pull_request", payload=pr_payload())
    env.update({"DATABRICKS_HOST": ws.host, "DATABRICKS_CLIENT_ID": "x", **github_oidc.env()})
    result = deploy(cli, tmp_path, env)
    assert result.code == 2, result.text
    assert "deploy does not run on pull_request events" in result.err
    assert not ws.requests


def test_plan_on_a_fork_pr_says_there_are_no_credentials(
    cli: Any, tmp_path: Path, ws: FakeDatabricks
) -> None:
    env = github_env(tmp_path / "gh", event="pull_request", payload=pr_payload(fork=True))
    env.update({"DATABRICKS_HOST": ws.host, "DATABRICKS_CLIENT_ID": "x"})
    result = deploy(cli, tmp_path, env, command="plan")
    assert result.code == 0, result.text
    assert "not computed" in result.out
    assert "a pull request from a fork gets no OIDC token" in result.out
    assert json.loads((tmp_path / "out" / "plan.json").read_text())["computed"] is False


def test_plan_reads_only_and_shows_the_diff(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    result = deploy(cli, tmp_path, job, command="plan")
    assert result.code == 0, result.text
    assert "Deploy plan for `bot` (config version 1): updates the endpoint" in result.out
    assert "| route | `bot-12` | 100% | 90% |" in result.out
    assert not writes(ws)
    as_json = deploy(cli, tmp_path, job, "--json", command="plan")
    doc = json.loads(as_json.out)
    assert doc["routes"] == {"bot-12": 90, "bot-13": 10}


def test_a_missing_model_version_is_refused_before_any_change(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    result = deploy(cli, tmp_path, job, "--model-version", "99")
    assert result.code == 2, result.text
    assert "main.ml.bot version 99 does not exist in Unity Catalog" in result.err
    assert not writes(ws)


def test_moving_the_inference_table_is_refused(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    result = deploy(cli, tmp_path, job, "--set", "inference-table=other.logs")
    assert result.code == 2, result.text
    assert "cannot move an enabled inference table" in result.err


SEED_UPDATE = REPO / "examples" / "seed" / "config" / "update.json"


def test_the_seed_update_json_is_applied_with_ai_gateway_capture(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    for version in ("12", "13"):
        ws.register_model_version("main.default.my_model", version)
    (tmp_path / "update.json").write_text(SEED_UPDATE.read_text())
    result = deploy(cli, tmp_path, job, config="endpoint: my-genai\nendpoint-config: update.json\n")
    assert result.code == 0, result.text
    assert routes(ws, "my-genai") == {"current": 90, "challenger": 10}
    detailed = ws.endpoints["my-genai"].detailed()
    table = detailed["ai_gateway"]["inference_table_config"]
    assert table["catalog_name"] == "governed_ai" and table["table_name_prefix"] == "genai_endpoint"
    assert "auto_capture_config" not in json.dumps(detailed.get("config", {}))
    assert "legacy inference tables" in result.err and "AI Gateway" in result.err
    assert tags(ws, "my-genai")["genai-gate.challenger"] == "challenger"


# ------------------------------------------------ the action: eval, then plan or deploy

GATED = (
    'data: qa.jsonl\nmodel: python:qa_model:predict\nthresholds:\n  exact_match/mean: ">= 0.7"\n'
    + CONFIG
)


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


def test_a_push_to_main_gates_then_deploys(
    cli: Any, project: Any, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    project.config(GATED)
    result = action(cli, project, job)
    assert result.code == 0, result.text
    assert "::group::genai-gate eval" in result.out and "::group::genai-gate deploy" in result.out
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}
    outputs = read_outputs(Path(job["GITHUB_OUTPUT"]))
    assert outputs["result"] == "passed" and outputs["endpoint-config-version"] == "2"
    summary = Path(job["GITHUB_STEP_SUMMARY"]).read_text()
    assert (
        "genai-gate: passed" in summary and "Deploy `bot`: updated to config version 2" in summary
    )
    kinds = [r["kind"] for r in read_records(project.out / "evidence.json")]
    assert kinds == ["eval", "deploy"]
    # the eval compared with what served before the deploy: the champion, through OIDC
    baseline = project.results()["baseline"]
    assert baseline["ref"] == "endpoints:/bot"
    assert baseline["model_identity"]["served_models"] == {"bot-12": 4}
    # the label is untrusted text: escaped, in <code> (issue #13)
    assert "**Baseline** <code>endpoints\\:/bot \\(champion bot-12\\: main.ml.bot v12" in summary
    # the deploy record is attached to the eval's MLflow run
    from mlflow import MlflowClient

    run_id = project.results()["run_id"]
    client = MlflowClient(f"sqlite:///{project.out / 'mlflow.db'}")
    assert "deploy.json" in [a.path for a in client.list_artifacts(run_id)]
    assert client.get_run(run_id).data.tags["genai-gate.endpoint-config-version"] == "2"


def test_a_push_run_loads_the_config_once_and_signs_in_once(
    cli: Any, project: Any, ws: FakeDatabricks, job: dict[str, str], monkeypatch: Any
) -> None:
    """The regression check of the redesign: one push run (preflight, eval with the
    endpoint's champion as baseline, deploy) reads its config once, builds one
    WorkspaceClient and exchanges its GitHub token once."""
    from databricks.sdk import WorkspaceClient

    from genai_gate.config import load as config_load

    counts = {"config reads": 0, "clients": 0}
    read_file, client_init = config_load._read_file, WorkspaceClient.__init__

    def counted_read(*args: Any, **kwargs: Any) -> Any:
        counts["config reads"] += 1
        return read_file(*args, **kwargs)

    def counted_init(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["clients"] += 1
        client_init(self, *args, **kwargs)

    monkeypatch.setattr(config_load, "_read_file", counted_read)
    monkeypatch.setattr(WorkspaceClient, "__init__", counted_init)
    serving_v12(ws)
    project.config(GATED)
    result = action(cli, project, job)
    assert result.code == 0, result.text
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}
    reads = [
        r for r in ws.requests if (r.method, r.path) == ("GET", "/api/2.0/serving-endpoints/bot")
    ]
    assert counts == {"config reads": 1, "clients": 1}
    assert ws.exchanges == 1
    # preflight, the baseline's champion, deploy's state, the waiter's poll, the final state
    assert len(reads) == 5


def test_a_failing_gate_never_deploys(
    cli: Any, project: Any, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    project.config(GATED.replace(">= 0.7", ">= 0.9"))
    result = action(cli, project, job)
    assert result.code == 1, result.text
    assert routes(ws) == {"bot-12": 100}
    assert "Deploy skipped: the gate did not pass." in Path(job["GITHUB_STEP_SUMMARY"]).read_text()


def test_a_push_without_id_token_fails_before_the_eval(
    cli: Any, project: Any, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    project.config(GATED)
    env = {k: v for k, v in job.items() if not k.startswith("ACTIONS_ID_TOKEN_")}
    result = action(cli, project, env)
    assert result.code == 3, result.text
    assert not (project.out / "results.json").exists()  # no eval was spent
    assert "id-token: write" in Path(job["GITHUB_STEP_SUMMARY"]).read_text()


def test_a_pull_request_shows_the_plan_in_the_sticky_comment(
    cli: Any,
    project: Any,
    ws: FakeDatabricks,
    github_oidc: FakeGitHubOIDC,
    databricks_job: Callable[..., dict[str, str]],
) -> None:
    from tests.fakes.github_api import WRITE_TOKEN, FakeGitHub

    serving_v12(ws)
    project.config(GATED)
    github = FakeGitHub().start()
    try:
        env = {
            **databricks_job("pull_request", pr_payload()),
            "GITHUB_API_URL": github.url,
            "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN,
        }
        ws.federation.subject = "repo:acme/shop:pull_request"
        github_oidc.event_name = "pull_request"
        result = action(cli, project, env)
        assert result.code == 0, result.text
        body = next(iter(github.comments.values()))["body"]
    finally:
        github.stop()
    assert "genai-gate: passed" in body
    assert "Deploy plan for `bot` (config version 1): updates the endpoint" in body
    assert routes(ws) == {"bot-12": 100}  # a plan changes nothing
    assert not writes(ws)


# ------------------------------------------------ review findings, each pinned by a test


def test_explicit_github_oidc_auth_type_still_gets_the_tailored_preflight(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    env = {k: v for k, v in job.items() if not k.startswith("ACTIONS_ID_TOKEN_")}
    result = deploy(cli, tmp_path, {**env, "DATABRICKS_AUTH_TYPE": "github-oidc"})
    assert result.code == 3, result.text
    assert "id-token: write" in result.err


def test_explicit_github_oidc_auth_type_signs_in(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    result = deploy(cli, tmp_path, {**job, "DATABRICKS_AUTH_TYPE": "github-oidc"})
    assert result.code == 0, result.text
    assert routes(ws) == {"bot-13": 100}


def test_an_endpoint_with_legacy_capture_is_refused_before_any_change(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    ep = ws.add_endpoint("bot", ServedEntity("bot-12", "main.ml.bot", "12"))
    ep.auto_capture = {
        "catalog_name": "main",
        "schema_name": "mon",
        "table_name_prefix": "bot",
        "enabled": True,
        "state": {"payload_table": {"name": "bot_payload"}},
    }
    result = deploy(cli, tmp_path, job)
    assert result.code == 2, result.text
    assert "still captures with legacy inference tables" in result.err
    assert not writes(ws)


def test_someone_elses_failed_update_does_not_stop_ours(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    ws.update_polls = 1
    ws.fail_next_updates = 1
    start_someone_elses_update(ws)
    ws.update_polls = 0
    result = deploy(cli, tmp_path, job)
    assert result.code == 0, result.text
    assert routes(ws) == {"bot-12": 90, "bot-13": 10}


def test_a_failed_deploy_leaves_an_evidence_record(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    serving_v12(ws)
    ws.fail_next_updates = 1
    assert deploy(cli, tmp_path, job).code == 4
    record = read_records(tmp_path / "out" / "evidence.json")[-1]
    assert record["action"] == "failed" and record["exit_code"] == 4
    assert record["routes_planned"] == {"bot-12": 90, "bot-13": 10}
    assert "did not take the new config" in record["error"]


def test_rerunning_a_seed_update_json_keeps_the_canary_start(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    for version in ("12", "13"):
        ws.register_model_version("main.default.my_model", version)
    (tmp_path / "update.json").write_text(SEED_UPDATE.read_text())
    config = "endpoint: my-genai\nendpoint-config: update.json\n"
    assert deploy(cli, tmp_path, job, config=config).code == 0
    started = tags(ws, "my-genai")["genai-gate.started-at"]
    again = deploy(cli, tmp_path, job, config=config)
    assert again.code == 0, again.text
    assert "already up to date" in again.out
    assert tags(ws, "my-genai")["genai-gate.started-at"] == started


def test_a_version_that_is_not_a_number_is_a_config_error(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    doc = json.loads(SEED_UPDATE.read_text())
    doc["served_entities"][1]["entity_version"] = "v13"
    (tmp_path / "update.json").write_text(json.dumps(doc))
    result = deploy(cli, tmp_path, job, config="endpoint: my-genai\nendpoint-config: update.json\n")
    assert result.code == 2, result.text
    assert "'v13' is not a Unity Catalog version number" in result.err


def test_a_pull_request_whose_token_is_refused_shows_no_plan_but_passes(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, databricks_job: Callable[..., dict[str, str]]
) -> None:
    serving_v12(ws)
    ws.federation.subject = "repo:acme/shop:environment:production"  # PRs are not trusted
    env = databricks_job("pull_request", pr_payload())
    result = deploy(cli, tmp_path, env, command="plan")
    assert result.code == 0, result.text
    assert "not computed" in result.out and "repo:<owner>/<repo>:pull_request" in result.out


def test_a_pull_request_that_cannot_sign_in_at_all_fails(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, databricks_job: Callable[..., dict[str, str]]
) -> None:
    """A refused token is a courtesy "not computed"; a host that cannot be reached is a
    broken setup, and the PR fails (exit 3) rather than passing every plan unseen."""
    env = {**databricks_job("pull_request", pr_payload()), "DATABRICKS_HOST": "http://127.0.0.1:9"}
    result = deploy(cli, tmp_path, env, command="plan")
    assert result.code == 3, result.text
    assert "not computed" not in result.out
    # found by one short request, not after the SDK's two minutes of retries
    assert "workspace at http://127.0.0.1:9 refused the connection" in result.err


def test_plan_json_names_environment_variables_but_never_their_values(
    cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    ep = ws.add_endpoint(
        "bot",
        ServedEntity(
            "bot-12",
            "main.ml.bot",
            "12",
            extra={"environment_vars": {"OPENAI_API_KEY": "sk-live-secret-value"}},
        ),
    )
    ep.ai_gateway = {
        "inference_table_config": {"catalog_name": "main", "schema_name": "mon", "enabled": True}
    }
    result = deploy(cli, tmp_path, job, "--json", command="plan")
    assert result.code == 0, result.text
    assert "sk-live-secret-value" not in result.out
    assert "sk-live-secret-value" not in (tmp_path / "out" / "plan.json").read_text()
    doc = json.loads(result.out)
    assert doc["served_entities"][0]["environment_vars"] == {"OPENAI_API_KEY": "***"}

"""The workspace emulator and the GitHub OIDC issuer, proven with the real databricks-sdk.

No product code runs here: these tests pin the behaviour of tests/fakes/databricks.py and
tests/fakes/github_oidc.py against `WorkspaceClient`, so tests of the deploy and canary code
can trust them. Most tests use `update_polls = 0` so the SDK waiters never sleep.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypeVar

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    InternalError,
    InvalidParameterValue,
    NotFound,
    OperationFailed,
    ResourceAlreadyExists,
    ResourceConflict,
    ResourceDoesNotExist,
)
from databricks.sdk.service.serving import (
    AiGatewayInferenceTableConfig,
    AiGatewayUsageTrackingConfig,
    AutoCaptureConfigInput,
    ChatMessage,
    ChatMessageRole,
    EndpointCoreConfigInput,
    EndpointCoreConfigOutput,
    EndpointPendingConfig,
    EndpointTag,
    Route,
    ServedEntityInput,
    ServingEndpointDetailed,
    TrafficConfig,
)
from databricks.sdk.service.sql import (
    ExecuteStatementRequestOnWaitTimeout,
    StatementParameterListItem,
    StatementResponse,
    StatementState,
)

from tests.fakes.databricks import (
    EXCHANGE_AUDIENCE_MISMATCH,
    EXCHANGE_BAD_SIGNATURE,
    EXCHANGE_EXPIRED,
    EXCHANGE_SUBJECT_MISMATCH,
    EXCHANGE_UNKNOWN_CLIENT,
    SERVED_ENTITIES_TABLE,
    WAREHOUSE_ID,
    WORKSPACE_ID,
    FakeDatabricks,
    ServedEntity,
)
from tests.fakes.github_oidc import FakeGitHubOIDC

pytestmark = pytest.mark.integration

MODEL = "main.ml.qa"
T = TypeVar("T")


def some(value: T | None) -> T:
    assert value is not None
    return value


def states(endpoint: ServingEndpointDetailed) -> tuple[str, str]:
    """(ready, config_update) of an endpoint, as strings."""
    state = some(endpoint.state)
    return some(state.ready).value, some(state.config_update).value


def config(endpoint: ServingEndpointDetailed) -> EndpointCoreConfigOutput:
    return some(endpoint.config)


def pending(endpoint: ServingEndpointDetailed) -> EndpointPendingConfig:
    return some(endpoint.pending_config)


def deployments(entities: Any) -> dict[str, tuple[str, str]]:
    """Served entity name -> (deployment state, message)."""
    return {
        e.name: (some(some(e.state).deployment).value, e.state.deployment_state_message or "")
        for e in entities or []
    }


def statement_state(st: StatementResponse) -> StatementState:
    return some(some(st.status).state)


def champion(messages: list[dict[str, Any]]) -> str:
    return "Paris"


def challenger(messages: list[dict[str, Any]]) -> str:
    return "Paris, France"


def entity(version: str, name: str | None = None) -> ServedEntityInput:
    return ServedEntityInput(
        entity_name=MODEL,
        entity_version=version,
        name=name,
        workload_size="Small",
        scale_to_zero_enabled=False,
    )


def split(*routes: tuple[str, int]) -> TrafficConfig:
    return TrafficConfig(
        routes=[Route(served_entity_name=n, traffic_percentage=p) for n, p in routes]
    )


@pytest.fixture
def fake(databricks_workspace: FakeDatabricks) -> FakeDatabricks:
    databricks_workspace.update_polls = 0
    databricks_workspace.register_model_version(MODEL, 3, champion)
    databricks_workspace.register_model_version(MODEL, 4, challenger)
    return databricks_workspace


@pytest.fixture
def w(fake: FakeDatabricks, databricks_pat_env: dict[str, str]) -> WorkspaceClient:
    return WorkspaceClient()


def create_qa_bot(w: WorkspaceClient, name: str = "qa-bot") -> None:
    w.serving_endpoints.create_and_wait(
        name,
        config=EndpointCoreConfigInput(name=name, served_entities=[entity("3", "champion")]),
    )


# ---------------------------------------------------------------- github-oidc


def test_github_oidc_end_to_end(
    fake: FakeDatabricks, github_oidc: FakeGitHubOIDC, databricks_oidc_env: dict[str, str]
) -> None:
    fake.add_endpoint("qa-bot", ServedEntity("champion", MODEL, "3"))
    w = WorkspaceClient()
    assert [e.name for e in w.serving_endpoints.list()] == ["qa-bot"]
    assert states(w.serving_endpoints.get("qa-bot")) == ("READY", "NOT_UPDATING")

    assert w.config.auth_type == "github-oidc"
    assert fake.exchanges == 2  # github-oidc exchanges before every call (spec §2.4)
    assert fake.exchange_errors == []
    # the SDK asked GitHub for the token endpoint as audience, and the exchange checked it
    assert set(github_oidc.audiences) == {fake.token_endpoint}
    api = fake.api_requests()
    assert [(r.method, r.path) for r in api] == [
        ("GET", "/api/2.0/serving-endpoints"),
        ("GET", "/api/2.0/serving-endpoints/qa-bot"),
    ]
    assert {r.auth for r in api} == {"oauth"}
    assert {r.principal for r in api} == {fake.federation.service_principal_id}
    assert {r.workspace_id for r in api} == {WORKSPACE_ID}
    assert all("auth/github-oidc" in r.user_agent for r in api)
    assert not any(r.auth == "pat" for r in fake.requests)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"sub": "repo:evil/fork:pull_request"}, EXCHANGE_SUBJECT_MISMATCH),
        ({"environment": "prod"}, EXCHANGE_SUBJECT_MISMATCH),
        ({"audience": "https://github.com/acme"}, EXCHANGE_AUDIENCE_MISMATCH),
        ({"lifetime": -120}, EXCHANGE_EXPIRED),
        ({"bad_signature": True}, EXCHANGE_BAD_SIGNATURE),
    ],
)
def test_refused_exchanges_say_why(
    fake: FakeDatabricks,
    github_oidc: FakeGitHubOIDC,
    databricks_oidc_env: dict[str, str],
    fault: dict[str, Any],
    message: str,
) -> None:
    for key, value in fault.items():
        setattr(github_oidc, key, value)
    w = WorkspaceClient()  # construction only fetches a GitHub token
    with pytest.raises(ValueError, match=r"^invalid_request: Token exchange failed: ") as info:
        w.serving_endpoints.get("qa-bot")
    assert str(info.value) == f"invalid_request: {message}"
    assert fake.exchanges == 0
    assert fake.api_requests() == []
    assert not any(token in str(info.value) for token in github_oidc.issued)


def test_an_unknown_client_id_is_refused(
    fake: FakeDatabricks,
    databricks_oidc_env: dict[str, str],
    databricks_clean_env: pytest.MonkeyPatch,
) -> None:
    databricks_clean_env.setenv("DATABRICKS_CLIENT_ID", "someone-else")
    with pytest.raises(ValueError, match="unknown client"):
        list(WorkspaceClient().serving_endpoints.list())
    assert fake.exchange_errors == [EXCHANGE_UNKNOWN_CLIENT]


def test_a_pat_is_recorded_as_such(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    list(w.serving_endpoints.list())
    assert [(r.auth, r.principal) for r in fake.api_requests()] == [("pat", fake.pat_user)]
    assert fake.api_requests()[0].workspace_id == WORKSPACE_ID


# ---------------------------------------------------------------- deploy: the state machine


def test_create_update_and_the_pending_config(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    created = w.serving_endpoints.create(
        "qa-bot",
        config=EndpointCoreConfigInput(name="qa-bot", served_entities=[entity("3")]),
    )
    first: ServingEndpointDetailed = created.response
    assert states(first) == ("NOT_READY", "IN_PROGRESS")
    assert first.config is None
    assert pending(first).config_version == 1
    ready = created.result()  # update_polls = 0: the waiter's first GET settles it
    assert states(ready) == ("READY", "NOT_UPDATING")
    [served] = some(config(ready).served_entities)
    assert served.name == "qa-3"  # default name: <model short name>-<version>
    assert (served.workload_size, served.scale_to_zero_enabled) == ("Small", False)
    routes = some(some(config(ready).traffic_config).routes)
    assert [(r.served_entity_name, r.served_model_name, r.traffic_percentage) for r in routes] == [
        ("qa-3", "qa-3", 100)
    ]
    assert [m.model_version for m in some(config(ready).served_models)] == ["3"]
    champion_id = fake.endpoint("qa-bot").entities[0].served_entity_id

    fake.update_polls = 1
    update = w.serving_endpoints.update_config(
        "qa-bot",
        served_entities=[entity("3"), entity("4")],
        traffic_config=split(("qa-3", 90), ("qa-4", 10)),
    )
    during = w.serving_endpoints.get("qa-bot")
    assert states(during) == ("READY", "IN_PROGRESS")
    assert config(during).config_version == 1
    assert pending(during).config_version == 2
    assert pending(during).start_time
    assert {n: s for n, (s, _) in deployments(pending(during).served_entities).items()} == {
        "qa-3": "DEPLOYMENT_READY",
        "qa-4": "DEPLOYMENT_CREATING",
    }

    done = update.result()  # the GET above used the one IN_PROGRESS poll: no sleep
    assert done.pending_config is None
    assert config(done).config_version == 2
    routes = some(some(config(done).traffic_config).routes)
    assert {r.served_entity_name: r.traffic_percentage for r in routes} == {"qa-3": 90, "qa-4": 10}
    ids = {e.name: e.served_entity_id for e in fake.endpoint("qa-bot").entities}
    assert ids["qa-3"] == champion_id != ids["qa-4"]

    with pytest.raises(ResourceAlreadyExists):
        create_qa_bot(w)


def test_the_waiter_polls_until_settled(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    fake.update_polls = 1  # the default: one GET still IN_PROGRESS, so the SDK sleeps ~1.5 s
    create_qa_bot(w)
    assert states(w.serving_endpoints.get("qa-bot")) == ("READY", "NOT_UPDATING")
    gets = [r for r in fake.api_requests() if r.path == "/api/2.0/serving-endpoints/qa-bot"]
    assert len(gets) == 3


def test_an_update_while_updating_is_a_conflict(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    create_qa_bot(w)
    w.serving_endpoints.update_config("qa-bot", served_entities=[entity("4", "challenger")])
    with pytest.raises(ResourceConflict) as info:
        w.serving_endpoints.update_config("qa-bot", served_entities=[entity("3", "champion")])
    assert info.value.error_code == "RESOURCE_CONFLICT"
    assert "Endpoint qa-bot is currently updating" in str(info.value)

    w.serving_endpoints.wait_get_serving_endpoint_not_updating("qa-bot")
    fake.conflict_next = 1  # someone else's update in flight, invisible to us
    with pytest.raises(ResourceConflict):
        w.serving_endpoints.update_config("qa-bot", served_entities=[entity("3", "champion")])
    w.serving_endpoints.update_config_and_wait("qa-bot", served_entities=[entity("3", "champion")])


def test_a_failed_update_keeps_the_old_config_serving(
    fake: FakeDatabricks, w: WorkspaceClient
) -> None:
    create_qa_bot(w)
    fake.fail_next_updates = 1
    with pytest.raises(OperationFailed, match="UPDATE_FAILED"):
        w.serving_endpoints.update_config_and_wait(
            "qa-bot", served_entities=[entity("4", "challenger")]
        )
    after = w.serving_endpoints.get("qa-bot")
    assert states(after) == ("READY", "UPDATE_FAILED")
    assert [e.name for e in some(config(after).served_entities)] == ["champion"]
    [(name, (state, message))] = deployments(pending(after).served_entities).items()
    assert (name, state) == ("challenger", "DEPLOYMENT_FAILED")
    assert "did not become healthy" in message
    assert w.serving_endpoints.query("qa-bot", messages=[]).served_model_name == "champion"

    # a model version Unity Catalog does not know fails the same way, and says which one
    with pytest.raises(OperationFailed):
        w.serving_endpoints.update_config_and_wait("qa-bot", served_entities=[entity("9")])
    failed = deployments(pending(w.serving_endpoints.get("qa-bot")).served_entities)
    assert "version 9 of model main.ml.qa does not exist" in failed["qa-9"][1]
    assert "does not exist" in str(w.serving_endpoints.build_logs("qa-bot", "qa-9").logs)
    # after a failure the endpoint takes updates again
    w.serving_endpoints.update_config_and_wait("qa-bot", served_entities=[entity("4")])


def test_a_failed_create_is_not_ready(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    with pytest.raises(OperationFailed):
        w.serving_endpoints.create_and_wait(
            "qa-bot",
            config=EndpointCoreConfigInput(name="qa-bot", served_entities=[entity("7")]),
        )
    failed = w.serving_endpoints.get("qa-bot")
    assert states(failed) == ("NOT_READY", "UPDATE_FAILED")
    assert failed.config is None
    with pytest.raises(BadRequest, match="not ready"):
        w.serving_endpoints.query("qa-bot", messages=[])


def test_the_backend_validation(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    create_qa_bot(w)
    two = [entity("3", "a"), entity("4", "b")]
    cases: list[tuple[TrafficConfig | None, str]] = [
        (None, "traffic_config with routes is required"),
        (split(("a", 90), ("b", 20)), "must add up to 100, not 110"),
        (split(("a", 90), ("c", 10)), "served entity 'c', which is not in the config"),
    ]
    for traffic, message in cases:
        with pytest.raises(InvalidParameterValue, match=message):
            w.serving_endpoints.update_config("qa-bot", served_entities=two, traffic_config=traffic)
    # entity_version as a JSON number, as a hand-written request might send it
    with pytest.raises(BadRequest, match="must be a string"):
        w.api_client.do(
            "PUT",
            "/api/2.0/serving-endpoints/qa-bot/config",
            body={"served_entities": [{"entity_name": MODEL, "entity_version": 4}]},
        )
    assert fake.endpoint("qa-bot").config_update == "NOT_UPDATING"


def test_ai_gateway_tags_and_delete(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    create_qa_bot(w)
    table = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="mon", enabled=True)
    answer = w.serving_endpoints.put_ai_gateway(
        "qa-bot",
        inference_table_config=table,
        usage_tracking_config=AiGatewayUsageTrackingConfig(enabled=True),
    )
    assert some(answer.inference_table_config).table_name_prefix == "qa-bot"
    gateway = some(w.serving_endpoints.get("qa-bot").ai_gateway)
    assert some(gateway.usage_tracking_config).enabled is True
    assert (fake.captures / "main.mon.qa-bot_payload").is_dir()

    moved = AiGatewayInferenceTableConfig(catalog_name="ml", schema_name="mon", enabled=True)
    with pytest.raises(InvalidParameterValue, match="Disable the inference table first"):
        w.serving_endpoints.put_ai_gateway("qa-bot", inference_table_config=moved)
    off = AiGatewayInferenceTableConfig(catalog_name="main", schema_name="mon", enabled=False)
    w.serving_endpoints.put_ai_gateway("qa-bot", inference_table_config=off)
    w.serving_endpoints.put_ai_gateway("qa-bot", inference_table_config=moved)
    assert fake.payload_table("qa-bot") == "ml.mon.qa-bot_payload"
    # put_ai_gateway replaces the whole config: usage tracking is gone
    assert some(w.serving_endpoints.get("qa-bot").ai_gateway).usage_tracking_config is None

    legacy = AutoCaptureConfigInput(catalog_name="main", schema_name="mon", enabled=True)
    with pytest.raises(InvalidParameterValue, match="can no longer be enabled"):
        w.serving_endpoints.update_config(
            "qa-bot", served_entities=[entity("3", "champion")], auto_capture_config=legacy
        )

    tags = w.serving_endpoints.patch(
        "qa-bot",
        add_tags=[EndpointTag("genai-gate", "canary"), EndpointTag("team", "qa")],
    )
    assert {t.key: t.value for t in tags.tags or []} == {"genai-gate": "canary", "team": "qa"}
    w.serving_endpoints.patch("qa-bot", delete_tags=["team"])
    assert [t.key for t in w.serving_endpoints.get("qa-bot").tags or []] == ["genai-gate"]

    w.serving_endpoints.delete("qa-bot")
    with pytest.raises(ResourceDoesNotExist):
        w.serving_endpoints.get("qa-bot")
    assert all(r["endpoint_delete_time"] for r in fake.rows(SERVED_ENTITIES_TABLE))


def test_legacy_inference_tables_before_the_cutoff(
    fake: FakeDatabricks, w: WorkspaceClient
) -> None:
    fake.legacy_inference_tables_cutoff = date(2100, 1, 1)
    fake.served_entities_history = True
    legacy = AutoCaptureConfigInput(catalog_name="ml", schema_name="ads", enabled=True)
    w.serving_endpoints.create_and_wait(
        "feed-ads",
        config=EndpointCoreConfigInput(
            name="feed-ads", served_entities=[entity("3")], auto_capture_config=legacy
        ),
    )
    acc = some(config(w.serving_endpoints.get("feed-ads")).auto_capture_config)
    assert some(some(acc.state).payload_table).name == "feed-ads_payload"
    w.serving_endpoints.query("feed-ads", messages=[], client_request_id="c1")
    [row] = fake.sql("SELECT * FROM ml.ads.`feed-ads_payload`")
    assert row["client_request_id"] == "c1" and row["timestamp_ms"] > 0
    assert row["request_metadata"] == {
        "endpoint_name": "feed-ads",
        "model_name": MODEL,
        "model_version": "3",
    }

    off = AutoCaptureConfigInput(enabled=False)
    w.serving_endpoints.update_config_and_wait(
        "feed-ads", served_entities=[entity("3")], auto_capture_config=off
    )
    with pytest.raises(InvalidParameterValue, match="Re-enabling payload logging"):
        w.serving_endpoints.update_config(
            "feed-ads", served_entities=[entity("3")], auto_capture_config=legacy
        )
    # history mode: one served_entities row per activated config
    versions = [r["endpoint_config_version"] for r in fake.rows(SERVED_ENTITIES_TABLE)]
    assert versions == [1, 2]


def test_model_versions(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    fake.register_model_version(MODEL, 5, status="PENDING_REGISTRATION", aliases=["next"])
    found = w.model_versions.get(MODEL, 3)
    assert (found.catalog_name, found.schema_name, found.model_name) == ("main", "ml", "qa")
    assert found.version == 3
    assert some(found.status).value == "READY"
    assert w.model_versions.get_by_alias(MODEL, "next").version == 5
    with pytest.raises(NotFound):
        w.model_versions.get(MODEL, 9)


# ---------------------------------------------------------------- invocations and capture


def test_the_traffic_split_and_the_inference_table(
    fake: FakeDatabricks, w: WorkspaceClient
) -> None:
    fake.register_model_version(MODEL, 4, challenger, error_rate=0.25)
    w.serving_endpoints.create_and_wait(
        "qa-bot",
        config=EndpointCoreConfigInput(
            name="qa-bot",
            served_entities=[entity("3", "champion"), entity("4", "challenger")],
            traffic_config=split(("champion", 90), ("challenger", 10)),
        ),
    )
    w.serving_endpoints.put_ai_gateway(
        "qa-bot",
        inference_table_config=AiGatewayInferenceTableConfig(
            catalog_name="main", schema_name="mon", table_name_prefix="qa-bot", enabled=True
        ),
    )
    expected = {"champion": "Paris", "challenger": "Paris, France"}
    served: dict[str, int] = {}
    failures = 0
    question = [ChatMessage(role=ChatMessageRole.USER, content="Capital of France?")]
    for n in range(200):
        try:
            reply = w.serving_endpoints.query(
                "qa-bot", messages=question, client_request_id=f"r{n}"
            )
        except InternalError:
            failures += 1
            continue
        name = str(reply.served_model_name)
        served[name] = served.get(name, 0) + 1
        assert some(some(reply.choices)[0].message).content == expected[name]
    challenger_calls = fake.served["challenger"]
    assert 8 <= challenger_calls <= 35  # ~10 % of 200
    assert failures > 0 and served.get("challenger", 0) == challenger_calls - failures

    rows = fake.rows("main.mon.qa-bot_payload")
    assert len(rows) == 200
    assert set(rows[0]) == {
        "databricks_request_id", "request_date", "client_request_id", "request_time",
        "status_code", "sampling_fraction", "execution_duration_ms", "request", "response",
        "logging_error_codes", "served_entity_id", "requester",
    }  # fmt: skip
    assert json.loads(rows[0]["request"])["client_request_id"] == "r0"
    assert {r["requester"] for r in rows} == {fake.pat_user}
    entities = {r["served_entity_id"]: r for r in fake.rows(SERVED_ENTITIES_TABLE)}
    by_version: dict[tuple[str, int], int] = {}
    for row in rows:
        key = (entities[row["served_entity_id"]]["entity_version"], row["status_code"])
        by_version[key] = by_version.get(key, 0) + 1
    assert by_version == {
        ("3", 200): 200 - challenger_calls,
        ("4", 200): challenger_calls - failures,
        ("4", 500): failures,
    }


def test_one_served_entity_answers_through_its_own_route(
    fake: FakeDatabricks, w: WorkspaceClient
) -> None:
    w.serving_endpoints.create_and_wait(
        "qa-bot",
        config=EndpointCoreConfigInput(
            name="qa-bot",
            served_entities=[entity("3", "champion"), entity("4", "challenger")],
            traffic_config=split(("champion", 90), ("challenger", 10)),
        ),
    )
    body = {"messages": [{"role": "user", "content": "Capital of France?"}]}
    for _ in range(20):
        reply = w.api_client.do(
            "POST",
            "/serving-endpoints/qa-bot/served-models/challenger/invocations",
            body=body,
            response_headers=["served-model-name"],
        )
        assert isinstance(reply, dict) and reply["served-model-name"] == "challenger"
        assert reply["choices"][0]["message"]["content"] == "Paris, France"
    assert dict(fake.served) == {"challenger": 20}  # the routes' 10% did not apply
    with pytest.raises(NotFound, match="Served model nope does not exist in endpoint qa-bot"):
        w.api_client.do(
            "POST", "/serving-endpoints/qa-bot/served-models/nope/invocations", body=body
        )


# ---------------------------------------------------------------- SQL statements


def test_sql_statements_poll_and_chunk(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    create_qa_bot(w)
    w.serving_endpoints.put_ai_gateway(
        "qa-bot",
        inference_table_config=AiGatewayInferenceTableConfig(
            catalog_name="main", schema_name="mon", enabled=True
        ),
    )
    for n in range(7):
        w.serving_endpoints.query("qa-bot", messages=[], client_request_id=f"r{n}")
    fake.statement_polls = 2
    fake.sql_chunk_rows = 3
    sql = """
        SELECT p.client_request_id, p.status_code, se.entity_version, p.request_time,
               count(*) OVER () AS n
        FROM main.mon.`qa-bot_payload` AS p
        JOIN system.serving.served_entities AS se USING (served_entity_id)
        WHERE p.status_code = :status AND p.request_date >= :since
          AND p.request_time <= current_timestamp()
        ORDER BY p.request_time
    """
    params = [
        StatementParameterListItem(name="status", value="200", type="INT"),
        StatementParameterListItem(name="since", value="2000-01-01", type="DATE"),
    ]
    st = w.statement_execution.execute_statement(
        sql, WAREHOUSE_ID, parameters=params, wait_timeout="0s"
    )
    seen = [statement_state(st)]
    while statement_state(st) in (StatementState.PENDING, StatementState.RUNNING):
        st = w.statement_execution.get_statement(some(st.statement_id))
        seen.append(statement_state(st))
    assert [s.value for s in seen] == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]

    manifest = some(st.manifest)
    assert (manifest.total_row_count, manifest.total_chunk_count) == (7, 3)
    columns = {
        c.name: (some(c.type_name).value, c.type_text) for c in some(some(manifest.schema).columns)
    }
    assert columns["n"] == ("LONG", "BIGINT")
    assert columns["status_code"] == ("INT", "INT")
    assert columns["request_time"] == ("TIMESTAMP", "TIMESTAMP")
    chunk = some(st.result)
    rows = list(chunk.data_array or [])
    while chunk.next_chunk_index is not None:
        assert some(chunk.next_chunk_internal_link).endswith(f"/chunks/{chunk.next_chunk_index}")
        chunk = w.statement_execution.get_statement_result_chunk_n(
            some(st.statement_id), chunk.next_chunk_index
        )
        rows += chunk.data_array or []
    assert [r[0] for r in rows] == [f"r{n}" for n in range(7)]
    assert {r[1] for r in rows} == {"200"} and {r[2] for r in rows} == {"3"}
    assert str(rows[0][3]).endswith("Z") and rows[0][4] == "7"
    # the same SQL from Python, with typed values
    [count] = fake.sql(
        "SELECT count(*) AS n FROM main.mon.`qa-bot_payload` WHERE status_code = :s",
        s=(200, "INT"),
    )
    assert count == {"n": 7}


def test_sql_failures_and_cancel(fake: FakeDatabricks, w: WorkspaceClient) -> None:
    st = w.statement_execution.execute_statement("SELECT * FROM main.mon.nope", WAREHOUSE_ID)
    assert statement_state(st) == StatementState.FAILED
    status = some(st.status)
    assert "[TABLE_OR_VIEW_NOT_FOUND]" in str(some(status.error).message)
    assert status.sql_state == "42P01"
    st = w.statement_execution.execute_statement("SELECT :missing", WAREHOUSE_ID)
    assert "[UNBOUND_SQL_PARAMETER]" in str(some(some(st.status).error).message)
    st = w.statement_execution.execute_statement("SELECT 1 AS one WHERE false", WAREHOUSE_ID)
    assert statement_state(st) == StatementState.SUCCEEDED
    assert some(st.result).data_array is None  # an empty result has no data_array
    with pytest.raises(NotFound):
        w.statement_execution.execute_statement("SELECT 1", "no-such-warehouse")

    fake.statement_polls = 1
    st = w.statement_execution.execute_statement(
        "SELECT 1",
        WAREHOUSE_ID,
        wait_timeout="5s",
        on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL,
    )
    assert statement_state(st) == StatementState.CANCELED
    st = w.statement_execution.execute_statement("SELECT 1", WAREHOUSE_ID, wait_timeout="0s")
    w.statement_execution.cancel_execution(some(st.statement_id))
    st = w.statement_execution.get_statement(some(st.statement_id))
    assert statement_state(st) == StatementState.CANCELED

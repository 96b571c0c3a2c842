"""The emulator's jobs, dashboards, queries, alerts and table writes, proven with the real
databricks-sdk (no product code runs here), so the monitor's tests can trust them."""

from __future__ import annotations

import json

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    Aborted,
    InvalidParameterValue,
    NotFound,
    ResourceAlreadyExists,
)
from databricks.sdk.service.dashboards import Dashboard
from databricks.sdk.service.sql import (
    AlertCondition,
    AlertConditionOperand,
    AlertConditionThreshold,
    AlertOperandColumn,
    AlertOperandValue,
    AlertOperator,
    CreateAlertRequestAlert,
    CreateQueryRequestQuery,
    UpdateQueryRequestQuery,
)

from tests.fakes.databricks import PAT, WAREHOUSE_ID, FakeDatabricks

pytestmark = pytest.mark.integration

EMPTY = json.dumps({"datasets": [], "pages": []})


@pytest.fixture
def w(databricks_workspace: FakeDatabricks) -> WorkspaceClient:
    return WorkspaceClient(host=databricks_workspace.host, token=PAT, auth_type="pat")


def test_run_now_starts_one_run_per_idempotency_token(
    w: WorkspaceClient, databricks_workspace: FakeDatabricks
) -> None:
    objects = databricks_workspace.objects
    job = objects.add_job("retrain", {"endpoint": "default"})
    first = w.jobs.run_now(job, job_parameters={"drifted": "x"}, idempotency_token="t-1")
    again = w.jobs.run_now(job, job_parameters={"drifted": "x"}, idempotency_token="t-1")
    assert first.response is not None and again.response is not None
    assert first.response.run_id == again.response.run_id
    assert len(objects.job_runs) == 1
    assert objects.job_runs[0]["job_parameters"] == {"endpoint": "default", "drifted": "x"}
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        w.jobs.run_now(job + 1000)


def test_a_dashboard_name_is_unique_in_its_folder_and_updates_bump_the_etag(
    w: WorkspaceClient,
) -> None:
    with pytest.raises(NotFound, match="doesn't exist"):
        w.lakeview.create(
            Dashboard(display_name="d", parent_path="/Shared/x", serialized_dashboard=EMPTY)
        )
    w.workspace.mkdirs("/Shared/x")
    made = w.lakeview.create(
        Dashboard(display_name="d", parent_path="/Shared/x", serialized_dashboard=EMPTY)
    )
    assert made.path == "/Shared/x/d.lvdash.json" and made.etag == "80611980"
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        w.lakeview.create(
            Dashboard(display_name="d", parent_path="/Shared/x", serialized_dashboard=EMPTY)
        )
    assert made.dashboard_id is not None
    updated = w.lakeview.update(made.dashboard_id, Dashboard(serialized_dashboard=EMPTY))
    assert updated.etag == "80611981"
    with pytest.raises(Aborted, match="etag"):
        w.lakeview.update(made.dashboard_id, Dashboard(serialized_dashboard=EMPTY, etag="1"))
    assert [d.dashboard_id for d in w.lakeview.list()] == [made.dashboard_id]
    bad = json.dumps({"datasets": [], "pages": [{"layout": [{"widget": {"queries": [
        {"query": {"datasetName": "nope"}}]}}]}]})  # fmt: skip
    with pytest.raises(InvalidParameterValue, match="unknown dataset"):
        w.lakeview.update(made.dashboard_id, Dashboard(serialized_dashboard=bad))


def test_an_alert_watches_a_saved_query_and_updates_by_mask(w: WorkspaceClient) -> None:
    query = w.queries.create(
        query=CreateQueryRequestQuery(
            display_name="q", query_text="SELECT 1 AS x", warehouse_id=WAREHOUSE_ID
        )
    )
    assert query.id is not None
    w.queries.update(query.id, "query_text", query=UpdateQueryRequestQuery(query_text="SELECT 2"))
    stored = w.queries.get(query.id)
    assert stored.query_text == "SELECT 2" and stored.warehouse_id == WAREHOUSE_ID
    condition = AlertCondition(
        op=AlertOperator.GREATER_THAN,
        operand=AlertConditionOperand(column=AlertOperandColumn(name="x")),
        threshold=AlertConditionThreshold(value=AlertOperandValue(double_value=1.0)),
    )
    with pytest.raises(NotFound):
        w.alerts.create(
            alert=CreateAlertRequestAlert(display_name="a", query_id="nope", condition=condition)
        )
    alert = w.alerts.create(
        alert=CreateAlertRequestAlert(display_name="a", query_id=query.id, condition=condition)
    )
    assert alert.state is not None and alert.state.value == "UNKNOWN"
    assert [a.display_name for a in w.alerts.list()] == ["a"]


def test_create_table_and_insert_through_the_warehouse(
    w: WorkspaceClient, databricks_workspace: FakeDatabricks
) -> None:
    def run(sql: str) -> list[list[str | None]]:
        resp = w.statement_execution.execute_statement(sql, WAREHOUSE_ID, wait_timeout="10s")
        assert resp.status is not None and resp.status.state is not None
        assert resp.status.state.value == "SUCCEEDED", resp.status.error
        return [list(r) for r in (resp.result.data_array if resp.result else None) or []]

    run("CREATE TABLE IF NOT EXISTS main.mon.t (a STRING, n DOUBLE, at TIMESTAMP)")
    run("CREATE TABLE IF NOT EXISTS main.mon.t (a STRING, n DOUBLE, at TIMESTAMP)")
    assert run(
        "INSERT INTO `main`.`mon`.`t` VALUES ('x', 1.5, TIMESTAMP '2026-01-01 00:00:00')"
    ) == [["1", "1"]]
    assert run("SELECT a, n FROM main.mon.t") == [["x", "1.5"]]
    failed = w.statement_execution.execute_statement(
        "CREATE TABLE main.mon.t (a STRING)", WAREHOUSE_ID, wait_timeout="10s"
    )
    assert failed.status is not None and failed.status.error is not None
    assert "TABLE_OR_VIEW_ALREADY_EXISTS" in str(failed.status.error.message)

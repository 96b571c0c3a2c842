"""An AI/BI (Lakeview) dashboard and SQL alerts beside the inference table, kept by name.

The dashboard (traffic, errors and latency per served entity per hour; the judged quality of
the samples analyze and monitor wrote back, per day) and the alerts (the error rate of the
last hour; each judged scorer's mean of the last day against the gate's own threshold) are
found by their display name in the configured folder and updated in place, or created: a
re-run keeps the dashboard's id and never makes a second one. Lakeview refuses a second
dashboard of the same name in a folder anyway; SQL queries and alerts do not, so the name is
the key here too.

Through databricks-sdk's own APIs: `workspace.mkdirs`, `lakeview` (list, create, update,
publish), `queries` and `alerts` (the v2 alerts of `/api/2.0/sql/alerts`, which watch a
saved query).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_gate.backends.databricks.inference_table import SERVED_ENTITIES, sql_literal
from genai_gate.backends.databricks.judged import quoted
from genai_gate.backends.databricks.serving_target import EVAL_REQUEST_PREFIX

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

HISTORY_DAYS = 30


@dataclass(frozen=True)
class AlertSpec:
    name: str
    sql: str
    column: str
    op: str  # GREATER_THAN | LESS_THAN | ...
    threshold: float
    about: str


@dataclass(frozen=True)
class Published:
    """What `dashboard` made or updated: the dashboard and each alert, with its id."""

    dashboard_id: str
    name: str
    url: str
    action: str  # created | updated
    alerts: tuple[tuple[str, str, str], ...]  # (name, id, created | updated)
    datasets: Mapping[str, str]  # dataset name -> its SQL


def _traffic_from(endpoint: str, payload: str, since: str) -> str:
    ep = sql_literal(endpoint)
    return (
        f"FROM {payload} p JOIN (SELECT DISTINCT served_entity_id, served_entity_name "
        f"FROM {SERVED_ENTITIES} WHERE endpoint_name = '{ep}') e "
        "ON p.served_entity_id = e.served_entity_id "
        f"WHERE p.request_time >= current_timestamp() - INTERVAL {since} "
        "AND (p.client_request_id IS NULL OR p.client_request_id NOT LIKE "
        f"'{EVAL_REQUEST_PREFIX}%')"
    )


def traffic_sql(endpoint: str, payload: str) -> str:
    return (
        "SELECT date_trunc('HOUR', p.request_time) AS hour, "
        "e.served_entity_name AS served_entity, count(*) AS requests, "
        "sum(CASE WHEN p.status_code = 200 THEN 0 ELSE 1 END) AS errors, "
        "avg(CASE WHEN p.status_code = 200 THEN 0.0 ELSE 1.0 END) AS error_rate, "
        "percentile_approx(p.execution_duration_ms, 0.5) AS p50_ms, "
        "percentile_approx(p.execution_duration_ms, 0.95) AS p95_ms, "
        "percentile_approx(p.execution_duration_ms, 0.99) AS p99_ms "
        f"{_traffic_from(endpoint, payload, f'{HISTORY_DAYS} DAYS')} "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )


def quality_sql(endpoint: str, judged: str) -> str:
    return (
        "SELECT date_trunc('DAY', judged_at) AS day, served_entity, scorer, "
        "avg(score) AS mean_score, count(*) AS judged "
        f"FROM {quoted(judged)} WHERE endpoint = '{sql_literal(endpoint)}' "
        f"AND judged_at >= current_timestamp() - INTERVAL {HISTORY_DAYS} DAYS "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )


def error_alert_sql(endpoint: str, payload: str) -> str:
    return (
        "SELECT coalesce(avg(CASE WHEN p.status_code = 200 THEN 0.0 ELSE 1.0 END), 0.0) "
        f"AS error_rate, count(*) AS requests {_traffic_from(endpoint, payload, '1 HOURS')}"
    )


def quality_alert_sql(endpoint: str, judged: str, scorer: str) -> str:
    return (
        "SELECT avg(score) AS mean_score, count(*) AS judged "
        f"FROM {quoted(judged)} WHERE endpoint = '{sql_literal(endpoint)}' "
        f"AND scorer = '{sql_literal(scorer)}' "
        "AND judged_at >= current_timestamp() - INTERVAL 1 DAYS"
    )


def _line(
    name: str, dataset: str, x: str, y: str, colour: str, title: str, position: Mapping[str, int]
) -> dict[str, Any]:
    """A line chart widget: y over x, one line per colour."""
    fields = [{"name": f, "expression": f"`{f}`"} for f in (x, y, colour)]
    return {
        "widget": {
            "name": name,
            "queries": [
                {
                    "name": "main_query",
                    "query": {"datasetName": dataset, "fields": fields, "disaggregated": True},
                }
            ],
            "spec": {
                "version": 3,
                "widgetType": "line",
                "encodings": {
                    "x": {"fieldName": x, "scale": {"type": "temporal"}, "displayName": x},
                    "y": {"fieldName": y, "scale": {"type": "quantitative"}, "displayName": y},
                    "color": {
                        "fieldName": colour,
                        "scale": {"type": "categorical"},
                        "displayName": colour.replace("_", " "),
                    },
                },
                "frame": {"title": title, "showTitle": True},
            },
        },
        "position": dict(position),
    }


def serialized(endpoint: str, payload: str, judged: str | None) -> tuple[str, dict[str, str]]:
    """The dashboard's JSON, and its datasets' SQL by name."""
    datasets = {"traffic": traffic_sql(endpoint, payload)}
    if judged:
        datasets["quality"] = quality_sql(endpoint, judged)
    charts = [
        ("requests", "traffic", "hour", "requests", "served_entity", "Requests per hour"),
        ("errors", "traffic", "hour", "error_rate", "served_entity", "Error rate per hour"),
        ("p95", "traffic", "hour", "p95_ms", "served_entity", "p95 latency (ms) per hour"),
        ("p99", "traffic", "hour", "p99_ms", "served_entity", "p99 latency (ms) per hour"),
    ]
    if judged:
        charts.append(
            ("quality", "quality", "day", "mean_score", "scorer", "Judged quality (mean) per day")
        )
    layout = [
        _line(*chart, {"x": 3 * (i % 2), "y": 6 * (i // 2), "width": 3, "height": 6})
        for i, chart in enumerate(charts)
    ]
    doc = {
        "datasets": [
            {"name": name, "displayName": name, "queryLines": [sql]}
            for name, sql in datasets.items()
        ],
        "pages": [{"name": "overview", "displayName": f"genai-gate {endpoint}", "layout": layout}],
    }
    return json.dumps(doc, sort_keys=True), datasets


def alert_specs(
    endpoint: str,
    payload: str,
    judged: str | None,
    max_error_rate: float,
    floors: Mapping[str, tuple[str, float]],
) -> list[AlertSpec]:
    """The error rate of the last hour; each judged scorer's mean of the last day held to
    the gate's threshold (`>=` alerts below it, `<=` above it)."""
    specs = [
        AlertSpec(
            f"genai-gate {endpoint}: error rate",
            error_alert_sql(endpoint, payload),
            "error_rate",
            "GREATER_THAN",
            max_error_rate,
            f"{endpoint}'s error rate over the last hour is above max-error-rate",
        )
    ]
    for scorer, (op, value) in sorted(floors.items()) if judged else ():
        assert judged is not None
        specs.append(
            AlertSpec(
                f"genai-gate {endpoint}: {scorer}/mean",
                quality_alert_sql(endpoint, judged, scorer),
                "mean_score",
                "LESS_THAN" if op.startswith(">") else "GREATER_THAN",
                value,
                f"{endpoint}'s judged {scorer}/mean over the last day misses the gate's "
                f"threshold {op} {value:g}",
            )
        )
    return specs


def publish(
    w: WorkspaceClient,
    errors: Callable[[str], Any],
    *,
    endpoint: str,
    name: str,
    folder: str,
    warehouse_id: str,
    payload: str,
    judged: str | None,
    alerts: Sequence[AlertSpec],
) -> Published:
    from databricks.sdk.service.dashboards import Dashboard

    text, datasets = serialized(endpoint, payload, judged)
    with errors(f"creating the folder {folder}"):
        w.workspace.mkdirs(folder)
    path = f"{folder.rstrip('/')}/{name}.lvdash.json"
    with errors(f"listing the AI/BI dashboards to find {name!r}"):
        found = next(
            (d for d in w.lakeview.list() if d.display_name == name and d.path == path), None
        )
    wanted = Dashboard(display_name=name, serialized_dashboard=text, warehouse_id=warehouse_id)
    with errors(f"writing the AI/BI dashboard {name!r}"):
        if found is not None and found.dashboard_id:
            dashboard = w.lakeview.update(found.dashboard_id, wanted)
            action = "updated"
        else:
            wanted.parent_path = folder
            dashboard = w.lakeview.create(wanted)
            action = "created"
        dashboard_id = str(dashboard.dashboard_id)
        w.lakeview.publish(dashboard_id, warehouse_id=warehouse_id, embed_credentials=False)
    made = tuple(_alert(w, errors, spec, folder, warehouse_id) for spec in alerts)
    host = str(w.config.host or "").rstrip("/")
    return Published(
        dashboard_id, name, f"{host}/dashboardsv3/{dashboard_id}/published", action, made, datasets
    )


def _alert(
    w: WorkspaceClient, errors: Callable[[str], Any], spec: AlertSpec, folder: str, warehouse: str
) -> tuple[str, str, str]:
    from databricks.sdk.service.sql import (
        AlertCondition,
        AlertConditionOperand,
        AlertConditionThreshold,
        AlertOperandColumn,
        AlertOperandValue,
        AlertOperator,
        AlertState,
        CreateAlertRequestAlert,
        CreateQueryRequestQuery,
        UpdateAlertRequestAlert,
        UpdateQueryRequestQuery,
    )

    with errors(f"writing the SQL alert {spec.name!r}"):
        query = next((q for q in w.queries.list() if q.display_name == spec.name), None)
        if query is not None and query.id:
            query_id = str(query.id)
            w.queries.update(
                query_id,
                "query_text,warehouse_id,description",
                query=UpdateQueryRequestQuery(
                    query_text=spec.sql, warehouse_id=warehouse, description=spec.about
                ),
            )
        else:
            query_id = str(
                w.queries.create(
                    query=CreateQueryRequestQuery(
                        display_name=spec.name,
                        query_text=spec.sql,
                        warehouse_id=warehouse,
                        description=spec.about,
                        parent_path=folder,
                    )
                ).id
            )
        condition = AlertCondition(
            op=AlertOperator(spec.op),
            operand=AlertConditionOperand(column=AlertOperandColumn(name=spec.column)),
            threshold=AlertConditionThreshold(value=AlertOperandValue(double_value=spec.threshold)),
            empty_result_state=AlertState.OK,
        )
        alert = next((a for a in w.alerts.list() if a.display_name == spec.name), None)
        if alert is not None and alert.id:
            w.alerts.update(
                str(alert.id),
                "condition,query_id,custom_subject",
                alert=UpdateAlertRequestAlert(
                    condition=condition, query_id=query_id, custom_subject=spec.about
                ),
            )
            return spec.name, str(alert.id), "updated"
        made = w.alerts.create(
            alert=CreateAlertRequestAlert(
                display_name=spec.name,
                query_id=query_id,
                condition=condition,
                custom_subject=spec.about,
                parent_path=folder,
            )
        )
        return spec.name, str(made.id), "created"

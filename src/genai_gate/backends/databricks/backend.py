"""The Databricks serving backend: what `plan`, `deploy` and the canary commands ask of a
serving platform, done on a Model Serving endpoint.

The commands hold no Databricks knowledge: the settings that name a model (a Unity Catalog
version, or a seed-style update.json), the plan with its AI Gateway capture and tags, the
guards (what Databricks would refuse), apply/wait/restore and the inference-table reader
are all here, behind `backends.base.ServingBackend`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

from genai_gate.backends.databricks import dashboard, judged
from genai_gate.backends.databricks.endpoint_config import read_endpoint_config
from genai_gate.backends.databricks.endpoints import ApplyResult, Endpoints, Progress
from genai_gate.backends.databricks.inference_table import TrafficSource
from genai_gate.backends.databricks.local_table import local_source
from genai_gate.backends.databricks.plan import (
    EndpointState,
    Plan,
    TableConfig,
    challenger_named,
    entity_for,
    guard_problems,
    plan_rollout,
)
from genai_gate.backends.databricks.session import Workspace
from genai_gate.backends.databricks.warehouse import WarehouseEngine, warehouse_source
from genai_gate.backends.judged import write_parquet
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError
from genai_gate.rollout.measures import JudgedScore
from genai_gate.rollout.plan import (
    TAG_STARTED,
    TAG_STEP_AT,
    Entity,
    Rollout,
    rollout_for_challenger,
)

SETTINGS_EXAMPLE = """endpoint: my-genai
model-name: main.genai.support_bot
model-version: 13
canary-percent: 10
inference-table: main.genai_logs"""


def check_settings(loaded: LoadedConfig) -> str:
    """Deploy's keys, checked together; returns the endpoint name."""
    cfg = loaded.config
    problems = []
    if cfg.endpoint is None:
        problems.append("endpoint: is required to plan or deploy")
    literal = cfg.endpoint_config is not None
    if literal and (cfg.model_name or cfg.model_version):
        problems.append(
            f"{loaded.label('endpoint-config')}: give either endpoint-config or "
            "model-name + model-version, not both"
        )
    if not literal:
        for key, value in (("model-name", cfg.model_name), ("model-version", cfg.model_version)):
            if value is None:
                problems.append(f"{loaded.label(key)}: is required to plan or deploy")
    if problems:
        raise ConfigError(
            f"{loaded.source}: the deploy settings are incomplete",
            problems=problems,
            fix=SETTINGS_EXAMPLE,
        )
    assert cfg.endpoint is not None
    return cfg.endpoint


def build_plan(
    loaded: LoadedConfig, endpoint: str, state: EndpointState | None, now: str
) -> tuple[Plan, TableConfig | None]:
    cfg = loaded.config
    table = TableConfig.parse(cfg.inference_table) if cfg.inference_table else None
    if cfg.endpoint_config is not None:
        literal = read_endpoint_config(
            loaded.resolve(cfg.endpoint_config), loaded.label("endpoint-config"), now
        )
        if table is None:
            table = literal.table
        rollout, notices = literal.rollout, list(literal.notices)
        current = state.challenger() if state else None
        same = (
            current is not None
            and rollout.challenger is not None
            and current.name == rollout.challenger.name
            and current.same_model(rollout.challenger)
        )
        if same and state is not None and state.tags.get(TAG_STARTED):
            # the same canary keeps its start, so analysis keeps the traffic it has seen
            rollout = dataclasses.replace(
                rollout,
                started_at=state.tags[TAG_STARTED],
                step_at=state.tags.get(TAG_STEP_AT),
            )
    else:
        assert cfg.model_name is not None and cfg.model_version is not None
        challenger = entity_for(
            cfg.model_name,
            cfg.model_version,
            workload_size=cfg.workload_size,
            scale_to_zero=cfg.scale_to_zero,
        )
        challenger = challenger_named(state, challenger)
        rollout, notices = rollout_for_challenger(state, challenger, cfg.canary_percent, now)
    return plan_rollout(endpoint, state, rollout, table=table, notices=notices), table


def _check_plan(plan: Plan, table: TableConfig | None, endpoints: Endpoints) -> None:
    problems = guard_problems(plan, table_given=table is not None)
    served = {(e.model, e.version) for e in (plan.before.entities if plan.before else ())}
    for entity in plan.entities:
        if (entity.model, entity.version) in served or entity.model.count(".") != 2:
            continue
        if not endpoints.model_version_exists(entity.model, entity.version):
            problems.append(
                f"model-version: {entity.model} version {entity.version} does not exist in "
                "Unity Catalog (or the service principal cannot see it)"
            )
    if problems:
        raise ConfigError(
            f"the plan for endpoint {plan.endpoint} cannot be applied",
            problems=problems,
            fix="Register the version first (mlflow.register_model with the Unity Catalog "
            "registry), and name the capture schema:\n" + SETTINGS_EXAMPLE,
        )


def traffic_source(
    loaded: LoadedConfig, state: EndpointState, endpoints: Endpoints
) -> TrafficSource:
    cfg = loaded.config
    models = {(e.model, e.version): e.name for e in state.entities}
    if cfg.inference_data:
        return local_source(cfg.inference_data, loaded.base_dir, models)
    table = state.table if state.table and state.table.enabled else state.legacy_capture
    if cfg.warehouse_id and table is not None:
        engine = WarehouseEngine(endpoints.w, cfg.warehouse_id, endpoints._errors)
        return warehouse_source(engine, table.table_name(state.name), models)
    if table is None:
        raise ConfigError(
            f"endpoint {state.name} captures no traffic, so there is nothing to analyze or monitor",
            fix="Deploy with an inference table:\n  inference-table: main.genai_logs",
        )
    raise ConfigError(
        "analyze and monitor need warehouse-id (to query the inference table on Databricks) or "
        "inference-data (local copies of it)",
        fix="  warehouse-id: 1234567890abcdef\nor\n  inference-data: captures/main.mon.bot_payload",
    )


class DatabricksBackend:
    """One run's Model Serving endpoint access (one signed-in client; see session.py)."""

    name = "databricks"
    label = "Databricks"

    def __init__(self, loaded: LoadedConfig, workspace: Workspace, progress: Progress) -> None:
        self.loaded = loaded
        self.workspace = workspace
        self.progress = progress

    @property
    def available(self) -> bool:
        return self.workspace.available

    @property
    def unavailable_reason(self) -> str:
        return self.workspace.unavailable_reason

    @functools.cached_property
    def endpoints(self) -> Endpoints:
        # signing in waits until an endpoint call needs it: a PR without credentials plans
        # nothing, and says why, without an error
        return self.workspace.endpoints(self.progress)

    def configured(self) -> tuple[bool, bool]:
        cfg = self.loaded.config
        has_model = (cfg.model_name is not None and cfg.model_version is not None) or bool(
            cfg.endpoint_config
        )
        return cfg.endpoint is not None and has_model, cfg.endpoint is not None

    def connect(self) -> None:
        self.workspace.client()

    def check_settings(self) -> str:
        return check_settings(self.loaded)

    def preflight(self, endpoint: str) -> None:
        """One read signs in for real: a token the federation policy refuses fails here."""
        self.endpoints.read(endpoint)

    def read(self, endpoint: str) -> EndpointState | None:
        return self.endpoints.read(endpoint)

    def wait_for_others(self, endpoint: str, timeout: float) -> None:
        """Wait out an update someone else started (deploy must not fight it)."""
        self.endpoints.wait(endpoint, timeout, ours=False)

    def plan_deploy(self, endpoint: str, state: EndpointState | None, now: str) -> Plan:
        """The deploy's plan, refused (exit 2) when Databricks would refuse it."""
        plan, table = build_plan(self.loaded, endpoint, state, now)
        _check_plan(plan, table, self.endpoints)
        return plan

    def plan_rollout(self, endpoint: str, state: EndpointState, rollout: Rollout) -> Plan:
        return plan_rollout(endpoint, state, rollout)

    def apply(self, plan: Plan, timeout: float) -> ApplyResult:
        return self.endpoints.apply(plan, timeout)

    def traffic(self, state: EndpointState) -> TrafficSource:
        return traffic_source(self.loaded, state, self.endpoints)

    def set_tags(self, endpoint: str, tags: Mapping[str, str]) -> None:
        self.endpoints.tag(endpoint, tags)

    def served_entity(self, model: str, version: str) -> Entity | None:
        """A Unity Catalog version as the served entity deploy would make of it."""
        if model.count(".") != 2 or not version.isdigit():
            return None  # not a Unity Catalog version: nothing to look up or re-serve
        if not self.endpoints.model_version_exists(model, version):
            return None
        cfg = self.loaded.config
        return entity_for(
            model, version, workload_size=cfg.workload_size, scale_to_zero=cfg.scale_to_zero
        )

    def run_job(self, job: str, parameters: Mapping[str, str], idempotency_key: str) -> str:
        """`jobs run-now` with job parameters; the idempotency token makes a retried call
        (or a re-run of the same monitor window) start no second run."""
        if not job.isdigit():
            raise ConfigError(f"retrain-job-id: {job!r} is not a Databricks job id")
        endpoints = self.endpoints
        with endpoints._errors(f"starting Databricks job {job}"):
            started = endpoints.w.jobs.run_now(
                int(job), job_parameters=dict(parameters), idempotency_token=idempotency_key[:64]
            )
        run_id = started.bind().get("run_id")
        return f"{endpoints.host.rstrip('/')}/jobs/{job}/runs/{run_id}"

    def record_judged(self, state: EndpointState, scores: Sequence[JudgedScore]) -> str | None:
        cfg = self.loaded.config
        if not scores:
            return None
        if cfg.judged_table and cfg.warehouse_id:
            endpoints = self.endpoints
            engine = WarehouseEngine(endpoints.w, cfg.warehouse_id, endpoints._errors)
            judged.write_to_table(engine, cfg.judged_table, scores)
            return cfg.judged_table
        if cfg.judged_data:
            return str(write_parquet(self.loaded.resolve(cfg.judged_data), scores))
        return None

    def publish_dashboard(
        self,
        state: EndpointState,
        *,
        name: str,
        folder: str,
        floors: Mapping[str, tuple[str, float]],
    ) -> dashboard.Published:
        cfg = self.loaded.config
        table = state.table if state.table and state.table.enabled else None
        if table is None:
            raise ConfigError(
                f"endpoint {state.name} has no AI Gateway inference table, so there is no "
                "traffic for a dashboard to show",
                fix="Deploy with an inference table:\n  inference-table: main.genai_logs",
            )
        if not cfg.warehouse_id:
            raise ConfigError(
                "dashboard needs warehouse-id: the dashboard's queries and alerts run on a "
                "SQL warehouse",
                fix="  warehouse-id: 1234567890abcdef",
            )
        payload = table.table_name(state.name)
        endpoints = self.endpoints
        return dashboard.publish(
            endpoints.w,
            endpoints._errors,
            endpoint=state.name,
            name=name,
            folder=folder,
            warehouse_id=cfg.warehouse_id,
            payload=payload,
            judged=cfg.judged_table,
            alerts=dashboard.alert_specs(
                state.name, payload, cfg.judged_table, cfg.max_error_rate, floors
            ),
        )

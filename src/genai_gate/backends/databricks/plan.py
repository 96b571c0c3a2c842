"""A Databricks serving endpoint as data, and the plan that moves it: pure, no I/O.

Deploy (issue #6) and the canary's advance, promote and rollback (issue #7) all end here:
the endpoint's current state plus a rollout intent (which entity is champion, which is
challenger, and the challenger's share) give a `Plan`. The rollout's own state lives on the
endpoint as `genai-gate.*` tags, so no other store is needed.

`update_config` replaces the whole served-entity list and `put_ai_gateway` the whole gateway
config, so a plan always carries complete values: the champion keeps every field it was
served with, and the gateway keeps its guardrails, rate limits and usage tracking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from genai_gate.rollout.plan import (
    ROLLOUT_TAGS,
    Change,
    Entity,
    Rollout,
    challenger_of,
    champion_of,
    entity_changes,
    map_changes,
)


@dataclass(frozen=True)
class TableConfig:
    """Where an inference table captures: `<catalog>.<schema>.<prefix>_payload`."""

    catalog: str
    schema: str
    prefix: str | None = None
    enabled: bool = True

    @classmethod
    def parse(cls, text: str) -> TableConfig:
        parts = text.split(".")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else None)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> TableConfig | None:
        if not doc or not doc.get("catalog_name") or not doc.get("schema_name"):
            return None
        return cls(
            str(doc["catalog_name"]),
            str(doc["schema_name"]),
            doc.get("table_name_prefix") or None,
            bool(doc.get("enabled", True)),
        )

    def with_prefix(self, endpoint: str) -> TableConfig:
        return (
            self if self.prefix else TableConfig(self.catalog, self.schema, endpoint, self.enabled)
        )

    def location(self) -> tuple[str, str, str | None]:
        return (self.catalog, self.schema, self.prefix)

    def table_name(self, endpoint: str) -> str:
        return f"{self.catalog}.{self.schema}.`{self.prefix or endpoint}_payload`"

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "catalog_name": self.catalog,
            "schema_name": self.schema,
            "enabled": self.enabled,
        }
        if self.prefix:
            doc["table_name_prefix"] = self.prefix
        return doc


@dataclass(frozen=True)
class EndpointState:
    """What the endpoint serves now (its `config`, not a pending one)."""

    name: str
    config_version: int | None
    update_state: str
    entities: tuple[Entity, ...]
    routes: Mapping[str, int]
    gateway: Mapping[str, Any] = field(default_factory=dict)
    legacy_capture: TableConfig | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    pending_version: int | None = None
    url: str | None = None

    @property
    def updating(self) -> bool:
        return self.update_state == "IN_PROGRESS"

    @property
    def table(self) -> TableConfig | None:
        return TableConfig.from_json(self.gateway.get("inference_table_config"))

    def entity(self, name: str | None) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    @property
    def capture(self) -> str | None:
        return self.table.table_name(self.name) if self.table else None

    def champion(self) -> Entity | None:
        return champion_of(self.entities, self.routes, self.tags)

    def challenger(self) -> Entity | None:
        return challenger_of(self.entities, self.routes, self.tags)


@dataclass(frozen=True)
class Plan:
    endpoint: str
    action: Literal["create", "update", "noop"]
    rollout: Rollout
    entities: tuple[Entity, ...]
    routes: Mapping[str, int]
    gateway: Mapping[str, Any] | None  # the whole ai_gateway to put; None leaves it alone
    tags: Mapping[str, str]
    delete_tags: tuple[str, ...]
    changes: tuple[Change, ...]
    before: EndpointState | None
    notices: tuple[str, ...] = ()

    @property
    def config_changed(self) -> bool:
        return any(c.section in ("served entity", "route") for c in self.changes)

    @property
    def gateway_changed(self) -> bool:
        return self.gateway is not None and any(c.section == "capture" for c in self.changes)

    @property
    def tags_changed(self) -> bool:
        return any(c.section == "tag" for c in self.changes)

    def as_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "action": self.action,
            "before_config_version": self.before.config_version if self.before else None,
            "champion": self.rollout.champion.name,
            "challenger": self.rollout.challenger.name if self.rollout.challenger else None,
            "served_entities": [{"name": e.name, **_redacted(e.spec)} for e in self.entities],
            "routes": dict(self.routes),
            "ai_gateway": dict(self.gateway) if self.gateway is not None else None,
            "tags": dict(self.tags),
            "delete_tags": list(self.delete_tags),
            "changes": [
                {"section": c.section, "item": c.item, "before": c.before, "after": c.after}
                for c in self.changes
            ],
            "notices": list(self.notices),
        }


_SECRET_KEY = re.compile(r"plaintext|api_key|secret|token|password|private_key", re.I)


def _redacted(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec fit for plan.json: environment variables by name only, credentials masked.

    The API echoes `environment_vars` and external-model configs as given, and plaintext
    values there are credentials."""

    def walk(value: Any, key: str = "") -> Any:
        if key == "environment_vars" and isinstance(value, Mapping):
            return dict.fromkeys(value, "***")
        if isinstance(value, Mapping):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return "***" if value and _SECRET_KEY.search(key) else value

    out: dict[str, Any] = walk(spec)
    return out


def served_entity(name: str, spec: Mapping[str, Any]) -> Entity:
    """A `ServedEntityInput` as the rollout core's Entity: what it serves, and its size."""
    size = spec.get("workload_size")
    zero = spec.get("scale_to_zero_enabled")
    detail = [str(size)] if size else []
    if zero is not None:
        detail.append("scale-to-zero" if zero else "always-on")
    return Entity(
        name,
        spec,
        model=str(spec.get("entity_name") or "?"),
        version=str(spec.get("entity_version") or "?"),
        detail=tuple(detail),
    )


def entity_for(model_name: str, version: str, *, workload_size: str, scale_to_zero: bool) -> Entity:
    """A Unity Catalog model version as a served entity, named as Databricks names it by
    default (`<model>-<version>`), so a re-run finds the entity it created."""
    name = f"{model_name.rsplit('.', 1)[-1]}-{version}"
    return served_entity(
        name,
        {
            "name": name,
            "entity_name": model_name,
            "entity_version": version,
            "workload_size": workload_size,
            "scale_to_zero_enabled": scale_to_zero,
        },
    )


def challenger_named(state: EndpointState | None, challenger: Entity) -> Entity:
    """The challenger under a name the champion does not hold: main.prod.bot v3 and
    main.stg.bot v3 would both be bot-3, so the challenger takes its schema as a prefix."""
    champion = state.champion() if state else None
    if champion is None or champion.name != challenger.name or champion.same_model(challenger):
        return challenger
    return challenger.renamed(f"{challenger.model.split('.')[-2]}-{challenger.name}")


def desired_gateway(
    state: EndpointState | None, table: TableConfig | None, endpoint: str
) -> Mapping[str, Any] | None:
    """The whole gateway config with the inference table set; None when it already is."""
    current = dict(state.gateway) if state else {}
    if table is None:
        return None
    wanted = table.with_prefix(endpoint)
    have = TableConfig.from_json(current.get("inference_table_config"))
    if have is not None and have.with_prefix(endpoint) == wanted:
        return None
    return {**current, "inference_table_config": wanted.as_json()}


def plan_rollout(
    endpoint: str,
    state: EndpointState | None,
    rollout: Rollout,
    *,
    table: TableConfig | None = None,
    notices: list[str] | None = None,
) -> Plan:
    entities = rollout.entities()
    routes = rollout.routes()
    gateway = desired_gateway(state, table, endpoint)
    current_tags = {k: v for k, v in (state.tags if state else {}).items() if k in ROLLOUT_TAGS}
    tags = rollout.tags()
    delete = tuple(k for k in current_tags if k not in tags)

    changes = entity_changes(state, entities)
    changes += map_changes("route", state.routes if state else {}, routes, "%")
    if gateway is not None:
        have = state.table if state else None
        want = TableConfig.from_json(gateway.get("inference_table_config"))
        changes.append(
            Change(
                "capture",
                "inference table",
                have.table_name(endpoint) if have and have.enabled else "off",
                want.table_name(endpoint) if want else "off",
            )
        )
    changes += map_changes("tag", current_tags, tags)

    action: Literal["create", "update", "noop"]
    if state is None:
        action = "create"
    elif changes:
        action = "update"
    else:
        action = "noop"
    return Plan(
        endpoint=endpoint,
        action=action,
        rollout=rollout,
        entities=entities,
        routes=routes,
        gateway=gateway,
        tags=tags,
        delete_tags=delete,
        changes=tuple(changes),
        before=state,
        notices=tuple(notices or ()),
    )


def guard_problems(plan: Plan, table_given: bool) -> list[str]:
    """What Databricks would refuse, or what would leave the canary unobservable."""
    state = plan.before
    problems: list[str] = []
    have = state.table if state else None
    legacy = state.legacy_capture if state else None
    wanted = (
        TableConfig.from_json(plan.gateway.get("inference_table_config"))
        if plan.gateway is not None
        else None
    )
    if (
        wanted is not None
        and have is not None
        and have.enabled
        and have.with_prefix(plan.endpoint).location() != wanted.location()
    ):
        problems.append(
            f"inference-table: the endpoint already captures to "
            f"{have.table_name(plan.endpoint)}, and Databricks cannot move an enabled "
            "inference table. Keep that location in inference-table, or disable the "
            "table on the endpoint first."
        )
    if (
        wanted is not None
        and legacy is not None
        and not legacy.enabled
        and legacy.with_prefix(plan.endpoint).location() == wanted.location()
    ):
        problems.append(
            f"inference-table: payload logging to {wanted.table_name(plan.endpoint)} was "
            "disabled on this endpoint, and Databricks cannot re-enable it. Give a new "
            "prefix, e.g. catalog.schema.<endpoint>_v2."
        )
    if wanted is not None and legacy is not None and legacy.enabled:
        problems.append(
            f"inference-table: the endpoint still captures with legacy inference tables "
            f"({legacy.table_name(plan.endpoint)}), and Databricks enables AI Gateway inference "
            "tables only once they are off. Disable auto_capture_config on the endpoint first "
            "(the legacy table stays readable), and give AI Gateway a new prefix, e.g. "
            "catalog.schema.<endpoint>_gw."
        )
    external = [e.name for e in (state.entities if state else ()) if "external_model" in e.spec]
    if external and any("entity_name" in e.spec for e in plan.entities if e.name not in external):
        problems.append(
            f"endpoint: {plan.endpoint} serves an external model ({', '.join(external)}), and "
            "Databricks does not serve a Unity Catalog model behind the same endpoint. Deploy "
            "the model to an endpoint of its own."
        )
    captures = (have is not None and have.enabled) or (legacy is not None and legacy.enabled)
    if not table_given and not captures:
        problems.append(
            "inference-table is not set and the endpoint captures no traffic, so the canary "
            "could not be watched. Name a Unity Catalog schema for the inference table."
        )
    return problems

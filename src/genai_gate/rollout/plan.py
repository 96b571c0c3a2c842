"""The desired endpoint state and its diff, computed without I/O.

Deploy (issue #6) and the canary's advance, promote and rollback (issue #7) all end here:
the endpoint's current state plus a rollout intent (which entity is champion, which is
challenger, and the challenger's share) give a `Plan`. The rollout's own state lives on the
endpoint as `genai-gate.*` tags, so no other store is needed.

`update_config` replaces the whole served-entity list and `put_ai_gateway` the whole gateway
config, so a plan always carries complete values: the champion keeps every field it was
served with, and the gateway keeps its guardrails, rate limits and usage tracking.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TAG_CHAMPION = "genai-gate.champion"
TAG_CHALLENGER = "genai-gate.challenger"
TAG_STEP = "genai-gate.step"
TAG_STARTED = "genai-gate.started-at"
# when the current step began: the canary is judged on the traffic of its current share
TAG_STEP_AT = "genai-gate.step-at"
ROLLOUT_TAGS = (TAG_CHAMPION, TAG_CHALLENGER, TAG_STEP, TAG_STARTED, TAG_STEP_AT)


@dataclass(frozen=True)
class Entity:
    """One served entity, as the `ServedEntityInput` JSON that would serve it again."""

    name: str
    spec: Mapping[str, Any]

    @property
    def model(self) -> str:
        return str(self.spec.get("entity_name") or "?")

    @property
    def version(self) -> str:
        return str(self.spec.get("entity_version") or "?")

    def same_model(self, other: Entity) -> bool:
        return (self.model, self.version) == (other.model, other.version)

    def label(self) -> str:
        size = self.spec.get("workload_size")
        zero = self.spec.get("scale_to_zero_enabled")
        extras = [str(size)] if size else []
        if zero is not None:
            extras.append("scale-to-zero" if zero else "always-on")
        tail = f", {', '.join(extras)}" if extras else ""
        return f"{self.model} v{self.version}{tail}"


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

    def champion(self) -> Entity | None:
        """The entity tagged champion, else the one carrying the most traffic."""
        tagged = self.entity(self.tags.get(TAG_CHAMPION))
        if tagged is not None:
            return tagged
        if not self.entities:
            return None
        return max(self.entities, key=lambda e: self.routes.get(e.name, 0))

    def challenger(self) -> Entity | None:
        champion = self.champion()
        tagged = self.entity(self.tags.get(TAG_CHALLENGER))
        if tagged is not None and tagged is not champion:
            return tagged
        others = [e for e in self.entities if e is not champion]
        return max(others, key=lambda e: self.routes.get(e.name, 0)) if others else None


@dataclass(frozen=True)
class Rollout:
    """The intent: who is champion, who (if anyone) is challenger, and its share."""

    champion: Entity
    challenger: Entity | None = None
    percent: int = 0
    started_at: str | None = None
    step_at: str | None = None

    def routes(self) -> dict[str, int]:
        if self.challenger is None:
            return {self.champion.name: 100}
        if self.percent >= 100:
            return {self.challenger.name: 100}
        return {self.champion.name: 100 - self.percent, self.challenger.name: self.percent}

    def entities(self) -> tuple[Entity, ...]:
        routes = self.routes()
        pair = (self.champion, self.challenger)
        return tuple(e for e in pair if e is not None and e.name in routes)

    def tags(self) -> dict[str, str]:
        if self.challenger is None or self.percent >= 100:
            winner = self.challenger or self.champion
            return {TAG_CHAMPION: winner.name, TAG_STEP: "100"}
        tags = {
            TAG_CHAMPION: self.champion.name,
            TAG_CHALLENGER: self.challenger.name,
            TAG_STEP: str(self.percent),
        }
        if self.started_at:
            tags[TAG_STARTED] = self.started_at
        if self.step_at:
            tags[TAG_STEP_AT] = self.step_at
        return tags


@dataclass(frozen=True)
class Change:
    section: str  # served entity | route | capture | tag
    item: str
    before: str
    after: str


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


def entity_for(model_name: str, version: str, *, workload_size: str, scale_to_zero: bool) -> Entity:
    """A Unity Catalog model version as a served entity, named as Databricks names it by
    default (`<model>-<version>`), so a re-run finds the entity it created."""
    name = f"{model_name.rsplit('.', 1)[-1]}-{version}"
    return Entity(
        name,
        {
            "name": name,
            "entity_name": model_name,
            "entity_version": version,
            "workload_size": workload_size,
            "scale_to_zero_enabled": scale_to_zero,
        },
    )


def rollout_for_challenger(
    state: EndpointState | None, challenger: Entity, percent: int, now: str
) -> tuple[Rollout, list[str]]:
    """Deploy's intent: keep the champion, add or replace the challenger.

    A challenger that is already on the endpoint keeps its current share and start time, so
    re-running the deploy of a merge (or deploying while the canary advances) changes nothing.
    """
    notices: list[str] = []
    champion = state.champion() if state else None
    if champion is None:
        return Rollout(challenger, None, 100, now), notices
    if champion.same_model(challenger):
        notices.append(
            f"{challenger.model} v{challenger.version} is already the champion "
            f"({champion.name}); there is nothing to roll out."
        )
    assert state is not None
    current = state.challenger()
    if champion.same_model(challenger):
        if current is None:
            return Rollout(champion, None, 100), notices
        return _as_is(state, champion, current, now), notices
    if current is not None and current.same_model(challenger):
        share = state.routes.get(current.name, 0)
        if share != percent:
            notices.append(
                f"{current.name} already serves {share}% as the challenger; "
                f"the rollout owns its share now, so canary-percent ({percent}) is not reapplied."
            )
        as_is = _as_is(state, champion, current, now)
        if not _same_spec(current, challenger):
            # a new workload size or scale-to-zero for the same version: same name and share
            resized = Entity(
                current.name, {**current.spec, **challenger.spec, "name": current.name}
            )
            as_is = dataclasses.replace(as_is, challenger=resized)
        return as_is, notices
    if challenger.name == champion.name:
        # main.prod.bot v3 and main.stg.bot v3 would share the name bot-3
        schema = challenger.model.split(".")[-2]
        name = f"{schema}-{challenger.name}"
        challenger = Entity(name, {**challenger.spec, "name": name})
    if current is not None:
        notices.append(f"{current.name} is replaced as the challenger by {challenger.name}.")
    return Rollout(champion, challenger, percent, now, now), notices


def _as_is(state: EndpointState, champion: Entity, challenger: Entity, now: str) -> Rollout:
    share = state.routes.get(challenger.name, 0)
    started = state.tags.get(TAG_STARTED) or now
    return Rollout(champion, challenger, share, started, state.tags.get(TAG_STEP_AT))


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


def _entity_changes(before: EndpointState | None, after: tuple[Entity, ...]) -> list[Change]:
    old = {e.name: e for e in (before.entities if before else ())}
    new = {e.name: e for e in after}
    changes = []
    for name in [*old, *(n for n in new if n not in old)]:
        b, a = old.get(name), new.get(name)
        if b is not None and a is not None and _same_spec(b, a):
            continue
        changes.append(
            Change(
                "served entity",
                name,
                b.label() if b else "-",
                a.label() if a else "removed",
            )
        )
    return changes


def _same_spec(before: Entity, after: Entity) -> bool:
    # the output echoes fields we never sent (state, creator); compare what we would send
    return all(before.spec.get(k) == v for k, v in after.spec.items() if k != "name")


def _map_changes(
    section: str, before: Mapping[str, Any], after: Mapping[str, Any], unit: str = ""
) -> list[Change]:
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        changes.append(
            Change(
                section,
                key,
                "-" if b is None else f"{b}{unit}",
                "removed" if a is None else f"{a}{unit}",
            )
        )
    return changes


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

    changes = _entity_changes(state, entities)
    changes += _map_changes("route", state.routes if state else {}, routes, "%")
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
    changes += _map_changes("tag", current_tags, tags)

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

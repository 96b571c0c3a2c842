"""A seed-style `update.json` (`served_entities` + `traffic_config` + `auto_capture_config`)
read as a literal desired config.

The seed enabled capture with `auto_capture_config`, the legacy inference tables that
Databricks no longer lets anyone enable (since February 2026). Its location is carried over
to AI Gateway's `inference_table_config`, which captures the same requests and responses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_gate.backends.databricks.plan import TableConfig, served_entity
from genai_gate.errors import ConfigError
from genai_gate.rollout.plan import Entity, Rollout

_EXAMPLE = """{
  "served_entities": [
    {"name": "current", "entity_name": "main.default.my_model", "entity_version": "12",
     "workload_size": "Small", "scale_to_zero_enabled": true},
    {"name": "challenger", "entity_name": "main.default.my_model", "entity_version": "13",
     "workload_size": "Small", "scale_to_zero_enabled": true}
  ],
  "traffic_config": {"routes": [
    {"served_model_name": "current", "traffic_percentage": 90},
    {"served_model_name": "challenger", "traffic_percentage": 10}
  ]},
  "auto_capture_config": {"catalog_name": "main", "schema_name": "mon", "table_name_prefix": "ep"}
}"""


@dataclass(frozen=True)
class LiteralConfig:
    rollout: Rollout
    table: TableConfig | None
    notices: tuple[str, ...]


def _percent(route: dict[str, Any], where: str) -> int:
    raw = route.get("traffic_percentage")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{where}: traffic_percentage {raw!r} is not a whole number") from None
    if not 0 <= value <= 100:
        raise ConfigError(f"{where}: traffic_percentage {value} is not between 0 and 100")
    return value


def read_endpoint_config(path: Path, label: str, now: str) -> LiteralConfig:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read {path} ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{label}: {path} is not valid JSON (line {exc.lineno}: {exc.msg})",
            fix=f"A seed-style endpoint config looks like:\n{_EXAMPLE}",
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{label}: {path} must hold a JSON object", fix=_EXAMPLE)
    unknown = sorted(set(doc) - {"served_entities", "traffic_config", "auto_capture_config"})
    if unknown:
        raise ConfigError(
            f"{label}: {path} has keys genai-gate does not apply: {unknown}",
            fix="Keep served_entities, traffic_config and auto_capture_config; set AI Gateway "
            "options on the endpoint itself.",
        )
    raw_entities = doc.get("served_entities") or []
    entities: list[Entity] = []
    for i, raw in enumerate(raw_entities):
        where = f"{label}: served_entities[{i}]"
        if not isinstance(raw, dict) or not raw.get("entity_name"):
            raise ConfigError(f"{where} needs entity_name and entity_version", fix=_EXAMPLE)
        spec = {**raw, "entity_version": str(raw.get("entity_version", "")).strip()}
        if not spec["entity_version"].isdigit():
            raise ConfigError(
                f"{where}: entity_version {raw.get('entity_version')!r} is not a Unity Catalog "
                "version number",
                fix=_EXAMPLE,
            )
        name = str(
            raw.get("name") or f"{raw['entity_name'].rsplit('.', 1)[-1]}-{spec['entity_version']}"
        )
        entities.append(served_entity(name, {**spec, "name": name}))
    if not 1 <= len(entities) <= 2:
        raise ConfigError(
            f"{label}: {path} serves {len(entities)} entities; a rollout has one champion "
            "and at most one challenger",
            fix=_EXAMPLE,
        )
    names = {e.name for e in entities}
    routes: dict[str, int] = {}
    for i, route in enumerate((doc.get("traffic_config") or {}).get("routes") or []):
        where = f"{label}: traffic_config.routes[{i}]"
        target = route.get("served_entity_name") or route.get("served_model_name")
        if target not in names:
            raise ConfigError(
                f"{where} names {target!r}, which is not a served entity ({sorted(names)})"
            )
        routes[str(target)] = _percent(route, where)
    if not routes and len(entities) == 1:
        routes = {entities[0].name: 100}
    if sum(routes.values()) != 100:
        raise ConfigError(
            f"{label}: the routes in {path} sum to {sum(routes.values())}%, not 100%",
            fix=_EXAMPLE,
        )
    ranked = sorted(entities, key=lambda e: -routes.get(e.name, 0))
    champion = ranked[0]
    challenger = ranked[1] if len(ranked) > 1 else None
    rollout = Rollout(
        champion, challenger, routes.get(challenger.name, 0) if challenger else 100, now, now
    )

    notices: list[str] = []
    table = None
    capture = doc.get("auto_capture_config")
    if isinstance(capture, dict):
        table = TableConfig.from_json({"enabled": True, **capture})
        if table is None:
            raise ConfigError(
                f"{label}: auto_capture_config needs catalog_name and schema_name", fix=_EXAMPLE
            )
        notices.append(
            f"{label}: auto_capture_config (legacy inference tables) can no longer be enabled "
            "on Databricks; genai-gate turns on AI Gateway inference tables at the same "
            f"location instead ({table.catalog}.{table.schema}, prefix "
            f"{table.prefix or 'the endpoint name'}). Move it to `inference-table:` to "
            "silence this notice."
        )
    return LiteralConfig(rollout, table, tuple(notices))

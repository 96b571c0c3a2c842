"""The deploy plan is pure: current endpoint state + intent -> desired state and diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_gate.backends.databricks.endpoint_config import read_endpoint_config
from genai_gate.backends.databricks.plan import (
    EndpointState,
    Plan,
    TableConfig,
    challenger_named,
    entity_for,
    guard_problems,
    plan_rollout,
    served_entity,
)
from genai_gate.errors import ConfigError
from genai_gate.report.plan import render_plan
from genai_gate.rollout.plan import (
    TAG_CHALLENGER,
    TAG_CHAMPION,
    TAG_PREVIOUS,
    TAG_STARTED,
    TAG_STEP,
    TAG_STEP_AT,
    Entity,
    Rollout,
    rollout_for_challenger,
)
from tests.conftest import REPO

NOW = "2026-11-28T12:00:00+00:00"
TABLE = TableConfig("main", "mon")


def v(version: str, size: str = "Small") -> Entity:
    return entity_for("main.ml.bot", version, workload_size=size, scale_to_zero=True)


def served(
    *pairs: tuple[Entity, int], tags: dict[str, str] | None = None, **kw: object
) -> EndpointState:
    gateway = kw.pop(
        "gateway", {"inference_table_config": {**TABLE.as_json(), "table_name_prefix": "ep"}}
    )
    return EndpointState(
        name="ep",
        config_version=4,
        update_state="NOT_UPDATING",
        entities=tuple(e for e, _ in pairs),
        routes={e.name: p for e, p in pairs},
        gateway=gateway,  # type: ignore[arg-type]
        tags=tags or {},
        **kw,  # type: ignore[arg-type]
    )


def deploy(
    state: EndpointState | None,
    version: str = "13",
    percent: int = 10,
    table: TableConfig | None = TABLE,
) -> Plan:
    rollout, notices = rollout_for_challenger(state, v(version), percent, NOW)
    return plan_rollout("ep", state, rollout, table=table, notices=notices)


def test_a_missing_endpoint_is_created_with_the_single_entity_at_100() -> None:
    plan = deploy(None)
    assert plan.action == "create"
    assert plan.routes == {"bot-13": 100}
    assert plan.tags == {TAG_CHAMPION: "bot-13", TAG_STEP: "100"}
    assert plan.gateway == {
        "inference_table_config": {**TABLE.as_json(), "table_name_prefix": "ep"}
    }


def test_canary_keeps_the_champion_and_splits_90_10() -> None:
    plan = deploy(served((v("12"), 100)))
    assert plan.action == "update"
    assert plan.routes == {"bot-12": 90, "bot-13": 10}
    assert sum(plan.routes.values()) == 100
    assert [e.name for e in plan.entities] == ["bot-12", "bot-13"]
    assert plan.tags == {
        TAG_CHAMPION: "bot-12",
        TAG_CHALLENGER: "bot-13",
        TAG_STEP: "10",
        TAG_STARTED: NOW,
        TAG_STEP_AT: NOW,
    }
    assert plan.config_changed and plan.tags_changed and not plan.gateway_changed
    sections = {(c.section, c.item) for c in plan.changes}
    assert ("served entity", "bot-13") in sections and ("route", "bot-12") in sections


def test_rerunning_the_same_deploy_is_a_noop() -> None:
    tags = {
        TAG_CHAMPION: "bot-12",
        TAG_CHALLENGER: "bot-13",
        TAG_STEP: "10",
        TAG_STARTED: "t0",
        TAG_STEP_AT: "t0",
    }
    state = served((v("12"), 90), (v("13"), 10), tags=tags)
    plan = deploy(state)
    assert plan.action == "noop", plan.changes
    assert plan.changes == ()


def test_an_advanced_canary_keeps_its_share_when_deploy_runs_again() -> None:
    tags = {TAG_CHAMPION: "bot-12", TAG_CHALLENGER: "bot-13", TAG_STEP: "50", TAG_STARTED: "t0"}
    plan = deploy(served((v("12"), 50), (v("13"), 50), tags=tags))
    assert plan.action == "noop"
    assert any("already serves 50%" in n for n in plan.notices)


def test_a_new_challenger_replaces_the_old_one() -> None:
    tags = {TAG_CHAMPION: "bot-12", TAG_CHALLENGER: "bot-13", TAG_STEP: "10", TAG_STARTED: "t0"}
    plan = deploy(served((v("12"), 90), (v("13"), 10), tags=tags), version="14")
    assert plan.routes == {"bot-12": 90, "bot-14": 10}
    removed = [c for c in plan.changes if c.section == "served entity" and c.after == "removed"]
    assert [c.item for c in removed] == ["bot-13"]
    assert plan.tags[TAG_STARTED] == NOW


def test_the_champion_tag_wins_over_traffic() -> None:
    # mid-rollout at 50/50 the tag, not a tie-break, says who the champion is
    tags = {TAG_CHAMPION: "bot-12", TAG_CHALLENGER: "bot-13"}
    state = served((v("13"), 50), (v("12"), 50), tags=tags)
    assert state.champion() is not None and state.champion().name == "bot-12"  # type: ignore[union-attr]
    plan = deploy(state, version="14")
    assert plan.routes == {"bot-12": 90, "bot-14": 10}


def test_without_tags_the_entity_with_most_traffic_is_champion() -> None:
    state = served((v("11"), 20), (v("12"), 80))
    assert state.champion().name == "bot-12"  # type: ignore[union-attr]
    assert state.challenger().name == "bot-11"  # type: ignore[union-attr]


def test_canary_percent_100_replaces_the_champion() -> None:
    plan = deploy(served((v("12"), 100)), percent=100)
    assert plan.routes == {"bot-13": 100}
    # the retired champion is remembered, for monitor's rollback
    assert plan.tags == {TAG_CHAMPION: "bot-13", TAG_STEP: "100", TAG_PREVIOUS: "main.ml.bot/12"}


def test_deploying_the_champion_version_changes_nothing() -> None:
    plan = deploy(served((v("12"), 100), tags={TAG_CHAMPION: "bot-12", TAG_STEP: "100"}), "12")
    assert plan.action == "noop"
    assert any("already the champion" in n for n in plan.notices)


def test_the_champion_keeps_every_field_it_was_served_with() -> None:
    champion = served_entity(
        "prod",
        {
            "name": "prod",
            "entity_name": "main.ml.bot",
            "entity_version": "12",
            "workload_size": "Large",
            "workload_type": "GPU_SMALL",
            "environment_vars": {"K": "{{secrets/s/k}}"},
        },
    )
    plan = deploy(served((champion, 100)))
    assert plan.entities[0].spec["workload_type"] == "GPU_SMALL"
    assert plan.entities[0].spec["environment_vars"] == {"K": "{{secrets/s/k}}"}


def test_the_gateway_keeps_guardrails_when_capture_is_turned_on() -> None:
    gateway = {
        "guardrails": {"input": {"safety": True}},
        "usage_tracking_config": {"enabled": True},
    }
    plan = deploy(served((v("12"), 100), gateway=gateway))
    assert plan.gateway_changed
    assert plan.gateway is not None
    assert plan.gateway["guardrails"] == {"input": {"safety": True}}
    assert plan.gateway["inference_table_config"]["table_name_prefix"] == "ep"


def test_moving_an_enabled_inference_table_is_refused() -> None:
    plan = deploy(served((v("12"), 100)), table=TableConfig("other", "mon"))
    problems = guard_problems(plan, table_given=True)
    assert any("cannot move an enabled inference table" in p for p in problems)


def test_re_enabling_disabled_legacy_payload_logging_is_refused() -> None:
    legacy = TableConfig("main", "mon", "ep", enabled=False)
    plan = deploy(served((v("12"), 100), gateway={}, legacy_capture=legacy))
    problems = guard_problems(plan, table_given=True)
    assert any("cannot re-enable" in p for p in problems)


def test_no_capture_at_all_is_refused() -> None:
    plan = deploy(served((v("12"), 100), gateway={}), table=None)
    assert any("inference-table is not set" in p for p in guard_problems(plan, table_given=False))


def test_an_endpoint_that_already_captures_needs_no_inference_table_key() -> None:
    plan = deploy(served((v("12"), 100)), table=None)
    assert guard_problems(plan, table_given=False) == []
    assert plan.gateway is None


def test_rollback_and_promote_are_rollouts_too() -> None:
    state = served((v("12"), 90), (v("13"), 10), tags={TAG_CHAMPION: "bot-12"})
    rollback = plan_rollout("ep", state, Rollout(v("12")))
    assert rollback.routes == {"bot-12": 100}
    promote = plan_rollout("ep", state, Rollout(v("12"), v("13"), 100))
    assert promote.routes == {"bot-13": 100}
    assert promote.tags[TAG_CHAMPION] == "bot-13"
    assert TAG_CHALLENGER not in promote.tags


def test_the_markdown_shows_traffic_and_changes() -> None:
    md = render_plan(deploy(served((v("12"), 100))))
    assert "### Deploy plan for `ep` (config version 4): updates the endpoint" in md
    assert "| `bot-13` (challenger) | main.ml.bot v13, Small, scale-to-zero | 10% |" in md
    assert "| route | `bot-12` | 100% | 90% |" in md


SEED = json.loads((REPO / "examples" / "seed" / "config" / "update.json").read_text())


def test_the_seed_update_json_is_a_literal_rollout(tmp_path: Path) -> None:
    path = tmp_path / "update.json"
    path.write_text(json.dumps(SEED))
    literal = read_endpoint_config(path, "endpoint-config", NOW)
    assert literal.rollout.champion.name == "current"
    assert (
        literal.rollout.challenger is not None and literal.rollout.challenger.name == "challenger"
    )
    assert literal.rollout.routes() == {"current": 90, "challenger": 10}
    assert literal.table == TableConfig("governed_ai", "inference_logs", "genai_endpoint")
    assert "auto_capture_config" in literal.notices[0] and "AI Gateway" in literal.notices[0]
    plan = plan_rollout("my-genai", None, literal.rollout, table=literal.table)
    assert plan.gateway is not None
    assert plan.gateway["inference_table_config"]["catalog_name"] == "governed_ai"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "traffic_config": {
                    "routes": [
                        {"served_model_name": "current", "traffic_percentage": 80},
                        {"served_model_name": "challenger", "traffic_percentage": 10},
                    ]
                }
            },
            "sum to 90%",
        ),
        (
            {
                "traffic_config": {
                    "routes": [{"served_model_name": "nobody", "traffic_percentage": 100}]
                }
            },
            "'nobody', which is not a served entity",
        ),
        ({"served_entities": []}, "serves 0 entities"),
        ({"rate_limits": []}, "does not apply"),
    ],
)
def test_a_bad_update_json_names_its_problem(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "update.json"
    path.write_text(json.dumps({**SEED, **change}))
    with pytest.raises(ConfigError) as err:
        read_endpoint_config(path, "endpoint-config", NOW)
    assert message in err.value.render()


def test_a_new_workload_size_resizes_the_challenger_in_place() -> None:
    tags = {TAG_CHAMPION: "bot-12", TAG_CHALLENGER: "bot-13", TAG_STEP: "50", TAG_STARTED: "t0"}
    state = served((v("12"), 50), (v("13"), 50), tags=tags)
    rollout, _ = rollout_for_challenger(state, v("13", size="Large"), 10, NOW)
    plan = plan_rollout("ep", state, rollout, table=TABLE)
    assert plan.routes == {"bot-12": 50, "bot-13": 50}
    assert plan.entities[1].spec["workload_size"] == "Large"
    assert [c.item for c in plan.changes if c.section == "served entity"] == ["bot-13"]


def test_the_same_model_name_in_another_schema_gets_its_own_entity_name() -> None:
    other = entity_for("main.stg.bot", "12", workload_size="Small", scale_to_zero=True)
    state = served((v("12"), 100))
    rollout, _ = rollout_for_challenger(state, challenger_named(state, other), 10, NOW)
    assert rollout.routes() == {"bot-12": 90, "stg-bot-12": 10}


def test_a_uc_model_cannot_join_an_external_model_endpoint() -> None:
    external = served_entity(
        "gpt", {"name": "gpt", "external_model": {"provider": "openai", "name": "x"}}
    )
    plan = deploy(served((external, 100)))
    assert any("serves an external model (gpt)" in p for p in guard_problems(plan, True))

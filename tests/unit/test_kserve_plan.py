"""The KServe canary as a plan: the predictor diff, canaryTrafficPercent, the writes of a
deploy, an advance, a promotion and a rollback, and the rollout state. Every patch is
applied to the service and validated against the vendored v0.20.0 CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genai_gate.backends.kserve.apply import _state_after
from genai_gate.backends.kserve.backend import KServeBackend
from genai_gate.backends.kserve.isvc import Service
from genai_gate.backends.kserve.plan import (
    KEEP,
    NEW_REVISION,
    Plan,
    ServiceState,
    desired_predictor,
    merge_diff,
    merge_patch,
    plan_rollout,
    redacted,
)
from genai_gate.backends.kserve.session import ClusterSession
from genai_gate.backends.kserve.state import CHAMPION_SPEC, RolloutState, configmap_manifest
from genai_gate.config import load_config
from genai_gate.errors import ConfigError, ServiceError
from genai_gate.github import read_context
from genai_gate.report.plan import render_plan
from genai_gate.rollout.plan import (
    TAG_CHALLENGER,
    TAG_CHAMPION,
    TAG_STARTED,
    TAG_STEP,
    Rollout,
)
from tests.fakes.kserve.schema import validate_inferenceservice
from tests.kserve_cases import LOGGER, PREDICTOR, manifest, merge, rev, sent, split

NOW = "2026-09-01T12:00:00+00:00"
V2 = "s3://models/bot/v2"

json_values = st.recursive(
    st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans()),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from("abcde"), json_values, max_size=4)


# a shared 2-core machine: the first draw can be slow, which is not what this checks
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=200)
@given(objects, objects)
def test_the_merge_diff_turns_one_predictor_into_the_other(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    patch = merge_diff(a, b)
    assert merge(a, patch) == b  # the RFC 7386 reference in tests/kserve_cases.py
    assert merge_patch(a, patch) == b
    assert merge_diff(b, b) == {}


def backend(tmp_path: Path, text: str) -> KServeBackend:
    cfg = tmp_path / "genai-gate.yml"
    cfg.write_text("backend: kserve\nendpoint: bot\nnamespace: models\n" + text)
    loaded = load_config(cfg, environ={}, require_data=False)
    session = ClusterSession({}, loaded.config, read_context({}), tmp_path)
    return KServeBackend(loaded, session)


def state_of(doc: dict[str, Any], state: RolloutState | None = None) -> ServiceState:
    return ServiceState.of(Service.from_manifest(doc), state or RolloutState())


def replay(doc: dict[str, Any], plan: Plan) -> list[dict[str, Any]]:
    """Each write's patch, as sent against the object the previous one left, validated
    against the CRD as the API server would; the objects after each write."""
    objects = []
    current = doc
    for write in plan.writes:
        patch = write.patch(Service.from_manifest(current))
        assert patch is not None
        assert patch["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        after = sent(current, patch)
        assert validate_inferenceservice(after) == [], write.purpose
        current = {**after, "status": current["status"]}
        objects.append(after)
    return objects


LOGGED = {**PREDICTOR, "logger": LOGGER}


def test_a_deploy_starts_the_challenger_as_a_new_revision_at_the_canary_share(
    tmp_path: Path,
) -> None:
    be = backend(tmp_path, f"storage-uri: {V2}\ncanary-percent: 10\n")
    doc = manifest(predictor=LOGGED)
    plan = be.plan_deploy("bot", state_of(doc), NOW)
    assert plan.kind == "deploy" and plan.action == "update"
    assert [w.canary for w in plan.writes] == [10]
    assert plan.routes == {rev(1): 90, NEW_REVISION: 10}
    after = replay(doc, plan)[-1]
    assert after["spec"]["predictor"]["model"]["storageUri"] == V2
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert after["spec"]["predictor"]["minReplicas"] == 1  # the rest of the predictor stays
    changes = {(c.section, c.item): (c.before, c.after) for c in plan.changes}
    assert changes[("predictor", "model.storageUri")] == ("s3://models/bot/v1", V2)
    assert changes[("canary", "canaryTrafficPercent")] == ("-", "10")
    assert changes[("route", rev(1))] == ("100%", "90%")
    assert changes[("rollout state", TAG_STEP)] == ("-", "10")


def test_a_champion_without_the_logger_gets_it_first_at_100_percent(tmp_path: Path) -> None:
    be = backend(tmp_path, f"storage-uri: {V2}\nlogger-url: {LOGGER['url']}\n")
    doc = manifest()
    plan = be.plan_deploy("bot", state_of(doc), NOW)
    first, second = plan.writes
    assert first.canary is None and first.predictor is not None
    assert first.predictor["logger"] == LOGGER
    assert first.predictor["model"]["storageUri"] == "s3://models/bot/v1"
    assert second.canary == 10 and second.predictor is not None
    assert second.predictor["model"]["storageUri"] == V2
    replay(doc, plan)
    capture = next(c for c in plan.changes if c.section == "capture")
    assert (capture.before, capture.after) == ("off", LOGGER["url"])


def test_without_a_logger_anywhere_the_plan_is_refused(tmp_path: Path) -> None:
    be = backend(tmp_path, f"storage-uri: {V2}\n")
    with pytest.raises(ConfigError) as err:
        be.plan_deploy("bot", state_of(manifest()), NOW)
    assert "logger-url" in err.value.problems[0]


def test_the_same_predictor_again_is_a_noop(tmp_path: Path) -> None:
    be = backend(tmp_path, "storage-uri: s3://models/bot/v1\n")
    plan = be.plan_deploy("bot", state_of(manifest(predictor=LOGGED)), NOW)
    assert plan.action == "noop" and plan.writes == ()
    assert any("already the champion" in n for n in plan.notices)


def test_the_same_challenger_again_keeps_its_share(tmp_path: Path) -> None:
    v2 = {**LOGGED, "model": {**PREDICTOR["model"], "storageUri": V2}}  # type: ignore[dict-item]
    doc = manifest(
        predictor=v2,
        canary=50,
        generation=3,
        created=2,
        ready=2,
        rolled_out=1,
        traffic=split(2, 50, 1),
    )
    state = RolloutState(
        {TAG_CHAMPION: rev(1), TAG_CHALLENGER: rev(2), TAG_STEP: "50", TAG_STARTED: NOW},
        LOGGED,
        "7",
    )
    be = backend(tmp_path, f"storage-uri: {V2}\ncanary-percent: 10\n")
    plan = be.plan_deploy("bot", state_of(doc, state), NOW)
    assert plan.action == "noop"
    assert any("not reapplied" in n for n in plan.notices)


def test_a_raw_deployment_is_refused_naming_its_mode(tmp_path: Path) -> None:
    be = backend(tmp_path, f"storage-uri: {V2}\n")
    doc = manifest(
        predictor=LOGGED, mode="Standard", created=None, ready=None, rolled_out=None, traffic=None
    )
    with pytest.raises(ConfigError) as err:
        be.plan_deploy("bot", state_of(doc), NOW)
    assert "Standard mode" in err.value.message
    assert "serving.kserve.io/deploymentMode: Serverless" in err.value.fix


@pytest.mark.parametrize(
    ("text", "where", "value"),
    [
        ("predictor-image: ghcr.io/acme/vllm:0.6", ("model", "image"), "ghcr.io/acme/vllm:0.6"),
        ("predictor: {minReplicas: 2, model: {runtime: vllm}}", ("model", "runtime"), "vllm"),
        ("predictor: {minReplicas: null}", ("minReplicas",), None),
    ],
)
def test_the_challenger_is_the_config_merged_onto_the_current_predictor(
    tmp_path: Path, text: str, where: tuple[str, ...], value: Any
) -> None:
    be = backend(tmp_path, text + "\n")
    doc = manifest(predictor=LOGGED)
    plan = be.plan_deploy("bot", state_of(doc), NOW)
    found: Any = replay(doc, plan)[-1]["spec"]["predictor"]
    for key in where:
        found = found.get(key) if isinstance(found, dict) else None
    assert found == value
    assert plan.writes[-1].predictor is not None


def test_a_custom_container_takes_the_image_and_refuses_a_storage_uri() -> None:
    custom = {"containers": [{"name": "kserve-container", "image": "vllm:0.5", "args": ["--x"]}]}
    merged, problems = desired_predictor(custom, {}, None, "vllm:0.6", None)
    assert merged["containers"] == [
        {"name": "kserve-container", "image": "vllm:0.6", "args": ["--x"]}
    ]
    assert problems == []
    _, problems = desired_predictor(custom, {}, "s3://m", None, None)
    assert problems and problems[0].startswith("storage-uri:")
    framework = {"sklearn": {"storageUri": "gs://a"}}
    merged, _ = desired_predictor(framework, {}, "gs://b", None, None)
    assert merged == {"sklearn": {"storageUri": "gs://b"}}


CANARY = manifest(
    predictor={**LOGGED, "model": {**PREDICTOR["model"], "storageUri": V2}},  # type: ignore[dict-item]
    canary=10,
    generation=3,
    resource_version="200",
    created=2,
    ready=2,
    rolled_out=1,
    traffic=split(2, 10, 1),
)
IN_FLIGHT = RolloutState(
    {TAG_CHAMPION: rev(1), TAG_CHALLENGER: rev(2), TAG_STEP: "10", TAG_STARTED: NOW},
    LOGGED,
    "7",
)


def test_the_canary_state_names_revisions_and_keeps_the_champion_s_predictor() -> None:
    state = state_of(CANARY, IN_FLIGHT)
    champion, challenger = state.champion(), state.challenger()
    assert champion is not None and champion.name == rev(1)
    assert champion.model == "s3://models/bot/v1"
    assert challenger is not None and challenger.name == rev(2) and challenger.model == V2
    assert state.config_version == 3
    assert state.capture == LOGGER["url"]


def test_without_a_state_the_champion_is_the_revision_with_most_traffic() -> None:
    state = state_of(CANARY)
    champion, challenger = state.champion(), state.challenger()
    assert champion is not None and champion.name == rev(1)
    assert champion.detail == ("predictor not recorded",)
    assert challenger is not None and challenger.name == rev(2)


def test_advance_moves_only_canary_traffic_percent() -> None:
    state = state_of(CANARY, IN_FLIGHT)
    champion, challenger = state.champion(), state.challenger()
    assert champion is not None and challenger is not None
    plan = plan_rollout(state, Rollout(champion, challenger, 50, NOW, NOW))
    assert plan.kind == "advance"
    (write,) = plan.writes
    assert write.predictor is None and write.canary == 50
    patch = write.patch(Service.from_manifest(CANARY))
    assert patch == {
        "metadata": {"resourceVersion": "200"},
        "spec": {"predictor": {"canaryTrafficPercent": 50}},
    }
    replay(CANARY, plan)


def test_promote_removes_canary_traffic_percent() -> None:
    state = state_of(CANARY, IN_FLIGHT)
    champion, challenger = state.champion(), state.challenger()
    assert champion is not None and challenger is not None
    plan = plan_rollout(state, Rollout(champion, challenger, 100))
    assert plan.kind == "promote"
    (write,) = plan.writes
    assert write.patch(Service.from_manifest(CANARY)) == {
        "metadata": {"resourceVersion": "200"},
        "spec": {"predictor": {"canaryTrafficPercent": None}},
    }
    after = replay(CANARY, plan)[-1]
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]
    assert plan.routes == {rev(2): 100}


def test_rollback_pins_the_previous_revision_restores_its_predictor_then_releases() -> None:
    state = state_of(CANARY, IN_FLIGHT)
    champion = state.champion()
    assert champion is not None
    plan = plan_rollout(state, Rollout(champion))
    assert plan.kind == "rollback"
    pin, restore, release = plan.writes
    assert (pin.predictor, pin.canary) == (None, 0)
    assert restore.predictor == LOGGED and restore.canary == KEEP
    assert (release.predictor, release.canary) == (None, None)
    pinned, restored, released = replay(CANARY, plan)
    assert pinned["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert restored["spec"]["predictor"]["model"]["storageUri"] == "s3://models/bot/v1"
    assert restored["spec"]["predictor"]["canaryTrafficPercent"] == 0  # still pinned
    assert "canaryTrafficPercent" not in released["spec"]["predictor"]


def test_rollback_without_the_champion_s_predictor_only_pins() -> None:
    state = state_of(CANARY)
    champion = state.champion()
    assert champion is not None
    plan = plan_rollout(state, Rollout(champion))
    assert [(w.predictor, w.canary) for w in plan.writes] == [(None, 0)]
    assert any("not recorded" in n for n in plan.notices)


CREATE = (
    "predictor:\n"
    "  minReplicas: 1\n"
    "  model:\n"
    "    modelFormat: {name: huggingface}\n"
    "    env: [{name: HF_TOKEN, value: hf_secret_value}]\n"
    f"storage-uri: {V2}\n"
    f"logger-url: {LOGGER['url']}\n"
    "canary-percent: 10\n"
)


def test_a_missing_service_is_created_serving_the_challenger_at_100_percent(
    tmp_path: Path,
) -> None:
    plan = backend(tmp_path, CREATE).plan_deploy("bot", None, NOW)
    assert (plan.action, plan.kind, plan.before, plan.writes) == ("create", "deploy", None, ())
    # no canary: nothing serves yet to compare with, whatever canary-percent says
    assert plan.routes == {NEW_REVISION: 100} and plan.rollout.challenger is None
    assert plan.tags == {TAG_CHAMPION: NEW_REVISION, TAG_STEP: "100"}
    assert any("creates it (serverless mode)" in n for n in plan.notices)
    manifest_sent = plan.manifest
    assert manifest_sent is not None
    assert validate_inferenceservice(dict(manifest_sent)) == []
    assert manifest_sent["metadata"] == {
        "name": "bot",
        "namespace": "models",
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
    }
    predictor = manifest_sent["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == V2 and predictor["logger"] == LOGGER
    assert "canaryTrafficPercent" not in predictor
    changes = {(c.section, c.item): (c.before, c.after) for c in plan.changes}
    assert changes[("service", "InferenceService")] == ("-", "models/bot")
    assert changes[("predictor", "model.storageUri")] == ("-", V2)
    assert changes[("route", NEW_REVISION)] == ("-", "100%")
    assert changes[("capture", "inference logger")] == ("off", LOGGER["url"])
    # the plan's files and report hide the environment values, the manifest's too
    text = json.dumps(plan.as_json()) + render_plan(plan)
    assert "hf_secret_value" not in text
    assert plan.as_json()["manifest"]["spec"]["predictor"]["model"]["env"][0]["value"] == "***"
    rendered = render_plan(plan)
    assert "creates the endpoint" in rendered
    # its first model, not the end of a canary
    assert "| rollout state | challenger's share (`genai-gate.step`) | — | 100% |" in rendered


def test_a_custom_container_is_created_as_given(tmp_path: Path) -> None:
    text = (
        "predictor:\n  containers:\n  - name: kserve-container\n"
        "    image: vllm/vllm-openai:v0.9.0\n    args: [--model, /mnt/models]\n"
        f"predictor-image: vllm/vllm-openai:v0.10.0\nlogger-url: {LOGGER['url']}\n"
    )
    plan = backend(tmp_path, text).plan_deploy("bot", None, NOW)
    assert plan.manifest is not None
    assert validate_inferenceservice(dict(plan.manifest)) == []
    container = plan.manifest["spec"]["predictor"]["containers"][0]
    assert container["image"] == "vllm/vllm-openai:v0.10.0"


def test_a_missing_service_without_a_whole_predictor_is_refused_with_an_example(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as err:
        backend(tmp_path, f"storage-uri: {V2}\n").plan_deploy("bot", None, NOW)
    assert "does not exist in namespace models" in err.value.message
    assert len(err.value.problems) == 2
    assert "a model: block with its modelFormat" in err.value.problems[0]
    assert "logger-url" in err.value.problems[1]
    assert "modelFormat: {name: huggingface}" in err.value.fix
    assert "serving.kserve.io/deploymentMode: Serverless" in err.value.fix


def test_a_service_being_deleted_is_not_rolled_out_onto(tmp_path: Path) -> None:
    doc = manifest(predictor=LOGGED)
    doc["metadata"]["deletionTimestamp"] = "2026-09-01T11:59:00Z"
    with pytest.raises(ServiceError) as err:
        backend(tmp_path, f"storage-uri: {V2}\n").plan_deploy("bot", state_of(doc), NOW)
    assert err.value.exit_code == 4 and "is being deleted" in err.value.message
    assert "creates a new one" in err.value.fix


def test_the_plan_report_and_json_hide_environment_values(tmp_path: Path) -> None:
    be = backend(tmp_path, f"storage-uri: {V2}\n")
    plan = be.plan_deploy("bot", state_of(manifest(predictor=LOGGED)), NOW)
    text = json.dumps(plan.as_json()) + render_plan(plan)
    assert "hf_secret_value" not in text
    assert plan.as_json()["predictor_after"]["model"]["env"] == [
        {"name": "HF_TOKEN", "value": "***"}
    ]
    assert redacted({"storage": {"key": "k", "parameters": {"api_key": "x"}}}) == {
        "storage": {"key": "k", "parameters": {"api_key": "***"}}
    }
    rendered = render_plan(plan)
    assert "challenger's share" in rendered and "`model.storageUri`" in rendered


def test_the_state_after_a_write_describes_what_serves() -> None:
    svc = Service.from_manifest(CANARY)
    plan = plan_rollout(
        state_of(CANARY, IN_FLIGHT),
        Rollout(
            state_of(CANARY, IN_FLIGHT).champion(),  # type: ignore[arg-type]
            state_of(CANARY, IN_FLIGHT).challenger(),
            10,
            NOW,
            NOW,
        ),
    )
    after = _state_after(svc, plan, IN_FLIGHT, LOGGED)
    assert after.tags == {
        TAG_CHAMPION: rev(1),
        TAG_CHALLENGER: rev(2),
        TAG_STEP: "10",
        TAG_STARTED: NOW,
        "genai-gate.step-at": NOW,
    }
    promoted = Service.from_manifest(
        manifest(
            predictor=CANARY["spec"]["predictor"] | {"canaryTrafficPercent": None},
            created=2,
            ready=2,
            rolled_out=2,
            previous=1,
        )
    )
    done = _state_after(promoted, None, IN_FLIGHT, LOGGED)
    assert done.tags == {TAG_CHAMPION: rev(2), TAG_STEP: "100"}
    assert done.champion_spec is not None
    assert done.champion_spec["model"]["storageUri"] == V2


def test_the_state_configmap_is_owned_by_the_service_and_round_trips() -> None:
    svc = Service.from_manifest(CANARY)
    cm = configmap_manifest(svc, IN_FLIGHT)
    assert cm["metadata"]["name"] == "genai-gate-rollout-bot"
    assert cm["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": "bot",
            "uid": svc.uid,
        }
    ]
    assert cm["metadata"]["resourceVersion"] == "7"
    assert json.loads(cm["data"][CHAMPION_SPEC]) == LOGGED
    back = RolloutState.from_data(cm["data"], "8")
    assert back.tags == IN_FLIGHT.tags and back.champion_spec == LOGGED
    assert RolloutState.from_data({CHAMPION_SPEC: "{not json"}, "1").champion_spec is None


def test_the_monitor_s_keys_outlive_the_rollout_keys() -> None:
    data = {
        "genai-gate.champion": rev(2),
        "genai-gate.step": "100",
        "genai-gate.previous-champion": "s3://models/bot/v1/abcd1234",
        "genai-gate.retrained-at": "2026-11-02T09:00:00+00:00",
        "genai-gate.previous-champion-spec": json.dumps(LOGGED),
        "someone-else": "left out",
    }
    stored = RolloutState.from_data(data, "3")
    assert stored.kept == {
        "genai-gate.previous-champion": "s3://models/bot/v1/abcd1234",
        "genai-gate.retrained-at": "2026-11-02T09:00:00+00:00",
    }
    assert stored.previous_spec == LOGGED
    assert stored.all_tags()["genai-gate.retrained-at"] == "2026-11-02T09:00:00+00:00"
    # a rollout writes only its own keys: the rest is carried over from what is stored
    after = RolloutState({"genai-gate.champion": rev(3), "genai-gate.step": "100"}, LOGGED)
    merged = after.carried_over(stored)
    assert merged.data() == {
        **{k: v for k, v in data.items() if k != "someone-else"},
        "genai-gate.champion": rev(3),
        CHAMPION_SPEC: json.dumps(LOGGED, sort_keys=True),
        "genai-gate.previous-champion-spec": json.dumps(LOGGED, sort_keys=True),
    }

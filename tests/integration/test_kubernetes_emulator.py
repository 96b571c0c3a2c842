"""The vendored KServe CRD and the Kubernetes API emulator, proven with the real client.

No product code runs here: these tests pin tests/fakes/kserve/schema.py and
tests/fakes/kubernetes.py to tests/fakes/kserve/FACTS.md, so tests of the KServe backend can
trust them.
"""

from __future__ import annotations

import copy
import itertools
import json
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.kserve.schema import (
    KSERVE_RELEASE,
    apply_defaults,
    crd,
    crd_openapi_schema,
    openapi_schema,
    prune,
    validate_inferenceservice,
)
from tests.fakes.kubernetes import (
    ADMIN_TOKEN,
    API_VERSION,
    EVENT_COLUMNS,
    GROUP,
    PLURAL,
    REQUEST_EVENT,
    RESPONSE_EVENT,
    VERSION,
    FakeKubernetes,
    Rule,
    revision_of,
    running,
)

SAMPLES = Path(__file__).resolve().parents[1] / "fakes" / "kserve" / "samples"


def _samples() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "InferenceService":
                found.append((f"{path.stem}:{doc['metadata']['name']}", doc))
    return found


# -- the vendored CRD schema -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "manifest"), _samples(), ids=[n for n, _ in _samples()])
def test_kserve_samples_validate(name: str, manifest: dict[str, Any]) -> None:
    problems = validate_inferenceservice(manifest)
    if name == "rollout-strategy__rollout-strategy-example:rollout-strategy-example":
        # KServe's own sample nests `custom` under the transformer, a v1alpha2 leftover the
        # v1beta1 schema does not have: the API server prunes it, strict validation names it
        assert problems == ['unknown field "spec.transformer.custom"']
        assert validate_inferenceservice(manifest, strict=False) == []
    else:
        assert problems == [], f"{KSERVE_RELEASE} sample {name}"


def test_the_json_extract_is_the_vendored_crd() -> None:
    assert openapi_schema() == crd_openapi_schema()
    assert crd()["metadata"]["name"] == "inferenceservices.serving.kserve.io"
    assert crd()["spec"]["versions"][0]["subresources"] == {"status": {}}


def _canary() -> dict[str, Any]:
    return copy.deepcopy(dict(_samples())["v1beta1__rollout__canary:my-model"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m: m["spec"]["predictor"].update(canaryTrafficPercent="10"),
            'spec.predictor.canaryTrafficPercent: Invalid value: "string": '
            'spec.predictor.canaryTrafficPercent in body must be of type integer: "string"',
        ),
        (
            lambda m: m["spec"]["predictor"].update(logger={"mode": "everything"}),
            'spec.predictor.logger.mode: Unsupported value: "everything": '
            'supported values: "all", "request", "response"',
        ),
        (
            lambda m: m["spec"]["predictor"].update(containers=[{"image": "vllm/vllm-openai"}]),
            "spec.predictor.containers[0].name: Required value",
        ),
        (
            lambda m: m["spec"]["predictor"].update(model={"modelFormat": {"version": "1"}}),
            "spec.predictor.model.modelFormat.name: Required value",
        ),
        (
            lambda m: m["spec"]["predictor"].update(canaryTraficPercent=10),
            'unknown field "spec.predictor.canaryTraficPercent"',
        ),
        (lambda m: m.update(kind="InferenceServce"), 'kind: Invalid value: "InferenceServce"'),
        (
            lambda m: m["metadata"].update(name="My_Model"),
            'metadata.name: Invalid value: "My_Model"',
        ),
        (
            lambda m: m["spec"]["predictor"].update(minReplicas=1.5),
            'spec.predictor.minReplicas: Invalid value: "number": '
            'spec.predictor.minReplicas in body must be of type integer: "number"',
        ),
    ],
)
def test_broken_manifests_are_refused_as_the_api_server_words_it(
    change: Any, expected: str
) -> None:
    manifest = _canary()
    change(manifest)
    problems = validate_inferenceservice(manifest)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_pruning_and_defaults_follow_structural_schema_rules() -> None:
    manifest = _canary()
    manifest["spec"]["predictor"]["bogus"] = {"x": 1}
    manifest["spec"]["predictor"]["minReplicas"] = None  # non-nullable null: pruned
    manifest["spec"]["predictor"]["containers"] = [
        {"name": "kserve-container", "image": "x", "ports": [{"containerPort": 8080}]}
    ]
    manifest["status"] = {"anything": {"goes": True}}  # x-kubernetes-preserve-unknown-fields
    pruned, unknown = prune(manifest)
    assert unknown == ["spec.predictor.bogus"]
    assert "minReplicas" not in pruned["spec"]["predictor"]
    assert pruned["status"] == {"anything": {"goes": True}}
    defaulted = apply_defaults(pruned)
    assert defaulted["spec"]["predictor"]["containers"][0]["ports"] == [
        {"containerPort": 8080, "protocol": "TCP"}
    ]
    assert validate_inferenceservice(defaulted) == []


# -- the emulator, driven by the real kubernetes client ----------------------------------------

NS = "default"
APPLY = "application/apply-patch+yaml"


def _api(kube: FakeKubernetes, token: str = ADMIN_TOKEN) -> client.CustomObjectsApi:
    cfg = client.Configuration(
        host=kube.host,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    return client.CustomObjectsApi(client.ApiClient(cfg))


def _core(kube: FakeKubernetes, token: str = ADMIN_TOKEN) -> client.CoreV1Api:
    cfg = client.Configuration(
        host=kube.host,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    return client.CoreV1Api(client.ApiClient(cfg))


def _manifest(
    name: str = "my-model", uri: str = "hf://acme/qa-v1", **predictor: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "huggingface"}, "storageUri": uri},
                **predictor,
            }
        },
    }


def _d(value: object) -> dict[str, Any]:
    """A custom object as the client returns it (typed `object`)."""
    assert isinstance(value, dict)
    return value


def _get(api: client.CustomObjectsApi, name: str = "my-model") -> dict[str, Any]:
    return _d(api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name))


def _patch(
    api: client.CustomObjectsApi, body: Any, name: str = "my-model", **kwargs: Any
) -> dict[str, Any]:
    return _d(api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, body, **kwargs))


def _predictor(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["status"]["components"]["predictor"]
    return found


def _traffic(obj: dict[str, Any]) -> list[tuple[str, int, bool, str | None]]:
    return [
        (t["revisionName"], t["percent"], t["latestRevision"], t.get("tag"))
        for t in _predictor(obj).get("traffic", [])
    ]


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def _status_body(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body or "")
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == err.status
    return body


def _rev(n: int, name: str = "my-model") -> str:
    return f"{name}-predictor-{n:05d}"


@pytest.fixture
def kube(kube_cluster: FakeKubernetes) -> FakeKubernetes:
    """The conftest emulator with one settled InferenceService `my-model` (revision 1)."""
    kube_cluster.add_inferenceservice(_manifest())
    return kube_cluster


def test_round_trips_with_resource_version_and_generation(kube: FakeKubernetes) -> None:
    api = _api(kube)
    first = _get(api)
    assert first["metadata"]["generation"] == 1
    assert first["metadata"]["finalizers"] == ["inferenceservice.finalizers"]
    assert first["status"]["deploymentMode"] == "Knative"
    assert first["status"]["url"] == "http://my-model.default.example.com"
    assert first["status"]["address"]["url"] == "http://my-model.default.svc.cluster.local"
    assert _traffic(first) == [(_rev(1), 100, True, None)]
    # a label change: new resourceVersion, same generation (metadata is not spec)
    labelled = _patch(api, {"metadata": {"labels": {"team": "qa"}}})
    assert int(labelled["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert labelled["metadata"]["generation"] == 1
    # replace with the resourceVersion just read: spec change bumps the generation
    current = _get(api)
    current["spec"]["predictor"]["model"]["storageUri"] = "hf://acme/qa-v2"
    replaced = _d(
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", current)
    )
    assert replaced["metadata"]["generation"] == 2
    assert replaced["spec"]["predictor"]["model"]["storageUri"] == "hf://acme/qa-v2"
    listed = _d(
        api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="team=qa")
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["my-model"]
    none = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="team=x")
    assert _d(none)["items"] == []
    status = _d(api.get_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "my-model"))
    # the label went into the revision template too: revision 2, then the new model, 3
    assert _predictor(status)["latestCreatedRevision"] == _rev(3)


def test_a_write_answers_before_the_controller_so_its_resource_version_goes_stale(
    kube: FakeKubernetes,
) -> None:
    api = _api(kube)
    answered = _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 10}}})
    # the controller then wrote the status: the answered resourceVersion is already old
    assert _get(api)["metadata"]["resourceVersion"] != answered["metadata"]["resourceVersion"]
    stale = copy.deepcopy(answered)
    stale["spec"]["predictor"]["canaryTrafficPercent"] = 20
    with pytest.raises(ApiException) as err:
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", stale)
    body = _status_body(err.value)
    assert err.value.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "my-model": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "my-model", "group": GROUP, "kind": PLURAL}
    # a merge patch carrying the stale resourceVersion is a precondition too
    with pytest.raises(ApiException) as err:
        _patch(api, {"metadata": {"resourceVersion": answered["metadata"]["resourceVersion"]}})
    assert err.value.status == 409
    assert kube.conflicts == 2


def test_put_without_resource_version_is_422(kube: FakeKubernetes) -> None:
    api = _api(kube)
    with pytest.raises(ApiException) as err:
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", _manifest())
    body = _status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'inferenceservices.serving.kserve.io "my-model" is invalid: metadata.resourceVersion: '
        "Invalid value: 0x0: must be specified for an update"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_conflict_next_makes_fresh_writes_409_for_a_bounded_retry(kube: FakeKubernetes) -> None:
    api = _api(kube)
    kube.conflict_next = 2
    attempts = 0
    while attempts < 3:  # read, modify, write; re-read on 409
        attempts += 1
        current = _get(api)
        current["spec"]["predictor"]["canaryTrafficPercent"] = 10
        try:
            api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", current)
            break
        except ApiException as err:
            assert err.status == 409
    assert attempts == 3 and kube.conflict_next == 0 and kube.conflicts == 2
    assert _get(api)["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_every_write_is_validated_against_the_crd(kube: FakeKubernetes) -> None:
    api = _api(kube)
    with pytest.raises(ApiException) as err:
        _patch(
            api, {"spec": {"predictor": {"canaryTrafficPercent": "ten", "logger": {"mode": "x"}}}}
        )
    body = _status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith(
        'InferenceService.serving.kserve.io "my-model" is invalid: '
        '[spec.predictor.canaryTrafficPercent: Invalid value: "string": '
        "spec.predictor.canaryTrafficPercent in body must be of type integer"
    )
    assert [c["field"] for c in body["details"]["causes"]] == [
        "spec.predictor.canaryTrafficPercent",
        "spec.predictor.logger.mode",
    ]
    assert body["details"]["causes"][1]["reason"] == "FieldValueNotSupported"
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, _manifest("bad", containers=[{"image": "vllm/vllm"}])
        )
    assert err.value.status == 422
    assert "spec.predictor.containers[0].name: Required value" in _status_body(err.value)["message"]
    # unknown fields are pruned with a warning, or refused under Strict field validation
    pruned = _patch(api, {"spec": {"predictor": {"canaryTraficPercent": 10}}})
    assert "canaryTraficPercent" not in pruned["spec"]["predictor"]
    warned = [r for r in kube.requests if r.method == "PATCH"]
    assert warned[-1].status == 200
    with pytest.raises(ApiException) as err:
        _patch(api, {"spec": {"predictor": {"canaryTraficPercent": 10}}}, field_validation="Strict")
    assert err.value.status == 400
    assert (
        'unknown field "spec.predictor.canaryTraficPercent"' in _status_body(err.value)["message"]
    )


def test_a_new_revision_starts_then_becomes_ready(kube: FakeKubernetes) -> None:
    api = _api(kube)
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "model": {"storageUri": "hf://acme/qa-v2"},
                }
            }
        },
    )
    starting = _get(api)  # ready_polls=1: this read still sees revision 2 starting
    comp = _predictor(starting)
    assert comp["latestCreatedRevision"] == _rev(2)
    assert comp["latestReadyRevision"] == _rev(1)
    # Knative resolves latestRevision to the latest *ready* revision: revision 1 named twice
    assert _traffic(starting) == [(_rev(1), 10, True, None), (_rev(1), 90, False, "prev")]
    assert _condition(starting, "PredictorReady")["status"] == "Unknown"
    assert _condition(starting, "Ready")["status"] == "Unknown"
    assert _condition(starting, "PredictorRouteReady")["status"] == "True"
    ready = _get(api)
    assert _predictor(ready)["latestReadyRevision"] == _rev(2)
    assert _traffic(ready) == [(_rev(2), 10, True, None), (_rev(1), 90, False, "prev")]
    assert _predictor(ready)["latestRolledoutRevision"] == _rev(1)
    assert _condition(ready, "Ready")["status"] == "True"
    assert ready["status"]["modelStatus"]["transitionStatus"] == "UpToDate"  # latest is ready
    assert kube.serving("my-model") == {_rev(2): 10, _rev(1): 90}


def test_a_failed_revision_keeps_the_old_one_serving(kube: FakeKubernetes) -> None:
    api = _api(kube)
    kube.fail_next_revisions = 1
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "model": {"storageUri": "hf://acme/broken"},
                }
            }
        },
    )
    kube.settle("my-model")
    failed = _get(api)
    comp = _predictor(failed)
    assert comp["latestCreatedRevision"] == _rev(2)
    assert comp["latestReadyRevision"] == _rev(1)
    assert _traffic(failed) == [(_rev(1), 10, True, None), (_rev(1), 90, False, "prev")]
    predictor_ready = _condition(failed, "PredictorReady")
    assert predictor_ready["status"] == "False" and predictor_ready["reason"] == "RevisionFailed"
    assert predictor_ready["message"] == (
        f'Revision "{_rev(2)}" failed with message: Container failed with: model failed to load.'
    )
    assert _condition(failed, "PredictorConfigurationReady")["reason"] == "RevisionFailed"
    assert _condition(failed, "Ready")["status"] == "False"
    assert failed["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert kube.serving("my-model") == {_rev(1): 100}
    # restoring the previous spec makes revision 3, which starts and serves
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": None,
                    "model": {"storageUri": "hf://acme/qa-v1"},
                }
            }
        },
    )
    restored = kube.settle("my-model")
    assert _traffic(restored) == [(_rev(3), 100, True, None)]
    assert _predictor(restored)["latestRolledoutRevision"] == _rev(3)
    assert _predictor(restored)["previousRolledoutRevision"] == _rev(1)
    assert _condition(restored, "Ready")["status"] == "True"


def test_a_failing_first_revision_and_a_failing_model(kube_cluster: FakeKubernetes) -> None:
    kube_cluster.register_model("hf://acme/oom", fails="Container failed with: OOMKilled")
    obj = kube_cluster.add_inferenceservice(_manifest("oom", "hf://acme/oom"))
    assert _condition(obj, "PredictorReady")["reason"] == "RevisionMissing"
    assert _condition(obj, "PredictorReady")["message"] == (
        'Configuration "oom-predictor" does not have any ready Revision.'
    )
    assert _condition(obj, "PredictorConfigurationReady")["message"] == (
        'Revision "oom-predictor-00001" failed with message: Container failed with: OOMKilled.'
    )
    assert "traffic" not in _predictor(obj) and "url" not in obj["status"]
    assert _condition(obj, "IngressReady")["status"] == "Unknown"


def test_canary_promote_then_pin_to_zero_rolls_back(kube: FakeKubernetes) -> None:
    api = _api(kube)
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "model": {"storageUri": "hf://acme/qa-v2"},
                }
            }
        },
    )
    kube.settle("my-model")
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 50}}})
    at_50 = _get(api)
    assert _traffic(at_50) == [(_rev(2), 50, True, None), (_rev(1), 50, False, "prev")]
    assert _predictor(at_50)["latestCreatedRevision"] == _rev(2)  # traffic only: no revision
    # promote: remove the canary field
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    promoted = _get(api)
    assert _traffic(promoted) == [(_rev(2), 100, True, None)]
    assert _predictor(promoted)["latestRolledoutRevision"] == _rev(2)
    assert _predictor(promoted)["previousRolledoutRevision"] == _rev(1)
    # rollback: pin to 0 moves the bookkeeping back and routes 100 % to revision 1
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    pinned = _get(api)
    assert _traffic(pinned) == [(_rev(2), 0, True, None), (_rev(1), 100, False, "prev")]
    assert _predictor(pinned)["latestRolledoutRevision"] == _rev(1)
    assert kube.serving("my-model") == {_rev(1): 100}
    # then restore revision 1's spec: a new revision 3, still pinned at 0 until promoted
    _patch(api, {"spec": {"predictor": {"model": {"storageUri": "hf://acme/qa-v1"}}}})
    kube.settle("my-model")
    assert _traffic(_get(api)) == [(_rev(3), 0, True, None), (_rev(1), 100, False, "prev")]
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    final = _get(api)
    assert _traffic(final) == [(_rev(3), 100, True, None)]
    assert _predictor(final)["latestRolledoutRevision"] == _rev(3)


def test_pin_to_zero_during_a_canary_sends_everything_back(kube: FakeKubernetes) -> None:
    api = _api(kube)
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "model": {"storageUri": "hf://acme/qa-v2"},
                }
            }
        },
    )
    kube.settle("my-model")
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    pinned = _get(api)
    assert _traffic(pinned) == [(_rev(2), 0, True, None), (_rev(1), 100, False, "prev")]
    assert _predictor(pinned)["latestRolledoutRevision"] == _rev(1)


def test_tag_routing_and_tag_hosts(kube: FakeKubernetes) -> None:
    api = _api(kube)
    _patch(
        api,
        {
            "metadata": {"annotations": {"serving.kserve.io/enable-tag-routing": "true"}},
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 10,
                    "model": {"storageUri": "hf://acme/qa-v3"},
                }
            },
        },
    )
    obj = kube.settle("my-model")
    latest, prev = _predictor(obj)["traffic"]
    assert (
        latest["tag"] == "latest"
        and latest["url"] == "http://latest-my-model-predictor.default.example.com"
    )
    assert prev["tag"] == "prev" and prev["revisionName"] == _rev(1)
    for tag, revision in (("prev", _rev(1)), ("latest", _rev(2))):
        req = urllib.request.Request(
            f"{kube.host}/openai/v1/chat/completions",
            data=json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={
                "Host": f"{tag}-my-model-predictor.default.example.com",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.headers["x-kserve-revision"] == revision


def test_annotations_make_revisions_and_observed_generation_runs_ahead(
    kube: FakeKubernetes,
) -> None:
    api = _api(kube)
    _patch(api, {"metadata": {"annotations": {"genai-gate/state": "step-1"}}})
    obj = kube.settle("my-model")
    # the annotation went into the revision template: revision 2, but no ISVC spec change
    assert _predictor(obj)["latestReadyRevision"] == _rev(2)
    assert obj["metadata"]["generation"] == 1
    assert obj["status"]["observedGeneration"] == 2  # kserve/kserve#6081: the child's counter
    # kubectl's last-applied annotation is on the disallowed list: no new revision
    _patch(
        api,
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}},
    )
    assert _predictor(kube.settle("my-model"))["latestCreatedRevision"] == _rev(2)
    # a spec change the Knative Service does not see (canary while rolled out is traffic... but
    # here: with the fix of PR #6096 the field follows metadata.generation
    kube.observed_generation = "isvc"
    _patch(api, {"spec": {"predictor": {"minReplicas": 1}}})
    fixed = kube.settle("my-model")
    assert fixed["status"]["observedGeneration"] == fixed["metadata"]["generation"] == 2


def test_observed_generation_never_catches_up_when_the_child_does_not_change(
    kube_cluster: FakeKubernetes,
) -> None:
    api = _api(kube_cluster)
    kube_cluster.ready_polls = 5
    api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _manifest())
    # nothing rolled out yet: canaryTrafficPercent changes no Knative traffic, so no new child
    # generation, while the ISVC's generation moves on
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 30}}})
    obj = _get(api)
    assert obj["metadata"]["generation"] == 2 and obj["status"]["observedGeneration"] == 1


def test_raw_deployment_has_no_revisions_and_ignores_the_canary(
    kube_cluster: FakeKubernetes,
) -> None:
    api = _api(kube_cluster)
    manifest = _manifest("raw")
    manifest["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, manifest)
    kube_cluster.settle("raw")
    _patch(
        api,
        {"spec": {"predictor": {"canaryTrafficPercent": 10, "model": {"storageUri": "hf://x/v2"}}}},
        name="raw",
    )
    obj = kube_cluster.settle("raw")
    assert obj["status"]["deploymentMode"] == "Standard"
    comp = _predictor(obj)
    for key in (
        "traffic",
        "latestCreatedRevision",
        "latestReadyRevision",
        "latestRolledoutRevision",
    ):
        assert key not in comp
    assert obj["status"]["url"] == "http://raw-default.example.com"
    assert _condition(obj, "Ready")["status"] == "True"
    assert kube_cluster.revisions("raw") == []
    # the validating webhook refuses a change of mode
    with pytest.raises(ApiException) as err:
        _patch(
            api,
            {"metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Serverless"}}},
            name="raw",
        )
    assert err.value.status == 403
    assert _status_body(err.value)["message"] == (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: update rejected: deploymentMode cannot be changed from 'Standard' to "
        "'Knative'"  # the mutating webhook wrote the legacy name's new form first
    )
    kube_cluster.legacy_mode_names = True
    assert kube_cluster.settle("raw")["status"]["deploymentMode"] == "RawDeployment"


def test_the_kserve_webhooks_default_and_validate(kube_cluster: FakeKubernetes) -> None:
    api = _api(kube_cluster)
    legacy = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
        },
        "spec": {"predictor": {"sklearn": {"storageUri": "gs://models/iris"}}},
    }
    stored = _d(api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, legacy))
    # the framework shorthand became `model`, the mode its new name, and modelFormat an
    # annotation (which is on the disallowed list, so it makes no revision)
    assert stored["spec"]["predictor"] == {
        "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://models/iris"}
    }
    assert stored["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Knative",
        "modelFormat": "sklearn",
    }
    custom = _manifest("vllm")
    custom["spec"]["predictor"] = {"containers": [{"image": "vllm/vllm-openai:v0.11"}]}
    stored = _d(api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, custom))
    assert stored["spec"]["predictor"]["containers"] == [
        {
            "name": "kserve-container",
            "image": "vllm/vllm-openai:v0.11",
            "resources": {
                "requests": {"cpu": "1", "memory": "2Gi"},
                "limits": {"cpu": "1", "memory": "2Gi"},
            },
        }
    ]
    both = _manifest("both")
    both["spec"]["predictor"]["containers"] = [{"name": "kserve-container", "image": "x"}]
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, both)
    assert err.value.status == 403
    assert _status_body(err.value)["message"].startswith(
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: exactly one of ["
    )


def test_configmaps_keep_owner_references_and_are_collected(kube: FakeKubernetes) -> None:
    core = _core(kube)
    owner = _get(_api(kube))
    name = "genai-gate-rollout-my-model"

    def config_map(cm_name: str, uid: str, state: str) -> client.V1ConfigMap:
        ref = client.V1OwnerReference(
            api_version=API_VERSION,
            kind="InferenceService",
            name="my-model",
            uid=uid,
            controller=False,
            block_owner_deletion=False,
        )
        return client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=cm_name, owner_references=[ref]),
            data={"state": state},
        )

    created = core.create_namespaced_config_map(
        NS, config_map(name, owner["metadata"]["uid"], "10")
    )
    assert created.metadata is not None and created.metadata.owner_references is not None
    assert created.metadata.owner_references[0].uid == owner["metadata"]["uid"]
    first_rv = str(created.metadata.resource_version)
    created.data = {"state": "50"}
    updated = core.replace_namespaced_config_map(name, NS, created)
    assert updated.metadata is not None
    assert int(str(updated.metadata.resource_version)) > int(first_rv)
    created.data = {"state": "stale"}
    with pytest.raises(ApiException) as err:  # created's resourceVersion is stale now
        core.replace_namespaced_config_map(name, NS, created)
    assert err.value.status == 409
    assert _status_body(err.value)["message"].startswith(
        f'Operation cannot be fulfilled on configmaps "{name}"'
    )
    patched = core.patch_namespaced_config_map(name, NS, {"data": {"note": "x"}})
    assert patched.data == {"state": "50", "note": "x"}
    # an owner with another uid does not exist for the garbage collector
    core.create_namespaced_config_map(NS, config_map("orphan", "not-the-uid", "1"))
    assert kube.configmap("orphan") is None
    _api(kube).delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model")
    assert kube.configmap(name) is None
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map(name, NS)
    assert err.value.status == 404
    assert _status_body(err.value)["message"] == f'configmaps "{name}" not found'


def test_create_is_201_then_409_already_exists_and_needs_a_name(
    kube_cluster: FakeKubernetes,
) -> None:
    api = _api(kube_cluster)
    created = _d(api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _manifest("new")))
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    assert "status" not in created  # the controller writes it after the answer
    assert [r.status for r in kube_cluster.requests if r.method == "POST"] == [201]
    again = _manifest("new", uri="hf://acme/qa-v2")
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, again)
    body = _status_body(err.value)
    assert (err.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'inferenceservices.serving.kserve.io "new" already exists'
    assert body["details"] == {"name": "new", "group": GROUP, "kind": PLURAL}
    assert _get(api, "new")["spec"]["predictor"]["model"]["storageUri"] == "hf://acme/qa-v1"
    # admission runs before storage: a refused predictor is a 403 even when the name is taken
    both = _manifest("new", containers=[{"name": "kserve-container", "image": "x"}])
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, both)
    assert err.value.status == 403 and "admission webhook" in _status_body(err.value)["message"]
    nameless = _manifest("x")
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, nameless)
    body = _status_body(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'InferenceService.serving.kserve.io "" is invalid: metadata.name: Required value: '
        "name or generateName is required"
    )


def test_create_needs_the_create_verb_and_takes_no_resource_name(
    kube_cluster: FakeKubernetes,
) -> None:
    user = "github:repo:acme/shop:ref:refs/heads/main"
    token = kube_cluster.token_for(user)
    api = _api(kube_cluster, token)
    kube_cluster.grant(user, Rule(("get", "patch"), (PLURAL,)))
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _manifest("new"))
    body = _status_body(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    # a create names no object: the collection is forbidden
    assert body["message"] == (
        f'inferenceservices.serving.kserve.io is forbidden: User "{user}" cannot create '
        'resource "inferenceservices" in API group "serving.kserve.io" in the namespace "default"'
    )
    # RBAC's resourceNames cannot restrict create (the name is not known when authorizing)
    kube_cluster.grant(user, Rule(("create",), (PLURAL,), resource_names=("new",)))
    with pytest.raises(ApiException) as err:
        api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _manifest("new"))
    assert err.value.status == 403
    kube_cluster.grant(user, Rule(("create",), (PLURAL,)))
    created = _d(api.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, _manifest("new")))
    assert created["metadata"]["name"] == "new"
    assert kube_cluster.settle("new")["status"]["components"]["predictor"]["traffic"]


def test_delete_honours_a_uid_precondition(kube: FakeKubernetes) -> None:
    api = _api(kube)
    uid = _get(api)["metadata"]["uid"]
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="someone-elses"))
    with pytest.raises(ApiException) as err:
        api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", body=stale)
    body = _status_body(err.value)
    assert (err.value.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "my-model": '
        "StorageError: invalid object, Code: 4, Key: /registry/serving.kserve.io/"
        "inferenceservices/default/my-model, ResourceVersion: 0, AdditionalErrorMsg: "
        f"Precondition failed: UID in precondition: someone-elses, UID in object meta: {uid}"
    )
    assert _get(api)["metadata"]["uid"] == uid
    mine = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
    api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "my-model", body=mine)
    with pytest.raises(ApiException) as err:
        _get(api)
    assert err.value.status == 404


def test_github_oidc_tokens_audience_and_rbac(
    kube: FakeKubernetes, github_oidc: FakeGitHubOIDC
) -> None:
    user = kube.oidc_username()
    assert user == "github:repo:acme/shop:ref:refs/heads/main"
    token = github_oidc.mint(kube.audience)
    api = _api(kube, token)
    # authenticated, but no RBAC yet: 403 with the API server's message
    with pytest.raises(ApiException) as err:
        _get(api)
    body = _status_body(err.value)
    assert err.value.status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        f'inferenceservices.serving.kserve.io "my-model" is forbidden: User "{user}" cannot get '
        'resource "inferenceservices" in API group "serving.kserve.io" in the namespace "default"'
    )
    kube.grant(user, Rule(("get", "list"), (PLURAL,), namespaces=(NS,)))
    assert _get(api)["metadata"]["name"] == "my-model"
    with pytest.raises(ApiException) as err:
        _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 10}}})
    assert err.value.status == 403
    assert 'cannot patch resource "inferenceservices"' in _status_body(err.value)["message"]
    with pytest.raises(ApiException) as err:
        _core(kube, token).read_namespaced_config_map("x", NS)
    assert 'configmaps "x" is forbidden' in _status_body(err.value)["message"]
    assert 'in API group ""' in _status_body(err.value)["message"]
    # SelfSubjectAccessReview answers from the same rules
    authz = client.AuthorizationV1Api(_api(kube, token).api_client)

    def can(verb: str, resource: str, group: str = GROUP) -> bool:
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=NS, verb=verb, group=group, resource=resource
                )
            )
        )
        answer = authz.create_self_subject_access_review(review)
        assert answer.status is not None
        return bool(answer.status.allowed)

    assert can("get", PLURAL) and not can("patch", PLURAL) and not can("create", "configmaps", "")
    # wrong audience, expired, or a bad signature: 401 Unauthorized, nothing more said
    github_oidc.lifetime = -60
    expired = github_oidc.mint(kube.audience)
    github_oidc.lifetime = 300
    for bad in (github_oidc.mint("https://other.example"), expired, "not-a-token"):
        with pytest.raises(ApiException) as err:
            _get(_api(kube, bad))
        assert err.value.status == 401
        assert _status_body(err.value)["message"] == "Unauthorized"
    github_oidc.bad_signature = True
    with pytest.raises(ApiException) as err:
        _get(_api(kube, github_oidc.mint(kube.audience)))
    assert err.value.status == 401


def test_the_token_endpoint_flow_and_kubeconfig(
    kube: FakeKubernetes, kube_oidc_env: dict[str, str], tmp_path: Path
) -> None:
    # what a job does: ask the ACTIONS_ID_TOKEN_REQUEST_URL for the cluster's audience
    env = kube_oidc_env
    url = f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={env['KUBERNETES_AUDIENCE']}"
    auth = {"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}
    req = urllib.request.Request(url, headers=auth)
    with urllib.request.urlopen(req, timeout=5) as resp:
        token = json.load(resp)["value"]
    kube.admins.add(kube.oidc_username())
    assert kube_oidc_env["KUBERNETES_SERVER"] == kube.host
    assert _get(_api(kube, token))["metadata"]["name"] == "my-model"
    # and the kubeconfig route, as `config.load_kube_config` reads it
    path = kube.kubeconfig(tmp_path / "kubeconfig")
    api_client = config.new_client_from_config(config_file=str(path))
    assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
    items = _d(
        client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL
        )
    )
    assert [i["metadata"]["name"] for i in items["items"]] == ["my-model"]


def test_server_side_apply_and_json_patch(kube_cluster: FakeKubernetes) -> None:
    api = _api(kube_cluster)
    applied = _manifest(canaryTrafficPercent=10)
    created = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "my-model",
        applied,
        field_manager="genai-gate",
        _content_type="application/apply-patch+yaml",
    )
    # an apply that creates answers 201, which the client's patch method does not decode
    assert created is None
    created = _get(api)
    assert created["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert any(
        m["manager"] == "genai-gate" and m["operation"] == "Apply"
        for m in created["metadata"]["managedFields"]
    )
    kube_cluster.settle("my-model")
    # another manager takes the field with a merge patch; re-applying a different value conflicts
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 20}}}, field_manager="kubectl-edit")
    applied["spec"]["predictor"]["canaryTrafficPercent"] = 30
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            "my-model",
            applied,
            field_manager="genai-gate",
            _content_type="application/apply-patch+yaml",
        )
    body = _status_body(err.value)
    assert err.value.status == 409
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit": '
        ".spec.predictor.canaryTrafficPercent"
    )
    assert body["details"]["causes"][0]["reason"] == "FieldManagerConflict"
    forced = _patch(api, applied, field_manager="genai-gate", force=True, _content_type=APPLY)
    assert forced["spec"]["predictor"]["canaryTrafficPercent"] == 30
    # omitting a field this manager applied removes it
    del applied["spec"]["predictor"]["canaryTrafficPercent"]
    promoted = _patch(api, applied, field_manager="genai-gate", _content_type=APPLY)
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    with pytest.raises(ApiException) as err:  # no fieldManager
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            "my-model",
            applied,
            _content_type="application/apply-patch+yaml",
        )
    assert err.value.status == 422
    # JSON patch with a test op as a precondition
    rv = _get(api)["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 25},
    ]
    patched = _patch(api, ops, _content_type="application/json-patch+json")
    assert patched["spec"]["predictor"]["canaryTrafficPercent"] == 25
    with pytest.raises(ApiException) as err:
        _patch(api, ops, _content_type="application/json-patch+json")
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        _patch(api, {"spec": {}}, _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415
    # dry run: validated, not stored
    dry = _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": 99}}}, dry_run="All")
    assert dry["spec"]["predictor"]["canaryTrafficPercent"] == 99
    assert _get(api)["spec"]["predictor"]["canaryTrafficPercent"] == 25


def _chat(url: str, text: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url,
        data=json.dumps(
            {"model": "my-model", "messages": [{"role": "user", "content": text}]}
        ).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_the_logger_writes_cloudevents_paired_by_id(kube: FakeKubernetes) -> None:
    api = _api(kube)
    kube.register_model("hf://acme/qa-v1", lambda messages: "old answer")
    kube.register_model("hf://acme/qa-v2", lambda messages: "new answer", error_rate=0.5)
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 50,
                    "logger": {"mode": "all", "url": kube.sink_url},
                    "model": {"storageUri": "hf://acme/qa-v2"},
                }
            }
        },
    )
    kube.settle("my-model")
    # the logger is in revision 2's template only: revision 1 logs nothing
    statuses: Counter[int] = Counter()
    for i in range(40):
        status, _ = _chat(kube.inference_url("my-model") + "/openai/v1/chat/completions", f"q{i}")
        statuses[status] += 1
    events = kube.events("my-model")
    assert statuses[500] > 0 and statuses[200] > 0
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for event in events:
        assert {k for k in event if k not in ("data", "data_base64")} == set(EVENT_COLUMNS) - {
            "data"
        }
        assert event["inferenceservicename"] == "my-model" and event["component"] == "predictor"
        assert event["endpoint"] == "" and event["specversion"] == "1.0"
        assert revision_of(event["source"]) == _rev(2)
        by_id.setdefault(event["id"], {})[event["type"]] = event
    requests = [e for e in by_id.values() if REQUEST_EVENT in e]
    answered = [e for e in requests if RESPONSE_EVENT in e]
    assert len(answered) < len(requests)  # a 500 logs the request only
    assert all(
        e[RESPONSE_EVENT]["data"]["choices"][0]["message"]["content"] == "new answer"
        for e in answered
    )
    assert len(requests) == kube.served[_rev(2)]
    # promoted, every call hits revision 2: by the Host header of status.url, a Ce-Id header
    # names the pair
    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    kube.register_model("hf://acme/qa-v2", lambda messages: "new answer")
    host = {"Host": "my-model.default.example.com", "Ce-Id": "fixed-id-1"}
    assert _chat(f"{kube.host}/v1/chat/completions", "by host", host)[0] == 200
    pair = [e for e in kube.events("my-model") if e["id"] == "fixed-id-1"]
    assert [e["type"] for e in pair] == [REQUEST_EVENT, RESPONSE_EVENT]
    assert pair[0]["data"]["messages"][0]["content"] == "by host"
    # request-only mode
    _patch(api, {"spec": {"predictor": {"logger": {"mode": "request"}}}})
    kube.settle("my-model")
    before = len(kube.events("my-model"))
    _chat(kube.inference_url("my-model") + "/openai/v1/chat/completions", "only the request")
    assert [e["type"] for e in kube.events("my-model")[before:]] == [REQUEST_EVENT]


def test_the_sink_files_binary_cloudevents(kube: FakeKubernetes) -> None:
    headers = {
        "Ce-Id": "abc",
        "Ce-Type": REQUEST_EVENT,
        "Ce-Source": f"{_rev(1)}-deployment-68978dd4d4-f6dcg",
        "Ce-Specversion": "1.0",
        "Ce-Time": "2026-09-01T12:00:00.123456Z",
        "Ce-Inferenceservicename": "my-model",
        "Ce-Namespace": NS,
        "Ce-Component": "predictor",
        "Ce-Endpoint": "",
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }
    req = urllib.request.Request(kube.sink_url, data=b'{"instances": [1]}', headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 202
    (event,) = kube.events("my-model")
    assert event["id"] == "abc" and event["data"] == {"instances": [1]}
    assert event["datacontenttype"] == "application/json"
    assert revision_of(event["source"]) == _rev(1)


def test_bulk_events_as_json_lines_and_parquet(kube: FakeKubernetes) -> None:
    api = _api(kube)
    kube.register_model("hf://acme/qa-v2", lambda m: "canary", latency=0.25, error_rate=0.1)
    _patch(
        api,
        {
            "spec": {
                "predictor": {
                    "canaryTrafficPercent": 20,
                    "model": {"storageUri": "hf://acme/qa-v2"},
                }
            }
        },
    )
    kube.settle("my-model")
    folder = kube.emit_traffic("my-model", 5000, part_rows=2000)
    kube.emit_traffic("my-model", 5000, parquet=True)
    jsonl = sorted(p.name for p in folder.glob("*.jsonl"))
    assert jsonl == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    con = duckdb.connect()
    columns = ", ".join(f"'{c}': '{'JSON' if c == 'data' else 'VARCHAR'}'" for c in EVENT_COLUMNS)
    rows = con.sql(
        f"""
        WITH e AS (
          SELECT * FROM read_json(
            '{folder}/*.jsonl', format='newline_delimited', columns={{{columns}}})
        ), pairs AS (
          SELECT q.id, regexp_extract(q.source, '^(.+-[0-9]{{5}})-deployment-', 1) AS revision,
                 r.id IS NOT NULL AS answered,
                 epoch(r.time::TIMESTAMP) - epoch(q.time::TIMESTAMP) AS seconds,
                 r.data->'choices'->0->'message'->>'content' AS answer
          FROM e q LEFT JOIN e r ON r.id = q.id AND r.type = '{RESPONSE_EVENT}'
          WHERE q.type = '{REQUEST_EVENT}'
        )
        SELECT revision, count(*), avg(answered::INT), max(seconds), min(answer)
        FROM pairs GROUP BY revision ORDER BY revision
        """
    ).fetchall()
    (old, new) = rows
    assert old[0] == _rev(1) and new[0] == _rev(2)
    assert old[1] + new[1] == 5000 and 800 < new[1] < 1200  # 20 % canary
    assert old[2] == 1.0 and 0.85 < new[2] < 0.95  # 10 % of canary calls failed
    assert new[3] == pytest.approx(0.25, abs=1e-3) and new[4] == "canary"
    assert old[4] == "answer from hf://acme/qa-v1"
    parquet = con.sql(
        f"SELECT count(*) FILTER (type = '{REQUEST_EVENT}'), list_distinct(list(namespace)) "
        f"FROM read_parquet('{folder}/*.parquet')"
    ).fetchall()
    assert parquet == [(5000, [NS])]
    # the second batch numbers its ids on from the first's: no id names two calls
    shared = con.sql(
        f"SELECT count(*) FROM (SELECT DISTINCT id FROM read_json('{folder}/*.jsonl', "
        f"format='newline_delimited', columns={{{columns}}}) WHERE type = '{REQUEST_EVENT}') "
        f"JOIN (SELECT DISTINCT id FROM read_parquet('{folder}/*.parquet') "
        f"WHERE type = '{REQUEST_EVENT}') USING (id)"
    ).fetchall()
    assert shared == [(0,)]


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("canary"), st.integers(0, 100)),
        st.tuples(st.just("promote"), st.just(0)),
        st.tuples(st.just("model"), st.integers(1, 4)),
        st.tuples(st.just("fail"), st.just(0)),
        st.tuples(st.just("settle"), st.just(0)),
        st.tuples(st.just("read"), st.just(0)),
    ),
    max_size=12,
)


def test_traffic_invariants_hold_for_any_rollout() -> None:
    """Whatever is patched, the routed traffic adds up to 100 % over ready revisions, and the
    rolled-out bookkeeping names ready revisions only (one emulator, an ISVC per example)."""
    with running(ready_polls=1) as kube:
        api = _api(kube)
        names = itertools.count()

        @settings(max_examples=40, deadline=None)
        @given(ops=_OPS)
        def check(ops: list[tuple[str, int]]) -> None:
            name = f"m{next(names)}"
            kube.add_inferenceservice(_manifest(name))
            for op, value in ops:
                if op == "canary":
                    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": value}}}, name)
                elif op == "promote":
                    _patch(api, {"spec": {"predictor": {"canaryTrafficPercent": None}}}, name)
                elif op == "model":
                    model = {"model": {"storageUri": f"hf://m/{value}"}}
                    _patch(api, {"spec": {"predictor": model}}, name)
                elif op == "fail":
                    kube.fail_next_revisions = 1
                elif op == "settle":
                    kube.settle(name)
                obj = _get(api, name)
                ready = {r.name for r in kube.revisions(name) if r.state == "Ready"}
                comp = _predictor(obj)
                traffic = comp.get("traffic", [])
                assert sum(t["percent"] for t in traffic) == 100
                assert {t["revisionName"] for t in traffic} <= ready
                assert comp["latestReadyRevision"] in ready
                assert comp.get("latestRolledoutRevision", comp["latestReadyRevision"]) in ready
                if "canaryTrafficPercent" not in obj["spec"]["predictor"]:
                    assert [(t["percent"], t["latestRevision"]) for t in traffic] == [(100, True)]
                assert sum(kube.serving(name).values()) == 100
            kube.fail_next_revisions = 0

        check()

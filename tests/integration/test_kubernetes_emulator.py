"""The vendored KServe CRD and the Kubernetes API emulator, proven with the real client.

No product code runs here: these tests pin tests/fakes/kserve/schema.py and
tests/fakes/kubernetes.py to tests/fakes/kserve/FACTS.md, so tests of the KServe backend can
trust them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kserve.schema import (
    KSERVE_RELEASE,
    apply_defaults,
    prune,
    validate_inferenceservice,
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

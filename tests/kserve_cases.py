"""InferenceService manifests as KServe writes them (FACTS.md sections 2 and 3), for the
KServe backend's unit tests: a service, its status at each moment of a canary, and the
logged events a sink writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PREDICTOR = {
    "minReplicas": 1,
    "model": {
        "modelFormat": {"name": "huggingface"},
        "storageUri": "s3://models/bot/v1",
        "env": [{"name": "HF_TOKEN", "value": "hf_secret_value"}],
    },
}
LOGGER = {"mode": "all", "url": "http://sink.models.svc.cluster.local"}


def rev(n: int, name: str = "bot") -> str:
    return f"{name}-predictor-{n:05d}"


def manifest(
    *,
    predictor: dict[str, Any] | None = None,
    canary: int | None = None,
    generation: int = 1,
    resource_version: str = "100",
    created: int | None = 1,
    ready: int | None = 1,
    rolled_out: int | None = 1,
    previous: int | None = None,
    traffic: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    mode: str | None = "Knative",
    observed: int | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An InferenceService `bot` in namespace `models`, with the status KServe would write."""
    spec_predictor = copy.deepcopy(predictor if predictor is not None else PREDICTOR)
    if canary is not None:
        spec_predictor["canaryTrafficPercent"] = canary
    component: dict[str, Any] = {}
    for key, n in (
        ("latestCreatedRevision", created),
        ("latestReadyRevision", ready),
        ("latestRolledoutRevision", rolled_out),
        ("previousRolledoutRevision", previous),
    ):
        if n is not None:
            component[key] = rev(n)
    if traffic is None and ready is not None:
        traffic = [{"revisionName": rev(ready), "latestRevision": True, "percent": 100}]
    if traffic is not None:
        component["traffic"] = traffic
    status: dict[str, Any] = {
        "observedGeneration": observed if observed is not None else generation,
        "components": {"predictor": component},
        "conditions": conditions
        if conditions is not None
        else [
            {"type": "PredictorReady", "status": "True"},
            {"type": "IngressReady", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "url": "http://bot.models.example.com",
    }
    if mode is not None:
        status["deploymentMode"] = mode
    meta: dict[str, Any] = {
        "name": "bot",
        "namespace": "models",
        "uid": "0f1e2d3c-0000-4000-8000-000000000001",
        "generation": generation,
        "resourceVersion": resource_version,
    }
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": spec_predictor},
        "status": status,
    }


def split(latest: int, latest_pct: int, prev: int) -> list[dict[str, Any]]:
    """The traffic of a canary: the latest revision's share, and `prev` for the rest."""
    out = [{"revisionName": rev(latest), "latestRevision": True, "percent": latest_pct}]
    if latest_pct < 100:
        out.append(
            {
                "revisionName": rev(prev),
                "latestRevision": False,
                "percent": 100 - latest_pct,
                "tag": "prev",
            }
        )
    return out


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386, written out again here so the tests do not check the code with itself."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def sent(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The object the API server would validate after `patch`: metadata and spec only."""
    body = {k: v for k, v in doc.items() if k != "status"}
    return dict(merge(body, patch))


REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def event(
    kind: str,
    id_: str,
    revision: str,
    time: str,
    data: Any,
    *,
    service: str = "bot",
    namespace: str = "models",
) -> dict[str, Any]:
    """One CloudEvent as the sink writes it (FACTS.md section 4)."""
    return {
        "specversion": "1.0",
        "id": id_,
        "type": REQUEST if kind == "request" else RESPONSE,
        "source": f"{revision}-deployment-5c867f557c-nlsrf",
        "time": time,
        "datacontenttype": "application/json",
        "recordedtime": time,
        "inferenceservicename": service,
        "namespace": namespace,
        "component": "predictor",
        "endpoint": "",
        "metadata": "{}",
        "data": data,
    }


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path

"""The rollout state of one InferenceService, kept in a ConfigMap beside it: pure, no I/O.

Why not the InferenceService's own annotations or labels (as Databricks keeps its state in
endpoint tags): KServe copies the service's annotations and labels into the Knative
revision template (`ksvc_reconciler.go`, `createKnativeService`), so every state write
would create a new revision. After a promotion the newest revision would then be a copy of
the challenger, KServe's `previousRolledoutRevision` would point at the promoted model
instead of the one before it, and a later rollback would land on that copy instead of the
true previous model (unless the cluster's `serviceAnnotationDisallowedList` excludes our
keys, which we cannot assume). A ConfigMap `genai-gate-rollout-<name>` creates nothing,
and its ownerReference to the InferenceService lets Kubernetes delete it with the service.

Besides the rollout keys every backend keeps (`genai-gate.champion`, `.challenger`, `.step`,
`.started-at`, `.step-at`, naming revisions), it holds the champion's predictor spec: a
rollback restores it, since the InferenceService itself only holds the latest spec. The other
`genai-gate.*` keys (`previous-champion`, written by a promotion; `retrained-at`, the
monitor's cool-down) are kept across rollouts, as endpoint tags are on Databricks, and so is
the retired champion's predictor (`previous-champion-spec`): the monitor's rollback serves it
again once the revision that served it carries no traffic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genai_gate.backends.kserve.isvc import API_VERSION, KIND, Service
from genai_gate.rollout.plan import ROLLOUT_TAGS, TAG_CHAMPION

CHAMPION_SPEC = "genai-gate.champion-spec"
PREVIOUS_SPEC = "genai-gate.previous-champion-spec"
_SPECS = (CHAMPION_SPEC, PREVIOUS_SPEC)
MANAGED_BY = ("app.kubernetes.io/managed-by", "genai-gate")


def configmap_name(service: str) -> str:
    return f"genai-gate-rollout-{service}"


def _spec(text: str | None) -> Mapping[str, Any] | None:
    try:
        loaded = json.loads(text or "null")
    except json.JSONDecodeError:
        return None  # edited by hand: a rollback can still pin, not restore
    return loaded if isinstance(loaded, dict) else None


def is_kept(key: str) -> bool:
    """A `genai-gate.*` key that outlives rollouts (not a rollout key, not a spec)."""
    return key.startswith("genai-gate.") and key not in ROLLOUT_TAGS and key not in _SPECS


@dataclass(frozen=True)
class RolloutState:
    """The ConfigMap's contents (`resource_version` "" when it does not exist yet). `tags`
    are the rollout keys, rewritten by every rollout; `kept` the keys that outlive them."""

    tags: Mapping[str, str] = field(default_factory=dict)
    champion_spec: Mapping[str, Any] | None = None
    resource_version: str = ""
    kept: Mapping[str, str] = field(default_factory=dict)
    previous_spec: Mapping[str, Any] | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, str] | None, resource_version: str) -> RolloutState:
        data = data or {}
        tags = {k: str(v) for k, v in data.items() if k in ROLLOUT_TAGS and v}
        kept = {k: str(v) for k, v in data.items() if is_kept(k) and v}
        return cls(
            tags,
            _spec(data.get(CHAMPION_SPEC)),
            resource_version,
            kept,
            _spec(data.get(PREVIOUS_SPEC)),
        )

    def data(self) -> dict[str, str]:
        out = {k: v for k, v in self.kept.items() if is_kept(k) and v}
        out.update({k: v for k, v in self.tags.items() if k in ROLLOUT_TAGS and v})
        if self.champion_spec is not None:
            out[CHAMPION_SPEC] = json.dumps(self.champion_spec, sort_keys=True)
        if self.previous_spec is not None:
            out[PREVIOUS_SPEC] = json.dumps(self.previous_spec, sort_keys=True)
        return out

    def all_tags(self) -> dict[str, str]:
        """Every `genai-gate.*` key but the specs: what `ServingState.tags` shows."""
        return {**self.kept, **self.tags}

    def carried_over(self, earlier: RolloutState) -> RolloutState:
        """This state with the kept keys and the previous spec of `earlier` where it sets
        none (a rollout rewrites the rollout keys only)."""
        return dataclasses.replace(
            self,
            kept={**earlier.kept, **self.kept},
            previous_spec=self.previous_spec
            if self.previous_spec is not None
            else earlier.previous_spec,
        )

    def spec_of(self, revision: str) -> Mapping[str, Any] | None:
        return self.champion_spec if self.tags.get(TAG_CHAMPION) == revision else None


def configmap_manifest(svc: Service, state: RolloutState) -> dict[str, Any]:
    """The ConfigMap, owned by the InferenceService (deleted with it). blockOwnerDeletion
    is left unset: setting it needs `update` on the service's finalizers."""
    metadata: dict[str, Any] = {
        "name": configmap_name(svc.name),
        "namespace": svc.namespace,
        "labels": {MANAGED_BY[0]: MANAGED_BY[1]},
        "ownerReferences": [
            {"apiVersion": API_VERSION, "kind": KIND, "name": svc.name, "uid": svc.uid}
        ],
    }
    if state.resource_version:
        metadata["resourceVersion"] = state.resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": state.data()}

"""An InferenceService's canary as data, and the plan that moves it: pure, no I/O.

KServe's serverless canary has two revisions at most: the latest one (the current
`spec.predictor`) takes `canaryTrafficPercent`, and the last revision rolled out at 100%
(`latestRolledoutRevision`) takes the rest (`ksvc_reconciler.go`, `createKnativeService`).
So the rollout core's entities are revisions, named as Knative names them, and:

- deploy writes the challenger's predictor with `canaryTrafficPercent` = the step (a new
  revision; the champion keeps the rest);
- advance moves `canaryTrafficPercent` only (no new revision);
- promote removes `canaryTrafficPercent` (the latest revision takes 100%);
- rollback pins 100% to the previous revision (`canaryTrafficPercent: 0`), restores its
  predictor (kept in the rollout state, state.py: a new revision of the old model, still at
  0% until it is ready), then removes the pin.

A plan is a list of writes, each a whole desired predictor and/or `canaryTrafficPercent`;
the JSON merge patch of each is computed against a fresh read when it is sent (cluster.py),
so a conflict (409) re-reads and re-plans the patch instead of resending a stale one.

When the InferenceService does not exist yet, the plan creates it (as the Databricks backend
creates a missing endpoint): the whole manifest, in serverless mode, serving the challenger's
predictor at 100% with the logger on. There is no canary: nothing serves yet to compare with.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from genai_gate.backends.kserve.isvc import API_VERSION, KIND, MODE_ANNOTATION, Service, starting
from genai_gate.backends.kserve.state import RolloutState
from genai_gate.rollout.plan import (
    Change,
    Entity,
    Rollout,
    challenger_of,
    champion_of,
    map_changes,
)

# the challenger before it is applied: Knative names the revision when it creates it
NEW_REVISION = "(new revision)"
KEEP: Final = "keep"
Canary = int | None | Literal["keep"]  # None removes canaryTrafficPercent
# the framework predictors of v1beta1 (the older form of `model: {modelFormat: ...}`)
FRAMEWORKS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
)
# not part of what a revision serves: the capture, and the split genai-gate moves itself
_NOT_SERVED = ("logger", "canaryTrafficPercent")


# ---------------------------------------------------------------- JSON merge patch (RFC 7386)


def merge_patch(target: Any, patch: Any) -> Any:
    """`patch` applied to `target` as the API server applies a JSON merge patch."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def merge_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `before` into `after` (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for key in before:
        if key not in after:
            patch[key] = None
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            inner = merge_diff(old, value)
            if inner:
                patch[key] = inner
        elif key not in before or old != value:
            patch[key] = value
    return patch


# ---------------------------------------------------------------- predictors as entities


def serving_block(predictor: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """Where the predictor names what it serves: `model`, a framework key, or the first of
    its `containers` (a custom predictor)."""
    for key in ("model", *FRAMEWORKS):
        block = predictor.get(key)
        if isinstance(block, Mapping):
            return key, block
    containers = predictor.get("containers")
    if isinstance(containers, list) and containers and isinstance(containers[0], Mapping):
        return "containers", containers[0]
    return None, {}


def spec_digest(predictor: Mapping[str, Any]) -> str:
    served = {k: v for k, v in predictor.items() if k not in _NOT_SERVED}
    return hashlib.sha256(json.dumps(served, sort_keys=True, default=str).encode()).hexdigest()[:8]


def predictor_entity(name: str, predictor: Mapping[str, Any] | None) -> Entity:
    """A revision as the rollout core's Entity: what it serves is the predictor spec (its
    digest is the version), named by its storage URI or image."""
    if predictor is None:
        return Entity(name, {}, detail=("predictor not recorded",))
    key, block = serving_block(predictor)
    fmt = block.get("modelFormat")
    detail = []
    if isinstance(fmt, Mapping) and fmt.get("name"):
        detail.append(str(fmt["name"]))
    elif key in FRAMEWORKS:
        detail.append(str(key))
    if block.get("runtime"):
        detail.append(str(block["runtime"]))
    uri = block.get("storageUri") or predictor.get("storageUri")
    image = block.get("image")
    if uri and image:
        detail.append(str(image))
    model = str(uri or image or key or "predictor")
    return Entity(
        name, dict(predictor), model=model, version=spec_digest(predictor), detail=tuple(detail)
    )


def desired_predictor(
    current: Mapping[str, Any],
    fragment: Mapping[str, Any],
    storage_uri: str | None,
    image: str | None,
    logger_url: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """What the config says the predictor should serve: the fragment merged onto the
    current predictor, then the shortcuts, then the logger. Returns the problems too."""
    problems: list[str] = []
    merged: dict[str, Any] = merge_patch(current, dict(fragment))
    key, _ = serving_block(merged)
    if storage_uri is not None:
        if key is None or key == "containers":
            problems.append(
                "storage-uri: the predictor has no model: (or framework) block to put it in; "
                "for a custom container, set its args or env through predictor:"
            )
        else:
            merged = merge_patch(merged, {key: {"storageUri": storage_uri}})
    if image is not None:
        if key == "containers":
            containers = list(merged["containers"])
            containers[0] = {**containers[0], "image": image}
            merged = {**merged, "containers": containers}
        elif key is not None:
            merged = merge_patch(merged, {key: {"image": image}})
        else:
            problems.append("predictor-image: the predictor has no model: or containers: block")
    if logger_url is not None:
        logger = merged.get("logger")
        merged["logger"] = {
            **(logger if isinstance(logger, Mapping) else {}),
            "mode": "all",
            "url": logger_url,
        }
    return merged, problems


def logger_url(predictor: Mapping[str, Any]) -> str | None:
    logger = predictor.get("logger")
    if not isinstance(logger, Mapping) or logger.get("mode") not in (None, "all"):
        # `request` or `response` alone cannot pair an exchange
        return None
    url = logger.get("url") or logger.get("storage")
    return str(url) if url else "the cluster's default logger sink"


# ---------------------------------------------------------------- what serves now


@dataclass(frozen=True)
class ServiceState:
    """What the InferenceService serves now, as `backends.base.ServingState`."""

    service: Service
    rollout_state: RolloutState
    entities: tuple[Entity, ...]
    routes: Mapping[str, int]

    @classmethod
    def of(cls, service: Service, rollout_state: RolloutState) -> ServiceState:
        routes = service.routes()
        entities = []
        for revision in routes:
            if revision == service.latest_created:
                spec: Mapping[str, Any] | None = service.predictor
            else:
                spec = rollout_state.spec_of(revision)
            entities.append(predictor_entity(revision, spec))
        return cls(service, rollout_state, tuple(entities), routes)

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def config_version(self) -> int | None:
        return self.service.generation

    @property
    def updating(self) -> bool:
        return starting(self.service)

    @property
    def pending_version(self) -> int | None:
        return self.service.generation if self.updating else None

    @property
    def url(self) -> str | None:
        return self.service.url

    @property
    def tags(self) -> Mapping[str, str]:
        return self.rollout_state.all_tags()

    @property
    def capture(self) -> str | None:
        return logger_url(self.service.predictor)

    @property
    def latest(self) -> str | None:
        """The revision of the current spec, once the controller made it."""
        return self.service.latest_created

    def champion(self) -> Entity | None:
        return champion_of(self.entities, self.routes, self.tags)

    def challenger(self) -> Entity | None:
        return challenger_of(self.entities, self.routes, self.tags)


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Write:
    """One change to the InferenceService, waited for before the next one."""

    purpose: str
    predictor: Mapping[str, Any] | None  # the whole desired predictor; None leaves it
    canary: Canary = KEEP
    # a forward change whose revision never gets ready is undone (the deploy's)
    restore_on_failure: bool = False
    # what is still true when this write fails (said with the error)
    if_failed: str = ""

    def patch(self, svc: Service) -> dict[str, Any] | None:
        """The merge patch against `svc` (its resourceVersion included), or None when it
        already says this."""
        body: dict[str, Any] = {}
        if self.predictor is not None:
            body = merge_diff(_served(svc.predictor), _served(self.predictor))
        if self.canary != KEEP and self.canary != svc.canary_percent:
            body["canaryTrafficPercent"] = self.canary
        if not body:
            return None
        return {
            "metadata": {"resourceVersion": svc.resource_version},
            "spec": {"predictor": body},
        }

    def creates_revision(self, svc: Service) -> bool:
        return self.predictor is not None and bool(
            merge_diff(_served(svc.predictor), _served(self.predictor))
        )

    def latest_percent(self, svc: Service) -> int | None:
        """The share the latest revision should carry once this write is done."""
        canary = svc.canary_percent if self.canary == KEEP else self.canary
        if canary is None or svc.latest_rolled_out is None:
            # without a rolled-out revision to split with, KServe gives latest 100%
            return 100
        return int(canary)


def _served(predictor: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}


Kind = Literal["deploy", "advance", "promote", "rollback", "noop"]


@dataclass(frozen=True)
class Plan:
    endpoint: str
    namespace: str
    action: Literal["create", "update", "noop"]
    kind: Kind
    rollout: Rollout
    entities: tuple[Entity, ...]
    routes: Mapping[str, int]
    writes: tuple[Write, ...]
    changes: tuple[Change, ...]
    before: ServiceState | None
    notices: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    # the InferenceService to create (action "create"; `before` is None and `writes` empty)
    manifest: Mapping[str, Any] | None = None

    def predictor_after(self) -> Mapping[str, Any]:
        if self.manifest is not None:
            predictor: Mapping[str, Any] = self.manifest["spec"]["predictor"]
            return predictor
        before = self.before.service.predictor if self.before else {}
        last = next((w.predictor for w in reversed(self.writes) if w.predictor is not None), None)
        return last if last is not None else before

    def canary_after(self) -> int | None:
        canary = self.before.service.canary_percent if self.before else None
        for w in self.writes:
            if w.canary != KEEP:
                canary = None if w.canary is None else int(w.canary)
        return canary

    def as_json(self) -> dict[str, Any]:
        svc = self.before.service if self.before else None
        return {
            "backend": "kserve",
            "endpoint": self.endpoint,
            "namespace": self.namespace,
            "action": self.action,
            "kind": self.kind,
            "before_config_version": svc.generation if svc else None,
            "champion": self.rollout.champion.name,
            "challenger": self.rollout.challenger.name if self.rollout.challenger else None,
            "predictor_before": redacted(svc.predictor) if svc else None,
            "predictor_after": redacted(self.predictor_after()),
            "canary_traffic_percent_before": svc.canary_percent if svc else None,
            "canary_traffic_percent_after": self.canary_after(),
            "routes": dict(self.routes),
            "writes": [
                {
                    "purpose": w.purpose,
                    "predictor": redacted(w.predictor) if w.predictor is not None else None,
                    "canary_traffic_percent": w.canary,
                }
                for w in self.writes
            ],
            "state": dict(self.tags),
            "changes": [
                {"section": c.section, "item": c.item, "before": c.before, "after": c.after}
                for c in self.changes
            ],
            "notices": list(self.notices),
            "manifest": redacted(self.manifest) if self.manifest is not None else None,
        }


# the mode KServe's canary needs, by the name every release reads: v0.16+ normalise it to
# "Knative", older ones know only "Serverless"
SERVERLESS = "Serverless"


def create_manifest(name: str, namespace: str, predictor: Mapping[str, Any]) -> dict[str, Any]:
    """A new InferenceService serving `predictor` in serverless mode. The mode is written
    even where it is the cluster's default: the default may be Standard (RawDeployment),
    which has no revisions, and KServe never changes the mode of an existing service."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {MODE_ANNOTATION: SERVERLESS},
        },
        "spec": {"predictor": _served(predictor)},
    }


def plan_create(
    name: str,
    namespace: str,
    predictor: Mapping[str, Any],
    rollout: Rollout,
    *,
    notices: list[str] | None = None,
) -> Plan:
    """Create the InferenceService: `rollout` is the challenger alone at 100%."""
    manifest = create_manifest(name, namespace, predictor)
    served = {k: v for k, v in predictor.items() if k not in _NOT_SERVED}
    tags = rollout.tags()
    routes = rollout.routes()
    changes = [
        Change("service", "InferenceService", "-", f"{namespace}/{name}"),
        Change("service", MODE_ANNOTATION, "-", SERVERLESS),
        *map_changes("predictor", {}, flatten(redacted(served))),
        *map_changes("route", {}, routes, "%"),
        Change("capture", "inference logger", "off", logger_url(predictor) or "off"),
        *map_changes("rollout state", {}, tags),
    ]
    return Plan(
        endpoint=name,
        namespace=namespace,
        action="create",
        kind="deploy",
        rollout=rollout,
        entities=rollout.entities(),
        routes=routes,
        writes=(),
        changes=tuple(changes),
        before=None,
        notices=tuple(notices or ()),
        tags=tags,
        manifest=manifest,
    )


def plan_rollout(
    state: ServiceState,
    rollout: Rollout,
    *,
    notices: list[str] | None = None,
    capture_first: Mapping[str, Any] | None = None,
) -> Plan:
    """The writes that move the service to `rollout`. `capture_first` is the champion's
    predictor with the logger on, rolled out at 100% before the canary starts, so that the
    champion's traffic is logged too (the canary is judged against it)."""
    svc = state.service
    notes = list(notices or ())
    writes: list[Write] = []
    champion, challenger = rollout.champion, rollout.challenger
    kind: Kind
    if capture_first is not None:
        writes.append(
            Write(
                f"turn on the inference logger for {champion.name} (a new revision of the "
                "same model, at 100%)",
                capture_first,
                None,
                restore_on_failure=True,
            )
        )
    if challenger is not None and rollout.percent < 100:
        new = challenger.name == NEW_REVISION
        predictor = challenger.spec if new or not _same(svc.predictor, challenger.spec) else None
        kind = "deploy" if predictor is not None else "advance"
        purpose = (
            f"serve the challenger as a new revision at {rollout.percent}%"
            if predictor is not None
            else f"move {challenger.name} to {rollout.percent}%"
        )
        writes.append(Write(purpose, predictor, rollout.percent, restore_on_failure=new))
    else:
        winner = challenger or champion
        if winner.name == NEW_REVISION:
            kind = "deploy"
            writes.append(
                Write("serve the new predictor at 100%", winner.spec, None, restore_on_failure=True)
            )
        elif winner.name == state.latest or len(state.entities) <= 1:
            kind = "promote"
            predictor = None if _same(svc.predictor, winner.spec) else winner.spec
            writes.append(
                Write(
                    f"promote {winner.name}: the latest revision takes 100%",
                    predictor,
                    None,
                    restore_on_failure=predictor is not None,
                )
            )
        else:
            kind = "rollback"
            writes.append(Write(f"pin 100% to {winner.name}", None, 0))
            if winner.spec:
                writes.append(
                    Write(
                        f"restore the predictor of {winner.name}",
                        winner.spec,
                        KEEP,
                        if_failed=f"traffic stays pinned 100% to {winner.name} "
                        "(canaryTrafficPercent: 0)",
                    )
                )
                writes.append(
                    Write("release the pin: the restored revision takes 100%", None, None)
                )
            else:
                notes.append(
                    f"the predictor {winner.name} served is not recorded (no rollout state), so "
                    "it stays pinned at canaryTrafficPercent: 0 while the InferenceService "
                    "still names the challenger's predictor. Put the old predictor back by hand."
                )
    needed = _needed(svc, writes)
    tags = rollout.tags()
    entities = rollout.entities()
    routes = rollout.routes()
    changes = _changes(state, needed, routes, tags)
    action: Literal["create", "update", "noop"] = "update" if needed else "noop"
    return Plan(
        endpoint=svc.name,
        namespace=svc.namespace,
        action=action,
        kind=kind if needed else "noop",
        rollout=rollout,
        entities=entities,
        routes=routes,
        writes=needed,
        changes=tuple(changes),
        before=state,
        notices=tuple(notes),
        tags=tags,
    )


def _needed(svc: Service, writes: list[Write]) -> tuple[Write, ...]:
    """The writes that change something, each judged after the ones before it."""
    import dataclasses

    out = []
    for w in writes:
        if w.patch(svc) is None:
            continue
        out.append(w)
        svc = dataclasses.replace(
            svc,
            predictor=w.predictor if w.predictor is not None else svc.predictor,
            canary_percent=svc.canary_percent if w.canary == KEEP else w.canary,
        )
    return tuple(out)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return not merge_diff(_served(a), _served(b))


def _changes(
    state: ServiceState,
    writes: tuple[Write, ...],
    routes: Mapping[str, int],
    tags: Mapping[str, str],
) -> list[Change]:
    svc = state.service
    after: Mapping[str, Any] = svc.predictor
    canary = svc.canary_percent
    for w in writes:
        if w.predictor is not None:
            after = w.predictor
        if w.canary != KEEP:
            canary = None if w.canary is None else int(w.canary)
    served_before = {k: v for k, v in svc.predictor.items() if k not in _NOT_SERVED}
    served_after = {k: v for k, v in after.items() if k not in _NOT_SERVED}
    changes = map_changes(
        "predictor", flatten(redacted(served_before)), flatten(redacted(served_after))
    )
    if canary != svc.canary_percent:
        changes.append(
            Change(
                "canary",
                "canaryTrafficPercent",
                "-" if svc.canary_percent is None else str(svc.canary_percent),
                "removed" if canary is None else str(canary),
            )
        )
    if writes:
        changes += map_changes("route", state.routes, routes, "%")
    have, want = logger_url(svc.predictor), logger_url(after)
    if have != want:
        changes.append(Change("capture", "inference logger", have or "off", want or "off"))
    # the keys that outlive rollouts stay unless the plan sets them (a promotion's
    # previous-champion)
    changes += map_changes("rollout state", dict(state.tags), {**state.rollout_state.kept, **tags})
    return changes


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """`{"model": {"storageUri": "s3://a"}}` as `{"model.storageUri": "s3://a"}`."""
    if isinstance(value, Mapping) and value:
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(flatten(inner, f"{prefix}[{i}]"))
        return out
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return {prefix: text}


_SECRET_KEY = re.compile(r"password|secret|token|api_?key|credential|private", re.I)


def redacted(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A predictor fit for plan.json and the report: environment values hidden (they are
    where credentials are passed), and any key that names a secret."""

    def walk(value: Any, key: str = "") -> Any:
        if key == "env" and isinstance(value, list):
            return [
                {**v, "value": "***"} if isinstance(v, Mapping) and "value" in v else walk(v)
                for v in value
            ]
        if isinstance(value, Mapping):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return "***" if value and _SECRET_KEY.search(key) else value

    out: dict[str, Any] = walk(spec)
    return out

"""An InferenceService (`serving.kserve.io/v1beta1`) as data, read as KServe really writes
its status: pure, no I/O.

What the status says, and what it does not (KServe's serverless reconciler,
`pkg/apis/serving/v1beta1/inference_service_status.go`, `PropagateStatus`):

- `status.observedGeneration` is copied from the child Knative Service, whose generation
  counts differently: it can run ahead of `metadata.generation` or never catch up
  (kserve/kserve#6081). Readiness is judged by revision names instead:
  `latestCreatedRevision`, `latestReadyRevision` and the `traffic[]` entries.
- A failed revision's cause is on the `PredictorReady` condition (the Knative Service's
  Ready, propagated), not necessarily on `Ready`; when the service's first revision fails,
  PredictorReady only says `RevisionMissing`, and the cause is on
  `PredictorConfigurationReady`.
- While a new revision starts, the `latestRevision: true` target still routes to the last
  ready revision, so `traffic[]` can name the old revision twice (its canary share and its
  `prev` share). Shares are summed per revision.
- RawDeployment ("Standard" since KServe 0.15) and ModelMesh show no revisions and no
  traffic, and KServe silently ignores `canaryTrafficPercent` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
KIND = "InferenceService"
API_VERSION = f"{GROUP}/{VERSION}"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# the modes whose predictor is a Knative Service with revisions ("Serverless" before 0.15)
SERVERLESS_MODES = ("Serverless", "Knative")
PREDICTOR_READY = "PredictorReady"
PREDICTOR_CONFIGURATION_READY = "PredictorConfigurationReady"


@dataclass(frozen=True)
class TrafficTarget:
    revision: str
    percent: int
    latest: bool  # the `latestRevision: true` target: it follows the latest ready revision
    tag: str | None = None


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # True | False | Unknown
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Service:
    """What one read of the InferenceService says."""

    name: str
    namespace: str
    uid: str
    generation: int | None
    resource_version: str
    annotations: Mapping[str, str]
    predictor: Mapping[str, Any]
    canary_percent: int | None
    mode: str | None  # status.deploymentMode, else the annotation
    latest_created: str | None = None
    latest_ready: str | None = None
    latest_rolled_out: str | None = None
    previous_rolled_out: str | None = None
    traffic: tuple[TrafficTarget, ...] = ()
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    observed_generation: int | None = None
    url: str | None = None
    # metadata.deletionTimestamp: deleted, kept until KServe's finalizer has cleaned up
    deleting: bool = False

    @classmethod
    def from_manifest(cls, doc: Mapping[str, Any]) -> Service:
        meta = _mapping(doc.get("metadata"))
        spec = _mapping(doc.get("spec"))
        status = _mapping(doc.get("status"))
        predictor_status = _mapping(_mapping(status.get("components")).get("predictor"))
        annotations = {str(k): str(v) for k, v in _mapping(meta.get("annotations")).items()}
        traffic = tuple(
            TrafficTarget(
                revision=str(t.get("revisionName") or ""),
                percent=int(t.get("percent") or 0),
                latest=bool(t.get("latestRevision")),
                tag=t.get("tag") or None,
            )
            for t in predictor_status.get("traffic") or []
            if isinstance(t, Mapping)
        )
        conditions = {
            str(c.get("type")): Condition(
                str(c.get("type")),
                str(c.get("status") or "Unknown"),
                str(c.get("reason") or ""),
                str(c.get("message") or ""),
            )
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type")
        }
        predictor = _mapping(spec.get("predictor"))
        canary = predictor.get("canaryTrafficPercent")
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            uid=str(meta.get("uid") or ""),
            generation=_int(meta.get("generation")),
            resource_version=str(meta.get("resourceVersion") or ""),
            annotations=annotations,
            predictor={k: v for k, v in predictor.items() if k != "canaryTrafficPercent"},
            canary_percent=_int(canary),
            mode=str(status.get("deploymentMode") or annotations.get(MODE_ANNOTATION) or "")
            or None,
            latest_created=predictor_status.get("latestCreatedRevision") or None,
            latest_ready=predictor_status.get("latestReadyRevision") or None,
            latest_rolled_out=predictor_status.get("latestRolledoutRevision") or None,
            previous_rolled_out=predictor_status.get("previousRolledoutRevision") or None,
            traffic=tuple(t for t in traffic if t.revision),
            conditions=conditions,
            observed_generation=_int(status.get("observedGeneration")),
            url=str(status.get("url") or predictor_status.get("url") or "") or None,
            deleting=bool(meta.get("deletionTimestamp")),
        )

    # ------------------------------------------------------------ reading the status

    def routes(self) -> dict[str, int]:
        """Each revision's share: a revision named twice (see the module docstring) gets
        the sum of its entries."""
        out: dict[str, int] = {}
        for t in self.traffic:
            out[t.revision] = out.get(t.revision, 0) + t.percent
        return out

    def latest_target(self) -> TrafficTarget | None:
        return next((t for t in self.traffic if t.latest), None)

    def mode_refusal(self) -> str | None:
        """Why the canary cannot run here (the mode, in words), or None when it can."""
        if self.mode is not None:
            return None if self.mode in SERVERLESS_MODES else self.mode
        if self.latest_created or self.traffic:
            return None  # revisions are Knative's: an older KServe that writes no mode
        return None if not self.conditions else "unknown (the status shows no revisions)"

    def predictor_failure(self) -> Condition | None:
        condition = self.conditions.get(PREDICTOR_READY)
        if condition is None or condition.status != "False":
            return None
        # a first revision that fails leaves no ready one: PredictorReady then says only
        # RevisionMissing, and the revision's own failure is on the configuration's condition
        configuration = self.conditions.get(PREDICTOR_CONFIGURATION_READY)
        if (
            condition.reason == "RevisionMissing"
            and configuration is not None
            and configuration.status == "False"
            and configuration.message
        ):
            return configuration
        return condition


Phase = Literal["waiting", "ready", "failed"]


@dataclass(frozen=True)
class Progress:
    phase: Phase
    revision: str | None
    detail: str = ""


def new_revision_progress(svc: Service, before_created: str | None) -> Progress:
    """How the revision created by a spec change is doing, by revision names only.

    Until `latestCreatedRevision` moves off `before_created`, the controller has not made
    the new revision yet (whatever observedGeneration says). It is ready once it is also
    `latestReadyRevision` and the `latestRevision` target routes to it; it failed when
    `PredictorReady` is False while the last ready revision is still the old one.
    """
    created = svc.latest_created
    if created is None or created == before_created:
        return Progress("waiting", None, "the controller has not created the new revision yet")
    target = svc.latest_target()
    if svc.latest_ready == created and target is not None and target.revision == created:
        return Progress("ready", created)
    failure = svc.predictor_failure()
    if failure is not None and svc.latest_ready != created:
        reason = ": ".join(x for x in (failure.reason, failure.message) if x)
        return Progress("failed", created, reason or "PredictorReady is False")
    return Progress("waiting", created, f"revision {created} is not ready yet")


def traffic_progress(svc: Service, latest_percent: int) -> Progress:
    """Whether the latest revision carries `latest_percent` (a step, a pin or a promotion:
    no new revision, only the route moves)."""
    target = svc.latest_target()
    if target is None or target.revision != svc.latest_ready:
        return Progress("waiting", None, "the route does not name the latest revision yet")
    if target.percent != latest_percent:
        return Progress(
            "waiting",
            target.revision,
            f"{target.revision} carries {target.percent}%, {latest_percent}% asked",
        )
    return Progress("ready", target.revision)


def starting(svc: Service) -> bool:
    """A revision is on its way up (created, neither ready nor failed)."""
    if svc.latest_created is None or svc.latest_created == svc.latest_ready:
        return False
    return svc.predictor_failure() is None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

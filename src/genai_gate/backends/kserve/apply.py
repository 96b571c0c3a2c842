"""Applying a plan to an InferenceService: patch, wait, record the state, restore.

Each write of the plan (plan.py) is one JSON merge patch carrying the resourceVersion it
was computed against. A 409 re-reads the service and computes the patch again against
what is there now, a bounded number of times. Then the wait, judged by revision names
(isvc.py): a new revision must become `latestReadyRevision` and the route's latest target;
a traffic move must show in `traffic[]`. A deploy whose revision fails (or never gets
ready) puts the previous predictor and `canaryTrafficPercent` back and exits 4 saying so.

The rollout state (state.py) is written beside the service: the champion's predictor
before the canary's revision is created (a rollback needs it even if this run dies), and
the champion, challenger and step once the service is where the plan wanted it.

A plan that creates the InferenceService POSTs it whole, waits for its first revision, and
deletes it again (by uid) when that revision fails, as the Databricks backend deletes an
endpoint it created that never became ready.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from genai_gate.backends.kserve.cluster import Cluster, Conflict, DeployError
from genai_gate.backends.kserve.isvc import (
    Progress,
    Service,
    new_revision_progress,
    starting,
    traffic_progress,
)
from genai_gate.backends.kserve.plan import Plan, ServiceState, Write
from genai_gate.backends.kserve.state import RolloutState, is_kept
from genai_gate.errors import GateError
from genai_gate.rollout.plan import (
    ROLLOUT_TAGS,
    TAG_CHALLENGER,
    TAG_CHAMPION,
    TAG_PREVIOUS,
    TAG_STARTED,
    TAG_STEP,
    TAG_STEP_AT,
)

CONFLICT_RETRIES = 3
# putting the old predictor back is what stands between a broken revision and users, so it
# may wait longer than wait-timeout asked of the deploy itself
RESTORE_WAIT = 600.0
POLL_FIRST, POLL_MAX = 0.2, 5.0


@dataclass(frozen=True)
class ApplyResult:
    action: str  # updated | unchanged
    before_version: int | None
    after: ServiceState


class Rollouts:
    """Apply, wait and restore on one InferenceService."""

    def __init__(
        self,
        cluster: Cluster,
        progress: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.progress = progress
        self.sleep = sleep

    def read(self, name: str) -> ServiceState | None:
        svc = self.cluster.read_service(name)
        if svc is None:
            return None
        return ServiceState.of(svc, self.cluster.read_state(name))

    # ------------------------------------------------------------ writing

    def _write(self, name: str, write: Write) -> tuple[Service, Service] | None:
        """Send one write; (the service it was computed against, the answer), or None when
        the service already says it. A 409 re-reads and re-plans the patch."""
        for attempt in range(CONFLICT_RETRIES + 1):
            svc = self.cluster.read_service(name)
            if svc is None:
                raise DeployError(f"InferenceService {name} disappeared while deploying")
            body = write.patch(svc)
            if body is None:
                return None
            try:
                return svc, self.cluster.patch_service(name, body)
            except Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise DeployError(
                        f"InferenceService {name} kept changing under genai-gate: "
                        f"{CONFLICT_RETRIES + 1} writes in a row found a newer resourceVersion",
                        fix="Something else keeps updating this InferenceService (another "
                        "workflow, a GitOps controller, a person). Serialise deploys with a "
                        "concurrency group:\n  concurrency:\n    group: deploy-my-model\n"
                        "    cancel-in-progress: false",
                    ) from None
                self.progress(
                    f"InferenceService {name} changed since it was read (409); reading it "
                    "again and recomputing the patch"
                )
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ waiting

    def _wait(
        self, name: str, judge: Callable[[Service], Progress], timeout: float, what: str
    ) -> Service:
        deadline = time.monotonic() + timeout
        pause = POLL_FIRST
        said = ""
        while True:
            svc = self.cluster.read_service(name)
            if svc is None:
                raise DeployError(f"InferenceService {name} disappeared while {what}")
            seen = judge(svc)
            if seen.phase == "ready":
                return svc
            if seen.phase == "failed":
                raise DeployError(
                    f"revision {seen.revision} of InferenceService {name} failed: {seen.detail}"
                )
            if seen.detail and seen.detail != said:
                self.progress(f"InferenceService {name}: {seen.detail}")
                said = seen.detail
            if time.monotonic() >= deadline:
                raise DeployError(
                    f"InferenceService {name} was still {what} after {timeout:g} s "
                    f"(wait-timeout): {seen.detail}",
                    fix="Raise the limit if the model needs longer to load:\n  wait-timeout: 30m",
                )
            self.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, POLL_MAX)

    def _settle(self, name: str, write: Write, before: Service, timeout: float) -> Service:
        """Wait until the service does what `write` asked of it."""
        if write.creates_revision(before):

            def new_revision(svc: Service) -> Progress:
                return new_revision_progress(svc, before.latest_created)

            svc = self._wait(name, new_revision, timeout, "starting the new revision")
        else:
            svc = before
        expected = write.latest_percent(svc)
        if expected is None:
            return svc

        def moved(svc: Service) -> Progress:
            return traffic_progress(svc, expected)

        return self._wait(name, moved, timeout, f"moving the latest revision to {expected}%")

    def wait_for_others(self, name: str, timeout: float) -> None:
        """Until no revision is starting (someone else's change): a failed one has ended."""

        def idle(svc: Service) -> Progress:
            if starting(svc):
                return Progress("waiting", svc.latest_created, "another revision is starting")
            return Progress("ready", None)

        self._wait(name, idle, timeout, "starting someone else's revision")

    # ------------------------------------------------------------ apply

    def apply(self, plan: Plan, timeout: float) -> ApplyResult:
        if plan.action == "create":
            return self._create(plan, timeout)
        before = plan.before
        if before is None:
            raise DeployError(f"InferenceService {plan.endpoint} does not exist")
        version = before.service.generation
        if plan.action == "noop":
            return ApplyResult("unchanged", version, before)
        name = plan.endpoint
        self.cluster.preflight(name, write=True)
        state = self.cluster.read_state(name)
        champion_spec = state.champion_spec
        for write in plan.writes:
            now = self.cluster.read_service(name)
            if now is None:
                raise DeployError(f"InferenceService {name} disappeared while deploying")
            if write.restore_on_failure:
                # what the rest of the traffic keeps serving, recorded before the new revision
                # exists: a rollback needs it even if this run dies mid-way
                champion_spec = self._champion_spec(now, state)
                state = self._save(now, state, _pending(state, now, champion_spec))
            self.progress(f"InferenceService {name}: {write.purpose}")
            sent = self._write(name, write)
            if sent is None:
                continue
            read, _answer = sent
            try:
                self._settle(name, write, read, timeout)
            except GateError as exc:
                if write.restore_on_failure:
                    raise self._restore(read, exc, timeout, state, champion_spec) from None
                if write.if_failed:
                    raise type(exc)(
                        f"{exc.message.rstrip('.')}; {write.if_failed}",
                        problems=exc.problems,
                        fix=exc.fix
                        or "Fix what failed (kubectl describe revision, kubectl logs), then "
                        "re-run `genai-gate rollback`: it finishes the restore.",
                    ) from None
                raise
        final = self.cluster.read_service(name)
        if final is None:
            raise DeployError(f"InferenceService {name} disappeared while deploying")
        after = _with_previous(_state_after(final, plan, state, champion_spec), plan)
        state = self._save(final, state, after)
        return ApplyResult("updated", version, ServiceState.of(final, state))

    def _create(self, plan: Plan, timeout: float) -> ApplyResult:
        """Create the InferenceService, wait for its first revision, then record the rollout
        state beside it. A first revision that fails (or is not ready in time) takes the
        service down again, so nothing is left half-created."""
        name, manifest = plan.endpoint, plan.manifest
        assert manifest is not None
        self.cluster.preflight(name, write=True, create=True)
        self.progress(f"InferenceService {name}: creating it, serving the challenger at 100%")
        try:
            created = self.cluster.create_service(manifest)
        except Conflict:
            raise DeployError(
                f"InferenceService {name} was created by someone else while genai-gate was "
                "creating it, or an older one of that name is still being deleted (409 "
                "AlreadyExists); nothing was changed",
                fix="Run the deploy again: it rolls the challenger out onto the existing "
                "service as a canary (or creates it once the old one is gone).",
            ) from None
        try:
            svc = self._wait(
                name,
                lambda svc: new_revision_progress(svc, None),
                timeout,
                "starting its first revision",
            )
            # a ConfigMap left by an older service of this name holds nothing of this one's;
            # a service whose rollout state cannot be written is taken down too, as no later
            # step could roll it back
            stale = self.cluster.read_state(name)
            fresh = RolloutState(resource_version=stale.resource_version)
            state = self._save(svc, fresh, _state_after(svc, plan, fresh, None))
        except GateError as exc:
            raise self._remove(created, exc) from None
        return ApplyResult("created", None, ServiceState.of(svc, state))

    def _remove(self, created: Service, cause: GateError) -> GateError:
        """Delete the InferenceService this run created; the error to raise says so (or that
        it could not be deleted) and keeps the cause's exit code."""
        name = created.name
        self.progress(f"InferenceService {name}: deleting it, it never served")
        kind = type(cause)
        try:
            self.cluster.delete_service(name, created.uid)
        except GateError as again:
            return kind(
                f"{cause.message}; deleting the new InferenceService also failed: {again.message}",
                problems=cause.problems,
                fix=f"Delete it by hand (kubectl delete inferenceservice {name} -n "
                f"{created.namespace}), fix what failed, and deploy again.",
            )
        return kind(
            f"{cause.message.rstrip('.')}. The new InferenceService {name} was deleted, so "
            "nothing was left half-created.",
            problems=cause.problems,
            fix=cause.fix
            or "Read why the revision failed (the PredictorReady condition above, the "
            "revision's pod logs), correct predictor: or the model, and deploy again.",
        )

    def set_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or replace keys of the rollout state (the monitor's cool-down), leaving the
        rest as it is; the InferenceService itself is not touched (no new revision)."""
        svc = self.cluster.read_service(name)
        if svc is None:
            raise DeployError(f"InferenceService {name} does not exist")
        state = self.cluster.read_state(name)
        rollout = {k: v for k, v in tags.items() if k in ROLLOUT_TAGS}
        kept = {k: v for k, v in tags.items() if is_kept(k)}
        wanted = dataclasses.replace(
            state, tags={**state.tags, **rollout}, kept={**state.kept, **kept}
        )
        self._save(svc, state, wanted)

    def _champion_spec(self, svc: Service, state: RolloutState) -> Mapping[str, Any] | None:
        """The predictor of the revision that keeps the rest of the traffic: the current one
        when nothing is split, else the one recorded when the canary started."""
        if svc.canary_percent is None or len(svc.routes()) <= 1:
            return dict(svc.predictor)
        return dict(state.champion_spec) if state.champion_spec is not None else None

    def _save(self, svc: Service, state: RolloutState, wanted: RolloutState) -> RolloutState:
        """Write `wanted` over `state`; the keys that outlive rollouts (state.py) are carried
        over from what is stored, re-read on a conflict, unless `wanted` sets them."""
        merged = wanted.carried_over(state)
        if merged.data() == state.data() and state.resource_version:
            return state
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                return self.cluster.write_state(
                    svc,
                    dataclasses.replace(
                        wanted.carried_over(state), resource_version=state.resource_version
                    ),
                )
            except Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise DeployError(
                        f"the rollout state of {svc.name} kept changing under genai-gate"
                    ) from None
                state = self.cluster.read_state(svc.name)
        raise AssertionError("unreachable")  # pragma: no cover

    def _restore(
        self,
        before: Service,
        cause: GateError,
        timeout: float,
        state: RolloutState,
        champion_spec: Mapping[str, Any] | None,
    ) -> GateError:
        """Put the predictor and `canaryTrafficPercent` of `before` back. The error to
        raise says what failed and what was restored, and keeps the cause's exit code."""
        name = before.name
        kind = type(cause)
        canary = "unset" if before.canary_percent is None else f"{before.canary_percent}"
        what = (
            f"the predictor of generation {before.generation} (revision "
            f"{before.latest_ready or '?'}) and canaryTrafficPercent {canary}"
        )
        self.progress(f"InferenceService {name}: restoring {what}")
        back = Write("restore", before.predictor, before.canary_percent)
        try:
            sent = self._write(name, back)
            if sent is not None:
                self._settle(name, back, sent[0], max(timeout, RESTORE_WAIT))
            final = self.cluster.read_service(name)
            if final is not None:
                self._save(final, state, _state_after(final, None, state, champion_spec))
        except GateError as again:
            return kind(
                f"{cause.message}; restoring {what} also failed: {again.message}",
                problems=cause.problems,
                fix="Restore by hand (kubectl edit inferenceservice "
                f"{name}), or re-run `genai-gate rollback` once the service is idle.",
            )
        return kind(
            f"{cause.message.rstrip('.')}. Restored {what}; traffic stays on "
            f"{before.latest_ready or 'the previous revision'}.",
            problems=cause.problems,
            fix=cause.fix
            or "Read the failed revision's events and pod logs (kubectl describe revision, "
            "kubectl logs), fix what failed, and deploy again.",
        )


def _pending(state: RolloutState, svc: Service, spec: Mapping[str, Any] | None) -> RolloutState:
    """Before a new revision: the champion (what serves the rest) and its predictor."""
    target = svc.latest_target()
    champion = svc.latest_rolled_out or (target.revision if target else None)
    tags = dict(state.tags)
    if champion and (svc.canary_percent is None or len(svc.routes()) <= 1):
        tags = {TAG_CHAMPION: champion, TAG_STEP: "100"}
    return RolloutState(tags, spec, state.resource_version)


def _with_previous(after: RolloutState, plan: Plan) -> RolloutState:
    """A promotion records the champion it retired (`genai-gate.previous-champion`, as the
    rollout core names it) and that champion's predictor, which the monitor's rollback
    serves again: once promoted, no revision with traffic is left to pin it to."""
    previous = plan.tags.get(TAG_PREVIOUS)
    if not previous:
        return after
    retired = plan.rollout.champion.spec
    return dataclasses.replace(
        after,
        kept={**after.kept, TAG_PREVIOUS: previous},
        previous_spec=dict(retired) if retired else after.previous_spec,
    )


def _state_after(
    svc: Service, plan: Plan | None, state: RolloutState, champion_spec: Mapping[str, Any] | None
) -> RolloutState:
    """The rollout state that describes `svc` as it serves now, with the plan's times."""
    latest = svc.latest_target()
    others = [t for t in svc.traffic if not t.latest and t.percent > 0]
    wanted = dict(plan.tags) if plan is not None else {}
    if latest is not None and latest.percent > 0 and others and svc.canary_percent is not None:
        prev = max(others, key=lambda t: t.percent)
        tags = {
            TAG_CHAMPION: prev.revision,
            TAG_CHALLENGER: latest.revision,
            TAG_STEP: str(latest.percent),
        }
        for key in (TAG_STARTED, TAG_STEP_AT):
            value = wanted.get(key) or state.tags.get(key)
            if value:
                tags[key] = value
        return RolloutState(tags, champion_spec, state.resource_version)
    routes = svc.routes()
    if not routes:
        return RolloutState(wanted, champion_spec, state.resource_version)
    champion = max(routes, key=lambda r: routes[r])
    spec: Mapping[str, Any] | None
    if champion == svc.latest_created:
        spec = dict(svc.predictor)
    else:
        spec = champion_spec if state.tags.get(TAG_CHAMPION) == champion else None
    return RolloutState({TAG_CHAMPION: champion, TAG_STEP: "100"}, spec, state.resource_version)

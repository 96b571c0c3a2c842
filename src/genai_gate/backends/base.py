"""The serving-backend seam: what `plan`, `deploy`, `analyze`, `promote`, `rollback` and
`monitor` ask of a serving platform. Databricks Model Serving (backends/databricks) and KServe
(backends/kserve) implement the same protocol, and the commands, the rollout core and the
reports stay as they are. `config_version` is the platform's own counter of the serving
config (a Databricks config version, an InferenceService's metadata.generation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from genai_gate.rollout.measures import EntityTraffic, Exchange, JudgedScore
from genai_gate.rollout.plan import Change, Entity, Rollout


class ServingState(Protocol):
    """What the endpoint serves now (not a pending config)."""

    @property
    def name(self) -> str: ...

    @property
    def config_version(self) -> int | None: ...

    @property
    def updating(self) -> bool: ...

    @property
    def pending_version(self) -> int | None: ...

    @property
    def url(self) -> str | None: ...

    @property
    def entities(self) -> tuple[Entity, ...]: ...

    @property
    def routes(self) -> Mapping[str, int]: ...

    @property
    def tags(self) -> Mapping[str, str]:
        """The rollout state (`genai-gate.*` keys), wherever the backend keeps it."""
        ...

    @property
    def capture(self) -> str | None:
        """Where its requests and responses are captured (a table, a log sink), if anywhere."""
        ...

    def champion(self) -> Entity | None: ...

    def challenger(self) -> Entity | None: ...


class RolloutPlan(Protocol):
    """The diff that moving the endpoint to a rollout would apply."""

    @property
    def endpoint(self) -> str: ...

    @property
    def action(self) -> Literal["create", "update", "noop"]: ...

    @property
    def rollout(self) -> Rollout: ...

    @property
    def entities(self) -> tuple[Entity, ...]: ...

    @property
    def routes(self) -> Mapping[str, int]: ...

    @property
    def changes(self) -> tuple[Change, ...]: ...

    @property
    def notices(self) -> tuple[str, ...]: ...

    @property
    def before(self) -> ServingState | None: ...

    def as_json(self) -> dict[str, Any]: ...


class Applied(Protocol):
    @property
    def action(self) -> str:
        """created | updated | unchanged"""
        ...

    @property
    def before_version(self) -> int | None: ...

    @property
    def after(self) -> ServingState: ...


class TrafficReader(Protocol):
    """The captured traffic of one endpoint, per served entity."""

    @property
    def where(self) -> str: ...

    def stats(
        self, endpoint: str, since_ms: int, until_ms: int | None = None
    ) -> dict[str, EntityTraffic]:
        """Per served entity, the requests logged in [since_ms, until_ms) (epoch ms)."""
        ...

    def sample(
        self, endpoint: str, entity: str, since_ms: int, k: int, until_ms: int | None = None
    ) -> list[Exchange]:
        """Up to k answered requests of one entity, the same ones on a re-run."""
        ...


class PublishedDashboard(Protocol):
    """A dashboard (and its alerts) that `dashboard` created or updated in place."""

    @property
    def dashboard_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def action(self) -> str:
        """created | updated"""
        ...

    @property
    def alerts(self) -> tuple[tuple[str, str, str], ...]:
        """(name, id, created | updated) of each alert."""
        ...


class ServingBackend(Protocol):
    """`state` and `plan` arguments are the backend's own values, as its `read` and
    `plan_*` returned them; the commands only pass them back."""

    name: str
    label: str  # how messages name the platform: "Databricks"

    @property
    def available(self) -> bool:
        """Whether credentials can exist at all (decided without a network call)."""
        ...

    @property
    def unavailable_reason(self) -> str: ...

    def configured(self) -> tuple[bool, bool]:
        """(deploy, watch): an endpoint and a model to put on it; an endpoint to watch. An
        endpoint alone may only name a baseline or a canary."""
        ...

    def connect(self) -> None:
        """Sign in (no API call yet); raises AuthError when no sign-in can work."""
        ...

    def check_settings(self) -> str:
        """The endpoint name, once the settings that name what to serve are complete."""
        ...

    def preflight(self, endpoint: str) -> None:
        """Before the eval of a run that deploys: sign in for real and check what deploy
        needs, so a refusal costs seconds, not an eval."""
        ...

    def read(self, endpoint: str) -> ServingState | None: ...

    def wait_for_others(self, endpoint: str, timeout: float) -> None: ...

    def plan_deploy(self, endpoint: str, state: Any, now: str) -> RolloutPlan:
        """The deploy's plan; raises ConfigError when the platform would refuse it."""
        ...

    def plan_rollout(self, endpoint: str, state: Any, rollout: Rollout) -> RolloutPlan: ...

    def apply(self, plan: Any, timeout: float) -> Applied: ...

    def traffic(self, state: Any) -> TrafficReader: ...

    # -------------------------------------------------------------- what `monitor` adds

    def set_tags(self, endpoint: str, tags: Mapping[str, str]) -> None:
        """Add or replace these `genai-gate.*` keys beside the rollout state, which survives
        between scheduled runs (the retraining cool-down is kept there)."""
        ...

    def served_entity(self, model: str, version: str) -> Entity | None:
        """The entity that would serve this registered model version (a rollback target),
        or None when the registry no longer holds it."""
        ...

    def run_job(self, job: str, parameters: Mapping[str, str], idempotency_key: str) -> str:
        """Start the platform's retraining job with these parameters; returns where the run
        can be seen. A repeated key starts no second run. ConfigError if unsupported."""
        ...

    def record_judged(self, state: Any, scores: Sequence[JudgedScore]) -> str | None:
        """Write judged scores beside the traffic, for dashboards; where they went, or None
        when no place is configured."""
        ...

    def publish_dashboard(
        self, state: Any, *, name: str, folder: str, floors: Mapping[str, tuple[str, float]]
    ) -> PublishedDashboard:
        """Create or update, by name, the platform's dashboard over the endpoint's traffic and
        judged quality, and its alerts (`floors`: scorer -> the gate's op and limit).
        ConfigError where the platform has none."""
        ...

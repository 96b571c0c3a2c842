"""The rollout core, pure and backend-neutral: who is champion, who is challenger, with
what share of traffic, and what changes.

Deploy (issue #6) and the canary's advance, promote and rollback (issue #7) all end here:
what a backend serves now (`Serving`) plus a rollout intent give the entities, routes and
rollout state to apply. The backend (backends/databricks, ...) turns that into its own plan
and API calls, and keeps the rollout state (the `genai-gate.*` keys) where it belongs on its
platform: tags on a Databricks endpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

TAG_CHAMPION = "genai-gate.champion"
TAG_CHALLENGER = "genai-gate.challenger"
TAG_STEP = "genai-gate.step"
TAG_STARTED = "genai-gate.started-at"
# when the current step began: the canary is judged on the traffic of its current share
TAG_STEP_AT = "genai-gate.step-at"
ROLLOUT_TAGS = (TAG_CHAMPION, TAG_CHALLENGER, TAG_STEP, TAG_STARTED, TAG_STEP_AT)
# "<model>/<version>" of the champion a promotion retired: what `monitor` rolls back to.
# Written by each promotion and left alone by every other plan (it is not a ROLLOUT_TAG),
# so it outlives the canaries that come and go until the next promotion.
TAG_PREVIOUS = "genai-gate.previous-champion"


@dataclass(frozen=True)
class Entity:
    """One served entity. The core compares `model` and `version` (what it serves) and reads
    `name` (where traffic is routed); `spec` is the backend's own description, opaque here
    (a Databricks `ServedEntityInput`, a KServe predictor), and `detail` a few words of it
    for reports ("Small", "scale-to-zero")."""

    name: str
    spec: Mapping[str, Any]
    model: str = "?"
    version: str = "?"
    detail: tuple[str, ...] = ()

    def same_model(self, other: Entity) -> bool:
        return (self.model, self.version) == (other.model, other.version)

    def renamed(self, name: str) -> Entity:
        """The same entity served under another name (a spec that names itself follows)."""
        spec = {**self.spec, "name": name} if "name" in self.spec else self.spec
        return dataclasses.replace(self, name=name, spec=spec)

    def label(self) -> str:
        tail = f", {', '.join(self.detail)}" if self.detail else ""
        return f"{self.model} v{self.version}{tail}"


@dataclass(frozen=True)
class Rollout:
    """The intent: who is champion, who (if anyone) is challenger, and its share."""

    champion: Entity
    challenger: Entity | None = None
    percent: int = 0
    started_at: str | None = None
    step_at: str | None = None

    def routes(self) -> dict[str, int]:
        if self.challenger is None:
            return {self.champion.name: 100}
        if self.percent >= 100:
            return {self.challenger.name: 100}
        return {self.champion.name: 100 - self.percent, self.challenger.name: self.percent}

    def entities(self) -> tuple[Entity, ...]:
        routes = self.routes()
        pair = (self.champion, self.challenger)
        return tuple(e for e in pair if e is not None and e.name in routes)

    def tags(self) -> dict[str, str]:
        if self.challenger is None or self.percent >= 100:
            winner = self.challenger or self.champion
            tags = {TAG_CHAMPION: winner.name, TAG_STEP: "100"}
            retired = self.champion if self.challenger is not None else None
            if retired is not None and retired.version != "?" and not retired.same_model(winner):
                tags[TAG_PREVIOUS] = f"{retired.model}/{retired.version}"
            return tags
        tags = {
            TAG_CHAMPION: self.champion.name,
            TAG_CHALLENGER: self.challenger.name,
            TAG_STEP: str(self.percent),
        }
        if self.started_at:
            tags[TAG_STARTED] = self.started_at
        if self.step_at:
            tags[TAG_STEP_AT] = self.step_at
        return tags


@dataclass(frozen=True)
class Change:
    section: str  # served entity | route | capture | tag
    item: str
    before: str
    after: str


def champion_of(
    entities: Sequence[Entity], routes: Mapping[str, int], state: Mapping[str, str]
) -> Entity | None:
    """The entity the rollout state names champion, else the one carrying the most traffic."""
    tagged = next((e for e in entities if e.name == state.get(TAG_CHAMPION)), None)
    if tagged is not None:
        return tagged
    if not entities:
        return None
    return max(entities, key=lambda e: routes.get(e.name, 0))


def challenger_of(
    entities: Sequence[Entity], routes: Mapping[str, int], state: Mapping[str, str]
) -> Entity | None:
    champion = champion_of(entities, routes, state)
    tagged = next((e for e in entities if e.name == state.get(TAG_CHALLENGER)), None)
    if tagged is not None and tagged is not champion:
        return tagged
    others = [e for e in entities if e is not champion]
    return max(others, key=lambda e: routes.get(e.name, 0)) if others else None


class Serving(Protocol):
    """What a backend serves now, as the rollout core reads it: entities, their traffic
    shares, and the rollout state (`genai-gate.*` keys) that the backend stores for us."""

    @property
    def entities(self) -> tuple[Entity, ...]: ...

    @property
    def routes(self) -> Mapping[str, int]: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    def champion(self) -> Entity | None: ...

    def challenger(self) -> Entity | None: ...


def rollout_for_challenger(
    state: Serving | None, challenger: Entity, percent: int, now: str
) -> tuple[Rollout, list[str]]:
    """Deploy's intent: keep the champion, add or replace the challenger.

    A challenger that is already on the endpoint keeps its current share and start time, so
    re-running the deploy of a merge (or deploying while the canary advances) changes nothing.
    """
    notices: list[str] = []
    champion = state.champion() if state else None
    if champion is None:
        return Rollout(challenger, None, 100, now), notices
    if champion.same_model(challenger):
        notices.append(
            f"{challenger.model} v{challenger.version} is already the champion "
            f"({champion.name}); there is nothing to roll out."
        )
    assert state is not None
    current = state.challenger()
    if champion.same_model(challenger):
        if current is None:
            return Rollout(champion, None, 100), notices
        return _as_is(state, champion, current, now), notices
    if current is not None and current.same_model(challenger):
        share = state.routes.get(current.name, 0)
        if share != percent:
            notices.append(
                f"{current.name} already serves {share}% as the challenger; "
                f"the rollout owns its share now, so canary-percent ({percent}) is not reapplied."
            )
        as_is = _as_is(state, champion, current, now)
        if not same_spec(current, challenger):
            # a new workload size or scale-to-zero for the same version: same name and share
            resized = dataclasses.replace(
                challenger, spec={**current.spec, **challenger.spec}
            ).renamed(current.name)
            as_is = dataclasses.replace(as_is, challenger=resized)
        return as_is, notices
    if challenger.name == champion.name:
        # two models that the backend would serve under one name (see its entity_for)
        challenger = challenger.renamed(f"{challenger.name}-challenger")
    if current is not None:
        notices.append(f"{current.name} is replaced as the challenger by {challenger.name}.")
    return Rollout(champion, challenger, percent, now, now), notices


def _as_is(state: Serving, champion: Entity, challenger: Entity, now: str) -> Rollout:
    share = state.routes.get(challenger.name, 0)
    started = state.tags.get(TAG_STARTED) or now
    return Rollout(champion, challenger, share, started, state.tags.get(TAG_STEP_AT))


def entity_changes(before: Serving | None, after: tuple[Entity, ...]) -> list[Change]:
    old = {e.name: e for e in (before.entities if before else ())}
    new = {e.name: e for e in after}
    changes = []
    for name in [*old, *(n for n in new if n not in old)]:
        b, a = old.get(name), new.get(name)
        if b is not None and a is not None and same_spec(b, a):
            continue
        changes.append(
            Change(
                "served entity",
                name,
                b.label() if b else "-",
                a.label() if a else "removed",
            )
        )
    return changes


def same_spec(before: Entity, after: Entity) -> bool:
    # the output echoes fields we never sent (state, creator); compare what we would send
    return all(before.spec.get(k) == v for k, v in after.spec.items() if k != "name")


def map_changes(
    section: str, before: Mapping[str, Any], after: Mapping[str, Any], unit: str = ""
) -> list[Change]:
    changes = []
    for key in [*before, *(k for k in after if k not in before)]:
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        changes.append(
            Change(
                section,
                key,
                "-" if b is None else f"{b}{unit}",
                "removed" if a is None else f"{a}{unit}",
            )
        )
    return changes

"""The endpoint plan and the deploy result as markdown: for the job summary, the PR comment
and the terminal. Pure functions of typed values, so they are tested as strings."""

from __future__ import annotations

import re
from collections.abc import Sequence

from genai_gate.backends.base import RolloutPlan
from genai_gate.report.markdown import NONE, code, inert
from genai_gate.rollout.plan import TAG_CHALLENGER, TAG_CHAMPION, TAG_STEP, Change

_ACTION = {
    "create": "creates the endpoint",
    "update": "updates the endpoint",
    "noop": "changes nothing: the endpoint already serves this",
}
# the rollout's own tags, in words: `genai-gate.step 10 → 100` on a rollback read like a
# promotion, when it means the canary has ended
_TAG_WORDS = {
    TAG_STEP: "challenger's share",
    TAG_CHAMPION: "champion",
    TAG_CHALLENGER: "challenger",
}


def _value(text: str) -> str:
    # the plan says "-" for "nothing before"; every report says NONE
    return NONE if text in ("-", "") else inert(text)


def _change(plan: RolloutPlan, c: Change) -> tuple[str, str, str]:
    item = code(c.item)
    before, after = _value(c.before), _value(c.after)
    # Databricks keeps the rollout state in endpoint tags, KServe in a ConfigMap
    if c.section in ("tag", "rollout state") and c.item in _TAG_WORDS:
        item = f"{_TAG_WORDS[c.item]} ({item})"
        if c.item == TAG_STEP:
            before = f"{inert(c.before)}%" if c.before not in ("-", "") else NONE
            # a created endpoint serves its first model: no canary ran, so none ended
            ended = plan.rollout.challenger is None and plan.action != "create"
            after = "canary ended" if ended else f"{inert(c.after)}%"
    return item, before, after


def change_table(plan: RolloutPlan) -> list[str]:
    lines = ["| change | item | before | after |", "|---|---|---|---|"]
    for c in plan.changes:
        item, before, after = _change(plan, c)
        lines.append(f"| {c.section} | {item} | {before} | {after} |")
    return lines


def notices_block(notices: Sequence[str]) -> list[str]:
    if not notices:
        return []
    return ["> [!NOTE]", *(f"> - {inert(n, 600)}" for n in notices), ""]


def render_plan(
    plan: RolloutPlan, *, applied: str | None = None, notices: Sequence[str] = ()
) -> str:
    before = plan.before
    if before is None:
        version = ""
    elif before.config_version is None:
        version = " (no config yet)"
    else:
        version = f" (config version {before.config_version})"
    endpoint = code(plan.endpoint)
    if applied is None:
        head = f"### Deploy plan for {endpoint}{version}: {_ACTION[plan.action]}"
    else:
        head = f"### Deploy {endpoint}: {applied}"
    lines = [head, ""]
    if before is not None and before.updating:
        lines += [
            f"> [!WARNING]\n> The endpoint is updating now (to config {before.pending_version}); "
            "deploy waits for that update to end first.",
            "",
        ]
    lines += ["| served entity | model | traffic |", "|---|---|---:|"]
    for entity in plan.entities:
        role = "champion" if entity is plan.rollout.champion else "challenger"
        lines.append(
            f"| {code(entity.name)} ({role}) | {inert(entity.label())} "
            f"| {plan.routes.get(entity.name, 0)}% |"
        )
    lines.append("")
    if plan.changes:
        lines += [*change_table(plan), ""]
    else:
        lines += ["No changes.", ""]
    lines += notices_block([*plan.notices, *notices])
    return "\n".join(lines).rstrip("\n") + "\n"


def render_unplanned(endpoint: str, reason: str) -> str:
    # the reason quotes servers (an OIDC refusal) and holds `<owner>`-style hints: a text
    # block keeps it inert on GitHub and readable in a terminal
    fence = "~" * max(3, 1 + max((len(r) for r in re.findall("~+", reason)), default=0))
    return (
        f"### Deploy plan for {code(endpoint)}: not computed\n\n"
        f"{fence}text\n{reason}\n{fence}\n\nThe plan is computed again on the push that deploys.\n"
    )

"""The endpoint plan and the deploy result as markdown: for the job summary, the PR comment
and the terminal. Pure functions of typed values, so they are tested as strings."""

from __future__ import annotations

from collections.abc import Sequence

from genai_gate.backends.base import RolloutPlan

_ACTION = {
    "create": "creates the endpoint",
    "update": "updates the endpoint",
    "noop": "changes nothing: the endpoint already serves this",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
    if applied is None:
        head = f"### Deploy plan for `{plan.endpoint}`{version}: {_ACTION[plan.action]}"
    else:
        head = f"### Deploy `{plan.endpoint}`: {applied}"
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
            f"| `{_cell(entity.name)}` ({role}) | {_cell(entity.label())} "
            f"| {plan.routes.get(entity.name, 0)}% |"
        )
    lines.append("")
    if plan.changes:
        lines += ["| change | item | before | after |", "|---|---|---|---|"]
        for c in plan.changes:
            lines.append(
                f"| {c.section} | `{_cell(c.item)}` | {_cell(c.before)} | {_cell(c.after)} |"
            )
        lines.append("")
    else:
        lines += ["No changes.", ""]
    for notice in [*plan.notices, *notices]:
        lines.append(f"> [!NOTE]\n> {_cell(notice)}\n")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_unplanned(endpoint: str, reason: str) -> str:
    return (
        f"### Deploy plan for `{endpoint}`: not computed\n\n"
        f"{reason}\n\nThe plan is computed again on the push that deploys.\n"
    )

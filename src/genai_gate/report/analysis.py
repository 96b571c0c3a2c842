"""The canary report: per-entity traffic, the checks, quality, charts and what was applied.
A pure function of typed values, so it is tested as a string."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from genai_gate.backends.base import Applied, RolloutPlan, ServingState
from genai_gate.report.summary import cell, fmt
from genai_gate.rollout.decision import Decision
from genai_gate.rollout.measures import EntityTraffic

_ICON = {"healthy": "🟢", "unhealthy": "🔴", "inconclusive": "🟡"}
_WORDS = {
    "advance": "advance",
    "promote": "promote",
    "hold": "hold",
    "rollback": "roll back",
}


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _bar_chart(title: str, unit: str, names: Sequence[str], values: Sequence[float]) -> list[str]:
    top = max([*values, 0.0]) * 1.2 or 1.0
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}"',
        f"    x-axis [{', '.join(json.dumps(n) for n in names)}]",
        f'    y-axis "{unit}" 0 --> {top:.6g}',
        f"    bar [{', '.join(f'{v:.6g}' for v in values)}]",
        "```",
    ]


def render_analysis(
    endpoint: str,
    state: ServingState,
    decision: Decision,
    traffic: Mapping[str, EntityTraffic],
    *,
    since: str,
    applied: Applied | None,
    plan: RolloutPlan | None,
    mode: str,
    notices: Sequence[str] = (),
) -> str:
    icon = _ICON[decision.verdict]
    head = (
        f"## {icon} genai-gate canary `{endpoint}`: {decision.verdict}, {_WORDS[decision.action]}"
    )
    if mode != "analyze":
        head = f"## genai-gate canary `{endpoint}`: {_WORDS[decision.action]} (by hand)"
    lines = [head, "", cell(decision.reason, 600), ""]
    if applied is not None:
        routes = ", ".join(f"`{n}` {p}%" for n, p in applied.after.routes.items())
        lines += [
            f"**Applied:** config version {applied.before_version} → "
            f"{applied.after.config_version}; traffic now {routes}.",
            "",
        ]
    elif decision.action in ("advance", "promote", "rollback"):
        lines += ["**Not applied** (report only; `genai-gate analyze --apply` moves traffic).", ""]
    champion, challenger = state.champion(), state.challenger()
    roles = {}
    if champion:
        roles[champion.name] = "champion"
    if challenger:
        roles[challenger.name] = "challenger"
    names = [n for n in roles if n in traffic] + [n for n in traffic if n not in roles]
    lines += [
        f"Traffic since {since} UTC:",
        "",
        "| served entity | role | share | requests | error rate | not logged | p50 | p95 | p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in [*roles, *(n for n in traffic if n not in roles)]:
        t = traffic.get(name)
        share = state.routes.get(name)
        lines.append(
            f"| `{cell(name)}` | {roles.get(name, '')} | "
            f"{'—' if share is None else f'{share}%'} | {t.requests if t else 0} | "
            f"{f'{t.error_rate:.2%}' if t else '—'} | {t.logging_errors if t else '—'} | "
            f"{_ms(t.p50_ms if t else None)} | "
            f"{_ms(t.p95_ms if t else None)} | {_ms(t.p99_ms if t else None)} |"
        )
    lines.append("")
    if decision.checks:
        lines += ["| check | result | detail |", "|---|---|---|"]
        for c in decision.checks:
            mark = "—" if c.passed is None else ("✅" if c.passed else "❌")
            lines.append(f"| {cell(c.name)} | {mark} | {cell(c.detail, 300)} |")
        lines.append("")
    if decision.quality:
        lines += [
            "| quality (judged sample) | champion | challenger | Δ | 95% CI | samples |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for q in decision.quality:
            ci = f"{q.ci[0]:+.3f} to {q.ci[1]:+.3f}" if q.ci else "—"
            delta = "—" if q.delta is None else f"{q.delta:+.3f}"
            lines.append(
                f"| {cell(q.metric)} | {fmt(q.champion)} | {fmt(q.challenger)} | {delta} | "
                f"{ci} | {q.samples[0]} / {q.samples[1]} |"
            )
        lines.append("")
    measured = [n for n in names if traffic[n].requests]
    if measured:
        lines += [
            "<details><summary>Charts</summary>",
            "",
            *_bar_chart(
                "Error rate (%) per served entity",
                "%",
                measured,
                [100 * traffic[n].error_rate for n in measured],
            ),
            "",
            *_bar_chart(
                "p95 latency (ms) per served entity",
                "ms",
                measured,
                [traffic[n].p95_ms or 0.0 for n in measured],
            ),
            "",
            "</details>",
            "",
        ]
    if plan is not None and plan.changes:
        lines += ["| change | item | before | after |", "|---|---|---|---|"]
        for ch in plan.changes:
            lines.append(
                f"| {ch.section} | `{cell(ch.item)}` | {cell(ch.before)} | {cell(ch.after)} |"
            )
        lines.append("")
    for notice in notices:
        lines.append(f"> [!NOTE]\n> {cell(notice, 600)}\n")
    return "\n".join(lines).rstrip("\n") + "\n"

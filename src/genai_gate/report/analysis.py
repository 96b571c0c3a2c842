"""The canary report: per-entity traffic, the checks, quality, charts and what was applied.
A pure function of typed values, so it is tested as a string."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from genai_gate.backends.base import Applied, RolloutPlan, ServingState
from genai_gate.report.markdown import NONE, code, fold, inert, num, pct, signed
from genai_gate.report.plan import change_table, notices_block
from genai_gate.rollout.decision import Decision, Rules
from genai_gate.rollout.measures import EntityTraffic

_ICON = {"healthy": "🟢", "unhealthy": "🔴", "inconclusive": "🟡"}
_WORDS = {
    "advance": "advance",
    "promote": "promote",
    "hold": "hold",
    "rollback": "roll back",
}


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{num(value)} ms"


def _label(name: str) -> str:
    # Mermaid takes a JSON-style string; quotes and brackets would end it early
    return json.dumps(name.replace('"', "'").replace("[", "(").replace("]", ")")[:40])


def _plain(value: float) -> str:
    # Mermaid reads plain decimals: no exponent, no thousands separator
    return f"{value:.4f}".rstrip("0").rstrip(".") or "0"


def limit_chart(
    title: str, unit: str, names: Sequence[str], values: Sequence[float], limit: float | None
) -> list[str]:
    """Each served entity's value as a bar, and the limit it is held to as a bar of its own:
    a healthy canary still shows a scale (the limit), and one entity still has a comparison."""
    labels = [*names, *(["limit"] if limit is not None else [])]
    bars = [*values, *([limit] if limit is not None else [])]
    top = max([*bars, 0.0]) * 1.2 or 1.0
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}"',
        f"    x-axis [{', '.join(_label(n) for n in labels)}]",
        f'    y-axis "{unit}" 0 --> {_plain(top)}',
        f"    bar [{', '.join(_plain(v) for v in bars)}]",
        "```",
    ]


def _limits(
    rules: Rules | None, champion: EntityTraffic | None
) -> tuple[float | None, float | None]:
    """The challenger's limits: its error rate (%) and its p95 (ms)."""
    if rules is None:
        return None, None
    rate = rules.max_error_rate
    if champion is not None and champion.requests:
        rate = min(rate, champion.error_rate + rules.max_error_rate_increase)
    p95 = rules.max_latency_ratio * champion.p95_ms if champion and champion.p95_ms else None
    return 100 * rate, p95


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
    rules: Rules | None = None,
) -> str:
    icon = _ICON[decision.verdict]
    name = code(endpoint)
    head = f"## {icon} genai-gate canary {name}: {decision.verdict}, {_WORDS[decision.action]}"
    if mode != "analyze":
        head = f"## genai-gate canary {name}: {_WORDS[decision.action]} (by hand)"
    lines = [head, "", inert(decision.reason, 600), ""]
    if applied is not None:
        routes = ", ".join(f"{code(n)} {p}%" for n, p in applied.after.routes.items())
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
        f"Traffic since {inert(since)} UTC:",
        "",
        "| served entity | role | share | requests | error rate | not logged | p50 | p95 | p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entity in [*roles, *(n for n in traffic if n not in roles)]:
        t = traffic.get(entity)
        share = state.routes.get(entity)
        lines.append(
            f"| {code(entity)} | {roles.get(entity, '')} | "
            f"{NONE if share is None else f'{share}%'} | {t.requests if t else 0} | "
            f"{pct(t.error_rate) if t else NONE} | {t.logging_errors if t else NONE} | "
            f"{_ms(t.p50_ms if t else None)} | "
            f"{_ms(t.p95_ms if t else None)} | {_ms(t.p99_ms if t else None)} |"
        )
    lines.append("")
    if decision.checks:
        lines += ["| check | result | detail |", "|---|---|---|"]
        for c in decision.checks:
            mark = NONE if c.passed is None else ("✅" if c.passed else "❌")
            lines.append(f"| {inert(c.name)} | {mark} | {inert(c.detail, 300)} |")
        lines.append("")
    if decision.quality:
        lines += [
            "| quality (judged sample) | champion | challenger | Δ | 95% CI | samples |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for q in decision.quality:
            ci = f"{signed(q.ci[0])} … {signed(q.ci[1])}" if q.ci else NONE
            lines.append(
                f"| {code(q.metric)} | {num(q.champion)} | {num(q.challenger)} | "
                f"{signed(q.delta)} | {ci} | {q.samples[0]} / {q.samples[1]} |"
            )
        lines.append("")
    measured = [n for n in names if traffic[n].requests]
    if measured:
        rate_limit, p95_limit = _limits(rules, traffic.get(champion.name) if champion else None)
        lines += fold(
            "Charts: each served entity against the challenger's limits",
            [
                *limit_chart(
                    "Error rate (%) per served entity",
                    "%",
                    measured,
                    [100 * traffic[n].error_rate for n in measured],
                    rate_limit,
                ),
                "",
                *limit_chart(
                    "p95 latency (ms) per served entity",
                    "ms",
                    measured,
                    [traffic[n].p95_ms or 0.0 for n in measured],
                    p95_limit,
                ),
            ],
        )
    if plan is not None and plan.changes:
        lines += [*change_table(plan), ""]
    lines += notices_block(notices)
    return "\n".join(lines).rstrip("\n") + "\n"

"""The monitor report (job summary, monitor.md, the drift issue): the champion's window, each
drift rule with its interval, the input tests and what was done. A pure function of typed
values; untrusted text (reasons that quote the reference's label, action details from a
server) goes through `inert`."""

from __future__ import annotations

from collections.abc import Sequence

from genai_gate.backends.base import PublishedDashboard
from genai_gate.report.analysis import limit_chart
from genai_gate.report.markdown import NONE, code, fold, inert, link, num, pct, signed, unit_of
from genai_gate.report.plan import notices_block
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.rollout.monitoring import DriftCheck, MonitorDecision, Side, Taken
from genai_gate.rollout.plan import Entity

ICON = {"stable": "🟢", "drift": "🔴", "not enough traffic": "🟡"}
STATUS = {
    "ok": "✅ holds",
    "drift": "🔴 drift",
    "inconclusive": "🟡 inconclusive",
    "not enough traffic": "🟡 not enough traffic",
    "no reference": "— no reference",
}
OUTCOME = {"done": "✅", "skipped": "⏭️", "failed": "❌"}


def _ms(value: float | None) -> str:
    return NONE if value is None else f"{num(value)} ms"


def _value(check: DriftCheck, value: float | None) -> str:
    if value is None:
        return NONE
    if check.metric == "errors/rate":
        return pct(value)
    return num(value) + unit_of(check.metric)


def _ci(check: DriftCheck) -> str:
    if check.ci is None:
        return NONE
    scale = 100.0 if check.metric == "errors/rate" else 1.0
    return f"{signed(check.ci[0] * scale)} … {signed(check.ci[1] * scale)}"


def _delta(check: DriftCheck) -> str:
    if check.delta is None:
        return NONE
    if check.metric == "errors/rate":
        return f"{signed(100 * check.delta)} pt"
    return signed(check.delta) + unit_of(check.metric)


def check_rows(checks: Sequence[DriftCheck]) -> list[str]:
    lines = [
        "| rule | kind | now | reference | Δ | 95% CI | result |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c in checks:
        lines.append(
            f"| {code(c.metric)} {inert(c.rule)} | {c.kind} | {_value(c, c.value)} | "
            f"{_value(c, c.reference)} | {_delta(c)} | {_ci(c)} | {STATUS[c.status]} |"
        )
    return lines


def render_monitor(
    endpoint: str,
    champion: Entity,
    decision: MonitorDecision,
    traffic: EntityTraffic | None,
    *,
    window: str,
    reference: str,
    rules_source: str,
    actions: Sequence[Taken],
    notices: Sequence[str] = (),
    current: Side | None = None,
    ref_side: Side | None = None,
) -> str:
    head = f"## {ICON[decision.verdict]} genai-gate monitor {code(endpoint)}: {decision.verdict}"
    lines = [head, "", inert(decision.reason, 800), ""]
    lines += [
        f"Champion {code(champion.name)} ({inert(champion.label())}), window "
        f"{code(window)}; reference: {inert(reference, 200)}."
        + (" Rules: the defaults (see docs/monitor.md)." if rules_source == "defaults" else ""),
        "",
    ]
    if traffic is not None:
        lines += [
            "| requests | error rate | not logged | p50 | p95 | p99 |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {traffic.requests} | {pct(traffic.error_rate)} | {traffic.logging_errors} | "
            f"{_ms(traffic.p50_ms)} | {_ms(traffic.p95_ms)} | {_ms(traffic.p99_ms)} |",
            "",
        ]
    if decision.checks:
        lines += [*check_rows(decision.checks), ""]
    if decision.inputs:
        lines += [
            "| input test | statistic | p-value | prompts now / reference | median length "
            "now / reference |",
            "|---|---:|---:|---:|---:|",
        ]
        for t in decision.inputs:
            medians = (
                f"{num(t.current_summary)} / {num(t.reference_summary)}"
                if t.current_summary is not None or t.reference_summary is not None
                else NONE
            )
            lines.append(
                f"| {code(t.metric)} | {num(t.statistic)} | {num(t.pvalue)} | "
                f"{t.current} / {t.reference} | {medians} |"
            )
        lines.append("")
    if actions:
        lines += ["| action | outcome | detail |", "|---|---|---|"]
        for a in actions:
            detail = inert(a.detail, 300)
            if a.url:
                detail += f" ({link('link', a.url)})"
            lines.append(f"| {a.action} | {OUTCOME[a.outcome]} {a.outcome} | {detail} |")
        lines.append("")
    quality = [c for c in decision.checks if c.kind == "quality" and c.value is not None]
    if quality and current is not None:
        names, values = [], []
        for c in quality:
            names.append(f"{c.metric} now")
            values.append(c.value or 0.0)
            if c.reference is not None:
                names.append(f"{c.metric} reference")
                values.append(c.reference)
        lines += fold(
            "Chart: judged quality now and in the reference",
            limit_chart("Judged quality (mean score)", "score", names, values, None),
        )
    lines += notices_block(notices)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_dashboard(
    endpoint: str, published: PublishedDashboard, notices: Sequence[str] = ()
) -> str:
    lines = [
        f"## genai-gate dashboard {code(endpoint)}: {published.action}",
        "",
        f"AI/BI dashboard {code(published.name)} ({link('open', published.url)}), id "
        f"{code(published.dashboard_id)}.",
        "",
    ]
    if published.alerts:
        lines += ["| SQL alert | id | |", "|---|---|---|"]
        lines += [f"| {code(n)} | {code(i)} | {a} |" for n, i, a in published.alerts]
        lines.append("")
    lines += notices_block(notices)
    return "\n".join(lines).rstrip("\n") + "\n"

"""monitor.html: the monitor report as one self-contained page, for teams off Databricks.

No script, no stylesheet or font from elsewhere, no server: inline CSS and inline SVG
charts (judged quality now against the reference; the prompt-length distributions), so the
file opens from an artifact download. Every text that is not ours (labels, reasons, action
details) goes through `html.escape`, and the page's Content-Security-Policy forbids scripts
outright, so even a missed escape could not run one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from genai_gate.report.markdown import NONE, num, pct, signed
from genai_gate.rollout.drift import prompt_lengths
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.rollout.monitoring import DriftCheck, MonitorDecision, Side, Taken
from genai_gate.rollout.plan import Entity

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_COLOURS = {"now": "#d9480f", "reference": "#1c7ed6"}
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:64rem;color:#212529}
h1{font-size:1.4rem}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #dee2e6;padding:.3rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.drift{color:#c92a2a;font-weight:600}.ok{color:#2b8a3e}.open{color:#e67700}
.note{background:#f1f3f5;padding:.5rem 1rem;border-left:4px solid #adb5bd}
svg{display:block;margin:1rem 0}
"""
_CLASS = {"ok": "ok", "drift": "drift"}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: str, numeric: bool = False) -> str:
    return f'<td class="n">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


def _value(check: DriftCheck, value: float | None) -> str:
    if value is None:
        return NONE
    return pct(value) if check.metric == "errors/rate" else num(value)


def _bars(title: str, pairs: Sequence[tuple[str, float | None, float | None]]) -> str:
    """Grouped horizontal bars: each metric now and in the reference."""
    values = [v for _, a, b in pairs for v in (a, b) if v is not None]
    top = max([*values, 1e-9])
    row, width, left = 26, 360, 220
    height = row * 2 * len(pairs) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" '
        f'height="{height}" role="img" aria-label="{_e(title)}">',
        f'<text x="0" y="16" font-weight="600">{_e(title)}</text>',
    ]
    y = 30
    for name, now, ref in pairs:
        for label, value in (("now", now), ("reference", ref)):
            if value is None:
                y += row
                continue
            w = max(1.0, width * value / top)
            parts.append(
                f'<text x="0" y="{y + 16}">{_e(name)} ({label})</text>'
                f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
                f'fill="{_COLOURS[label]}"/>'
                f'<text x="{left + w + 6:.1f}" y="{y + 16}">{_e(num(value))}</text>'
            )
            y += row
    parts.append("</svg>")
    return "".join(parts)


def _histogram(current: Side, reference: Side | None) -> str:
    """The prompt-length distributions as shares of each side, on the same bins."""
    now = prompt_lengths(current.prompts)
    ref = prompt_lengths(reference.prompts) if reference is not None else np.array([])
    both = np.concatenate([now, ref])
    if not len(both):
        return ""
    edges = np.histogram_bin_edges(both, bins=min(20, max(1, len(np.unique(both)))))
    width, height, base = 640, 180, 200
    bins = len(edges) - 1
    step = width / bins
    series = [("now", now), ("reference", ref)]
    shares = [
        (label, np.histogram(values, bins=edges)[0] / max(1, len(values)))
        for label, values in series
        if len(values)
    ]
    top = max(float(s.max()) for _, s in shares) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 20}" height="{base + 40}" '
        'role="img" aria-label="prompt length distribution">',
        '<text x="0" y="16" font-weight="600">Prompt length (characters): share of prompts</text>',
    ]
    for k, (label, share) in enumerate(shares):
        for i, s in enumerate(share):
            h = height * float(s) / top
            x = i * step + k * step / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{step / 2 - 1:.1f}" '
                f'height="{h:.1f}" fill="{_COLOURS[label]}"><title>{_e(label)}: '
                f"{_e(num(edges[i]))}-{_e(num(edges[i + 1]))} chars, {_e(pct(float(s)))}"
                "</title></rect>"
            )
    parts.append(
        f'<text x="0" y="{base + 18}">{_e(num(edges[0]))}</text>'
        f'<text x="{width - 40}" y="{base + 18}">{_e(num(edges[-1]))}</text>'
        f'<text x="0" y="{base + 36}" fill="{_COLOURS["now"]}">■ now</text>'
        f'<text x="80" y="{base + 36}" fill="{_COLOURS["reference"]}">■ reference</text>'
        "</svg>"
    )
    return "".join(parts)


def render_monitor_html(
    endpoint: str,
    champion: Entity,
    decision: MonitorDecision,
    traffic: EntityTraffic | None,
    *,
    window: str,
    reference: str,
    actions: Sequence[Taken],
    notices: Sequence[str] = (),
    current: Side | None = None,
    ref_side: Side | None = None,
) -> str:
    title = f"genai-gate monitor {endpoint}: {decision.verdict}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="{_CLASS.get(decision.verdict, "open")}">{_e(decision.reason)}</p>',
        f"<p>Champion <code>{_e(champion.name)}</code> ({_e(champion.label())}), window "
        f"{_e(window)}; reference: {_e(reference)}.</p>",
    ]
    if traffic is not None:
        out.append(
            "<table><tr><th>requests</th><th>error rate</th><th>not logged</th><th>p50</th>"
            "<th>p95</th><th>p99</th></tr><tr>"
            + "".join(
                _cell(v, True)
                for v in (
                    str(traffic.requests),
                    pct(traffic.error_rate),
                    str(traffic.logging_errors),
                    f"{num(traffic.p50_ms)} ms",
                    f"{num(traffic.p95_ms)} ms",
                    f"{num(traffic.p99_ms)} ms",
                )
            )
            + "</tr></table>"
        )
    if decision.checks:
        out.append(
            "<table><tr><th>rule</th><th>kind</th><th>now</th><th>reference</th><th>Δ</th>"
            "<th>95% CI</th><th>result</th></tr>"
        )
        for c in decision.checks:
            ci = f"{signed(c.ci[0])} … {signed(c.ci[1])}" if c.ci else NONE
            out.append(
                "<tr>"
                + _cell(f"{c.metric} {c.rule}")
                + _cell(c.kind)
                + _cell(_value(c, c.value), True)
                + _cell(_value(c, c.reference), True)
                + _cell(signed(c.delta), True)
                + _cell(ci)
                + f'<td class="{_CLASS.get(c.status, "open")}" title="{_e(c.detail)}">'
                f"{_e(c.status)}</td></tr>"
            )
        out.append("</table>")
    quality = [(c.metric, c.value, c.reference) for c in decision.checks if c.kind == "quality"]
    if quality:
        out.append(_bars("Judged quality (mean score)", quality))
    if current is not None and current.prompts:
        out.append(_histogram(current, ref_side))
    if decision.inputs:
        out.append(
            "<table><tr><th>input test</th><th>statistic</th><th>p-value</th>"
            "<th>prompts now / reference</th></tr>"
        )
        for t in decision.inputs:
            out.append(
                "<tr>"
                + _cell(t.metric)
                + _cell(num(t.statistic), True)
                + _cell(num(t.pvalue), True)
                + _cell(f"{t.current} / {t.reference}", True)
                + "</tr>"
            )
        out.append("</table>")
    if actions:
        out.append("<table><tr><th>action</th><th>outcome</th><th>detail</th></tr>")
        for a in actions:
            out.append("<tr>" + _cell(a.action) + _cell(a.outcome) + _cell(a.detail) + "</tr>")
        out.append("</table>")
    if notices:
        out.append(
            '<div class="note"><ul>' + "".join(f"<li>{_e(n)}</li>" for n in notices) + "</ul></div>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"

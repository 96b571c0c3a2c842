"""summary.md: the verdict, the gated metrics, the failures and the worst rows, as Markdown.

Pure: it takes the results document and returns a string, so tests read it as text. With a
baseline the gated table gains candidate, baseline, Δ and 95% CI columns, the other metrics
show their deltas, and the rows that got worse are listed, folded, with both answers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from genai_gate.compare import RowChange
from genai_gate.report.results import row_record
from genai_gate.results import BaselineDoc, CheckDoc, ResultsDoc, RowResult
from genai_gate.thresholds import ABSOLUTE_OPS

_CELL_MAX = 120


def cell(value: Any, limit: int = _CELL_MAX) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # a pipe would end the cell; backticks and angle brackets would start markup; model
    # output must not @-mention people or link issues from a PR comment
    text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")
    text = text.replace("[", "&#91;").replace("]", "&#93;")
    return _MENTION.sub(lambda m: m.group(1) + "&#8203;", text)


_MENTION = re.compile(r"([@#])(?=[\w-])")


def fence_for(text: str, char: str = "`") -> str:
    """A code fence longer than any run of the fence character inside `text`."""
    longest = max((len(m.group(0)) for m in re.finditer(re.escape(char) + "+", text)), default=0)
    return char * max(3, longest + 1)


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) >= 10:
        return f"{int(value)}"
    return f"{value:.4g}"


_STATUS = {
    "passed": "✅ pass",
    "failed": "❌ fail",
    "improved": "✅ improved",
    "within-max-drop": "✅ within max-drop",
    "regressed": "❌ regressed",
    "no-baseline": "❌ no baseline",
}


def rule_text(check: CheckDoc) -> str:
    """`>= 0.8`, `max-drop 0.02`, `max-drop-pct 5%`, `must-improve`."""
    op = str(check["op"])
    if op == "must-improve":
        return op
    unit = "%" if op == "max-drop-pct" else ""
    return f"{op} {fmt(check['threshold'])}{unit}"


def status_text(check: CheckDoc) -> str:
    status = str(check.get("status") or ("passed" if check["passed"] else "failed"))
    if status == "inconclusive":
        return "⚠️ inconclusive, passes" if check["passed"] else "❌ inconclusive"
    return _STATUS.get(status, status)


def fmt_delta(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4g}"


def fmt_ci(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"{ci[0]:+.4g} … {ci[1]:+.4g}"


def _chart(checks: Sequence[CheckDoc], title: str, top: float) -> list[str]:
    names = ", ".join(json.dumps(c["metric"]) for c in checks)
    values = ", ".join(f"{(c['value'] if c['value'] is not None else 0):.6g}" for c in checks)
    limits = ", ".join(f"{c['threshold']:.6g}" for c in checks)
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{title}"',
        f"    x-axis [{names}]",
        f'    y-axis "value" 0 --> {top:.6g}',
        f"    bar [{values}]",
        f"    line [{limits}]",
        "```",
    ]


def mermaid_charts(checks: Sequence[CheckDoc]) -> list[str]:
    """Bars are the metrics, the line is the thresholds; 0-1 scores and the rest apart.
    Rules against the baseline have no line to draw, so they are left out."""
    checks = [c for c in checks if c["op"] in ABSOLUTE_OPS]
    unit = [c for c in checks if 0 <= c["threshold"] <= 1 and (c["value"] or 0) <= 1]
    other = [c for c in checks if c not in unit]
    lines: list[str] = []
    if unit:
        lines += _chart(unit, "Scores (bars) against thresholds (line)", 1.0)
    if other:
        top = max(max(c["threshold"], c["value"] or 0) for c in other) * 1.2 or 1.0
        lines += ["", *_chart(other, "Other gated metrics (bars) against thresholds (line)", top)]
    return lines


def _gated_table(doc: ResultsDoc) -> list[str]:
    if doc.get("baseline") is None:
        lines = ["| metric | value | threshold | status |", "|---|---:|---|---|"]
        for c in doc["checks"]:
            lines.append(
                f"| `{c['metric']}` | {fmt(c['value'])} | {rule_text(c)} | {status_text(c)} |"
            )
        return lines
    lines = [
        "| metric | candidate | baseline | Δ | 95% CI | threshold | status |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for c in doc["checks"]:
        lines.append(
            f"| `{c['metric']}` | {fmt(c['value'])} | {fmt(c.get('baseline'))} | "
            f"{fmt_delta(c.get('delta'))} | {fmt_ci(c.get('ci'))} | {rule_text(c)} | "
            f"{status_text(c)} |"
        )
    return lines


def _other_metrics(doc: ResultsDoc, gated: set[str]) -> list[str]:
    base = doc.get("baseline")
    if base is None:
        others = {k: v for k, v in doc["metrics"].items() if k not in gated}
        if not others:
            return []
        rows = [f"| `{k}` | {fmt(v)} |" for k, v in others.items()]
        head = ["| metric | value |", "|---|---:|"]
    else:
        compared = [c for c in base["comparisons"] if c["metric"] not in gated]
        if not compared:
            return []
        head = ["| metric | candidate | baseline | Δ | 95% CI |", "|---|---:|---:|---:|---|"]
        rows = [
            f"| `{c['metric']}` | {fmt(c['candidate'])} | {fmt(c['baseline'])} | "
            f"{fmt_delta(c['delta'])} | {fmt_ci(c['ci'])} |"
            for c in compared
        ]
    return ["<details><summary>All metrics</summary>", "", *head, *rows, "", "</details>", ""]


def _scores(row: RowResult, names: Sequence[str]) -> str:
    if row.error:
        return f"model error: {row.error}"
    return ", ".join(f"{k} {fmt(row.scores.get(k))}" for k in names)


def _regressions(baseline: BaselineDoc, changes: Sequence[RowChange]) -> list[str]:
    total = baseline["regressed_rows"]
    shown = f"{len(changes)} of {total}" if total > len(changes) else f"{total}"
    lines = [
        f"<details><summary>Rows that got worse than the baseline ({shown})</summary>",
        "",
        "| row | inputs | baseline output | candidate output | baseline scores | "
        "candidate scores |",
        "|---|---|---|---|---|---|",
    ]
    for change in changes:
        cand, base = change.candidate, change.baseline
        # the scorers it got worse on; for a candidate's error, whatever the baseline scored
        names = [n for n in change.worse if n != "model error"] or sorted(base.scores)
        lines.append(
            f"| {cell(cand.where)} | {cell(cand.inputs)} | {cell(base.outputs)} | "
            f"{cell(cand.outputs)} | {cell(_scores(base, names))} | "
            f"{cell(_scores(cand, names))} |"
        )
    return [*lines, "", "</details>", ""]


def render_summary(
    doc: ResultsDoc,
    worst: Sequence[RowResult],
    *,
    config_yaml: str | None = None,
    regressions: Sequence[RowChange] = (),
) -> str:
    passed = doc["passed"]
    icon, word = ("✅", "passed") if passed else ("❌", "failed")
    ds = doc["dataset"]
    lines = [
        f"## {icon} genai-gate: {word}",
        "",
        f"**Model** `{cell(doc['model'], 200)}` · **Data** `{cell(ds['path'], 200)}` "
        f"({ds['rows']} rows, `{doc['dataset_digest'][:19]}`)"
        + (
            f" · **MLflow run** [{doc['run_id']}]({doc['run_url']})"
            if doc.get("run_url")
            else (f" · **MLflow run** `{doc['run_id']}`" if doc.get("run_id") else "")
        ),
        "",
    ]
    base = doc.get("baseline")
    if base is not None:
        lines += [
            f"**Baseline** `{cell(base['label'], 300)}` · {base['pairs']} of {ds['rows']} rows "
            "paired",
            "",
        ]
    if doc["checks"]:
        lines += [*_gated_table(doc), ""]
        charts = mermaid_charts(doc["checks"])
        if charts:
            lines += ["<details><summary>Chart</summary>", "", *charts, "", "</details>", ""]
    else:
        lines += ["_No thresholds are configured: the gate checks only for errors._", ""]
    errors = doc["errors"]
    lines.append(f"Rows with errors: **{errors['rows']}** (max-errors allows {errors['allowed']}).")
    cache = doc.get("cache") or {}
    if cache.get("hits"):
        # replayed answers are the model's answers from an earlier run; say so
        lines.append(
            f"Model answers from the response cache: **{cache['hits']}** of "
            f"{cache['hits'] + cache.get('misses', 0)} (`cache: false` to call the model anew)."
        )
    lines.append("")
    if doc["failures"]:
        lines += ["### Why it failed", ""]
        lines += [f"- {cell(f, 400)}" for f in doc["failures"]]
        lines.append("")
    lines += _other_metrics(doc, {c["metric"] for c in doc["checks"]})
    if base is not None and regressions:
        lines += _regressions(base, regressions)
    if worst:
        lines += [
            f"<details><summary>Worst {len(worst)} rows</summary>",
            "",
            "| row | inputs | output | expected | scores or error |",
            "|---|---|---|---|---|",
        ]
        for r in worst:
            rec = row_record(r)
            if r.error:
                detail = f"model error: {r.error}"
            elif r.scorer_errors:
                detail = "; ".join(f"{k}: {v}" for k, v in r.scorer_errors.items())
            else:
                detail = ", ".join(f"{k} {fmt(v)}" for k, v in r.scores.items())
            expected = (r.expectations or {}).get("expected_response", r.expectations)
            lines.append(
                f"| {cell(rec['row'])} | {cell(r.inputs)} | {cell(r.outputs)} | "
                f"{cell(expected)} | {cell(detail)} |"
            )
        lines += ["", "</details>", ""]
    if config_yaml:
        fence = fence_for(config_yaml)
        lines += ["<details><summary>Effective config</summary>", "", f"{fence}yaml"]
        lines += [config_yaml.rstrip("\n"), fence, "", "</details>", ""]
    if doc["notices"]:
        lines += ["> [!NOTE]"] + [f"> {cell(n, 400)}" for n in doc["notices"]] + [""]
    return "\n".join(lines)


def render_error(title: str, message: str, *, command: str) -> str:
    """The summary when the run could not reach a verdict (exit 2, 3 or 4)."""
    fence = fence_for(message, "~")
    return "\n".join(
        [
            f"## ⚠️ genai-gate: error in `{command}`",
            "",
            f"**{cell(title, 200)}**",
            "",
            f"{fence}text",
            message,
            fence,
            "",
        ]
    )

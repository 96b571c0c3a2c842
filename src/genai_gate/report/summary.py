"""summary.md: the verdict, the gated metrics, the failures and the worst rows, as Markdown.

Pure: it takes the results document and returns a string, so tests read it as text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from genai_gate.evaluate import RowResult
from genai_gate.report.results import row_record

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


def _chart(checks: Sequence[dict[str, Any]], title: str, top: float) -> list[str]:
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


def mermaid_charts(checks: Sequence[dict[str, Any]]) -> list[str]:
    """Bars are the metrics, the line is the thresholds; 0-1 scores and the rest apart."""
    unit = [c for c in checks if 0 <= c["threshold"] <= 1 and (c["value"] or 0) <= 1]
    other = [c for c in checks if c not in unit]
    lines: list[str] = []
    if unit:
        lines += _chart(unit, "Scores (bars) against thresholds (line)", 1.0)
    if other:
        top = max(max(c["threshold"], c["value"] or 0) for c in other) * 1.2 or 1.0
        lines += ["", *_chart(other, "Other gated metrics (bars) against thresholds (line)", top)]
    return lines


def render_summary(
    doc: dict[str, Any], worst: Sequence[RowResult], *, config_yaml: str | None = None
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
    if doc["checks"]:
        lines += ["| metric | value | threshold | status |", "|---|---:|---|---|"]
        for c in doc["checks"]:
            status = "✅ pass" if c["passed"] else "❌ fail"
            lines.append(
                f"| `{c['metric']}` | {fmt(c['value'])} | {c['op']} {fmt(c['threshold'])}"
                f" | {status} |"
            )
        lines.append("")
        lines += ["<details><summary>Chart</summary>", "", *mermaid_charts(doc["checks"])]
        lines += ["", "</details>", ""]
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
    gated = {c["metric"] for c in doc["checks"]}
    others = {k: v for k, v in doc["metrics"].items() if k not in gated}
    if others:
        lines += ["<details><summary>All metrics</summary>", "", "| metric | value |", "|---|---:|"]
        lines += [f"| `{k}` | {fmt(v)} |" for k, v in others.items()]
        lines += ["", "</details>", ""]
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

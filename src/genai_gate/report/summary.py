"""summary.md: the verdict, what failed and why, the gated metrics, then folded detail.

Pure: it takes the results document and returns Markdown. The order is what a reviewer
reads in five seconds: the verdict; the commit and the links; the failures in plain words
(the statistics after); one row per gated metric, failures first, each against its own
threshold. Everything longer (other metrics, rows, the baseline chart, the config) is folded,
and the PR comment leaves the folds out (markdown.brief).
"""

from __future__ import annotations

from collections.abc import Sequence

from genai_gate.compare import RowChange
from genai_gate.github import RunLinks
from genai_gate.report.header import context_line, display_path
from genai_gate.report.markdown import (
    MINUS,
    NONE,
    bar,
    code,
    fold,
    inert,
    is_latency,
    num,
    plain,
    signed,
    unit_of,
    value_text,
)
from genai_gate.results import BaselineDoc, CheckDoc, ComparisonDoc, ResultsDoc, RowResult
from genai_gate.thresholds import ABSOLUTE_OPS

_CELL_MAX = 120


def cell(value: object, limit: int = _CELL_MAX) -> str:
    """Untrusted text for a table cell (kept for the other renderers; see markdown.inert)."""
    return inert(value, limit)


def fence_for(text: str, char: str = "`") -> str:
    """A code fence longer than any run of the fence character inside `text`."""
    longest = 0
    run = 0
    for ch in text:
        run = run + 1 if ch == char else 0
        longest = max(longest, run)
    return char * max(3, longest + 1)


def fmt(value: float | None) -> str:
    return num(value)


def fmt_delta(value: float | None) -> str:
    return signed(value)


def fmt_ci(ci: Sequence[float] | None) -> str:
    return NONE if not ci else f"{signed(ci[0])} … {signed(ci[1])}"


_OP = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def rule_text(check: CheckDoc) -> str:
    """`≥ 0.8`, `≤ 900 ms`, `max-drop 0.02`, `max-drop-pct 5%`, `must-improve`."""
    op = str(check["op"])
    if op == "must-improve":
        return op
    if op in _OP:
        return f"{_OP[op]} {value_text(check['metric'], check['threshold'])}"
    unit = "%" if op == "max-drop-pct" else unit_of(check["metric"])
    return f"{op} {num(check['threshold'])}{unit}"


_ICON = {
    "passed": "✅",
    "failed": "❌",
    "improved": "✅",
    "within-max-drop": "✅",
    "regressed": "❌",
    "no-baseline": "❌",
}


def status_icon(check: CheckDoc) -> str:
    status = str(check.get("status") or ("passed" if check["passed"] else "failed"))
    if status == "inconclusive":
        return "⚠️" if check["passed"] else "❌"
    return _ICON.get(status, "✅" if check["passed"] else "❌")


def status_text(check: CheckDoc) -> str:
    status = str(check.get("status") or ("passed" if check["passed"] else "failed"))
    words = {"passed": "pass", "failed": "fail", "within-max-drop": "within max-drop"}
    if status == "inconclusive":
        return "⚠️ inconclusive, passes" if check["passed"] else "❌ inconclusive"
    return f"{status_icon(check)} {words.get(status, status.replace('-', ' '))}"


# ---------------------------------------------------------------- plain words


def _better(doc: ResultsDoc, check: CheckDoc) -> str:
    for t in doc["thresholds"]:
        if t["metric"] == check["metric"] and t["op"] == check["op"]:
            return t.get("better", "higher")
    return "higher"


def _scaled(metric: str, base: float | None, cand: float | None) -> tuple[float, str]:
    """How a change reads: 0-1 scores in points (times 100), latency in ms, the rest as is."""
    if is_latency(metric):
        return 1.0, " ms"
    values = [v for v in (base, cand) if v is not None]
    if values and all(0 <= v <= 1 for v in values):
        return 100.0, " points"
    return 1.0, ""


def plain_reason(doc: ResultsDoc, check: CheckDoc) -> str:
    """What failed, in words a reviewer reads at a glance (our own Markdown)."""
    m = inert(check["metric"])
    value, op, limit = check["value"], check["op"], check["threshold"]
    if op in ABSOLUTE_OPS:
        if value is None:
            return f"{m} was not produced: no row could be scored for it"
        side = "below the minimum" if op in (">=", ">") else "above the maximum"
        return (
            f"{m} is {value_text(check['metric'], value)}, {side} of "
            f"{value_text(check['metric'], limit)}"
        )
    base, delta = check["baseline"], check["delta"]
    if check.get("status") == "no-baseline" or value is None or base is None or delta is None:
        return f"{m} could not be compared with the baseline"
    if op == "must-improve":
        return f"{m} did not improve significantly, and must-improve asks for that"
    higher = _better(doc, check) == "higher"
    worse = -delta if higher else delta
    verb = ("fell" if higher else "rose") if worse > 0 else ("rose" if higher else "fell")
    if op == "max-drop-pct":
        allowed = abs(base) * limit / 100
        change = f"{num(100 * abs(delta) / abs(base)) if base else NONE}%"
        allowance = f"{num(limit)}%"
    else:
        scale, unit = _scaled(check["metric"], base, value)
        allowed = limit
        change = f"{num(scale * abs(delta))}{unit}"
        allowance = num(scale * limit)
    inconclusive = check.get("status") == "inconclusive"
    if worse > allowed:
        tail = f"more than the {allowance} allowed"
        return f"{m} {verb} {change}, {tail}" + (" (not conclusive)" if inconclusive else "")
    return f"{m} {verb} {change}; the interval reaches past the {allowance} allowed"


def _stats(check: CheckDoc, pairs: int | None) -> str:
    if check["op"] in ABSOLUTE_OPS:
        return ""
    parts = [f"Δ {signed(check['delta'])}"]
    if check["ci"]:
        parts.append(f"95% CI {fmt_ci(check['ci'])}")
    if pairs is not None:
        parts.append(f"{pairs} pairs")
    return ", ".join(parts)


def _pairs(doc: ResultsDoc) -> dict[str, int]:
    base = doc.get("baseline")
    return {c["metric"]: c["pairs"] for c in base["comparisons"]} if base else {}


def failure_lines(doc: ResultsDoc) -> list[str]:
    """One list item per failure: plain words in bold, then the numbers behind them."""
    failed = [c for c in doc["checks"] if not c["passed"]]
    pairs = _pairs(doc)
    lines = []
    for c in failed:
        stats = _stats(c, pairs.get(c["metric"]))
        lines.append(f"- **{plain_reason(doc, c)}.**" + (f" {stats}." if stats else ""))
    # the verdict's other failures (rows that errored, no rows) follow the checks' reasons
    for text in doc["failures"][len(failed) :]:
        lines.append(f"- {inert(text, 400)}")
    return lines


# ---------------------------------------------------------------- the gated table


def _grouped(checks: Sequence[CheckDoc]) -> list[list[CheckDoc]]:
    """One group per metric, the failing metrics first, each in the config's order."""
    groups: dict[str, list[CheckDoc]] = {}
    for c in checks:
        groups.setdefault(c["metric"], []).append(c)
    return sorted(groups.values(), key=lambda g: all(c["passed"] for c in g))


def _margin(group: Sequence[CheckDoc]) -> str:
    """How far the value is from its threshold, in the metric's unit, and for 0-1 scores a
    bar on 0..1 with the threshold as `│`. A 2 ms latency under an 800 ms limit reads
    "798 ms to spare", where a shared chart axis showed an empty bar."""
    absolute = [c for c in group if c["op"] in ABSOLUTE_OPS]
    value = group[0]["value"]
    if not absolute or value is None:
        return ""
    metric, limit, op = group[0]["metric"], absolute[0]["threshold"], absolute[0]["op"]
    room = value - limit if op in (">=", ">") else limit - value
    words = f"{num(abs(room))}{unit_of(metric)} {'to spare' if room >= 0 else 'short'}"
    if 0 <= value <= 1 and 0 <= limit <= 1 and not is_latency(metric):
        return f"`{bar(value, limit, 1.0)}` {words}"
    return words


def _rules(group: Sequence[CheckDoc]) -> str:
    return " · ".join(f"{rule_text(c)} {status_icon(c)}" for c in group)


def gated_table(doc: ResultsDoc) -> list[str]:
    groups = _grouped(doc["checks"])
    if doc.get("baseline") is None:
        lines = ["| | metric | value | needs | margin |", "|---|---|---:|---|---|"]
        for g in groups:
            icon = "✅" if all(c["passed"] for c in g) else "❌"
            lines.append(
                f"| {icon} | {code(g[0]['metric'])} | "
                f"{value_text(g[0]['metric'], g[0]['value'])} | {_rules(g)} | {_margin(g)} |"
            )
        return lines
    lines = [
        "| | metric | candidate | baseline | Δ (95% CI) | rules |",
        "|---|---|---:|---:|---|---|",
    ]
    for g in groups:
        c = g[0]
        icon = "✅" if all(x["passed"] for x in g) else "❌"
        delta = signed(c["delta"]) + unit_of(c["metric"]) if c["delta"] is not None else NONE
        ci = f" ({fmt_ci(c['ci'])})" if c["ci"] else ""
        lines.append(
            f"| {icon} | {code(c['metric'])} | {value_text(c['metric'], c['value'])} "
            f"| {value_text(c['metric'], c['baseline'])} | {delta}{ci} | {_rules(g)} |"
        )
    return lines


# ---------------------------------------------------------------- the baseline chart


def _interval_row(c: CheckDoc, higher: bool, width: int = 31) -> str:
    """One rule as a line: the interval `━`, the estimate `●`, no change `│` and the most
    it may fall `┆`, oriented so that worse is always to the left."""
    sign = 1.0 if higher else -1.0
    assert c["delta"] is not None
    d = sign * c["delta"]
    lo, hi = sorted(sign * x for x in c["ci"]) if c["ci"] else (d, d)
    floor = -c["threshold"] if c["op"] == "max-drop" else None
    if c["op"] == "max-drop-pct" and c["baseline"]:
        floor = -abs(c["baseline"]) * c["threshold"] / 100
    points = [lo, hi, 0.0, *([floor] if floor is not None else [])]
    left, right = min(points), max(points)
    pad = (right - left) * 0.1 or 1.0
    left, right = left - pad, right + pad

    def at(x: float) -> int:
        return max(0, min(width - 1, round((x - left) / (right - left) * (width - 1))))

    cells = ["─"] * width
    for i in range(at(lo), at(hi) + 1):
        cells[i] = "━"
    if floor is not None:
        cells[at(floor)] = "┆"
    cells[at(0.0)] = "│"
    cells[at(d)] = "●"
    return "".join(cells)


def baseline_chart(doc: ResultsDoc) -> list[str]:
    """Each rule against the baseline: its Δ and 95% CI against minus max-drop. Per rule on its
    own scale, so a latency rule and a score rule do not squash each other."""
    rules = [c for c in doc["checks"] if c["op"] not in ABSOLUTE_OPS and c["delta"] is not None]
    if not rules:
        return []
    width = max(len(c["metric"]) for c in rules)
    lines = ["```text", f"worse ←  ━ 95% CI  ● Δ  │ no change  ┆ {MINUS}max-drop  → better"]
    for c in rules:
        limit = f"{c['op']} {num(c['threshold'])}{'%' if c['op'] == 'max-drop-pct' else ''}"
        lines.append(
            f"{plain(c['metric']):<{width}}  {_interval_row(c, _better(doc, c) == 'higher')}  "
            f"Δ {signed(c['delta'])}{unit_of(c['metric'])}  {limit}  {status_icon(c)}"
        )
    fence = fence_for("\n".join(lines[1:]))
    lines[0] = f"{fence}text"
    return [*lines, fence]


# ---------------------------------------------------------------- folds


def _other_metrics(doc: ResultsDoc, gated: set[str]) -> list[str]:
    base = doc.get("baseline")
    if base is None:
        others = {k: v for k, v in doc["metrics"].items() if k not in gated}
        if not others:
            return []
        head = ["| metric | value |", "|---|---:|"]
        rows = [f"| {code(k)} | {value_text(k, v)} |" for k, v in others.items()]
    else:
        compared: list[ComparisonDoc] = [c for c in base["comparisons"] if c["metric"] not in gated]
        if not compared:
            return []
        head = [
            "| metric | candidate | baseline | Δ (95% CI) | pairs |",
            "|---|---:|---:|---|---:|",
        ]
        rows = [
            f"| {code(c['metric'])} | {value_text(c['metric'], c['candidate'])} | "
            f"{value_text(c['metric'], c['baseline'])} | {signed(c['delta'])}"
            + (f" ({fmt_ci(c['ci'])})" if c["ci"] else "")
            + f" | {c['pairs']} |"
            for c in compared
        ]
    return fold("All metrics", [*head, *rows])


def _moved(base: RowResult, cand: RowResult, names: Sequence[str]) -> str:
    def one(row: RowResult, name: str) -> str:
        return "model error" if row.error else value_text(name, row.scores.get(name))

    return ", ".join(f"{k} {one(base, k)} → {one(cand, k)}" for k in names)


def _answer(row: RowResult) -> str:
    if row.error:
        return f"_no answer: model error_ ({inert(row.error, 80)})"
    return inert(row.outputs, 100) if row.outputs is not None else NONE


def _regressions(baseline: BaselineDoc, changes: Sequence[RowChange]) -> list[str]:
    """Three columns, so the table fits a PR comment's width: the row, how its scores
    moved, and what was asked and answered on each side."""
    total = baseline["regressed_rows"]
    shown = f"{len(changes)} of {total}" if total > len(changes) else f"{total}"
    lines = ["| row | scores: baseline → candidate | question and answers |", "|---|---|---|"]
    for change in changes:
        cand, base = change.candidate, change.baseline
        names = [n for n in change.worse if n != "model error"] or sorted(base.scores)
        moved = inert(_moved(base, cand, names))
        texts = (
            f"**asked** {inert(cand.inputs, 100)}<br>**baseline** {_answer(base)}<br>"
            f"**candidate** {_answer(cand)}"
        )
        lines.append(f"| {inert(cand.where)} | {moved} | {texts} |")
    return fold(f"Rows that got worse than the baseline ({shown})", lines)


def _worst(worst: Sequence[RowResult]) -> list[str]:
    lines = ["| row | input | output | expected | scores or error |", "|---|---|---|---|---|"]
    for r in worst:
        if r.error:
            detail = f"model error: {r.error}"
        elif r.scorer_errors:
            detail = "; ".join(f"{k}: {v}" for k, v in r.scorer_errors.items())
        else:
            detail = ", ".join(f"{k} {value_text(k, v)}" for k, v in r.scores.items())
        expected = (r.expectations or {}).get("expected_response", r.expectations)
        output = "_model error_" if r.error else inert(r.outputs) if r.outputs is not None else NONE
        exp = inert(expected) if expected is not None else NONE
        lines.append(
            f"| {inert(r.where)} | {inert(r.inputs)} | {output} | {exp} | {inert(detail)} |"
        )
    return fold(f"Worst {len(worst)} rows", lines)


def _config(config_yaml: str) -> list[str]:
    fence = fence_for(config_yaml)
    body = [f"{fence}yaml", config_yaml.rstrip("\n"), fence]
    return fold("Config (the keys set; the rest are defaults)", body)


def _notices(notices: Sequence[str]) -> list[str]:
    if not notices:
        return []
    # a list, so that several notices do not run together as one paragraph
    return ["> [!NOTE]", *(f"> - {inert(n, 400)}" for n in notices), ""]


def _baseline_line(doc: ResultsDoc, base: BaselineDoc) -> str:
    rows = doc["dataset"]["rows"]
    used = sorted({c["pairs"] for c in base["comparisons"]})
    paired = f"{base['pairs']} of {rows} rows paired by input"
    if used and used != [base["pairs"]]:
        span = f"{used[0]}" if len(used) == 1 else f"{used[0]} to {used[-1]}"
        dropped = base["pairs"] - used[0]
        paired += (
            f"; each Δ uses {span} pairs ({dropped} left out: a row errored or went unscored "
            "on one side)"
        )
    return f"**Baseline** {inert(base['label'], 200, code=True)} · {paired}"


def render_summary(
    doc: ResultsDoc,
    worst: Sequence[RowResult],
    *,
    config_yaml: str | None = None,
    regressions: Sequence[RowChange] = (),
    links: RunLinks | None = None,
) -> str:
    passed = doc["passed"]
    icon, word = ("✅", "passed") if passed else ("❌", "failed")
    links = links or RunLinks()
    ds = doc["dataset"]
    lines = [f"## {icon} genai-gate: {word}", ""]
    lines += [context_line(links, doc), ""]
    digest = doc["dataset_digest"].removeprefix("sha256:")[:12]
    data_path = display_path(ds["path"], links.workspace)
    what = (
        f"**Model** {inert(doc['model'], 200, code=True)} · "
        f"**Data** {inert(data_path, 200, code=True)} ({ds['rows']} rows, sha256 `{digest}`)"
    )
    lines += [what, ""]
    base = doc.get("baseline")
    if base is not None:
        lines += [_baseline_line(doc, base), ""]
    if doc["failures"]:
        lines += ["### What failed", "", *failure_lines(doc), ""]
    if doc["checks"]:
        lines += [*gated_table(doc), ""]
    else:
        lines += ["_No thresholds are configured: the gate checks only for errors._", ""]
    errors = doc["errors"]
    share = errors["rows"] / ds["rows"] if ds["rows"] else 0.0
    lines.append(
        f"Rows with errors: **{errors['rows']}** of {ds['rows']} ({num(100 * share)}%); "
        f"max-errors allows {errors['allowed']}."
    )
    cache = doc.get("cache") or {}
    if cache.get("hits"):
        # replayed answers are the model's answers from an earlier run; say so
        lines.append(
            f"Model answers from the response cache: **{cache['hits']}** of "
            f"{cache['hits'] + cache.get('misses', 0)} (`cache: false` to call the model anew)."
        )
    lines.append("")
    lines += _notices(doc["notices"])
    chart = baseline_chart(doc)
    if chart:
        lines += fold("Δ against the baseline, with 95% CI", chart)
    lines += _other_metrics(doc, {c["metric"] for c in doc["checks"]})
    if base is not None and regressions:
        lines += _regressions(base, regressions)
    if worst:
        lines += _worst(worst)
    if config_yaml:
        lines += _config(config_yaml)
    lines += [footer(), ""]
    return "\n".join(lines)


def footer() -> str:
    return (
        "<sub>Full report: this job's summary, and results.json, rows.jsonl and summary.md in "
        "the run's genai-gate artifact.</sub>"
    )


def render_error(title: str, message: str, *, command: str) -> str:
    """The summary when the run could not reach a verdict (exit 2, 3 or 4)."""
    fence = fence_for(message, "~")
    return "\n".join(
        [
            f"## ⚠️ genai-gate: error in `{command}`",
            "",
            f"**{inert(title, 200)}**",
            "",
            f"{fence}text",
            message,
            fence,
            "",
        ]
    )

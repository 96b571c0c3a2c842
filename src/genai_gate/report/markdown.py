"""The Markdown building blocks every report uses: escaping, numbers, links, folds, and
cutting a report to fit a PR comment.

Two kinds of text reach a report. Text from a model, a dataset, a server or a file path is
untrusted: `inert()` turns it into text that GitHub shows exactly as written (no emphasis, no
links, no HTML, no entities, no @-mentions or #-references), the same way in a table cell, a
paragraph, a list item and the body of a fold. Our own Markdown goes through `ours()`, which
only makes it fit on one table line. Nothing else escapes.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

from genai_gate.github import COMMENT_LIMIT

NONE = "—"  # the one placeholder for "no value" in every report
MINUS = "\u2212"  # a real minus sign: as wide as the plus sign, so numbers line up
# GitHub links @user and #123 in text (never inside <code>); a zero-width space after the
# sign breaks the match while the text reads the same
_MENTION = re.compile(r"(\\[@#])(?=\w)")
_ZWSP = "\u200b"


def plain(value: Any) -> str:
    """A value as one line of text: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return " ".join(text.split())


def inert(value: Any, limit: int = 120, *, code: bool = False) -> str:
    """Untrusted text, shown literally wherever inline Markdown goes.

    Every character that can start inline markup is backslash-escaped, as CommonMark
    defines: `*` `_` `[` `]` `<` `>` `&` `|` (also in a table cell) `` ` `` `!` `~` `$`
    (GitHub's math), `:` and the dot of `www.` (no URL autolinks), `@` and `#`, and a list
    or heading marker at the start. No entity is written, so nothing can show as `&#91;`.
    With `code`, the text is set in `<code>`: monospace, and exempt from mentions, so a model
    URI such as `models:/bot@champion` copies as written.
    """
    text = plain(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    out = _SPECIAL.sub(r"\\\g<0>", text)
    out = _WWW.sub(r"\g<1>\\.", out)
    out = _LEADING.sub(lambda m: m.group(1) + "\\" + m.group(2), out)
    if code:
        return f"<code>{out}</code>" if out else NONE
    return _MENTION.sub(lambda m: m.group(1) + _ZWSP, out)


_SPECIAL = re.compile(r"[\\`*_\[\]<>&|!~$:@#()]")
_WWW = re.compile(r"(?i)(\bwww)\.")
# a line that starts with `-`, `+`, `=` or `1.` would be a list, a rule or a heading
_LEADING = re.compile(r"^(\d*)([-+=.])")


def code(name: str) -> str:
    """One of our identifiers (a metric, an endpoint, a served entity, a config key) as a
    code span: inert by construction (no links, emphasis or mentions inside code). The
    delimiter outgrows any backtick run inside; a pipe is escaped for table cells, which is
    where names go (endpoint and entity names cannot hold one)."""
    text = " ".join(name.split()).replace("|", "\\|")
    longest = max((len(m.group(0)) for m in re.finditer("`+", text)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{tick}{pad}{text}{pad}{tick}" if text else NONE


def ours(markdown: str) -> str:
    """Our own Markdown in a table cell: one line, and a pipe does not end the cell."""
    return " ".join(markdown.split()).replace("|", "\\|")


def link(text: str, url: str | None) -> str:
    """A link we make (a workflow run, an MLflow run); anything but http(s) stays text."""
    if not url or not re.match(r"https?://", url):
        return inert(text)
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return f"[{inert(text)}](<{target}>)"


def fold(summary: str, body: Sequence[str]) -> list[str]:
    """A closed `<details>` block. The blank lines around the body let Markdown render
    inside it and let whatever follows render too (a heading after `</details>` with no
    blank line is swallowed into the HTML block)."""
    return [
        f"<details><summary>{html.escape(summary, quote=False)}</summary>",
        "",
        *body,
        "",
        "</details>",
        "",
    ]


# ---------------------------------------------------------------- numbers


def num(value: float | None) -> str:
    """3 significant digits; whole numbers from 100 up as integers; float noise is 0."""
    if value is None:
        return NONE
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else MINUS + "∞")
    if abs(value) < 1e-9:
        return "0"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
        if "e" in text:
            text = f"{value:.2e}"
    return text.replace("-", MINUS)


def signed(value: float | None) -> str:
    if value is None:
        return NONE
    text = num(value)
    return text if text.startswith(MINUS) or text == "0" else f"+{text}"


def is_latency(metric: str) -> bool:
    head = metric.split("/", 1)[0]
    return head == "latency" or head.endswith(("_ms", "latency"))


def unit_of(metric: str) -> str:
    return " ms" if is_latency(metric) else ""


def value_text(metric: str, value: float | None) -> str:
    """A metric's value with its unit: `0.798`, `2.1 ms`."""
    return NONE if value is None else num(value) + unit_of(metric)


def pct(share: float | None) -> str:
    """A share (0..1) in percent, 3 significant digits."""
    return NONE if share is None else f"{num(100 * share)}%"


# ---------------------------------------------------------------- bars


def bar(value: float, mark: float, top: float, width: int = 12) -> str:
    """A Unicode bar of `value` on 0..top, with `mark` (a threshold) as `│`: readable in a
    table cell on any width, where a chart of unrelated metrics would not be."""
    top = top if top > 0 else 1.0
    filled = max(0, min(width, round(width * value / top)))
    at = max(0, min(width - 1, round(width * mark / top) - 1)) if mark > 0 else -1
    cells = ["█" if i < filled else "░" for i in range(width)]
    if 0 <= at < width:
        cells[at] = "│"
    return "".join(cells)


# ---------------------------------------------------------------- blocks and truncation

_ROW = re.compile(r"^(\| |- )")


def blocks(markdown: str) -> list[str]:
    """Top-level blocks: split at blank lines outside code fences and `<details>` folds, so
    a block is never cut inside a fold, a fence or a table."""
    out: list[list[str]] = [[]]
    depth, fence = 0, ""
    for line in markdown.split("\n"):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped[len(fence) :].strip():
                fence = ""
        elif m := re.match(r"^(`{3,}|~{3,})", stripped):
            fence = m.group(1)
        else:
            depth += _opens(stripped) - _closes(stripped)
        if not stripped and depth <= 0 and not fence:
            if out[-1]:
                out.append([])
            continue
        out[-1].append(line)
    return ["\n".join(b) for b in out if b]


def join(parts: Iterable[str]) -> str:
    """Reports one after another (eval, then plan): a blank line between each, always."""
    return "\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def _shrink(block: str, room: int) -> str | None:
    """The block with rows or list items dropped from its end until it fits, saying how
    many were left out; None if it has none to drop or cannot fit."""
    lines = block.split("\n")
    items = [i for i, line in enumerate(lines) if _ROW.match(line) and not line.startswith("|-")]
    # a table's header row is not droppable: the `|` row right before a `|---` line
    items = [i for i in items if not (i + 1 < len(lines) and lines[i + 1].startswith("|-"))]

    def keeping(k: int) -> str:
        cut = set(items[k:])
        last = items[k - 1]
        note = (
            f"- …and {len(cut)} more"
            if lines[last].startswith("- ")
            else f"| … | {len(cut)} more rows: see the job summary |"
        )
        kept = [line for i, line in enumerate(lines) if i not in cut]
        kept.insert(last + 1 - sum(1 for i in cut if i < last), note)
        return "\n".join(kept)

    # the most items that fit, found by bisection: a body may hold thousands of rows
    low, high = 1, len(items) - 1
    best = None
    while low <= high:
        mid = (low + high) // 2
        text = keeping(mid)
        if len(text) <= room:
            best, low = text, mid + 1
        else:
            high = mid - 1
    return best


def fit(markdown: str, limit: int, *, where: str = "the job summary") -> str:
    """Cut a report at block boundaries to at most `limit` characters.

    The first block (the verdict) and the last (the footer) always stay; the blocks between
    stay in order while they fit, the first that does not is shortened row by row, and a
    note says what was left out. Every fold stays closed, because folds are never split.
    """
    if len(markdown) <= limit:
        return markdown
    parts = blocks(markdown)
    head, middle, foot = parts[0], parts[1:-1], parts[-1:] if len(parts) > 1 else []
    note_room = 200
    room = limit - note_room - len(head) - sum(len(f) + 2 for f in foot)
    kept: list[str] = []
    dropped, shortened = 0, False
    for block in middle:
        if dropped or shortened:
            dropped += 1
        elif len(block) + 2 <= room:
            kept.append(block)
            room -= len(block) + 2
        elif (short := _shrink(block, room - 2)) is not None:
            kept.append(short)
            shortened = True
        else:
            dropped += 1
    if dropped:
        words = f"{dropped} more sections are" if dropped > 1 else "1 more section is"
        note = f"> [!NOTE]\n> Shortened to fit a comment: {words} in {where}."
    else:
        note = f"> [!NOTE]\n> Shortened to fit a comment: every row is in {where}."
    out = join([head, *kept, note, *foot])
    if len(out) <= limit:
        return out
    # the verdict and footer alone are too long (a pathological title): cut at a line
    cut = out[: limit - 60].rsplit("\n", 1)[0]
    return cut + "\n\n" + "</details>\n" * max(0, _open_folds(cut)) + "\n_(cut to fit)_\n"


def _open_folds(text: str) -> int:
    return _opens(text) - _closes(text)


# our folds only: untrusted text's `<details>` is written `\<details\>`, which opens nothing
_OPEN, _CLOSE = re.compile(r"(?<!\\)<details"), re.compile(r"(?<!\\)</details>")


def _opens(text: str) -> int:
    return len(_OPEN.findall(text))


def _closes(text: str) -> int:
    return len(_CLOSE.findall(text))


def brief(markdown: str, *, where: str = "the job summary") -> str:
    """The PR comment: the report without its folds (worst rows, all metrics, charts,
    config), which the job summary and the uploaded artifact keep."""
    parts = blocks(markdown)
    kept = [b for b in parts if not b.lstrip().startswith("<details")]
    folded = len(parts) - len(kept)
    if folded:
        # before the footer, which stays last
        kept.insert(
            max(len(kept) - 1, 1),
            f"<sub>{folded} folded section{'s' if folded > 1 else ''} (rows, charts, config) "
            f"{'are' if folded > 1 else 'is'} in {where}.</sub>",
        )
    return join(kept)


def fit_comment(body: str) -> str:
    """A body GitHub accepts, cut between sections with every fold closed (fit above);
    room is left for the marker line."""
    return fit(body, COMMENT_LIMIT - 200)

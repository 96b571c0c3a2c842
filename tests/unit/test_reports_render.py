"""Every report kind rendered by cmarkgfm (the GFM implementation GitHub uses), asserting on
the HTML a reviewer would see. One test per numbered defect of issue #13, then the rules
that hold for every report."""

from __future__ import annotations

import html
import re
from pathlib import Path

import cmarkgfm  # type: ignore[import-untyped]
import pytest
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]

from genai_gate.github import RunLinks, Runner
from genai_gate.report.header import context_line
from genai_gate.report.markdown import blocks, fit, fit_comment
from tests import report_cases as cases


def render(markdown: str) -> str:
    # GitHub renders raw HTML (then sanitises it); UNSAFE keeps <details> and <code> as it does
    page: str = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=Options.CMARK_OPT_UNSAFE
    )
    return page


def visible(page: str) -> str:
    """The text a reader sees: tags removed, entities decoded once (as a browser does)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def headings(markdown: str) -> int:
    count, fence = 0, False
    for line in markdown.split("\n"):
        if re.match(r"^(```|~~~)", line.strip()):
            fence = not fence
        elif not fence and re.match(r"^#{1,6} ", line):
            count += 1
    return count


REPORTS = {**cases.KINDS, "truncated": lambda: fit(cases.truncated_source(), 12_000)}


@pytest.mark.parametrize("kind", sorted(REPORTS))
def test_every_report_renders_as_written(kind: str) -> None:
    markdown = REPORTS[kind]()
    page = render(markdown)
    # a code block shows its text literally by definition (and GitHub mentions no one there)
    text = visible(re.sub(r"<pre.*?</pre>", "", page, flags=re.S))
    # no literal entity text (defect 1)
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.I), text
    # every fold closed
    assert page.count("<details") == page.count("</details>")
    ours = re.sub(r"(?ms)^(~{3,}|`{3,}).*?^\1", "", markdown)  # outside code blocks
    assert len(re.findall(r"(?<!\\)<details", ours)) == ours.count("</details>")
    # no link that did not come from us, and no image or markup from a model (defect 4)
    for href in re.findall(r'href="([^"]*)"', page):
        assert href.startswith(cases.ALLOWED_LINKS), href
    assert "<img" not in page and "evil.example" not in " ".join(re.findall(r'href="[^"]*"', page))
    assert "<strong>act now</strong>" not in page and "<del>" not in page
    # every heading is a heading (defect 2)
    assert len(re.findall(r"<h[1-6]", page)) == headings(markdown)
    assert not re.search(r"^#{2,3} ", text, re.M)
    # mentions and references are broken by a zero-width space, so nobody is pinged
    assert not re.search(r"(?<![\w\u200b])@octocat|#12\b", text)


def test_1_brackets_and_code_spans_show_as_written() -> None:
    text = visible(render(cases.failing()))
    assert "What is [1] | <b>1</b>?" in text  # a cell with brackets, a pipe and a tag
    assert "[the docs](https://evil.example/x)" in text
    page = render(cases.with_baseline())
    assert "<code>models:/support-bot@champion</code>" in page  # first line, exact text
    assert "&amp;#" not in page


def test_2_a_heading_after_a_fold_in_the_job_summary_renders(tmp_path: Path) -> None:
    summary = tmp_path / "summary"
    runner = Runner({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    eval_part = cases.failing()
    assert eval_part.rstrip().endswith("</sub>")
    runner.append_summary(
        eval_part.replace(
            "\n\n<sub>", "\n\n<details><summary>x</summary>\n\ny\n\n</details>\n<sub>"
        )
    )
    runner.append_summary("<details><summary>x</summary>\n\ny\n\n</details>")
    runner.append_summary(cases.plan())
    page = render(summary.read_text())
    assert re.search(r"<h3>Deploy plan for <code>bot</code>", page)


def test_3_a_truncated_comment_keeps_verdict_failures_and_footer() -> None:
    source = cases.truncated_source()
    assert len(source) > 20_000
    cut = fit(source, 12_000)
    assert len(cut) <= 12_000
    page = render(cut)
    assert page.count("<details") == page.count("</details>")
    assert "<h2>❌ genai-gate: failed</h2>" in page
    assert "<h3>What failed</h3>" in page
    assert page.count("<li>Notice ") == 2  # the notices come before the folds: they stay
    assert "Full report: this job" in visible(page)
    # the note is outside every fold, and the table was cut between rows
    note = page.index("Shortened to fit a comment")
    assert page[:note].count("<details") == page[:note].count("</details>")
    assert "more rows: see the job summary" in visible(page)
    for block in blocks(cut):
        assert len(re.findall(r"(?<!\\)<details", block)) == block.count("</details>")
    # an issue body (a rollback) is cut the same way, with a marker
    issue = fit_comment(cases.canary_rollback() + "\n\n" + ("| x | y |\n" * 20_000) + "\nend\n")
    assert len(issue) <= 65_000 and "Shortened to fit a comment" in issue


def test_4_model_output_is_inert() -> None:
    page = render(cases.failing())
    text = visible(page)
    assert "**act now**" in text and "<img src=x onerror=alert(1)>" in text
    assert "evil.example" not in " ".join(re.findall(r'href="[^"]*"', page))
    assert "@\u200boctocat" in text and "#\u200b12" in text


def test_5_charts_carry_information() -> None:
    failing = cases.failing()
    assert "```mermaid" not in failing  # no chart joining unrelated thresholds
    assert "798 ms to spare" in failing  # 2.13 ms against 800 ms, in words
    table = [ln for ln in failing.split("\n") if ln.startswith(("| ❌ |", "| ✅ |"))]
    assert len(table) == 8  # one readable row per metric
    base = cases.with_baseline()
    chart = base[base.index("```text") :]
    assert re.search(r"exact_match/mean +[─━┆│●]+ +Δ \u22120.0556 +max-drop 0.02 +❌", chart)
    for report in (cases.canary_advance(), cases.canary_rollback()):
        charts = re.findall(r"```mermaid\n(.*?)```", report, re.S)
        assert len(charts) == 2
        for chart in charts:
            assert '"limit"' in chart
            values = re.search(r"bar \[(.*)\]", chart)
            assert values and any(float(v) > 0 for v in values.group(1).split(","))


def test_6_numbers_add_up_with_units_and_precision() -> None:
    base = cases.with_baseline()
    assert "each Δ uses 198 pairs (2 left out" in base
    assert "e-16" not in base and "(0 … +0.4)" in base
    assert "+0.00297" in base and "0.002966" not in base
    assert "| 2.2 ms | 2 ms | +0.2 ms" in base
    text = visible(render(cases.failing()))
    assert "null" not in text and "model error" in text


def test_7_failures_first_in_plain_words() -> None:
    base = cases.with_baseline()
    gated = [ln for ln in base.split("\n") if ln.startswith(("| ❌ |", "| ✅ |"))]
    assert gated[0].startswith("| ❌ | `exact_match/mean`")
    assert sum("`exact_match/mean`" in ln for ln in gated) == 1
    assert (
        "**exact\\_match/mean fell 5.56 points, more than the 2 allowed.** Δ \u22120.0556" in base
    )
    assert base.index("### What failed") < base.index("| | metric |")


def test_8_context_links_paths_notices_and_rollbacks() -> None:
    page = render(cases.failing())
    assert 'href="https://github.com/acme/bot/commit/0123456789abcdef' in page
    assert 'href="https://github.com/acme/bot/actions/runs/42"' in page
    assert 'href="https://mlflow.acme.example/#/experiments/1/runs/0f3c"' in page
    text = visible(page)
    assert "evals/qa [v2].jsonl" in text and "/home/runner" not in text
    assert page.count("<li>Notice ") == 2  # one item each, not one paragraph
    local = {"run_id": "abc", "run_url": None, "tracking_uri": "sqlite:////w/out/mlflow.db"}
    line = visible(render(context_line(RunLinks(workspace="/w"), local)))
    assert "mlflow ui --backend-store-uri sqlite:///out/mlflow.db" in line
    # run-on: databricks: the job's run beside the workflow run, a link only to a page
    page_url = "https://adb-1.azuredatabricks.net/?o=1#job/7/run/7"
    job = {**local, "job": {"run_id": 7, "url": page_url, "folder": "/Volumes/m/e/j/g"}}
    line = render(
        context_line(RunLinks(run_url="https://github.com/acme/bot/actions/runs/42"), job)
    )
    assert f'<a href="{html.escape(page_url)}">Databricks run 7</a>' in line
    assert line.index("workflow run") < line.index("Databricks run") < line.index("MLflow run")
    unlinked = {**job, "job": {"run_id": 7, "url": None, "folder": "/Volumes/m/e/j/g"}}
    assert "Databricks run 7" in render(context_line(RunLinks(), unlinked))
    assert "<a" not in render(context_line(RunLinks(), {**unlinked, "tracking_uri": None}))
    worse = render(cases.with_baseline())
    table = worse[worse.index("Rows that got worse") :]
    assert table[: table.index("</thead>")].count("<th>") == 3
    rollback = visible(render(cases.canary_rollback()))
    assert "challenger's share (genai-gate.step)10%canary ended" in rollback.replace("\n", "")
    assert "| - |" not in cases.plan() and "| — |" in cases.deployed()

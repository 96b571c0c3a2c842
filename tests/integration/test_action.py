"""`genai-gate action` as a workflow step, with a fake GitHub API: outputs, summary, annotations,
sticky PR comment. The pure parts (escaping, the event deciding the commands) are in
tests/unit/test_action_context.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genai_gate.commands.action import comment_key
from genai_gate.github import sticky_marker
from tests.action_env import github_env, pr_payload, read_outputs
from tests.conftest import Project
from tests.fakes.github_api import READ_TOKEN, WRITE_TOKEN, FakeGitHub

PASSING = (
    'data: qa.jsonl\nmodel: python:qa_model:predict\nthresholds:\n  exact_match/mean: ">= 0.7"\n'
)
FAILING = PASSING.replace(">= 0.7", ">= 0.9")
BASE = "data: qa.jsonl\nmodel: python:qa_model:predict\n"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


def run_action(cli: Any, project: Project, tmp: Path, env: dict[str, str]) -> Any:
    env = {
        "GENAI_GATE_CONFIG": str(project.root / "genai-gate.yml"),
        "GENAI_GATE_OUT": str(project.out),
        **env,
    }
    return cli("action", env=env)


def test_pull_request_passing(
    cli: Any, project: Project, tmp_path: Path, github: FakeGitHub
) -> None:
    project.config(PASSING)
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url=github.url
    )
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN})
    assert r.code == 0, r.text
    out = read_outputs(tmp_path / "gh" / "output")
    assert out["result"] == "passed"
    assert out["passed"] == "true"
    assert json.loads(out["metrics"]) == {"exact_match/mean": 0.75}
    # no GITHUB_WORKSPACE here, so the path stays absolute
    assert out["report-path"] == str((project.out / "results.json").resolve())
    assert len(out["run-id"]) == 32
    summary = (tmp_path / "gh" / "summary").read_text()
    assert "## ✅ genai-gate: passed" in summary
    assert "```mermaid\nxychart-beta" in summary
    assert "<summary>Effective config</summary>" in summary
    assert f"::add-mask::{WRITE_TOKEN}" in r.out
    assert "::group::genai-gate eval" in r.out and "::endgroup::" in r.out
    # the token itself is never printed except inside add-mask
    assert r.text.count(WRITE_TOKEN) == 1
    assert len(github.comments) == 1
    body = next(iter(github.comments.values()))["body"]
    assert body.startswith("<!-- genai-gate sticky-comment key=")
    assert "genai-gate: passed" in body


def test_failing_gate_annotates_and_exits_1(
    cli: Any, project: Project, tmp_path: Path, github: FakeGitHub
) -> None:
    project.config(FAILING)
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url=github.url
    )
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN})
    assert r.code == 1, r.text
    out = read_outputs(tmp_path / "gh" / "output")
    assert (out["result"], out["passed"]) == ("failed", "false")
    assert (
        "::error title=genai-gate%3A exact_match/mean::exact_match/mean = 0.75, needs >= 0.9"
        in r.out
    )
    assert "## ❌ genai-gate: failed" in (tmp_path / "gh" / "summary").read_text()


def test_a_rule_against_the_baseline_reaches_the_comment_and_the_checks_tab(
    cli: Any, project: Project, tmp_path: Path, github: FakeGitHub
) -> None:
    # the baseline knows the fourth answer too; 4 rows give no interval, so the estimate
    # (-0.25, beyond max-drop 0.1) decides
    project.write(
        "qa_better.py",
        "from qa_model import KNOWN\n\n\ndef predict(question):\n"
        "    return KNOWN.get(question, 'Jupiter')\n",
    )
    project.config(
        "data: qa.jsonl\nmodel: python:qa_model:predict\nbaseline: python:qa_better:predict\n"
        "thresholds:\n  exact_match/mean: {at-least: 0.7, max-drop: 0.1}\n"
    )
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url=github.url
    )
    r = run_action(
        cli,
        project,
        tmp_path,
        {**env, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN, "GENAI_GATE_BASELINE": "none"},
    )
    assert r.code == 2, r.text  # the input overrides the config: none, with a rule against it
    assert "GENAI_GATE_BASELINE: none, and 1 threshold(s) compare with a baseline" in r.text

    # an empty input is unset: the config's baseline again
    r = run_action(
        cli,
        project,
        tmp_path,
        {**env, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN, "GENAI_GATE_BASELINE": ""},
    )
    assert r.code == 1, r.text
    annotation = next(ln for ln in r.out.splitlines() if "max-drop" in ln)
    assert annotation.startswith("::error title=genai-gate%3A exact_match/mean::")
    # (`%` is escaped as `%25` in a workflow command)
    assert "Δ -0.25 (no 95%25 interval from 4 paired rows); inconclusive against" in annotation
    assert "(too few rows for an interval); the estimate is beyond it" in annotation
    body = next(iter(github.comments.values()))["body"]
    assert "| metric | candidate | baseline | Δ | 95% CI | threshold | status |" in body
    assert "| `exact_match/mean` | 0.75 | 1 | -0.25 | — | >= 0.7 | ✅ pass |" in body
    assert "| `exact_match/mean` | 0.75 | 1 | -0.25 | — | max-drop 0.1 | ❌ inconclusive |" in body
    assert "Rows that got worse than the baseline (1)" in body


def test_sticky_comment_is_updated_in_place(
    cli: Any, project: Project, tmp_path: Path, github: FakeGitHub
) -> None:
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url=github.url
    )
    env["GENAI_GATE_GITHUB_TOKEN"] = WRITE_TOKEN
    project.config(PASSING)
    assert run_action(cli, project, tmp_path, env).code == 0
    project.config(FAILING)
    assert run_action(cli, project, tmp_path, env).code == 1
    assert len(github.comments) == 1
    assert "genai-gate: failed" in next(iter(github.comments.values()))["body"]
    assert [m for m, _ in github.requests].count("PATCH") == 1
    # another config in the same PR keeps its own comment
    other = project.config(PASSING, name="second.yml")
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_CONFIG": str(other)})
    assert r.code == 0
    assert len(github.comments) == 2


def test_read_only_token_falls_back_to_the_summary(
    cli: Any, project: Project, tmp_path: Path, github: FakeGitHub
) -> None:
    project.config(PASSING)
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(fork=True), api_url=github.url
    )
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_GITHUB_TOKEN": READ_TOKEN})
    assert r.code == 0, r.text
    assert github.comments == {}
    assert "::notice title=genai-gate::The PR comment was not written (HTTP 403" in r.out
    assert "forks get a read-only token" in r.out
    assert "genai-gate: passed" in (tmp_path / "gh" / "summary").read_text()


def test_unreachable_github_api_never_fails_the_job(
    cli: Any, project: Project, tmp_path: Path
) -> None:
    project.config(PASSING)
    env = github_env(
        tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url="http://127.0.0.1:9"
    )
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN})
    assert r.code == 0, r.text
    assert "::warning title=genai-gate::The PR comment was not written" in r.out


def test_config_error_still_reports(cli: Any, project: Project, tmp_path: Path) -> None:
    project.config("data: qa.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_mach]\n")
    env = github_env(tmp_path / "gh", event="push", payload={}, ref="refs/heads/main")
    r = run_action(cli, project, tmp_path, env)
    assert r.code == 2
    out = read_outputs(tmp_path / "gh" / "output")
    assert (out["result"], out["passed"], out["metrics"]) == ("error", "false", "{}")
    summary = (tmp_path / "gh" / "summary").read_text()
    assert "genai-gate: error in `eval`" in summary and "exact_mach" in summary
    assert "::error title=genai-gate%3A Configuration error::" in r.out


def test_unknown_command_input(cli: Any, project: Project, tmp_path: Path) -> None:
    project.config(PASSING)
    env = github_env(tmp_path / "gh", event="push", payload={}, ref="refs/heads/main")
    r = run_action(cli, project, tmp_path, {**env, "GENAI_GATE_COMMAND": "deploy-now"})
    assert r.code == 2
    assert "'deploy-now' is not a command the action can run" in r.err


def test_a_pasted_marker_does_not_hijack_the_sticky_comment(
    cli: Any, project: Project, tmp_path: Path
) -> None:
    github = FakeGitHub().start()
    try:
        project.config(BASE + "scorers: [exact_match]\n")
        env = github_env(
            tmp_path / "gh", event="pull_request", payload=pr_payload(), api_url=github.url
        )
        env.update(
            GENAI_GATE_GITHUB_TOKEN=WRITE_TOKEN,
            GITHUB_JOB="gate",
            GENAI_GATE_CONFIG=str(project.root / "genai-gate.yml"),
            GENAI_GATE_OUT=str(project.out),
        )
        github.comments[1] = {
            "id": 1,
            "issue": 7,
            "body": sticky_marker(comment_key(env)) + "\nfake: passed",
            "url": f"{github.url}/repos/acme/bot/issues/comments/1",
            "html_url": "https://github.test/acme/bot/pull/7#issuecomment-1",
            "user": {"login": "mallory", "type": "User"},
        }
        r = cli("action", env=env)
        assert r.code == 0, r.text
        assert github.comments[1]["body"].endswith("fake: passed")
        assert len(github.comments) == 2
    finally:
        github.stop()

"""What the action reads from the runner and writes back to it, without running it: the
workflow commands' escaping, the event that decides the commands, fork detection.

The action run end to end, with a fake GitHub API, is tests/integration/test_action.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genai_gate.github import Runner
from tests.action_env import github_env, pr_payload, read_outputs


def test_outside_actions_the_runner_does_nothing(tmp_path: Path, capsys: Any) -> None:
    runner = Runner({"GITHUB_OUTPUT": str(tmp_path / "o")})
    runner.set_output("x", "y")
    runner.annotate("error", "nope")
    runner.mask("secret")
    with runner.group("g"):
        pass
    assert not (tmp_path / "o").exists()
    assert capsys.readouterr().out == ""


def test_escaping_matches_actions_core(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "output"
    out.write_text("")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(out)}
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    runner = Runner(env)
    tricky = "100% sure\nline two: a, b\r\nghadelimiter_fake\nEOF"
    runner.set_output("tricky", tricky)
    assert read_outputs(out)["tricky"] == tricky
    runner.annotate("error", "50% done\nnext: a, b", title="t: x, y%")
    printed = capsys.readouterr().out
    assert "::error title=t%3A x%2C y%25::50%25 done%0Anext: a, b" in printed


@pytest.mark.parametrize(
    ("event", "ref", "payload", "deploy", "watch", "expected"),
    [
        ("pull_request", "refs/pull/7/merge", "pr", True, True, ("eval", "plan")),
        ("pull_request", "refs/pull/7/merge", "pr", False, True, ("eval",)),
        ("push", "refs/heads/main", "repo", True, True, ("eval", "deploy")),
        ("push", "refs/heads/feature", "repo", True, True, ("eval",)),
        ("push", "refs/tags/v1.2.0", "repo", True, True, ("eval",)),
        ("schedule", "refs/heads/main", "repo", False, True, ("analyze",)),
        ("workflow_dispatch", "refs/heads/main", "repo", True, True, ("analyze",)),
        ("schedule", "refs/heads/main", "repo", False, False, ("eval",)),
        ("pull_request_target", "refs/heads/main", "pr", True, True, ("eval", "plan")),
    ],
)
def test_the_event_decides_the_commands(
    tmp_path: Path,
    event: str,
    ref: str,
    payload: str,
    deploy: bool,
    watch: bool,
    expected: tuple[str, ...],
) -> None:
    from genai_gate.commands.action import choose_commands
    from genai_gate.github import read_context

    body = (
        pr_payload()
        if payload == "pr"
        else {"repository": {"full_name": "acme/bot", "default_branch": "main"}}
    )
    ctx = read_context(github_env(tmp_path, event=event, payload=body, ref=ref))
    assert choose_commands(None, ctx, deploy=deploy, watch=watch) == expected
    assert choose_commands("rollback", ctx, deploy=deploy, watch=watch) == ("rollback",)


def test_fork_detection_compares_repositories(tmp_path: Path) -> None:
    from genai_gate.github import read_context

    def ctx(head: Any) -> bool:
        payload = pr_payload()
        payload["pull_request"]["head"]["repo"] = head
        env = github_env(tmp_path, event="pull_request", payload=payload)
        return read_context(env).pr_is_fork

    # a repository that is itself a fork: its own branches are not fork PRs
    assert ctx({"full_name": "acme/bot", "fork": True}) is False
    assert ctx({"full_name": "someone/bot", "fork": True}) is True
    assert ctx(None) is True  # the fork was deleted

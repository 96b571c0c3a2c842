"""The one module that touches the GitHub Actions runtime.

Outputs, the job summary, annotations, masking and log groups go through actions-toolkit,
which writes `$GITHUB_OUTPUT` with a random delimiter and escapes commands exactly as
`@actions/core` does (`%`, `\\r`, `\\n`; plus `:` and `,` in properties). Outside Actions every
call is a no-op, so the CLI behaves the same on a laptop.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genai_gate.secrets import scrub

Level = Literal["error", "warning", "notice"]


@dataclass(frozen=True)
class RunLinks:
    commit: str | None = None  # the PR's head commit, else the pushed one
    commit_url: str | None = None
    run_url: str | None = None  # this workflow run (its attempt)
    workspace: str | None = None  # paths under it are shown relative to it


@dataclass(frozen=True)
class Context:
    """What the workflow run is: the event, the ref, the PR, the repository."""

    event_name: str
    repository: str
    pr_number: int | None
    pr_is_fork: bool
    api_url: str
    ref: str = ""
    default_branch: str | None = None

    @property
    def on_default_branch(self) -> bool:
        return bool(self.default_branch) and self.ref == f"refs/heads/{self.default_branch}"

    @property
    def is_pull_request(self) -> bool:
        return self.event_name in ("pull_request", "pull_request_target")


def _event(environ: Mapping[str, str]) -> dict[str, Any]:
    path = environ.get("GITHUB_EVENT_PATH")
    if path and Path(path).is_file():
        try:
            loaded = json.loads(Path(path).read_text(encoding="utf-8"))
            return loaded if isinstance(loaded, dict) else {}
        except (OSError, json.JSONDecodeError):
            return {}
    return {}


def run_links(environ: Mapping[str, str]) -> RunLinks:
    """The commit and the workflow run a report belongs to. On a pull request GITHUB_SHA is
    a merge commit nobody has seen; the PR's head commit is the one under review."""
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    repo = environ.get("GITHUB_REPOSITORY", "")
    pr = _event(environ).get("pull_request")
    head = ((pr or {}).get("head") or {}).get("sha") if isinstance(pr, dict) else None
    sha = head if isinstance(head, str) and head else environ.get("GITHUB_SHA") or None
    run_id = environ.get("GITHUB_RUN_ID")
    run_url = None
    if repo and run_id:
        run_url = f"{server}/{repo}/actions/runs/{run_id}"
        attempt = environ.get("GITHUB_RUN_ATTEMPT", "1")
        if attempt not in ("", "1"):
            run_url += f"/attempts/{attempt}"
    return RunLinks(
        commit=sha,
        commit_url=f"{server}/{repo}/commit/{sha}" if sha and repo else None,
        run_url=run_url,
        workspace=environ.get("GITHUB_WORKSPACE") or str(Path.cwd()),
    )


def read_context(environ: Mapping[str, str]) -> Context:
    event = _event(environ)
    pr = event.get("pull_request") if isinstance(event.get("pull_request"), dict) else None
    number = pr.get("number") if pr else None
    head_repo = ((pr or {}).get("head") or {}).get("repo")
    base_repo = ((pr or {}).get("base") or {}).get("repo") or {}
    # `head.repo.fork` says whether that repository is a fork of anything, not whether the
    # PR crosses repositories; a deleted head repository (null) was a fork's
    is_fork = bool(pr) and (
        not isinstance(head_repo, dict) or head_repo.get("full_name") != base_repo.get("full_name")
    )
    return Context(
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        repository=environ.get("GITHUB_REPOSITORY", ""),
        pr_number=int(number) if isinstance(number, int) else None,
        pr_is_fork=is_fork,
        api_url=environ.get("GITHUB_API_URL", "https://api.github.com"),
        ref=environ.get("GITHUB_REF", ""),
        default_branch=(event.get("repository") or {}).get("default_branch"),
    )


def oidc_possible(environ: Mapping[str, str]) -> bool:
    """Whether this job can ask GitHub for an OIDC ID token (`id-token: write`, not a fork)."""
    return bool(
        environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
        and environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    )


def request_id_token(environ: Mapping[str, str], audience: str | None) -> str:
    """The job's GitHub OIDC ID token for `audience`; "" when the job cannot have one.

    Every platform that trusts GitHub's issuer (a Databricks federation policy, a
    Kubernetes JWT authenticator) is handed a token from here."""
    import requests

    url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        return ""
    # GitHub's URL already has `?api-version=...`
    full = f"{url}&audience={audience}" if audience else url
    resp = requests.get(full, headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    resp.raise_for_status()
    return str(resp.json().get("value") or "")


class Runner:
    """Actions runtime calls; inactive (no-ops) unless GITHUB_ACTIONS is "true"."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.active = self.environ.get("GITHUB_ACTIONS") == "true"

    def set_output(self, name: str, value: str) -> None:
        if not self.active or not self.environ.get("GITHUB_OUTPUT"):
            return
        from actions_toolkit import core

        core.set_output(name, scrub(value))

    def append_summary(self, markdown: str) -> None:
        target = self.environ.get("GITHUB_STEP_SUMMARY")
        if not self.active or not target:
            return
        with Path(target).open("a", encoding="utf-8") as fh:
            # a blank line after each report: a heading straight after `</details>` would
            # be read as part of that HTML block and show as raw text
            fh.write(scrub(markdown).rstrip("\n") + "\n\n")

    def mask(self, secret: str | None) -> None:
        if not self.active or not secret:
            return
        from actions_toolkit import core

        for line in secret.splitlines():  # the runner masks line by line
            if line.strip():
                core.set_secret(line)

    def annotate(
        self, level: Level, message: str, *, title: str | None = None, file: str | None = None
    ) -> None:
        if not self.active:
            return
        # actions-toolkit's core.error() writes every property, even empty ones
        # (`file=,line=,...`); @actions/core writes only those that are set.
        from actions_toolkit.command import issue_command

        props = {k: scrub(v) for k, v in (("title", title), ("file", file)) if v}
        issue_command(level, props, scrub(message))

    @contextlib.contextmanager
    def group(self, name: str) -> Iterator[None]:
        if not self.active:
            yield
            return
        from actions_toolkit import core

        core.start_group(name)
        try:
            yield
        finally:
            core.end_group()


# ---------------------------------------------------------------- the sticky PR comment

COMMENT_LIMIT = 65_000  # GitHub refuses comment bodies over 65,536 characters


@dataclass(frozen=True)
class CommentResult:
    action: Literal["created", "updated", "no-permission", "failed"]
    detail: str = ""
    url: str | None = None


def sticky_marker(key: str) -> str:
    return f'<!-- genai-gate sticky-comment key="{key}" -->'


def _written_by_us(gh: Any, comment: Any, viewer: list[str | None]) -> bool:
    """Anyone can paste the marker into a comment; only our own comment is ours to edit.

    An Actions token comments as a bot; a personal token as its user, which GET /user names
    (an Actions token is refused there, so that lookup happens only when needed, once).
    """
    from github import GithubException

    user = comment.user
    if user is None:
        return False
    if user.type == "Bot":
        return True
    if not viewer:
        try:
            viewer.append(gh.get_user().login)
        except GithubException:
            viewer.append(None)
    return bool(viewer[0]) and user.login == viewer[0]


def upsert_sticky_comment(ctx: Context, token: str, key: str, body: str) -> CommentResult:
    """Create the PR's one genai-gate comment for `key`, or edit it in place.

    A comment is a courtesy: every failure comes back as a result, never as an exception,
    so that it cannot fail the job. GHES works through GITHUB_API_URL.
    """
    from github import Auth, Github, GithubException

    if ctx.pr_number is None or not ctx.repository:
        return CommentResult("failed", "this run has no pull request")
    marker = sticky_marker(key)
    text = f"{marker}\n{scrub(body)}"
    gh = Github(auth=Auth.Token(token), base_url=ctx.api_url, timeout=15, retry=2)
    try:
        issue = gh.get_repo(ctx.repository, lazy=True).get_issue(ctx.pr_number)
        viewer: list[str | None] = []
        for comment in issue.get_comments():
            if marker in (comment.body or "") and _written_by_us(gh, comment, viewer):
                comment.edit(text)
                return CommentResult("updated", url=comment.html_url)
        created = issue.create_comment(text)
        return CommentResult("created", url=created.html_url)
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            return CommentResult(
                "no-permission",
                f"HTTP {exc.status}: the token cannot write pull request comments"
                + (" (pull requests from forks get a read-only token)" if ctx.pr_is_fork else ""),
            )
        return CommentResult("failed", f"HTTP {exc.status}: {str(exc.data)[:300]}")
    except Exception as exc:  # network trouble must not fail the gate
        return CommentResult("failed", f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        gh.close()


def issue_marker(key: str) -> str:
    return f'<!-- genai-gate issue key="{key}" -->'


def upsert_issue(ctx: Context, token: str, key: str, title: str, body: str) -> CommentResult:
    """Open the one genai-gate issue for `key` (e.g. a canary's endpoint), or update it.

    A second rollback of the same endpoint updates that open issue and comments on it,
    so a flapping canary pages people once. Failures come back as a result, never raised.
    """
    from github import Auth, Github, GithubException

    if not ctx.repository:
        return CommentResult("failed", "GITHUB_REPOSITORY is not set")
    marker = issue_marker(key)
    title, body = scrub(title), scrub(body)
    text = f"{marker}\n{body}"
    gh = Github(auth=Auth.Token(token), base_url=ctx.api_url, timeout=15, retry=2)
    try:
        repo = gh.get_repo(ctx.repository, lazy=True)
        viewer: list[str | None] = []
        for issue in repo.get_issues(state="open"):
            if (
                marker in (issue.body or "")
                and issue.pull_request is None
                and _written_by_us(gh, issue, viewer)
            ):
                issue.edit(body=text)
                issue.create_comment(f"{title}, again.\n\n{body}")
                return CommentResult("updated", url=issue.html_url)
        created = repo.create_issue(title=title, body=text)
        return CommentResult("created", url=created.html_url)
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            return CommentResult(
                "no-permission", f"HTTP {exc.status}: the token cannot open issues"
            )
        return CommentResult("failed", f"HTTP {exc.status}: {str(exc.data)[:300]}")
    except Exception as exc:  # network trouble must not hide the rollback itself
        return CommentResult("failed", f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        gh.close()


# ---------------------------------------------------------------- repository_dispatch

DISPATCH_MAX_KEYS = 10  # GitHub refuses a client_payload with more top-level properties


def dispatch_event(
    ctx: Context, token: str, event_type: str, payload: Mapping[str, str]
) -> CommentResult:
    """Send a `repository_dispatch` event (a training workflow listens with
    `on: repository_dispatch: types: [<event_type>]`). Failures come back as a result."""
    from github import Auth, Github, GithubException

    if not ctx.repository:
        return CommentResult("failed", "GITHUB_REPOSITORY is not set")
    if len(payload) > DISPATCH_MAX_KEYS:
        raise ValueError(f"a client_payload holds at most {DISPATCH_MAX_KEYS} keys")
    gh = Github(auth=Auth.Token(token), base_url=ctx.api_url, timeout=15, retry=2)
    try:
        repo = gh.get_repo(ctx.repository, lazy=True)
        repo.create_repository_dispatch(event_type, {k: scrub(v) for k, v in payload.items()})
        return CommentResult("created", f"repository_dispatch {event_type} sent")
    except GithubException as exc:
        if exc.status in (401, 403, 404):
            return CommentResult(
                "no-permission",
                f"HTTP {exc.status}: the token cannot send repository_dispatch events "
                "(it needs contents: write)",
            )
        return CommentResult("failed", f"HTTP {exc.status}: {str(exc.data)[:300]}")
    except Exception as exc:  # network trouble must not hide the drift itself
        return CommentResult("failed", f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        gh.close()

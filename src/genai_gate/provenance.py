"""Where a run came from: commit, branch, actor and workflow run, in Actions or on a laptop."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Provenance:
    sha: str | None
    branch: str | None
    repository: str | None
    actor: str | None
    event: str | None
    workflow_run_url: str | None
    in_actions: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def collect(base_dir: Path, environ: Mapping[str, str]) -> Provenance:
    if environ.get("GITHUB_ACTIONS") == "true":
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repo = environ.get("GITHUB_REPOSITORY")
        run_id = environ.get("GITHUB_RUN_ID")
        url = f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None
        if url and environ.get("GITHUB_RUN_ATTEMPT"):
            url += f"/attempts/{environ['GITHUB_RUN_ATTEMPT']}"
        return Provenance(
            sha=environ.get("GITHUB_SHA"),
            # on a pull request GITHUB_REF_NAME is "123/merge"; the head branch is what people know
            branch=environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME"),
            repository=repo,
            actor=environ.get("GITHUB_ACTOR"),
            event=environ.get("GITHUB_EVENT_NAME"),
            workflow_run_url=url,
            in_actions=True,
        )
    return Provenance(
        sha=_git(["rev-parse", "HEAD"], base_dir),
        branch=_git(["rev-parse", "--abbrev-ref", "HEAD"], base_dir),
        repository=None,
        actor=environ.get("USER") or environ.get("USERNAME"),
        event="local",
        workflow_run_url=None,
        in_actions=False,
    )

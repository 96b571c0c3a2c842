"""The line under a report's verdict: which commit, which workflow run (and Databricks job
run), which MLflow run.

Pure: `RunLinks` is filled from the Actions environment by github.run_links.
"""

from __future__ import annotations

import shlex
from pathlib import PurePath
from typing import Any

from genai_gate.github import RunLinks
from genai_gate.report.markdown import inert, link


def display_path(path: str, workspace: str | None) -> str:
    """A path as the repository knows it, not as the runner's disk does."""
    if workspace:
        try:
            return PurePath(path).relative_to(workspace).as_posix()
        except ValueError:
            pass
    return path


def _local(uri: str, workspace: str | None) -> str:
    """sqlite:////home/runner/work/x/out/mlflow.db -> sqlite:///out/mlflow.db: the store as
    seen from a checkout of the repository, where `mlflow ui` would be run."""
    for scheme in ("sqlite:///", "file://"):
        if uri.startswith(scheme):
            path = uri.removeprefix(scheme)
            shown = display_path(path, workspace)
            if shown != path:
                return scheme + shown
    return uri


def mlflow_text(doc: Any, workspace: str | None = None) -> str:
    """A link to the MLflow run when the tracking server has a URL; for a local store, the
    command that opens it."""
    run_id, url, uri = doc.get("run_id"), doc.get("run_url"), doc.get("tracking_uri")
    if not run_id:
        return ""
    if url:
        return f"MLflow {link('run ' + str(run_id)[:12], url)}"
    if uri and not str(uri).startswith(("http://", "https://", "databricks")):
        command = f"mlflow ui --backend-store-uri {shlex.quote(_local(str(uri), workspace))}"
        return f"MLflow run {inert(run_id, code=True)} (open with {inert(command, 300, code=True)})"
    return f"MLflow run {inert(run_id, code=True)}"


def context_line(links: RunLinks, doc: Any | None = None) -> str:
    parts = []
    if links.commit:
        short = links.commit[:7]
        parts.append(
            f"commit {link(short, links.commit_url)}"
            if links.commit_url
            else f"commit {inert(short, code=True)}"
        )
    if links.run_url:
        parts.append(link("workflow run", links.run_url))
    job = doc.get("job") if doc is not None else None
    if job:  # run-on: databricks: the run that evaluated
        parts.append(link(f"Databricks run {job['run_id']}", job.get("url")))
    if doc is not None and (mlflow := mlflow_text(doc, links.workspace)):
        parts.append(mlflow)
    return " · ".join(parts) if parts else "_(run outside GitHub Actions)_"

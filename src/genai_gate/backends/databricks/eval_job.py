"""`run-on: databricks`: the eval as a one-time Databricks job (Jobs `runs/submit`).

The bundle (the config, the eval code and data it names, a wheel of genai-gate) goes to a
folder of its own on a Unity Catalog volume through the Files API; the run's one task runs
`launch.py` from there on serverless jobs compute (the wheel is its environment's
dependency) or on an existing cluster (the wheel is a task library). `launch.py` runs
`genai-gate eval` in the job's own Spark session and records its exit code next to the
results, so a gate that said no is a successful run with `"exit": 1`, and a failed run
means the eval itself failed. While the run goes on, its state and the row counter the job
writes (`progress.json`) are reported; an interrupt (GitHub's cancel) cancels the run.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from genai_gate.errors import ServiceError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

# runs inside the job: <root> is the bundle's folder on the volume (a FUSE path there)
LAUNCHER = '''\
"""genai-gate eval inside a Databricks job (run-on: databricks); written by genai-gate."""
import json
import os
import sys

root = sys.argv[1]
os.chdir(root)
from genai_gate.cli import main  # noqa: E402  (the wheel, installed for this run)

code = main(sys.argv[2:])
os.makedirs("out", exist_ok=True)
with open(os.path.join("out", "exit.json"), "w", encoding="utf-8") as fh:
    json.dump({"exit": code}, fh)
# a verdict, pass or fail, is a successful run; anything else fails it
sys.exit(0 if code in (0, 1) else code)
'''
TASK_KEY = "genai-gate-eval"
ENVIRONMENT_KEY = "genai-gate"
# serverless environment version 2: Python 3.11, the version genai-gate supports first
ENVIRONMENT_VERSION = "2"
_TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})


@dataclass(frozen=True)
class JobRun:
    """How the run ended, and where to read about it."""

    run_id: int
    url: str | None
    succeeded: bool
    state: str  # e.g. TERMINATED/SUCCESS, TERMINATED/FAILED, INTERNAL_ERROR
    message: str  # the run's state message and its task's error, for the log
    folder: str  # the bundle's folder on the volume


class DatabricksEvalJob:
    """Upload, submit, follow, cancel and fetch: the job's side of run-on: databricks."""

    def __init__(
        self,
        client: WorkspaceClient,
        volume: str,
        *,
        cluster_id: str | None,
        errors: Callable[[str], Any],
        poll_seconds: float = 0.5,
    ) -> None:
        from databricks.sdk.service.files import FilesAPI

        self.w = client
        # the Files API as REST documents it (one PUT, one GET): the SDK's `w.files` adds a
        # multipart/presigned-URL client that a small bundle does not need
        self.files = FilesAPI(client.api_client)  # type: ignore[no-untyped-call]
        self.folder = (
            f"{volume.rstrip('/')}/genai-gate-{time.strftime('%Y%m%d-%H%M%S')}-"
            + (uuid.uuid4().hex[:8])
        )
        self.cluster_id = cluster_id
        self.errors = errors
        self.poll = poll_seconds

    def upload(self, files: Mapping[str, bytes]) -> None:
        """Each file under the bundle's folder (the Files API creates the folders)."""
        with self.errors(f"uploading the eval bundle to {self.folder}"):
            for name, data in {**files, "launch.py": LAUNCHER.encode()}.items():
                self.files.upload(f"{self.folder}/{name}", io.BytesIO(data), overwrite=True)

    def fetch(self, name: str) -> bytes | None:
        """A file the job wrote, or None when it is not there."""
        from databricks.sdk.errors import NotFound

        with self.errors(f"downloading {name} from {self.folder}"):
            try:
                got = self.files.download(f"{self.folder}/{name}")
            except NotFound:
                return None
            return got.contents.read() if got.contents is not None else b""

    def run(
        self,
        args: list[str],
        wheel: str,
        *,
        name: str,
        timeout: float,
        progress: Callable[[str], None],
    ) -> JobRun:
        """Submit the run, follow it to its end, and cancel it if this process is stopped."""
        from databricks.sdk.service import compute, jobs

        task = jobs.SubmitTask(
            task_key=TASK_KEY,
            spark_python_task=jobs.SparkPythonTask(
                python_file=f"{self.folder}/launch.py", parameters=[self.folder, *args]
            ),
            existing_cluster_id=self.cluster_id,
            environment_key=None if self.cluster_id else ENVIRONMENT_KEY,
            libraries=[compute.Library(whl=f"{self.folder}/{wheel}")] if self.cluster_id else None,
        )
        environments = (
            None
            if self.cluster_id
            else [
                jobs.JobEnvironment(
                    environment_key=ENVIRONMENT_KEY,
                    spec=compute.Environment(
                        environment_version=ENVIRONMENT_VERSION,
                        dependencies=[f"{self.folder}/{wheel}"],
                    ),
                )
            ]
        )
        with self.errors("submitting the eval job"):
            waiter = self.w.jobs.submit(
                run_name=name,
                tasks=[task],
                environments=environments,
                timeout_seconds=int(timeout),
            )
        run_id = int(waiter.run_id)
        try:
            return self._follow(run_id, progress)
        except BaseException:
            # GitHub cancels a job with SIGINT, then SIGTERM: the run must not outlive it
            with self.errors(f"cancelling run {run_id}"):
                self.w.jobs.cancel_run(run_id)
            progress(f"databricks: run {run_id} cancelled")
            raise

    def _follow(self, run_id: int, progress: Callable[[str], None]) -> JobRun:
        last = ""
        pause = self.poll
        url: str | None = None
        while True:
            with self.errors(f"reading run {run_id}"):
                run = self.w.jobs.get_run(run_id)
            url = self._own(run.run_page_url) or url
            life = (
                run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else ""
            )
            line = f"databricks: run {run_id} {life or 'UNKNOWN'}"
            counted = self._counter() if life == "RUNNING" else None
            if counted:
                line += f", {counted}"
            if line != last:
                progress(line + (f" ({url})" if not last and url else ""))
                last = line
            if life in _TERMINAL:
                return self._ended(run, run_id, url)
            time.sleep(pause)
            pause = min(pause * 1.5, 10.0)

    def _own(self, url: str | None) -> str | None:
        """The run's page, when it is on the workspace signed in to: the summary links to
        it, and a server's reply never makes a link to anywhere else."""
        host = urlsplit(self.w.config.host or "")
        page = urlsplit(url or "")
        same = (page.scheme, page.netloc) == (host.scheme, host.netloc)
        return url if same and page.scheme in ("https", "http") else None

    def _counter(self) -> str | None:
        raw = self.fetch("progress.json")
        try:
            doc = json.loads(raw or b"")
            return f"{doc['phase']}: {int(doc['done'])}/{int(doc['total'])} rows"
        except (ValueError, KeyError, TypeError):
            return None

    def _ended(self, run: Any, run_id: int, url: str | None) -> JobRun:
        state = run.state
        result = state.result_state.value if state and state.result_state else ""
        life = state.life_cycle_state.value if state and state.life_cycle_state else ""
        message = (state.state_message or "") if state else ""
        succeeded = life == "TERMINATED" and result == "SUCCESS"
        if not succeeded:
            message = "; ".join(m for m in (message, self._task_error(run)) if m)
        return JobRun(run_id, url, succeeded, f"{life}/{result}".rstrip("/"), message, self.folder)

    def _task_error(self, run: Any) -> str:
        """The task's own error and the tail of its log (runs/get-output)."""
        tasks = run.tasks or []
        if not tasks or tasks[0].run_id is None:
            return ""
        with self.errors("reading the task's output"):
            out = self.w.jobs.get_run_output(tasks[0].run_id)
        tail = (out.logs or "").strip().splitlines()[-15:]
        return "; ".join(p for p in (out.error or "", "\n".join(tail)) if p)


def build_wheel(source: Path, into: Path) -> Path:
    """A wheel of genai-gate from its source tree, with uv (the project's build tool)."""
    import shutil
    import subprocess
    import sys

    # the composite action installs uv next to genai-gate's venv (scripts/install-action-env)
    beside = Path(sys.prefix).parent / "uv" / "bin" / "uv"
    uv = shutil.which("uv") or (str(beside) if beside.is_file() else None)
    if uv is None:
        raise ServiceError(
            "run-on: databricks builds a wheel of genai-gate for the job, and uv is not on PATH",
            fix="Install uv (pip install uv), or run the eval here: run-on: runner",
        )
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(into), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    wheels = sorted(into.glob("genai_gate-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ServiceError(
            f"building genai-gate's wheel for the job failed: {done.stderr.strip()[-500:]}"
        )
    return wheels[-1]


def source_tree(package_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """genai-gate's source: the checkout it runs from, or the action's own folder."""
    candidates = [*package_dir.parents, Path(environ.get("GITHUB_ACTION_PATH") or "/nonexistent")]
    for folder in candidates:
        project = folder / "pyproject.toml"
        if project.is_file() and 'name = "genai-gate"' in project.read_text(encoding="utf-8"):
            return folder
    return None

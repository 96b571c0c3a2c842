"""What one invocation shares across its commands, and how its outcome is reported.

`cli.main` (or the action's router) loads the config once and builds one `Run`; every
command takes it. The serving workspace (or the cluster) is built on first use, so an offline
eval never signs in, and a push run's preflight, baseline, judge and deploy share one client
and one token.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from genai_gate import secrets
from genai_gate.backends.base import ServingBackend
from genai_gate.backends.databricks.backend import DatabricksBackend
from genai_gate.backends.databricks.endpoints import service_errors
from genai_gate.backends.databricks.eval_job import DatabricksEvalJob, build_wheel, source_tree
from genai_gate.backends.databricks.session import Workspace
from genai_gate.backends.databricks.uc_table import UcTableReader
from genai_gate.backends.databricks.warehouse import WarehouseEngine
from genai_gate.backends.kserve.backend import KServeBackend
from genai_gate.backends.kserve.session import ClusterSession
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, ExitCode
from genai_gate.github import Context, Runner, read_context
from genai_gate.tables import TableReader
from genai_gate.targets.base import ServingWorkspace


class Result(StrEnum):
    """The `result` output: what a run's step reports, whichever command ran."""

    PASSED = "passed"
    FAILED = "failed"  # the gate, or the canary analysis, said no
    ERROR = "error"  # the run could not decide (bad config, auth, a service)
    SKIPPED = "skipped"  # nothing to judge: e.g. a deploy after a gate that did not pass

    @classmethod
    def overall(cls, results: Iterable[Result]) -> Result:
        """A run of several commands reports its worst: a gate that said no reads `failed`
        even when logging failed too; nothing run reads `skipped`."""
        present = set(results)
        order = (cls.FAILED, cls.ERROR, cls.PASSED)
        return next((r for r in order if r in present), cls.SKIPPED)

    def outputs(self) -> dict[str, str]:
        """The `result` and `passed` step outputs ("true" only for a pass)."""
        return {"result": self.value, "passed": "true" if self is Result.PASSED else "false"}

    @property
    def exit_code(self) -> ExitCode:
        """FAILED exits 1; ERROR 4 (a service failed after the verdict: the MLflow run could
        not be recorded), whether or not the caller raises its cause first."""
        if self is Result.FAILED:
            return ExitCode.GATE_FAILED
        return ExitCode.SERVICE if self is Result.ERROR else ExitCode.PASSED


@dataclass
class Run:
    loaded: LoadedConfig
    out_dir: Path
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    ctx: Context = field(init=False)
    runner: Runner = field(init=False)
    _workspace: Workspace | None = field(default=None, init=False, repr=False)
    _cluster: ClusterSession | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.ctx = read_context(self.environ)
        self.runner = Runner(self.environ)
        cfg = self.loaded.config
        # every artefact of this run is scrubbed of these (secrets.py)
        secrets.remember_environ(self.environ, (cfg.api_key_env, cfg.judge_api_key_env))

    def _mask(self, secret: str) -> None:
        # a token exchanged at run time (GitHub OIDC for Databricks) is a secret too
        secrets.remember(secret)
        self.runner.mask(secret)

    def backend(self, progress: Callable[[str], None] = lambda _line: None) -> ServingBackend:
        """The serving platform the config names (`backend:`), signed in once per run: the
        Databricks workspace, or the cluster that serves the InferenceService."""
        if self.loaded.config.backend == "kserve":
            return KServeBackend(self.loaded, self.cluster, progress)
        return DatabricksBackend(self.loaded, self.workspace, progress)

    def table_reader(self) -> TableReader:
        """What reads a `data: uc:` table: the workspace's SQL warehouse (warehouse-id)."""
        cfg = self.loaded.config
        if not cfg.warehouse_id:
            raise ConfigError(
                f"data: {cfg.data} is a Unity Catalog table, and no SQL warehouse is "
                "configured to read it",
                fix="Name the warehouse that reads it (Statement Execution API):\n"
                "  warehouse-id: 1234567890abcdef",
            )
        workspace = self.workspace
        grant = "USE CATALOG, USE SCHEMA and SELECT on the table, and CAN USE on the warehouse"

        def errors(what: str) -> contextlib.AbstractContextManager[None]:
            return service_errors(what, workspace.refused, grant=grant)

        engine = WarehouseEngine(
            workspace.client(),
            cfg.warehouse_id,
            errors,
            purpose="reading the eval table",
            grant="the eval table",
        )
        return UcTableReader(engine)

    def eval_job(self) -> DatabricksEvalJob:
        """run-on: databricks: the job that evaluates next to the data (eval_job.py)."""
        cfg = self.loaded.config
        assert cfg.job_volume is not None  # checked by the caller, with its fix
        workspace = self.workspace
        grant = (
            "READ VOLUME and WRITE VOLUME on job-volume, and the right to run jobs "
            "(serverless, or CAN ATTACH TO on job-cluster-id)"
        )

        def errors(what: str) -> contextlib.AbstractContextManager[None]:
            return service_errors(what, workspace.refused, grant=grant)

        return DatabricksEvalJob(
            workspace.client(), cfg.job_volume, cluster_id=cfg.job_cluster_id, errors=errors
        )

    @property
    def cluster(self) -> ClusterSession:
        """The run's Kubernetes cluster (backend: kserve): one sign-in, one client."""
        if self._cluster is None:
            cfg = self.loaded.config
            self._cluster = ClusterSession(
                self.environ, cfg, self.ctx, self.loaded.base_dir, mask=self._mask
            )
        return self._cluster

    @property
    def workspace(self) -> Workspace:
        """The run's Databricks workspace: one sign-in and one client for every command."""
        if self._workspace is None:
            cfg = self.loaded.config
            self._workspace = Workspace(self.environ, cfg, cfg, self.ctx, mask=self._mask)
        return self._workspace


def partition_workspace(loaded: LoadedConfig, environ: Mapping[str, str]) -> ServingWorkspace:
    """The workspace a Spark partition signs in to from its environment (runner: spark):
    top-level, so Spark ships it by name and the partition imports the backend itself."""
    cfg = loaded.config
    return Workspace(environ, cfg, cfg, read_context(environ))


def wheel_of(package_dir: Path, into: Path) -> Path:
    """A wheel of the running genai-gate, for a job to install (run-on: databricks)."""
    source = source_tree(package_dir, os.environ)
    if source is None:
        raise ConfigError(
            "run-on: databricks uploads a wheel of genai-gate, and its source is not here "
            "(neither around the installed package nor in GITHUB_ACTION_PATH)",
            fix="Run from the action (uses: <owner>/genai-gate@v1), or from a checkout of "
            "genai-gate installed with pip install -e.",
        )
    return build_wheel(source, into)


def refuse_on_pull_request(ctx: Context) -> None:
    if ctx.is_pull_request:
        raise ConfigError(
            f"deploy does not run on {ctx.event_name} events: a pull request is not merged "
            "yet, and a fork's code must never reach a serving endpoint",
            fix="Deploy on a push to the default branch, and show the plan on pull requests:\n"
            "  on:\n    push:\n      branches: [main]\n"
            "The action runs `plan` on pull requests and `deploy` on pushes by itself.",
        )

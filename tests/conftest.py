"""Shared test fixtures: the CLI run in-process, small projects on disk, a real MLflow server.

The layers, each a folder, marked by folder below:

- tests/unit: pure and fast; no subprocess, no socket, no MLflow store (tests/unit/conftest.py
  fails a test that tries);
- tests/cli (marker `cli`): `genai-gate` run in-process end to end on local files, with an
  MLflow sqlite store under tmp_path;
- tests/integration (marker `integration`): against real local servers (an MLflow tracking
  server, the fakes in tests/fakes) and subprocesses;
- tests/container (marker `container`): the image `.ci/run` built; skipped, with the reason,
  when it is absent.

Tests that take over ~10 s on a 2-core machine are also marked `slow`.

The MLflow server takes tens of seconds to come up, so it is started as soon as collection
shows that a selected test will use it, and the other tests run while it boots.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from genai_gate.cli import main
from tests.fakes.databricks import FakeDatabricks
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.kubernetes import ADMIN_TOKEN, FakeKubernetes

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = REPO / "examples" / "quickstart"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a genai-gate process a test starts: this process's, without what a
    CI runner or the action set for genai-gate, with MLflow's telemetry off, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GENAI_GATE_", "GITHUB_")) and k != "MLFLOW_TRACKING_URI"
    }
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("GENAI_GATE_", "GITHUB_")) or name in (
            "MLFLOW_TRACKING_URI",
            "GITHUB_ACTIONS",
        ):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def cli(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Any:
    """Run `genai-gate ARGS` in this process; --out defaults to a fresh temp folder."""

    def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
        for key, value in (env or {}).items():
            clean_env.setenv(key, value)
        if cwd is not None:
            clean_env.chdir(cwd)
        args = list(argv)
        if args and args[0] == "eval" and "--out" not in args:
            args += ["--out", str(tmp_path / "out")]
        capsys.readouterr()
        code = main(args)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


class Project:
    """A throwaway project folder: a config, a data file and model modules."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def jsonl(self, rel: str, rows: list[dict[str, Any]]) -> Path:
        return self.write(rel, "".join(json.dumps(r) + "\n" for r in rows))

    def config(self, text: str, name: str = "genai-gate.yml") -> Path:
        return self.write(name, text)

    @property
    def out(self) -> Path:
        return self.root / "out"

    def eval(
        self, cli: Any, *flags: str, env: dict[str, str] | None = None, config: str = ""
    ) -> CliResult:
        """`genai-gate eval` on this project's config, writing into `out`."""
        cfg = config or str(self.root / "genai-gate.yml")
        result: CliResult = cli("eval", "-c", cfg, "-q", "--out", str(self.out), *flags, env=env)
        return result

    def results(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.out / "results.json").read_text())
        return doc


ECHO_MODEL = """
def predict(question):
    return KNOWN.get(question, "no idea")

KNOWN = {"What is 2+2?": "4", "Capital of France?": "Paris", "Color of the sky?": "blue"}
"""

QA_ROWS = [
    {"inputs": {"question": "What is 2+2?"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
    {"inputs": {"question": "Color of the sky?"}, "expectations": {"expected_response": "blue"}},
    {"inputs": {"question": "Largest planet?"}, "expectations": {"expected_response": "Jupiter"}},
]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A project whose echo model gets 3 of 4 rows right, under its own package name."""
    root = tmp_path / "proj"
    p = Project(root)
    p.write("qa_model.py", ECHO_MODEL)
    p.jsonl("qa.jsonl", QA_ROWS)
    return p


# ---------------------------------------------------------------- Databricks and GitHub OIDC fakes


@pytest.fixture
def github_oidc() -> Iterator[FakeGitHubOIDC]:
    """A started GitHub Actions OIDC issuer (tests/fakes/github_oidc.py)."""
    with FakeGitHubOIDC() as issuer:
        yield issuer


@pytest.fixture
def databricks_workspace(github_oidc: FakeGitHubOIDC, tmp_path: Path) -> Iterator[FakeDatabricks]:
    """A started workspace emulator (tests/fakes/databricks.py) that trusts `github_oidc`,
    capturing inference tables under tmp_path/"databricks-capture"."""
    fake = FakeDatabricks(oidc_issuer=github_oidc, capture_dir=tmp_path / "databricks-capture")
    with fake:
        yield fake


_AUTH_ENV_PREFIXES = ("DATABRICKS_", "ARM_", "ACTIONS_ID_TOKEN_", "AZURE_", "GOOGLE_CREDENTIALS")


@pytest.fixture
def databricks_clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Databricks, Azure, GCP or GitHub OIDC credentials in the environment, and HOME in a
    temp folder so no ~/.databrickscfg is read: the SDK sees only what the test sets."""
    for name in list(os.environ):
        if name.startswith(_AUTH_ENV_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    return monkeypatch


@pytest.fixture
def databricks_oidc_env(
    databricks_clean_env: pytest.MonkeyPatch, databricks_workspace: FakeDatabricks
) -> dict[str, str]:
    """The environment of a GitHub job with `id-token: write` deploying to the emulator via
    github-oidc (DATABRICKS_HOST, DATABRICKS_AUTH_TYPE, DATABRICKS_CLIENT_ID,
    ACTIONS_ID_TOKEN_REQUEST_*), already set; returned for subprocesses."""
    env = databricks_workspace.oidc_env()
    for key, value in env.items():
        databricks_clean_env.setenv(key, value)
    return env


@pytest.fixture
def databricks_pat_env(
    databricks_clean_env: pytest.MonkeyPatch, databricks_workspace: FakeDatabricks
) -> dict[str, str]:
    """DATABRICKS_HOST and DATABRICKS_TOKEN (a PAT) for the emulator, already set."""
    env = databricks_workspace.pat_env()
    for key, value in env.items():
        databricks_clean_env.setenv(key, value)
    return env


@pytest.fixture
def databricks_job(
    tmp_path: Path,
    databricks_workspace: FakeDatabricks,
    github_oidc: FakeGitHubOIDC,
    databricks_clean_env: pytest.MonkeyPatch,
) -> Callable[..., dict[str, str]]:
    """The environment of an Actions job on `event` (on main) with `id-token: write` and the
    workspace in its env, as the action sees it; no DATABRICKS_AUTH_TYPE, so genai-gate picks."""
    from tests.action_env import github_env

    def make(event: str, payload: dict[str, Any] | None = None) -> dict[str, str]:
        env = github_env(
            tmp_path / "gh",
            event=event,
            payload=payload or {"repository": {"full_name": "acme/bot", "default_branch": "main"}},
            ref="refs/heads/main",
        )
        env.update(
            {
                "DATABRICKS_HOST": databricks_workspace.host,
                "DATABRICKS_CLIENT_ID": databricks_workspace.federation.service_principal_id,
                **github_oidc.env(),
            }
        )
        return env

    return make


# ---------------------------------------------------------------- fresh MLflow sqlite stores

_template_lock = threading.Lock()


def _copy_sqlite(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture(scope="session", autouse=True)
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A new sqlite tracking store starts as a copy of one migrated in this session.

    Every `genai-gate eval` in tests/cli and tests/integration writes to a fresh
    sqlite:///<out>/mlflow.db, and MLflow creates each with its full chain of Alembic
    migrations: 2-4 s on 2 cores, most of the time of tests/cli. The first new store of the
    session is migrated by MLflow for real and kept as a template; later ones get its
    content through SQLite's backup API: the same tables, rows and Alembic revision, which
    MLflow's own schema check verifies right after. Other databases, and genai-gate run in
    a subprocess, are untouched.
    """
    from mlflow.store.db import utils as db_utils

    real: Callable[[Any], None] | None = getattr(db_utils, "_initialize_tables", None)
    if real is None:  # a layout change in MLflow: every store is migrated for real
        yield
        return
    template = tmp_path_factory.mktemp("mlflow-sqlite-template") / "mlflow.db"

    def initialize(engine: Any) -> None:
        database = engine.url.database
        if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            real(engine)
            return
        with _template_lock:
            if template.exists():
                _copy_sqlite(template, Path(database))
            else:
                real(engine)
                _copy_sqlite(Path(database), template)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db_utils, "_initialize_tables", initialize)
        yield


# ---------------------------------------------------------------- the MLflow tracking server

_server: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_mlflow_server(root: Path) -> None:
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = (root / "server.log").open("w")
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    _server.update(proc=proc, uri=f"http://127.0.0.1:{port}", root=root, log=log)


# the folder a test is in gives its marker, so that `-m` selects layers
FOLDER_MARKERS = {"cli": "cli", "integration": "integration", "container": "container"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        try:
            folder = item.path.resolve().relative_to(tests).parts[0]
        except ValueError:
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])


def pytest_collection_finish(session: pytest.Session) -> None:
    # after `-m` and `-k`: start the server only for a selected test that uses it
    if session.config.option.collectonly or _server:
        return
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_mlflow_server(_server_root())


def _server_root() -> Path:
    # a fresh temp folder: nothing in the checkout, whoever runs the tests
    return Path(tempfile.mkdtemp(prefix="genai-gate-mlflow-"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    proc = _server.get("proc")
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        _server["log"].close()
        shutil.rmtree(_server["root"], ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """URI of a real `mlflow server` (sqlite backend) on a free loopback port."""
    if not _server:
        _start_mlflow_server(_server_root())
    proc, uri = _server["proc"], _server["uri"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (_server["root"] / "server.log").read_text()[-3000:]
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        pytest.fail("mlflow server did not come up within 180 s")
    yield uri


@pytest.fixture(scope="session")
def mlflow_server_root(mlflow_server: str) -> Path:
    """The folder of the `mlflow_server`: its sqlite store and its artifact destination."""
    root: Path = _server["root"]
    return root


# ---------------------------------------------------------------- Kubernetes API with KServe (#15)


@pytest.fixture
def kube_cluster(github_oidc: FakeGitHubOIDC, tmp_path: Path) -> Iterator[FakeKubernetes]:
    """A started Kubernetes API emulator with KServe (tests/fakes/kubernetes.py) that trusts
    `github_oidc` through a JWT authenticator (audience `kube_cluster.audience`, usernames
    `github:<sub>`), filing logged CloudEvents under tmp_path/"kserve-capture"."""
    fake = FakeKubernetes(oidc_issuer=github_oidc, capture_dir=tmp_path / "kserve-capture")
    with fake:
        yield fake


@pytest.fixture
def kube_kubeconfig(
    kube_cluster: FakeKubernetes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A kubeconfig for `kube_cluster` with the admin token, set as KUBECONFIG."""
    path = kube_cluster.kubeconfig(tmp_path / "kubeconfig", token=ADMIN_TOKEN)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def kube_oidc_env(kube_cluster: FakeKubernetes, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A GitHub job's OIDC environment for `kube_cluster` (ACTIONS_ID_TOKEN_REQUEST_URL and
    _TOKEN, plus KUBERNETES_SERVER and KUBERNETES_AUDIENCE), already set; KUBECONFIG unset."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    env = kube_cluster.oidc_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env

"""The container flavour (Dockerfile, entrypoint, container/action.yml), run the way GitHub
runs a Docker action.

This machine can build images with podman but not run them (crun cannot set rlimits here),
so the test plays the container runtime itself:

- `.ci/run` builds `localhost/genai-gate:ci` before pytest (`bash .ci/build-image`, as root:
  it installs podman and debootstrap when missing). The tests never build it nor install
  anything: without the image, or without root, they skip and say why;
  GENAI_GATE_TEST_CONTAINER=1 (set by `.ci/run`) makes that a failure instead;
- `podman image mount` gives the image's file tree, read-only; an overlay on top of it is the
  container's writable layer, as with `docker run`;
- the runner's folders are bind-mounted where the runner puts them (`/github/workspace`,
  `/github/home`, `/github/workflow`, `/github/file_commands`), with `/proc` and a minimal
  `/dev`;
- `chroot` runs `/entrypoint` in `/github/workspace` with the image's own environment
  (PATH, LANG, ...) plus what the runner passes: the `runs.env` of container/action.yml with
  `${{ inputs.* }}` filled in from the test's inputs or the inputs' defaults, `INPUT_*`, and
  `GITHUB_*`.

Needs root on Linux. `pytest -m "not container"` leaves these tests out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.action_env import read_outputs
from tests.conftest import QUICKSTART, REPO

pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(1800)]

ACTION_YML = REPO / "container" / "action.yml"
IMAGE = os.environ.get("CI_IMAGE", "localhost/genai-gate:ci")
# set by .ci/run, which builds the image first: there an absent image fails instead of skipping
REQUIRED = os.environ.get("GENAI_GATE_TEST_CONTAINER", "") == "1"
BUILT_BY = "`.ci/run` builds it (bash .ci/build-image, needs root)"
DUMMY_TOKEN = "ghs_containerTestDummyToken0123456789ab"  # stands in for ${{ github.token }}
PUSH_PAYLOAD = {"ref": "refs/heads/main", "repository": {"full_name": "acme/bot"}}

# Where the runner mounts its folders in a Docker action's container
GITHUB_DIRS = ("workspace", "home", "workflow", "file_commands")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def why_not_runnable() -> str | None:
    """Why the container tests cannot run here, or None. They never build the image."""
    if sys.platform != "linux":
        return f"the container tests need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return (
            "the container tests need root (podman image mount, mount, chroot); "
            f"`.ci/run` runs them as root after building {IMAGE}"
        )
    podman = shutil.which("podman")
    if podman is None:
        return f"podman is not on PATH, so the container image {IMAGE} is absent; {BUILT_BY}"
    if _run(podman, "image", "exists", IMAGE, check=False).returncode != 0:
        return f"the container image {IMAGE} is absent; {BUILT_BY}"
    return None


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """The file tree of the image `.ci/run` built, mounted read-only."""
    reason = why_not_runnable()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"GENAI_GATE_TEST_CONTAINER=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    mnt = Path(_run("podman", "image", "mount", IMAGE).stdout.strip())
    try:
        yield mnt
    finally:
        _run("podman", "image", "unmount", IMAGE, check=False)


@dataclass
class Container:
    """One container's file tree: the image under a writable overlay, the runner's folders
    mounted in. `host(path)` is where a path inside the container lives on the host."""

    root: Path
    github: Path  # host folder holding workspace/, home/, workflow/, file_commands/

    @property
    def workspace(self) -> Path:
        return self.github / "workspace"

    def host(self, inside: str) -> Path:
        rel = Path(inside).relative_to("/github")
        return self.github / rel


def _mount(mounted: list[Path], target: Path, *args: str) -> None:
    _run("mount", *args, str(target))
    mounted.append(target)


def _unmount_all(mounted: list[Path]) -> None:
    for target in reversed(mounted):
        if _run("umount", str(target), check=False).returncode != 0:
            _run("umount", "--lazy", str(target), check=False)


@pytest.fixture
def container(image_root: Path, tmp_path: Path) -> Iterator[Container]:
    layer = tmp_path / "layer"
    for name in ("upper", "work", "root"):
        (layer / name).mkdir(parents=True)
    root = layer / "root"
    github = tmp_path / "github"
    mounted: list[Path] = []
    try:
        _mount(
            mounted,
            root,
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={image_root},upperdir={layer / 'upper'},workdir={layer / 'work'}",
        )
        _mount(mounted, root / "proc", "-t", "proc", "proc")
        _mount(mounted, root / "dev", "-t", "tmpfs", "-o", "mode=755", "tmpfs")
        for node in DEV_NODES:
            (root / "dev" / node).touch()
            _mount(mounted, root / "dev" / node, "--bind", f"/dev/{node}")
        (root / "dev" / "shm").mkdir()
        _mount(mounted, root / "dev" / "shm", "-t", "tmpfs", "-o", "mode=1777", "tmpfs")
        for name in GITHUB_DIRS:
            (github / name).mkdir(parents=True)
            inside = root / "github" / name
            inside.mkdir(parents=True)
            _mount(mounted, inside, "--bind", str(github / name))
        yield Container(root=root, github=github)
    finally:
        _unmount_all(mounted)


# ---------------------------------------------------------------- what the runner passes


def _expand(text: str, inputs: Mapping[str, str]) -> str:
    """Evaluate the `${{ }}` expressions that container/action.yml uses."""

    def value(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        if expr == "github.token":
            return DUMMY_TOKEN
        raise AssertionError(f"the test cannot evaluate ${{{{ {expr} }}}} in {ACTION_YML}")

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def action_env(action: dict[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """`runs.env` and `INPUT_*` as the runner computes them for `with: given`."""
    declared: dict[str, dict[str, Any]] = action["inputs"]
    unknown = set(given) - set(declared)
    assert not unknown, f"not inputs of {ACTION_YML}: {sorted(unknown)}"
    inputs = {
        name: given[name] if name in given else _expand(str(spec.get("default", "")), {})
        for name, spec in declared.items()
    }
    env = {f"INPUT_{name.upper().replace(' ', '_')}": v for name, v in inputs.items()}
    for name, template in action["runs"]["env"].items():
        env[name] = _expand(str(template), inputs)
    return env


def runner_env(c: Container, event: str, payload: dict[str, Any]) -> dict[str, str]:
    """The GITHUB_* side of `docker run -e ...` for a Docker action step."""
    (c.host("/github/workflow/event.json")).write_text(json.dumps(payload))
    output = "/github/file_commands/set_output_0a1b2c"
    summary = "/github/file_commands/step_summary_0a1b2c"
    for path in (output, summary):
        c.host(path).write_text("")
    return {
        "HOME": "/github/home",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": "/github/workspace",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": "/github/workflow/event.json",
        "GITHUB_OUTPUT": output,
        "GITHUB_STEP_SUMMARY": summary,
        "GITHUB_REPOSITORY": "acme/bot",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": "f" * 40,
        "GITHUB_RUN_ID": "99",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.test",
        "GITHUB_API_URL": "http://127.0.0.1:9",  # never reached: a push gets no PR comment
        "RUNNER_OS": "Linux",
    }


def image_env() -> dict[str, str]:
    """The image's ENV (PATH, LANG, ...), which a container runtime starts from."""
    raw = _run("podman", "image", "inspect", "--format", "{{json .Config.Env}}", IMAGE).stdout
    pairs: list[str] = json.loads(raw) or []
    return dict(p.split("=", 1) for p in pairs)


@dataclass
class StepResult:
    code: int
    out: str
    err: str
    outputs: dict[str, str]
    summary: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_step(c: Container, with_: Mapping[str, str]) -> StepResult:
    action: dict[str, Any] = yaml.safe_load(ACTION_YML.read_text())
    assert action["runs"]["using"] == "docker"
    env = {
        **image_env(),
        **runner_env(c, "push", PUSH_PAYLOAD),
        **action_env(action, with_),
    }
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    # `docker run --workdir /github/workspace IMAGE`: the image's ENTRYPOINT, no args
    proc = subprocess.run(
        [chroot, str(c.root), "/bin/sh", "-c", "cd /github/workspace && exec /entrypoint"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return StepResult(
        code=proc.returncode,
        out=proc.stdout,
        err=proc.stderr,
        outputs=read_outputs(c.host(env["GITHUB_OUTPUT"])),
        summary=c.host(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"),
    )


def report_on_host(c: Container, report_path: str) -> Path:
    """Where the `report-path` output points, on the host: it is relative to the workspace,
    so that a later step of the job (upload-artifact, say) finds it."""
    assert not Path(report_path).is_absolute(), report_path
    return c.host(str(Path("/github/workspace") / report_path))


# ---------------------------------------------------------------- the cases


def test_quickstart_passes(container: Container) -> None:
    shutil.copytree(QUICKSTART, container.workspace, dirs_exist_ok=True)
    r = run_step(container, {})
    assert r.code == 0, r.text
    assert r.outputs["result"] == "passed"
    assert r.outputs["passed"] == "true"
    metrics = json.loads(r.outputs["metrics"])
    assert "exact_match/mean" in metrics
    assert "latency/p50" in metrics
    assert re.fullmatch(r"[0-9a-f]{32}", r.outputs["run-id"]), r.outputs
    results = report_on_host(container, r.outputs["report-path"])
    assert results == container.workspace / "genai-gate-out" / "results.json"
    assert json.loads(results.read_text())["passed"] is True
    assert "genai-gate: passed" in r.summary
    # the default github-token is masked, and printed nowhere else
    assert f"::add-mask::{DUMMY_TOKEN}" in r.out
    assert r.text.count(DUMMY_TOKEN) == 1


def test_strict_config_fails_the_step(container: Container) -> None:
    shutil.copytree(QUICKSTART, container.workspace, dirs_exist_ok=True)
    r = run_step(container, {"config": "genai-gate-strict.yml"})
    assert r.code == 1, r.text
    assert (r.outputs["result"], r.outputs["passed"]) == ("failed", "false")
    assert "exact_match/mean" in json.loads(r.outputs["metrics"])
    assert "::error title=genai-gate%3A exact_match/mean::" in r.out
    assert "genai-gate: failed" in r.summary


def test_working_directory_and_out_inputs(container: Container) -> None:
    project = container.workspace / "services" / "bot"
    shutil.copytree(QUICKSTART, project)
    r = run_step(container, {"working-directory": "services/bot", "out": "gate-report"})
    assert r.code == 0, r.text
    assert r.outputs["result"] == "passed"
    assert r.outputs["report-path"] == "services/bot/gate-report/results.json"
    results = report_on_host(container, r.outputs["report-path"])
    assert results == project / "gate-report" / "results.json"
    assert results.is_file()
    assert not (container.workspace / "genai-gate-out").exists()


def test_the_image_has_the_semantic_extra(container: Container) -> None:
    # no install step in a container action: every optional extra is in the image
    shutil.copytree(QUICKSTART, container.workspace, dirs_exist_ok=True)
    r = run_step(
        container,
        {
            "scorers": "exact_match, latency, semantic_similarity",
            "thresholds": "semantic_similarity/mean >= 0.5",
        },
    )
    assert r.code == 0, r.text
    metrics = json.loads(r.outputs["metrics"])
    assert 0.5 <= metrics["semantic_similarity/mean"] <= 1.0

"""action.yml run the way the Actions runner runs a composite action.

Each `run:` step gets the environment the runner builds: its `env:` with `${{ }}` expressions
resolved, GITHUB_ACTION_PATH, RUNNER_TEMP, a fresh GITHUB_OUTPUT file, and the job's
GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH. `uses:` steps (setup-python, cache) count as
done, with the outputs they would give. The action's outputs are resolved from their
`value:` expressions. The install step really installs the locked package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.action_env import github_env, read_outputs
from tests.conftest import QUICKSTART, REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def resolve(text: str, ctx: dict[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        path = m.group(1).split(".")
        if path[0] == "steps" and len(path) == 4 and path[1] in ctx["steps"]:
            # as on GitHub, an output the step did not set reads as ""
            return str(ctx["steps"][path[1]]["outputs"].get(path[3], ""))
        value: Any = ctx
        for part in path:
            if not isinstance(value, dict) or part not in value:
                raise AssertionError(f"action.yml uses ${{{{ {m.group(1)} }}}}, unknown here")
            value = value[part]
        return str(value)

    return EXPR.sub(one, text)


def run_composite(
    inputs: dict[str, str], job_env: dict[str, str], workspace: Path, runner_temp: Path
) -> tuple[dict[str, str], list[subprocess.CompletedProcess[str]]]:
    declared = ACTION["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    github = {"token": "ghs_dummy_token", "action_path": str(REPO)}
    ctx: dict[str, Any] = {
        "github": github,
        "runner": {"temp": str(runner_temp), "os": "Linux", "arch": "X64"},
        "steps": {},
    }
    ctx["inputs"] = {
        name: resolve(str(spec.get("default", "")), ctx) for name, spec in declared.items()
    }
    ctx["inputs"].update(inputs)
    done: list[subprocess.CompletedProcess[str]] = []
    for i, step in enumerate(ACTION["runs"]["steps"]):
        sid = step.get("id", f"step{i}")
        if "uses" in step:
            if step["uses"].startswith("actions/setup-python@"):
                outputs = {
                    "python-path": sys.executable,
                    "python-version": ".".join(map(str, sys.version_info[:3])),
                }
            else:
                outputs = {"cache-hit": "false"}
            ctx["steps"][sid] = {"outputs": outputs}
            continue
        assert "${{" not in step["run"], f"step {sid}: ${{{{ }}}} inside run:"
        out_file = runner_temp / f"output-{i}"
        out_file.write_text("")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GENAI_GATE_")},
            **job_env,
            "GITHUB_ACTION_PATH": str(REPO),
            "RUNNER_TEMP": str(runner_temp),
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "GITHUB_OUTPUT": str(out_file),
            "GITHUB_WORKSPACE": str(workspace),
        }
        env.update({k: resolve(str(v), ctx) for k, v in (step.get("env") or {}).items()})
        cwd = resolve(step.get("working-directory", str(workspace)), ctx)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd,
            env=env,
            text=True,
            capture_output=True,
            timeout=900,
            check=False,
        )
        done.append(proc)
        ctx["steps"][sid] = {"outputs": read_outputs(out_file)}
        if proc.returncode != 0:
            break
    outputs = {name: resolve(spec["value"], ctx) for name, spec in ACTION["outputs"].items()}
    return outputs, done


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one install for the module, as one job would reuse it across steps
    return tmp_path_factory.mktemp("runner-temp")


@pytest.mark.slow  # the first case installs the locked package into a venv: a minute or two
@pytest.mark.parametrize(
    ("config", "expected", "code"),
    [("genai-gate.yml", "passed", 0), ("genai-gate-strict.yml", "failed", 1)],
)
def test_composite_action(
    config: str, expected: str, code: int, tmp_path: Path, runner_temp: Path
) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(QUICKSTART, workspace / "gate")
    job_env = github_env(tmp_path / "gh", event="push", payload={}, ref="refs/heads/main")
    outputs, steps = run_composite(
        {
            "working-directory": "gate",
            "config": config,
            "thresholds": "token_f1/mean >= 0.5" if expected == "passed" else "",
        },
        job_env,
        workspace,
        runner_temp,
    )
    last = steps[-1]
    assert last.returncode == code, last.stdout + last.stderr
    assert outputs["result"] == expected
    assert outputs["passed"] == ("true" if expected == "passed" else "false")
    metrics = json.loads(outputs["metrics"])
    assert 0 < metrics["exact_match/mean"] < 1
    # relative to the workspace, so a later step (upload-artifact) finds it
    assert outputs["report-path"] == "gate/genai-gate-out/results.json"
    assert (workspace / outputs["report-path"]).is_file()
    assert len(outputs["run-id"]) == 32
    summary = (tmp_path / "gh" / "summary").read_text()
    assert f"genai-gate: {expected}" in summary
    if expected == "passed":
        # the thresholds input merged over the config's
        assert "token_f1/mean" in summary
    else:
        assert "::error title=genai-gate%3A exact_match/mean::" in last.stdout


@pytest.mark.parametrize("extras", ["semantic;rm -rf /", "*", "semantic, ../x"])
def test_install_refuses_an_extras_input_that_is_not_a_name(extras: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "install-action-env"),
            sys.executable,
            str(tmp_path),
            extras,
        ],
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "::error title=genai-gate::extras:" in proc.stdout
    assert "is not an extra's name; genai-gate has: semantic" in proc.stdout
    assert not (tmp_path / "venv").exists()  # refused before installing anything

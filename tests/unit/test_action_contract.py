"""One input contract for both action flavours (action.yml, container/action.yml).

Both files' inputs, outputs and env blocks are generated from genai_gate.action_inputs by
scripts/gen-action; these tests hold the committed files to that, and the contract itself to
the config model. Pure: they read files and import modules, and run nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_gate.action_inputs import (
    ACTION_ONLY,
    EXCLUDED,
    FILES,
    FLAVOURS,
    FORMS,
    GATE_STEP,
    OUTPUTS,
    Flavour,
    config_fields,
    env_name,
    flavour_inputs,
    inputs,
    render,
    structured,
)
from genai_gate.config import RESERVED_ENV, Config, env_settings

REPO = Path(__file__).resolve().parents[2]
TEXT = {flavour: (REPO / FILES[flavour]).read_text(encoding="utf-8") for flavour in FLAVOURS}
DOC: dict[Flavour, dict[str, Any]] = {f: yaml.safe_load(TEXT[f]) for f in FLAVOURS}
EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")

# Every input and default of the releases so far: workflows depend on them.
RELEASED_INPUTS = {
    "config": "",
    "data": "",
    "model": "",
    "scorers": "",
    "thresholds": "",
    "max-errors": "",
    "judge": "",
    "tracking-uri": "",
    "experiment": "",
    "baseline": "",
    "endpoint": "",
    "model-name": "",
    "model-version": "",
    "canary-percent": "",
    "workload-size": "",
    "scale-to-zero": "",
    "inference-table": "",
    "wait-timeout": "",
    "endpoint-config": "",
    "databricks-host": "",
    "databricks-client-id": "",
    "warehouse-id": "",
    "inference-data": "",
    "sample-size": "",
    "min-requests": "",
    "steps": "",
    "open-issue": "",
    "command": "",
    "github-token": "${{ github.token }}",
    "comment": "true",
    "working-directory": ".",
    "out": "genai-gate-out",
    "python-version": "3.12",
    "extras": "",
}
RELEASED_OUTPUTS = {
    "result",
    "passed",
    "metrics",
    "report-path",
    "run-id",
    "endpoint-config-version",
    "endpoint-url",
    "routes",
    "decision",
    "verdict",
}
# The composite's install inputs: the container's image is prebuilt, with every extra.
INSTALL = {i.name for i in inputs() if not i.cli}


def _gate_env(flavour: Flavour) -> dict[str, str]:
    doc = DOC[flavour]
    if flavour == "container":
        env: dict[str, str] = doc["runs"]["env"]
        return env
    gate = [s for s in doc["runs"]["steps"] if s.get("id") == GATE_STEP]
    assert len(gate) == 1, f"action.yml needs one step with id: {GATE_STEP}"
    step_env: dict[str, str] = gate[0]["env"]
    return step_env


def _strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


# ---------------------------------------------------------------- generated, and current


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_committed_file_is_the_generators_output(flavour: Flavour) -> None:
    wanted = render(TEXT[flavour], flavour)
    if wanted != TEXT[flavour]:
        diff = "".join(
            difflib.unified_diff(
                TEXT[flavour].splitlines(keepends=True),
                wanted.splitlines(keepends=True),
                f"a/{FILES[flavour]}",
                f"b/{FILES[flavour]}",
            )
        )
        pytest.fail(f"{FILES[flavour]} is stale: run `uv run python scripts/gen-action`\n{diff}")


def test_render_refuses_a_file_without_its_markers() -> None:
    text = TEXT["container"]
    broken = "\n".join(ln for ln in text.splitlines() if "# <<< outputs" not in ln)
    with pytest.raises(ValueError, match="outputs"):
        render(broken, "container")
    with pytest.raises(ValueError, match="no generated block for env"):
        render(re.sub(r"(?m)^ *# (>>>|<<<) env.*\n", "", text), "container")


# ---------------------------------------------------------------- the contract and the config


def test_every_config_key_is_an_input() -> None:
    keys = set(config_fields())
    assert keys == {(f.alias or n) for n, f in Config.model_fields.items()}
    declared = set(DOC["composite"]["inputs"])
    assert not keys - declared - set(EXCLUDED), "config keys without an input"
    assert set(EXCLUDED) <= keys, "EXCLUDED names a key the config does not have"
    assert not set(EXCLUDED) & declared
    assert all(reason.strip() for reason in EXCLUDED.values()), "say why a key is excluded"
    assert "concurrency" in declared


def test_what_reaches_the_cli_is_a_config_key_or_reserved() -> None:
    keys = set(config_fields())
    action_only = {i.env.removeprefix("GENAI_GATE_") for i in ACTION_ONLY if i.cli}
    assert action_only == RESERVED_ENV
    assert not {i.name for i in ACTION_ONLY} & keys
    for i in inputs():
        if i.cli:
            assert i.name in keys or i.env.removeprefix("GENAI_GATE_") in RESERVED_ENV


def test_the_released_inputs_and_outputs_stay() -> None:
    for flavour in FLAVOURS:
        declared = DOC[flavour]["inputs"]
        for name, default in RELEASED_INPUTS.items():
            if flavour == "container" and name in INSTALL:
                continue
            assert name in declared, f"{FILES[flavour]} dropped the input {name}"
            assert str(declared[name].get("default", "")) == default, name
        assert set(DOC[flavour]["outputs"]) >= RELEASED_OUTPUTS


def test_config_key_inputs_default_to_unset() -> None:
    # the CLI fills the defaults: an input's default would override the config file
    for key in config_fields():
        if key not in EXCLUDED:
            assert DOC["composite"]["inputs"][key]["default"] == ""


def test_every_list_or_mapping_key_says_how_to_write_it() -> None:
    for key, field in config_fields().items():
        assert structured(field) == (key in FORMS), key
        if key in FORMS:
            assert FORMS[key].render() in DOC["composite"]["inputs"][key]["description"]


@pytest.mark.parametrize("key", list(FORMS))
def test_a_form_example_loads_as_the_key(key: str) -> None:
    values, _ = env_settings({env_name(key): FORMS[key].example})
    Config.model_validate(values)


# ---------------------------------------------------------------- inputs reach the CLI as env


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_input_reaches_the_cli_once_as_genai_gate_env(flavour: Flavour) -> None:
    assert _gate_env(flavour) == {
        i.env: f"${{{{ inputs.{i.name} }}}}" for i in flavour_inputs(flavour) if i.cli
    }
    # and is read nowhere else but in the install steps' env (and setup-python's `with:`)
    used: dict[str, set[tuple[Any, ...]]] = {}
    for path, text in _strings(DOC[flavour]):
        for expr in EXPR.findall(text):
            if expr.startswith("inputs."):
                used.setdefault(expr.removeprefix("inputs."), set()).add(path)
    assert set(used) == {i.name for i in flavour_inputs(flavour)}
    for name, paths in used.items():
        for path in paths:
            if path[-2] == "env":
                assert path[-1] == env_name(name), f"{name} reaches the CLI as {path[-1]}"
            else:
                assert name in INSTALL and path[-2] == "with", f"{name} is read at {path}"


def test_no_expression_inside_run() -> None:
    for flavour in FLAVOURS:
        runs = DOC[flavour]["runs"]
        for step in runs.get("steps", []):
            assert "${{" not in step.get("run", ""), step.get("name")
        assert "args" not in runs and "entrypoint" not in runs  # the image's /entrypoint


def test_names_are_kebab_case() -> None:
    for i in inputs():
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", i.name), i.name
        assert i.env == "GENAI_GATE_" + i.name.upper().replace("-", "_")
    assert len({i.name for i in inputs()}) == len(inputs())


# ---------------------------------------------------------------- both flavours agree


def test_both_flavours_declare_the_same_inputs_and_outputs() -> None:
    composite, container = DOC["composite"], DOC["container"]
    assert set(composite["inputs"]) - set(container["inputs"]) == INSTALL
    for name, spec in container["inputs"].items():
        assert spec == composite["inputs"][name], name
    assert list(composite["outputs"]) == list(container["outputs"]) == [o.name for o in OUTPUTS]
    for o in OUTPUTS:
        assert composite["outputs"][o.name] == {
            "description": o.description,
            "value": f"${{{{ steps.{GATE_STEP}.outputs.{o.name} }}}}",
        }
        assert container["outputs"][o.name] == {"description": o.description}


def test_descriptions_are_one_line() -> None:
    for flavour in FLAVOURS:
        for kind in ("inputs", "outputs"):
            for name, spec in DOC[flavour][kind].items():
                text = spec["description"]
                assert text.strip() and "\n" not in text, f"{kind}.{name}"
                assert "${{" not in text, f"{kind}.{name}"

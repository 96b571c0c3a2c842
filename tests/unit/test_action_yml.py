"""action.yml and container/action.yml read as files: every input reaches the CLI as a
GENAI_GATE_* variable, and both flavours take the same inputs and give the same outputs.

action.yml run the way the runner runs it is tests/integration/test_composite_action.py.
"""

from __future__ import annotations

import yaml

from tests.conftest import REPO

ACTION = yaml.safe_load((REPO / "action.yml").read_text())
# how the composite flavour installs genai-gate; the container flavour's image is prebuilt
# (with every extra), and the CLI never sees them
INSTALL_INPUTS = {"python-version", "extras"}


def test_no_expression_inside_run() -> None:
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", "")


def test_every_input_reaches_the_cli_as_genai_gate_env() -> None:
    gate = next(s for s in ACTION["runs"]["steps"] if s.get("id") == "gate")
    mapped = {v.strip("${} ").removeprefix("inputs.") for v in gate["env"].values()}
    assert mapped == set(ACTION["inputs"]) - INSTALL_INPUTS
    for name, value in gate["env"].items():
        key = value.strip("${} ").removeprefix("inputs.")
        assert name == "GENAI_GATE_" + key.upper().replace("-", "_")


def test_both_flavours_take_the_same_inputs_and_give_the_same_outputs() -> None:
    container = yaml.safe_load((REPO / "container" / "action.yml").read_text())
    assert set(container["inputs"]) == set(ACTION["inputs"]) - INSTALL_INPUTS
    assert set(container["outputs"]) == set(ACTION["outputs"])
    for name, value in container["runs"]["env"].items():
        key = str(value).strip("${} ").removeprefix("inputs.")
        assert name == "GENAI_GATE_" + key.upper().replace("-", "_")
    assert {
        str(v).strip("${} ").removeprefix("inputs.") for v in container["runs"]["env"].values()
    } == set(container["inputs"])

"""Issue #12, the input side: what an answer is, YAML with a budget, and the checks that
refuse a weakened config before any model call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genai_gate import strict_yaml
from genai_gate.config import load_config
from genai_gate.errors import ConfigError
from genai_gate.scorer import as_text, not_an_answer
from tests.conftest import Project

# ---------------------------------------------------------------- what an answer is


@pytest.mark.parametrize(
    "answer",
    [
        "Paris",
        "",
        {"choices": [{"message": {"role": "assistant", "content": "Paris"}}]},
        {"choices": [{"text": "Paris"}]},
        {"response": "Paris"},
        {"output": {"content": "Paris"}},
    ],
)
def test_text_and_chat_objects_are_answers(answer: Any) -> None:
    assert not_an_answer(answer) is None
    assert as_text(answer) in ("Paris", "")


def _gen() -> Any:
    yield "Paris"


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (None, "returned None"),
        (b"Paris", "returned a bytes"),
        (_gen(), "returned a generator"),
        (42, "returned an int"),
        ({"score": 0.9}, "a dict with no text field (keys: 'score')"),
        ({"choices": [{"message": {"content": None}}]}, "a dict with no text field"),
        ({"response": b"Paris"}, "a dict with no text field (keys: 'response')"),
        (["Paris"], "returned a list"),
    ],
)
def test_anything_else_is_a_row_error_that_names_the_type(answer: Any, named: str) -> None:
    why = not_an_answer(answer)
    assert why is not None and named in why and "not text" in why


# ---------------------------------------------------------------- YAML


def test_duplicate_keys_at_any_depth_name_both_lines() -> None:
    with pytest.raises(strict_yaml.YamlProblem) as err:
        strict_yaml.load("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n")
    assert err.value.problems == [
        "line 4: 'c' is given twice (first at line 3); YAML would keep only the last one",
        "line 5: 'a' is given twice (first at line 1); YAML would keep only the last one",
    ]


def test_a_merge_key_then_an_override_is_not_a_duplicate() -> None:
    assert strict_yaml.load("base: &b {x: 1}\nuse:\n  <<: *b\n  x: 2\n")["use"] == {"x": 2}


def test_anchors_within_the_budget_load() -> None:
    doc = strict_yaml.load("a: &a [1, 2]\nb: *a\nc: *a\n")
    assert doc == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_an_alias_bomb_is_refused_without_being_expanded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    with pytest.raises(strict_yaml.YamlProblem, match="anchors and aliases"):
        strict_yaml.load("\n".join(lines))


def test_oversized_and_overdeep_yaml_is_refused() -> None:
    with pytest.raises(strict_yaml.YamlProblem, match="characters"):
        strict_yaml.load("x: " + "y" * (strict_yaml.MAX_BYTES + 1))
    with pytest.raises(strict_yaml.YamlProblem, match="nested too deeply"):
        strict_yaml.load("[" * 50_000 + "]" * 50_000)


# ---------------------------------------------------------------- where a problem is from


def test_flag_problems_are_headed_by_the_command_line_without_the_thresholds_tutorial(
    project: Project,
) -> None:
    config = project.config("data: qa.jsonl\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, environ={}, overrides={"max-errors": "lots"})
    text = err.value.render()
    assert text.startswith("Configuration error: the command line has 1 problem(s)")
    assert "--max-errors: 'lots' is neither" in text
    assert "thresholds:" not in text  # no tutorial for a problem that is not a threshold


def test_an_unknown_key_gets_no_thresholds_tutorial(project: Project) -> None:
    config = project.config("data: qa.jsonl\nmax-eror: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, environ={})
    text = err.value.render()
    assert "did you mean 'max-errors'?" in text
    assert "exact_match/mean" not in text


def test_env_and_file_problems_are_both_named(project: Project) -> None:
    config = project.config("data: qa.jsonl\nconcurrency: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, environ={"GENAI_GATE_RETRIES": "lots"})
    assert err.value.message == "genai-gate.yml and the environment have 2 problem(s)"


def test_legacy_roles_map_to_expectations_with_a_notice(project: Project) -> None:
    config = project.config("data: qa.csv\ncolumns:\n  inputs: q\n  targets: a\n")
    loaded = load_config(config, environ={})
    assert loaded.config.columns.expectations == "a"
    assert any("columns: targets" in n for n in loaded.notices)


# ---------------------------------------------------------------- paths on the command line


def test_data_on_the_command_line_is_relative_to_the_current_directory(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config("data: in-config-folder.jsonl\n", name="conf/genai-gate.yml")
    here = tmp_path / "elsewhere"
    here.mkdir()
    monkeypatch.chdir(here)
    flagged = load_config(config, environ={}, overrides={"data": "eval/qa.jsonl"})
    assert flagged.data_path == here / "eval" / "qa.jsonl"
    from_file = load_config(config, environ={})
    assert from_file.data_path == config.parent / "in-config-folder.jsonl"


def test_evidence_written_by_a_run_passes_the_chain_check(tmp_path: Path) -> None:
    from genai_gate import evidence

    path = tmp_path / "evidence.json"
    evidence.append(path, {"kind": "eval", "n": 1})
    evidence.append(path, {"kind": "eval", "n": 2})
    evidence.check_trail(path)  # intact: no error
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["records"][0]["n"] = 99  # an edited record breaks the link to it
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(Exception, match="hash chain is broken"):
        evidence.check_trail(path)


def test_a_key_given_twice_in_an_environment_value_is_named(project: Project) -> None:
    config = project.config("data: qa.jsonl\n")
    with pytest.raises(ConfigError) as err:
        load_config(config, environ={"GENAI_GATE_MODEL_PARAMS": "{temperature: 0, temperature: 1}"})
    assert err.value.problems == [
        "GENAI_GATE_MODEL_PARAMS: has keys given twice; line 1: 'temperature' is given twice "
        "(first at line 1); YAML would keep only the last one"
    ]

"""The scrubber and the key-shaped-value refusal (secrets.py), and the artefact writer."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from genai_gate import artefacts, secrets
from genai_gate.config.model import Config

DAPI = "dapi" + "0123456789abcdef" * 2


def test_known_values_and_token_shapes_are_scrubbed() -> None:
    secrets.remember_environ({"MY_CRED": "plain-secret-value-1", "X_API_KEY": "other-secret-2"})
    secrets.remember_environ({"CUSTOM": "configured-secret-3"}, ["CUSTOM"])
    text = (
        "plain-secret-value-1 other-secret-2 configured-secret-3 "
        f"{DAPI} sk-abcdefghijklmnopqrstu https://user:pw123456@host/x"
    )
    out = secrets.scrub(text)
    # MY_CRED is not named like a secret and not configured: its value is kept
    assert out.startswith("plain-secret-value-1 *** *** *** *** https://***@host/x")


def test_a_secret_inside_json_is_scrubbed_in_its_escaped_form() -> None:
    secrets.remember('quote"d-secret-value')
    doc = {"answer": 'it is quote"d-secret-value', "nested": [{"k": DAPI}]}
    assert secrets.scrub_doc(doc) == {"answer": "it is ***", "nested": [{"k": "***"}]}
    assert "quote" not in secrets.scrub(json.dumps(doc))


@pytest.mark.parametrize("value", [DAPI, "sk-abcdefghijklmnopqrstu", "a1b2c3d4e5f6g7h8i9j0k1"])
def test_a_key_where_a_variable_name_belongs_is_refused_without_echo(value: str) -> None:
    with pytest.raises(ValueError) as info:
        Config.model_validate({"api-key-env": value})
    assert "looks like an API key" in str(info.value)
    messages = [e["msg"] for e in info.value.errors()]  # type: ignore[attr-defined]
    assert all(value not in m for m in messages)


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "DAPI_TOKEN", "MY_LLM_KEY_2"])
def test_variable_names_are_accepted(name: str) -> None:
    assert Config.model_validate({"judge-api-key-env": name}).judge_api_key_env == name


def test_artefacts_are_scrubbed_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    artefacts.write_json(path, {"answer": f"key {DAPI}"})
    assert json.loads(path.read_text()) == {"answer": "key ***"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]

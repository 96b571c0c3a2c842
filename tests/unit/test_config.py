from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_gate.config import Config, json_schema, load_config
from genai_gate.errors import ConfigError, ExitCode

MINIMAL = """\
data: eval/qa.jsonl              # CSV, JSONL, JSON or Parquet
model: python:app.model:predict  # or models:/name/3, models:/name@champion
scorers: [exact_match, token_f1, latency]
thresholds:
  exact_match/mean: ">= 0.6"
  latency/p50: "<= 800"          # milliseconds
"""


def write(tmp_path: Path, text: str, name: str = "genai-gate.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_form_from_the_architecture_doc(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, MINIMAL), environ={})
    cfg = loaded.config
    assert cfg.data == "eval/qa.jsonl"
    assert cfg.model == "python:app.model:predict"
    assert cfg.scorers == ("exact_match", "token_f1", "latency")
    assert [(t.metric, t.op, t.value) for t in loaded.thresholds] == [
        ("exact_match/mean", ">=", 0.6),
        ("latency/p50", "<=", 800.0),
    ]
    assert loaded.base_dir == tmp_path.resolve()
    assert loaded.resolve(cfg.data) == tmp_path.resolve() / "eval/qa.jsonl"


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL), environ={}).config
    with pytest.raises(ValueError):
        cfg.data = "other"  # type: ignore[misc]


def test_mapping_thresholds_and_percentages(tmp_path: Path) -> None:
    text = (
        "data: d.jsonl\nthresholds:\n  a/mean: {at-least: 0.5}\n  b/p90: {at_most: 3}\n"
        '  c/mean: ">= 80%"\n  d/mean: "< 2"\n'
    )
    loaded = load_config(write(tmp_path, text), environ={})
    got = {t.metric: (t.op, t.value) for t in loaded.thresholds}
    assert got == {
        "a/mean": (">=", 0.5),
        "b/p90": ("<=", 3.0),
        "c/mean": (">=", 0.8),
        "d/mean": ("<", 2.0),
    }


def test_seed_aliases_are_renamed_with_a_notice(tmp_path: Path) -> None:
    text = (
        'data: d.jsonl\nthresholds:\n  latency_p50_ms: "<= 800"\n'
        '  answer_correctness_score: ">= 0.8"\n'
    )
    loaded = load_config(write(tmp_path, text), environ={})
    assert {t.metric for t in loaded.thresholds} == {"latency/p50", "correctness/mean"}
    assert len(loaded.notices) == 2
    assert "'latency/p50'" in loaded.notices[0]


def test_alias_and_new_name_together_is_a_duplicate(tmp_path: Path) -> None:
    text = 'data: d.jsonl\nthresholds:\n  latency_p50_ms: "<= 800"\n  latency/p50: "<= 700"\n'
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    assert "given twice" in err.value.render()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('"0.8"', "not a threshold"),
        ("0.8", 'has no direction; write ">= 0.8"'),
        ('">= high"', "not a threshold"),
        ("{at-least: 1, at-most: 2}", "exactly one"),
        ("{}", "exactly one"),
        ("{above: 1}", "not a known setting"),
    ],
)
def test_bad_thresholds_name_the_metric(tmp_path: Path, value: str, needle: str) -> None:
    text = f"data: d.jsonl\nthresholds:\n  exact_match/mean: {value}\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    rendered = err.value.render()
    assert needle in rendered
    assert "exact_match/mean" in rendered
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_metric_without_aggregation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            write(tmp_path, 'data: d.jsonl\nthresholds:\n  exact_match: ">= 1"\n'), environ={}
        )
    assert "exact_match/mean" in err.value.render()


def test_every_problem_is_reported_under_the_typed_name(tmp_path: Path) -> None:
    text = "data: d.jsonl\ntreshold: {}\nconcurrency: 0\nmax-errors: lots\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    rendered = err.value.render()
    assert (
        "genai-gate.yml: treshold: is not a known setting (did you mean 'thresholds'?)" in rendered
    )
    assert "genai-gate.yml: concurrency" in rendered
    assert "genai-gate.yml: max-errors" in rendered


def test_environment_overrides_file_and_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    env = {
        "GENAI_GATE_MODEL": "python:other:fn",
        "GENAI_GATE_SCORERS": "exact_match, rouge_l",
        "GENAI_GATE_THRESHOLDS": "rouge_l/mean >= 0.3\nlatency/p50 <= 500  # tighter",
        "GENAI_GATE_MAX_ERRORS": "5%",
        "GENAI_GATE_EXPERIMENT": "",  # the runner passes unset inputs as empty strings
        "GENAI_GATE_CONFIG": "ignored-here",
    }
    loaded = load_config(path, environ=env)
    cfg = loaded.config
    assert cfg.model == "python:other:fn"
    assert cfg.scorers == ("exact_match", "rouge_l")
    assert cfg.max_errors == "5%"
    assert cfg.experiment == "genai-gate"
    # thresholds merge key by key: the file's exact_match stays, latency is overridden
    got = {t.metric: (t.op, t.value) for t in loaded.thresholds}
    assert got == {
        "exact_match/mean": (">=", 0.6),
        "latency/p50": ("<=", 500.0),
        "rouge_l/mean": (">=", 0.3),
    }

    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"GENAI_GATE_CONCURRENCY": "many"})
    assert "GENAI_GATE_CONCURRENCY" in err.value.render()


def test_unknown_environment_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), environ={"GENAI_GATE_THRESHOLD": "a/mean >= 1"})
    assert (
        "GENAI_GATE_THRESHOLD: not a genai-gate setting (did you mean 'thresholds'?)"
        in err.value.render()
    )


def test_flags_override_environment(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, MINIMAL),
        environ={"GENAI_GATE_CONCURRENCY": "4"},
        overrides={"concurrency": 2},
    ).config
    assert cfg.concurrency == 2
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), environ={}, overrides={"max-errors": "x"})
    assert "--max-errors" in err.value.render()


def test_no_config_file_and_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={})
    assert "data: eval/qa.jsonl" in err.value.render()
    # settings from the environment alone are enough
    cfg = load_config(None, environ={"GENAI_GATE_DATA": "x.csv"}).config
    assert cfg.data == "x.csv"


def test_explicit_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yml", environ={})
    assert "nope.yml does not exist" in err.value.render()


def test_max_errors_forms(tmp_path: Path) -> None:
    for given, rows, allowed in (("3", 100, 3), ("5%", 30, 1), ("10%", 100, 10), ("0", 5, 0)):
        cfg = load_config(
            write(tmp_path, f"data: d.jsonl\nmax-errors: '{given}'\n"), environ={}
        ).config
        assert cfg.allowed_errors(rows) == allowed
    for bad in ("-1", "150%", "few"):
        with pytest.raises(ConfigError):
            load_config(write(tmp_path, f"data: d.jsonl\nmax-errors: '{bad}'\n"), environ={})


def test_json_schema_uses_the_typed_names() -> None:
    schema = json_schema()
    props = schema["properties"]
    assert {"data", "model", "scorers", "thresholds", "max-errors", "tracking-uri"} <= set(props)
    # data is required by eval only; plan and deploy read the same file without it
    assert "required" not in schema
    assert {"endpoint", "model-name", "canary-percent", "inference-table"} <= set(props)
    assert schema["additionalProperties"] is False
    json.dumps(schema)
    assert Config.model_config["frozen"] is True


# ---------------------------------------------------------------- rules against a baseline


def test_rules_against_the_baseline_sit_next_to_the_absolute_ones(tmp_path: Path) -> None:
    text = (
        "data: d.jsonl\nbaseline: run:abc\ninconclusive: fail\nthresholds:\n"
        "  token_f1/mean: {at-least: 0.5, max-drop: 0.02}\n"
        "  latency/p90: {at-most: 900, max-drop-pct: 10}\n"
        "  correctness/mean: {better: higher, must-improve: true}\n"
        "  cost/mean: {better: lower, max-drop: 0}\n"
    )
    loaded = load_config(write(tmp_path, text), environ={})
    assert loaded.config.baseline == "run:abc"
    assert loaded.config.inconclusive == "fail"
    assert [(t.metric, t.op, t.value) for t in loaded.thresholds] == [
        ("token_f1/mean", ">=", 0.5),
        ("latency/p90", "<=", 900.0),
    ]
    got = {t.metric: (t.better, t.op, t.limit) for t in loaded.relative}
    assert got == {
        "token_f1/mean": ("higher", "max-drop", 0.02),
        "latency/p90": ("lower", "max-drop-pct", 10.0),
        "correctness/mean": ("higher", "must-improve", 0.0),
        "cost/mean": ("lower", "max-drop", 0.0),
    }
    pct = next(t for t in loaded.relative if t.op == "max-drop-pct")
    assert pct.allowed_drop(800.0) == pytest.approx(80.0)


def test_a_rule_against_the_baseline_from_the_environment(tmp_path: Path) -> None:
    env = {
        "GENAI_GATE_THRESHOLDS": "token_f1/mean {max-drop: 0.02, better: higher}\n"
        "exact_match/mean: {at-least: 0.6, max-drop-pct: 5}\nlatency/p50 <= 800",
        "GENAI_GATE_BASELINE": "endpoints:/bot",
    }
    loaded = load_config(write(tmp_path, "data: d.jsonl\n"), environ=env)
    assert loaded.config.baseline == "endpoints:/bot"
    assert {t.metric for t in loaded.relative} == {"token_f1/mean", "exact_match/mean"}
    assert {t.metric for t in loaded.thresholds} == {"exact_match/mean", "latency/p50"}


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("{max-drop: 0.02}", "max-drop needs a direction, so that a drop means worse"),
        ("{better: higher, max-drop: -0.1}", "max-drop must be a number of 0 or more, not -0.1"),
        ("{better: higher, max-drop: .nan}", "max-drop must be a number of 0 or more"),
        ("{better: higher, max-drop: lots}", "max-drop: Input should be a valid number"),
        ("{at-least: 0.5, max-drop: 0.1, max-drop-pct: 5}", "not max-drop and max-drop-pct"),
        ("{at-most: 3, better: higher, max-drop: 1}", "better: higher contradicts at-most"),
        ("{better: sideways, max-drop: 1}", "better: Input should be 'higher' or 'lower'"),
        ("{better: higher}", "give exactly one of at-least or at-most, or a rule against"),
        ("{at-least: 0.5, better: higher}", "better: only applies to max-drop"),
        ("{must-improve: true}", "must-improve needs a direction"),
    ],
)
def test_bad_rules_against_the_baseline(tmp_path: Path, value: str, needle: str) -> None:
    text = f"data: d.jsonl\nthresholds:\n  exact_match/mean: {value}\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    rendered = err.value.render()
    assert needle in rendered
    assert "genai-gate.yml: thresholds.exact_match/mean" in rendered
    # a mapping threshold is not also reported as "not a valid string"
    assert "valid string" not in rendered
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_bad_inconclusive_and_blank_baseline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            write(tmp_path, "data: d.jsonl\ninconclusive: maybe\nbaseline: ' '\n"), environ={}
        )
    rendered = err.value.render()
    assert "genai-gate.yml: inconclusive: Input should be 'estimate', 'pass' or 'fail'" in rendered
    assert "genai-gate.yml: baseline: must name a model" in rendered


def test_the_schema_refuses_what_the_cli_refuses() -> None:
    # issue #12: a bare number has no direction; the schema must not offer it
    import re

    values = json_schema()["properties"]["thresholds"]["additionalProperties"]["anyOf"]
    assert all(v.get("type") != "number" for v in values)
    (text,) = [v for v in values if v.get("type") == "string"]
    assert re.match(text["pattern"], ">= 0.8")
    for bad in ("0.8", "=> 0.8", ">= nan"):
        assert not re.match(text["pattern"], bad), bad

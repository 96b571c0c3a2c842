from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.entities import Feedback
from mlflow.genai.scorers import Scorer
from rouge_score import rouge_scorer

from genai_gate.errors import ConfigError
from genai_gate.scorer import normalize_answer
from genai_gate.scoring.builtin import make_builtin, rouge_l_f, squad_f1
from genai_gate.scoring.registry import build_scorers
from genai_gate.thresholds import Threshold

PAIRS = [
    ("The cat sat on the mat", "the cat is on the mat"),
    ("Paris", "Paris"),
    ("A concise summary of a pangram.", "A concise summary of a pangram"),
    ("they manage features for ML pipelines", "They centralize and version features for training"),
    ("", "something"),
    ("numbers 1 2 3 and ids x-42", "ids x 42 numbers 3 2 1"),
    ("Überraschung café", "cafe überraschung"),
    ("!!!", "???"),
]


@pytest.mark.parametrize(("prediction", "reference"), PAIRS)
def test_rouge_l_matches_rouge_score(prediction: str, reference: str) -> None:
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"]
    assert rouge_l_f(prediction, reference) == pytest.approx(expected.fmeasure, abs=1e-12)


def test_squad_normalisation_and_f1() -> None:
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert squad_f1("the cat sat", "a cat sat down") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert squad_f1("", "") == 1.0
    assert squad_f1("x", "") == 0.0


def test_builtins_are_mlflow_scorers_with_their_aggregations() -> None:
    em = make_builtin("exact_match", ("mean",)).get()
    assert isinstance(em, Scorer)
    assert em.name == "exact_match"
    assert em.run(outputs="paris.", expectations={"expected_response": "Paris"}) is True
    lat = make_builtin("latency", ("p50", "p99")).get()
    assert [getattr(a, "__name__", a) for a in lat.aggregations or []] == ["p50", "p99"]
    f1 = make_builtin("token_f1", ("mean",)).get()
    # several references: the best one counts
    assert (
        f1.run(outputs="blue sky", expectations={"expected_response": ["red", "the blue sky"]})
        == 1.0
    )


def test_registry_infers_builtins_from_thresholds(tmp_path: Path) -> None:
    bound = build_scorers(
        [], [Threshold("rouge_l/p95", ">=", 0.1), Threshold("latency/p50", "<=", 9.0)], tmp_path
    )
    assert [b.name for b in bound] == ["rouge_l", "latency"]
    # the threshold's aggregation is added to the defaults
    assert "p95" in bound[0].aggregations and "mean" in bound[0].aggregations


def test_registry_rejects_unknown_and_unproducible(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_scorers(
            ["exact_mach", "token_f1"],
            [Threshold("rouge_l/mean", ">=", 0.5), Threshold("token_f1/p42", ">=", 0)],
            tmp_path,
        )
    text = err.value.render()
    assert "'exact_mach' is not a scorer genai-gate knows. Did you mean 'exact_match'?" in text
    assert "'rouge_l/mean' names the scorer 'rouge_l', which is not configured" in text
    assert "'p42' is not an aggregation" in text


def test_custom_scorers_plain_function_and_mlflow_scorer(tmp_path: Path) -> None:
    (tmp_path / "my_scorers_a.py").write_text(
        "from mlflow.genai.scorers import scorer\n"
        "from mlflow.entities import Feedback\n"
        "def shouty(outputs) -> bool:\n    return str(outputs).isupper()\n"
        "@scorer(name='polite', aggregations=['mean', 'min'])\n"
        "def polite(outputs):\n    return Feedback(value='please' in str(outputs), rationale='r')\n"
        "def needs_ref(outputs, expectations):\n    return 1.0\n"
    )
    bound = build_scorers(
        [
            "python:my_scorers_a:shouty",
            "python:my_scorers_a:polite",
            "python:my_scorers_a:needs_ref",
        ],
        [Threshold("polite/min", ">=", 0)],
        tmp_path,
    )
    by = {b.name: b for b in bound}
    assert set(by) == {"shouty", "polite", "needs_ref"}
    assert by["polite"].aggregations == ("mean", "min")
    assert by["needs_ref"].needs_expectations and not by["shouty"].needs_expectations
    fb = by["polite"].resolved.run(outputs="yes please")
    assert isinstance(fb, Feedback) and fb.value is True


def test_duplicate_scorer_names(tmp_path: Path) -> None:
    (tmp_path / "dup_scorers_b.py").write_text("def exact_match(outputs):\n    return 1\n")
    with pytest.raises(ConfigError) as err:
        build_scorers(["exact_match", "python:dup_scorers_b:exact_match"], [], tmp_path)
    assert "both named 'exact_match'" in err.value.render()


def test_a_lazy_scorer_is_built_once_for_every_thread() -> None:
    """The scorers are built on MLflow's loading thread while the rows are scored on others:
    every caller gets the one object, built once."""
    import threading

    from genai_gate.scorer import LazyScorer

    builds: list[int] = []
    started = threading.Event()

    def build() -> object:
        started.wait(1)
        builds.append(1)
        return object()

    lazy = LazyScorer(build)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get())) for _ in range(8)]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert len({id(g) for g in got}) == 1


def test_a_lazy_scorer_that_cannot_be_built_fails_every_use() -> None:
    """A build that fails is not retried into a different answer, nor skipped: each row that
    needs the scorer gets the error (and the row fails, closed)."""
    from genai_gate.scorer import BoundScorer, LazyScorer, build_scorers_now

    calls: list[int] = []

    def build() -> object:
        calls.append(1)
        raise RuntimeError("MLflow refused the judge")

    bound = BoundScorer("j", LazyScorer(build), ("mean",), False, False, judge=True)
    build_scorers_now([bound])  # on the loading thread: the error is left for the rows
    for _ in range(2):
        with pytest.raises(RuntimeError, match="MLflow refused the judge"):
            _ = bound.resolved
    assert calls == [1]


def test_configured_scorers_are_checked_before_mlflow_builds_them() -> None:
    """Every config problem is found without building a scorer (so without importing
    MLflow): a guidelines judge with no rules, and a judge with no judge model."""
    with pytest.raises(ConfigError) as caught:
        build_scorers(["guidelines", "safety"], [], Path("."), judge=None)
    assert any("no judge model is configured" in p for p in caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        build_scorers(["guidelines"], [], Path("."), judge="openai:/gpt-4o-mini")
    assert any("needs the rules it checks" in p for p in caught.value.problems)
    ok = build_scorers(["exact_match", "safety"], [], Path("."), judge="openai:/gpt-4o-mini")
    assert [type(s.scorer).__name__ for s in ok] == ["LazyScorer", "LazyScorer"]
    assert isinstance(ok[0].resolved, Scorer) and isinstance(ok[1].resolved, Scorer)


def test_a_scorer_mlflow_refuses_is_a_config_error() -> None:
    """Built before any call (python: models), or after the calls on MLflow's loading thread:
    either way a scorer MLflow would not build is exit 2, never a verdict."""
    from genai_gate.errors import ExitCode
    from genai_gate.scorer import BoundScorer, LazyScorer
    from genai_gate.scoring.registry import raise_unbuilt

    def refuse() -> object:
        raise ValueError("instructions must name a template variable")

    bound = BoundScorer("mine", LazyScorer(refuse), ("mean",), False, False, judge=True)
    with pytest.raises(ConfigError) as caught:
        raise_unbuilt([bound])
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert caught.value.problems == [
        "scorers: mine: MLflow would not build it: instructions must name a template variable"
    ]

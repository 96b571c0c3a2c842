"""The monitor's pure parts: the input tests (KS, PSI) against values worked out by hand and
against scipy's reference implementation, the error-count bootstrap, the rules and verdict,
the config keys, finding the gated run in the evidence chain, and the reports' escaping."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genai_gate.commands.monitor import gated_run_in, parse_window
from genai_gate.compare import statistic, unpaired_interval
from genai_gate.config import load_config
from genai_gate.errors import ConfigError
from genai_gate.report.monitor import render_monitor
from genai_gate.report.monitor_html import render_monitor_html
from genai_gate.rollout.drift import input_drift, ks_two_sample, psi, word_bins
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.rollout.monitoring import (
    DriftRules,
    Side,
    Taken,
    decide,
    default_rules,
    rate_interval,
)
from genai_gate.rollout.plan import Entity
from genai_gate.thresholds import RelativeThreshold, Threshold

# ---------------------------------------------------------------- KS and PSI


def test_ks_statistic_is_the_largest_gap_between_the_two_step_functions() -> None:
    # F_a - F_b is 0.5 at x = 2, 3 and 4 (worked out by hand), never more
    d, p = ks_two_sample([1, 2, 3, 4], [3, 4, 5, 6])
    assert d == pytest.approx(0.5)
    assert 0 < p <= 1
    assert ks_two_sample([1, 2, 3], [1, 2, 3]) == (0.0, 1.0)


def test_ks_p_value_of_two_samples_that_do_not_overlap_is_the_exact_one() -> None:
    # all 5 of one side below all 5 of the other: 2 of the C(10, 5) = 252 orderings
    d, p = ks_two_sample([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert d == 1.0
    assert p == pytest.approx(2 / 252)


def test_ks_agrees_with_scipy_on_random_samples() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    a, b = rng.lognormal(3, 0.5, 700), rng.lognormal(3.1, 0.6, 400)
    want = ks_2samp(a, b)
    assert ks_two_sample(a, b) == pytest.approx((want.statistic, want.pvalue))


def test_psi_by_hand() -> None:
    # (0.5-0.25) ln(0.5/0.25) + (0.5-0.75) ln(0.5/0.75)
    want = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(want)
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(want)  # shares or counts alike
    assert psi([3, 7, 10], [30, 70, 100]) == pytest.approx(0.0)


def test_psi_stays_finite_when_a_bin_empties() -> None:
    index = psi([100, 0], [50, 50])
    assert math.isfinite(index) and index > 1  # a large shift, not an infinite one
    with pytest.raises(ValueError):
        psi([1, 2], [1, 2, 3])


def test_word_bins_come_from_the_reference_and_other_collects_the_rest() -> None:
    labels, now, ref = word_bins(["The cat sat.", "new words here"], ["the cat", "cat dog"], top=2)
    assert labels == ["cat", "dog", "(other)"]  # "the" is an article: dropped
    assert ref == [2, 1, 0]
    assert now == [1, 0, 4]  # sat, new, words, here


def test_input_drift_needs_a_minimum_sample_on_both_sides() -> None:
    length, words = input_drift(["a"] * 5, ["b"] * 100, min_samples=10)
    assert length.statistic is None and words.statistic is None
    assert (length.current, length.reference) == (5, 100)
    long = [f"question {i} " + "please explain " * (i % 5 + 3) for i in range(200)]
    short = [f"question {i}" for i in range(200)]
    length, words = input_drift(long, short, min_samples=10)
    assert length.statistic == 1.0 and length.pvalue is not None and length.pvalue < 1e-10
    assert words.statistic is not None and words.statistic > 0.25


# ---------------------------------------------------------------- the error-count bootstrap


def test_rate_interval_is_the_bootstrap_of_the_zero_one_samples() -> None:
    got = rate_interval(30, 1000, 10, 1000, seed_key="errors/rate")
    ones = lambda k, n: np.array([1.0] * k + [0.0] * (n - k))  # noqa: E731
    want = unpaired_interval(ones(30, 1000), ones(10, 1000), statistic("mean"), seed_key="x")
    assert got is not None and want is not None
    assert got[0] == pytest.approx(want[0], abs=0.004)
    assert got[1] == pytest.approx(want[1], abs=0.004)
    assert 0 < got[0] < 0.02 < got[1]
    assert rate_interval(1, 9, 0, 100, seed_key="e") is None  # too few requests for one
    assert rate_interval(1, 10, 0, 100, seed_key="e") is not None  # compare.MIN_PAIRS
    assert rate_interval(30, 1000, 10, 1000, seed_key="errors/rate") == got  # seeded


# ---------------------------------------------------------------- rules and verdict

RULES = DriftRules(
    *default_rules(
        {"polite/mean": "higher"},
        max_error_rate=0.02,
        max_error_rate_increase=0.01,
        max_latency_ratio=1.2,
        quality_max_drop=0.05,
    ),
    min_requests=30,
    min_inputs=20,
)
PROMPTS = tuple(f"question {i % 40}" for i in range(200))


def side(scores: list[float], *, requests: int = 200, errors: int = 0, **kw: object) -> Side:
    return Side("s", requests, errors, scores={"polite/mean": scores}, prompts=PROMPTS, **kw)  # type: ignore[arg-type]


def statuses(decision: object) -> dict[str, str]:
    return {c.metric: c.status for c in decision.checks}  # type: ignore[attr-defined]


def test_default_rules_are_the_canarys_limits_against_the_reference() -> None:
    absolute, relative = RULES.absolute, RULES.relative
    assert [(t.metric, t.op, t.value) for t in absolute] == [
        ("errors/rate", "<=", 0.02),
        ("prompt_length/ks", "<=", 0.1),
        ("words/psi", "<=", 0.25),
    ]
    assert [(r.metric, r.op, r.limit, r.better) for r in relative] == [
        ("errors/rate", "max-drop", 0.01, "lower"),
        ("latency/p95", "max-drop-pct", 20.0, "lower"),
        ("polite/mean", "max-drop", 0.05, "higher"),
    ]


def test_too_little_traffic_is_not_enough_traffic() -> None:
    decision = decide(side([1.0] * 10, requests=12), side([1.0] * 40), RULES)
    assert decision.verdict == "not enough traffic" and not decision.checks


def test_a_significant_quality_drop_is_drift_with_its_interval() -> None:
    decision = decide(side([0.0] * 30 + [1.0] * 10), side([1.0] * 40), RULES)
    assert decision.verdict == "drift" and decision.model_drifted
    polite = next(c for c in decision.checks if c.metric == "polite/mean")
    assert polite.status == "drift" and polite.delta == pytest.approx(-0.75)
    assert polite.ci is not None and polite.ci[1] < -0.05


def test_a_drop_the_interval_cannot_tell_from_noise_is_not_drift() -> None:
    noisy = [1.0, 0.0] * 10  # 0.5 on 20 judged requests, against 0.6 on 20
    decision = decide(side(noisy), side([1.0, 1.0, 1.0, 0.0, 0.0] * 4), RULES)
    assert statuses(decision)["polite/mean"] == "inconclusive"
    assert decision.verdict == "stable"


def test_errors_drift_against_the_reference_and_against_the_limit() -> None:
    decision = decide(side([1.0] * 40, errors=20), side([1.0] * 40, requests=1000, errors=5), RULES)
    assert statuses(decision)["errors/rate"] == "drift"
    assert [c.status for c in decision.checks if c.metric == "errors/rate"] == ["drift", "drift"]


def test_latency_is_compared_with_a_window_and_never_with_an_eval_run() -> None:
    now = side([1.0] * 40, percentiles={"latency/p95": 900.0}, durations=(800.0, 900.0) * 20)
    window = side([1.0] * 40, percentiles={"latency/p95": 300.0}, durations=(250.0, 300.0) * 20)
    assert statuses(decide(now, window, RULES))["latency/p95"] == "drift"
    run = side([1.0] * 40, percentiles={"latency/p95": 3.0}, serving_latency=False)
    assert statuses(decide(now, run, RULES))["latency/p95"] == "no reference"


def test_input_drift_needs_a_significant_p_value_too() -> None:
    rules = DriftRules((Threshold("prompt_length/ks", "<=", 0.1),), (), 1, 3, 0.01)
    few_now = Side("now", 10, 0, prompts=("abc", "abcd", "abcdef"))
    few_ref = Side("ref", 10, 0, prompts=("abcdefg", "abcde", "ab"))
    check = decide(few_now, few_ref, rules).checks[0]
    assert check.value is not None and check.value > 0.1
    assert check.status == "ok" and "not significant" in check.detail


def test_without_a_reference_only_absolute_rules_decide() -> None:
    decision = decide(side([1.0] * 40), None, RULES)
    assert statuses(decision)["polite/mean"] == "no reference"
    assert statuses(decision)["errors/rate"] == "no reference"  # the relative one, last
    assert decision.verdict == "stable"


def test_input_drift_alone_is_not_grounds_for_a_rollback() -> None:
    rules = DriftRules((Threshold("prompt_length/ks", "<=", 0.1),), (), 1, 20, 0.01)
    long = Side("now", 100, 0, prompts=tuple("x" * (50 + i % 7) for i in range(100)))
    short = Side("ref", 100, 0, prompts=tuple("x" * (5 + i % 7) for i in range(100)))
    decision = decide(long, short, rules)
    assert decision.verdict == "drift" and not decision.model_drifted


# ---------------------------------------------------------------- config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "genai-gate.yml"
    path.write_text(text)
    return path


def test_monitor_rules_use_the_thresholds_syntax(tmp_path: Path) -> None:
    text = (
        "endpoint: bot\nmonitor-window: 7d\nmonitor:\n"
        '  errors/rate: "<= 0.05"\n  safety/mean: {at-least: 0.8, max-drop: 0.1}\n'
        "  latency/p95: {better: lower, max-drop-pct: 30}\n"
    )
    loaded = load_config(write(tmp_path, text), environ={}, require_data=False)
    assert loaded.config.monitor_window == 7 * 86400
    assert [(t.metric, t.op, t.value) for t in loaded.monitor_thresholds] == [
        ("errors/rate", "<=", 0.05),
        ("safety/mean", ">=", 0.8),
    ]
    assert loaded.monitor_relative == (
        RelativeThreshold("safety/mean", "higher", max_drop=0.1),
        RelativeThreshold("latency/p95", "lower", max_drop_pct=30.0),
    )
    assert loaded.thresholds == ()  # the gate's thresholds are not the monitor's


def test_monitor_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "GENAI_GATE_ON_DRIFT": "annotate, issue",
        "GENAI_GATE_MONITOR": "prompt_length/ks <= 0.2",
        "GENAI_GATE_MONITOR_REFERENCE": "window:2026-11-01..2026-11-07",
    }
    loaded = load_config(write(tmp_path, "endpoint: bot\n"), environ=env, require_data=False)
    assert loaded.config.on_drift == ("annotate", "issue")
    assert [(t.metric, t.value) for t in loaded.monitor_thresholds] == [("prompt_length/ks", 0.2)]
    window = parse_window(str(loaded.config.monitor_reference))
    assert (window.until - window.since).days == 7  # dates are whole days, both included


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("monitor-reference: last week\n", "is not a reference"),
        ("monitor-reference: window:2026-11-01\n", "is not a reference"),
        ("on-drift: [retrain]\n", "retrain needs retrain-job-id"),
        ("on-drift: [page-me]\n", "on-drift"),
        ("monitor: {prompt_length/ks: 0.1}\n", "has no direction"),
        ("monitor-window: a week\n", "is not a duration"),
    ],
)
def test_monitor_settings_are_checked(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "endpoint: bot\n" + text), environ={}, require_data=False)
    assert problem in info.value.render()


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ConfigError, match="ends before it starts"):
        parse_window("window:2026-11-08..2026-11-01")
    window = parse_window("window:2026-11-01T06:00..2026-11-01T18:00")
    assert (window.until - window.since).seconds == 12 * 3600  # times: the end excluded


# ---------------------------------------------------------------- the gated run


CHAMPION = Entity("bot-13", {}, "main.ml.bot", "13")


def test_the_gated_run_is_the_eval_before_the_deploy_of_the_serving_version() -> None:
    sha = {"sha": "abc"}
    records: list[dict[str, Any]] = [
        {"kind": "eval", "mlflow": {"run_id": "old"}, "git": {"sha": "zzz"}},
        {"kind": "eval", "mlflow": {"run_id": "r13"}, "git": sha},
        {
            "kind": "deploy",
            "action": "updated",
            "champion": "bot-12",
            "challenger": "bot-13",
            "served_entities": [
                {"name": "bot-12", "model": "main.ml.bot", "version": "12"},
                {"name": "bot-13", "model": "main.ml.bot", "version": "13"},
            ],
            "provenance": sha,
        },
        {"kind": "analysis", "decision": "promote"},
        {"kind": "eval", "mlflow": {"run_id": "r14"}, "git": {"sha": "def"}},
    ]
    assert gated_run_in(records, CHAMPION) == "r13"
    assert gated_run_in(records, Entity("bot-12", {}, "main.ml.bot", "12")) is None
    assert gated_run_in([], CHAMPION) is None


# ---------------------------------------------------------------- reports


EVIL = "<script>alert(1)</script> [x](https://evil.test) @everyone"


def test_the_reports_show_untrusted_text_inert() -> None:
    decision = decide(side([0.0] * 30 + [1.0] * 10), side([1.0] * 40), RULES)
    traffic = EntityTraffic("bot-13", 200, 0, 0, 10.0, 20.0, 30.0)
    actions = [Taken("issue", "failed", EVIL)]
    text = render_monitor(
        "bot",
        CHAMPION,
        decision,
        traffic,
        window="w",
        reference=EVIL,
        rules_source="defaults",
        actions=actions,
    )
    assert "<script>" not in text and "](https://evil" not in text
    assert "genai-gate monitor `bot`: drift" in text
    page = render_monitor_html(
        "bot",
        CHAMPION,
        decision,
        traffic,
        window="w",
        reference=EVIL,
        actions=actions,
        current=side([1.0]),
        ref_side=side([1.0]),
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<svg" in page and "polite/mean" in page

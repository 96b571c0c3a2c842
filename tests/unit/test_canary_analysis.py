"""The canary's decision (pure) and the inference-table reader on local files (DuckDB)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from genai_gate.backends.databricks.local_table import local_source
from genai_gate.errors import ConfigError, DataError, ExitCode
from genai_gate.rollout.decision import Rules, bootstrap_diff, decide, quality_deltas
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.thresholds import Better

RULES = Rules(min_requests=100)


def t(name: str, requests: int, errors: int = 0, p95: float = 100.0) -> EntityTraffic:
    return EntityTraffic(name, requests, errors, 0, p95 / 2, p95, p95 * 1.5)


def test_a_healthy_canary_advances_one_step_then_promotes() -> None:
    first = decide(t("a", 1000), t("b", 200), 10, RULES)
    assert (first.action, first.next_step, first.verdict) == ("advance", 50, "healthy")
    second = decide(t("a", 1000), t("b", 500), 50, RULES)
    assert (second.action, second.next_step) == ("promote", 100)


@pytest.mark.parametrize(
    ("challenger", "reason"),
    [
        (t("b", 200, errors=10), "error rate 5.00% (at most 2.00%)"),
        (t("b", 200, p95=200), "p95 latency vs champion"),
    ],
)
def test_an_unhealthy_canary_is_rolled_back(challenger: EntityTraffic, reason: str) -> None:
    decision = decide(t("a", 1000), challenger, 10, RULES)
    assert decision.action == "rollback" and decision.next_step == 0
    assert reason in decision.reason


def test_relative_error_rate_counts_against_the_champion() -> None:
    rules = Rules(min_requests=100, max_error_rate=0.5)
    decision = decide(t("a", 1000, errors=10), t("b", 1000, errors=30), 10, rules)
    assert decision.action == "rollback"
    assert "error rate vs champion 3.00% vs 1.00% + 1.00%" in decision.reason


def test_too_little_traffic_is_inconclusive_and_holds() -> None:
    decision = decide(t("a", 1000), t("b", 20), 10, RULES)
    assert (decision.action, decision.verdict, decision.next_step) == ("hold", "inconclusive", 10)
    quiet_champion = decide(t("a", 5), t("b", 500), 10, RULES)
    assert quiet_champion.action == "hold"


UP: dict[str, Better] = {"polite/mean": "higher"}


def test_only_a_significant_quality_drop_rolls_back() -> None:
    steady = [1.0, 0.0] * 50
    worse = [1.0] * 30 + [0.0] * 70
    dropped = quality_deltas({"polite/mean": steady}, {"polite/mean": worse}, UP)
    decision = decide(t("a", 1000), t("b", 200), 10, RULES, dropped)
    assert decision.action == "rollback" and "polite/mean vs champion" in decision.reason
    same = quality_deltas({"polite/mean": steady}, {"polite/mean": steady[::-1]}, UP)
    assert decide(t("a", 1000), t("b", 200), 10, RULES, same).action == "advance"


def test_too_few_judged_samples_hold_rather_than_decide() -> None:
    # two against two once "proved" a drop; now it is inconclusive, and so is a metric that
    # only one side could score (an unreachable judge, a scorer that raised)
    tiny = quality_deltas({"polite/mean": [1.0, 1.0]}, {"polite/mean": [0.0, 0.0]}, UP)
    one_sided = quality_deltas({"polite/mean": [1.0] * 50}, {}, UP)
    for deltas in (tiny, one_sided):
        decision = decide(t("a", 1000), t("b", 500), 50, RULES, deltas)
        assert (decision.action, decision.verdict) == ("hold", "inconclusive"), decision.reason
        assert "judged samples" in decision.reason


def test_lower_is_better_metrics_are_judged_the_right_way_round() -> None:
    down: dict[str, Better] = {"toxicity/mean": "lower"}
    calmer = quality_deltas({"toxicity/mean": [0.5] * 50}, {"toxicity/mean": [0.1] * 50}, down)
    assert decide(t("a", 1000), t("b", 200), 10, RULES, calmer).action == "advance"
    worse = quality_deltas({"toxicity/mean": [0.1] * 50}, {"toxicity/mean": [0.5] * 50}, down)
    assert decide(t("a", 1000), t("b", 200), 10, RULES, worse).action == "rollback"


def test_the_bootstrap_is_deterministic() -> None:
    a = [0.1, 0.5, 0.9, 0.4] * 5
    b = [0.2, 0.3, 0.8, 0.5] * 5
    assert bootstrap_diff(a, b) == bootstrap_diff(a, b)
    low, high = bootstrap_diff(a, b)
    assert low < 0.475 - 0.45 < high


# ---------------------------------------------------------------- local files through DuckDB

ENTITIES = [
    {"served_entity_id": "id-a", "endpoint_name": "bot", "served_entity_name": "bot-12"},
    {"served_entity_id": "id-b", "endpoint_name": "bot", "served_entity_name": "bot-13"},
    {"served_entity_id": "id-x", "endpoint_name": "other", "served_entity_name": "x-1"},
]


def gateway_row(i: int, entity: str, status: int = 200, ms: int = 100) -> dict[str, object]:
    return {
        "databricks_request_id": f"r{i:05d}",
        "request_date": "2026-11-28",
        "client_request_id": None,
        "request_time": f"2026-11-28 12:{i % 60:02d}:00.000000",
        "status_code": status,
        "sampling_fraction": 1.0,
        "execution_duration_ms": ms,
        "request": json.dumps({"messages": [{"role": "user", "content": f"q{i}"}]}),
        "response": json.dumps({"choices": [{"message": {"role": "assistant", "content": "a"}}]}),
        "logging_error_codes": [],
        "served_entity_id": entity,
        "requester": "sp",
    }


def ms(text: str) -> int:
    """A UTC wall-clock time as the epoch milliseconds the queries take."""
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def write_jsonl(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_gateway_rows_are_aggregated_per_served_entity(tmp_path: Path) -> None:
    rows = [gateway_row(i, "id-a", ms=100 + i % 10) for i in range(90)]
    rows += [gateway_row(100 + i, "id-b", status=500 if i < 2 else 200) for i in range(10)]
    rows += [gateway_row(200, "id-x")]
    # a gate's or a baseline's own calls are not production traffic
    rows += [
        {**gateway_row(300 + i, "id-b"), "client_request_id": f"genai-gate-eval:{i}"}
        for i in range(7)
    ]
    write_jsonl(tmp_path / "main.mon.bot_payload" / "part-0.jsonl", rows)
    write_jsonl(tmp_path / "system.serving.served_entities.jsonl", ENTITIES)
    source = local_source("main.mon.bot_payload", tmp_path, {})
    stats = source.stats("bot", ms("2026-11-28 00:00:00"))
    assert set(stats) == {"bot-12", "bot-13"}  # another endpoint's entity is not counted
    assert (stats["bot-12"].requests, stats["bot-13"].errors) == (90, 2)
    assert stats["bot-13"].error_rate == pytest.approx(0.2)
    assert 100 <= (stats["bot-12"].p95_ms or 0) <= 109
    assert source.stats("bot", ms("2026-11-29 00:00:00")) == {}  # before the rollout started
    sample = source.sample("bot", "bot-13", ms("2026-11-28 00:00:00"), 5)
    assert len(sample) == 5 and all(e.entity == "bot-13" for e in sample)


def test_parquet_and_delta_tables_read_the_same(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    rows = [gateway_row(i, "id-a" if i % 4 else "id-b") for i in range(40)]
    table = pa.Table.from_pylist(rows)
    (tmp_path / "pq" / "main.mon.bot_payload").mkdir(parents=True)
    pq.write_table(table, tmp_path / "pq" / "main.mon.bot_payload" / "part-0.parquet")
    pq.write_table(
        pa.Table.from_pylist(ENTITIES), tmp_path / "pq" / "system.serving.served_entities.parquet"
    )
    delta = tmp_path / "delta" / "main.mon.bot_payload"
    write_deltalake(str(delta), table.slice(0, 20))
    write_deltalake(str(delta), table, mode="overwrite")  # the first files are removed by the log
    write_jsonl(tmp_path / "delta" / "system.serving.served_entities.jsonl", ENTITIES)
    counts = [
        {
            k: v.requests
            for k, v in local_source(str(path), tmp_path, {})
            .stats("bot", ms("2026-11-28 00:00:00"))
            .items()
        }
        for path in (tmp_path / "pq" / "main.mon.bot_payload", delta)
    ]
    assert counts[0] == counts[1] == {"bot-12": 30, "bot-13": 10}


def test_a_delta_table_without_deltalake_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container image and the action install deltalake only with the delta extra."""
    delta = tmp_path / "main.mon.bot_payload"
    (delta / "_delta_log").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "deltalake", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"^inference-data: .*needs the deltalake package") as err:
        local_source(str(delta), tmp_path, {})
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert "extras: delta" in err.value.fix


def test_the_legacy_schema_maps_entities_by_model_and_version(tmp_path: Path) -> None:
    rows = [
        {
            "databricks_request_id": f"r{i}",
            "client_request_id": None,
            "date": "2026-11-28",
            "timestamp_ms": 1_795_000_000_000 + i,
            "status_code": 200 if i % 5 else 500,
            "sampling_fraction": 1.0,
            "execution_time_ms": 50,
            "request": "{}",
            "response": "{}",
            "request_metadata": {
                "endpoint_name": "bot",
                "model_name": "main.ml.bot",
                "model_version": "13" if i % 2 else "12",
            },
        }
        for i in range(20)
    ]
    write_jsonl(tmp_path / "legacy" / "part-0.jsonl", rows)
    models = {("main.ml.bot", "12"): "bot-12", ("main.ml.bot", "13"): "bot-13"}
    stats = local_source("legacy", tmp_path, models).stats("bot", ms("2026-01-01 00:00:00"))
    assert {k: v.requests for k, v in stats.items()} == {"bot-12": 10, "bot-13": 10}
    assert stats["bot-12"].errors == 2  # requests 0 and 10


def test_bad_inference_data_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="matches no file"):
        local_source("nowhere/*.parquet", tmp_path, {})
    write_jsonl(tmp_path / "p" / "part-0.jsonl", [gateway_row(0, "id-a")])
    with pytest.raises(ConfigError, match=r"no copy of system\.serving\.served_entities"):
        local_source("p", tmp_path, {})
    write_jsonl(tmp_path / "q" / "x.jsonl", [{"a": 1}])
    with pytest.raises(DataError, match="is not an inference table"):
        local_source("q", tmp_path, {}).stats("bot", 0)


def test_the_window_is_utc_whatever_the_machine_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        hours = [datetime(2026, 11, 28, h, 30, tzinfo=UTC) for h in range(12, 18)]
        rows = [{**gateway_row(i, "id-a"), "request_time": ts} for i, ts in enumerate(hours)]
        folder = tmp_path / "main.mon.bot_payload"
        folder.mkdir()
        pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
        write_jsonl(tmp_path / "system.serving.served_entities.jsonl", ENTITIES)
        stats = local_source(str(folder), tmp_path, {}).stats("bot", ms("2026-11-28 14:00:00"))
        assert stats["bot-12"].requests == 4  # 14:30 .. 17:30 UTC
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

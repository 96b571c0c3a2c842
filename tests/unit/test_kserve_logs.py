"""KServe's logged CloudEvents read per revision with DuckDB: pairs by id, errors from
requests without a response, latency, the sample for the judges, JSON lines and Parquet."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import duckdb
import pytest

from genai_gate.backends.kserve.logs import LoggedEvents
from genai_gate.errors import ConfigError, DataError
from tests.kserve_cases import event, rev, write_jsonl

R1, R2 = rev(1), rev(2)


def ask(i: int) -> dict[str, object]:
    return {"model": "bot", "messages": [{"role": "user", "content": f"question {i}"}]}


def answer(text: str) -> dict[str, object]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def traffic() -> list[dict[str, object]]:
    events = []
    for i in range(10):
        revision = R2 if i % 2 else R1
        t0 = f"2026-09-01T12:00:{i:02d}.000000Z"
        t1 = f"2026-09-01T12:00:{i:02d}.{100 * (1 + i % 2):03d}000Z"  # r1 100 ms, r2 200 ms
        events.append(event("request", f"id-{i}", revision, t0, ask(i)))
        if i != 9:  # the model failed: the logger sends no response for a non-200
            events.append(event("response", f"id-{i}", revision, t1, answer(f"a{i}")))
    # a response whose request was not logged
    events.append(event("response", "id-orphan", R1, "2026-09-01T12:00:30Z", answer("x")))
    # another service on the same sink, and an event before the window
    events.append(event("request", "other", R1, "2026-09-01T12:00:01Z", ask(0), service="x"))
    events.append(event("request", "old", R1, "2026-08-01T12:00:00Z", ask(0)))
    return events


SINCE = 1788264000000  # 2026-09-01T12:00:00Z


def test_pairs_are_counted_per_revision_with_errors_and_latency(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "log" / "models" / "bot" / "part-00000.jsonl", traffic())
    logs = LoggedEvents("log", tmp_path, "models")
    stats = logs.stats("bot", SINCE)
    assert set(stats) == {R1, R2}
    one, two = stats[R1], stats[R2]
    assert (one.requests, one.errors, one.logging_errors) == (6, 0, 1)
    assert (two.requests, two.errors, two.logging_errors) == (5, 1, 0)
    assert one.p50_ms == pytest.approx(100.0) and two.p95_ms == pytest.approx(200.0)
    assert two.error_rate == pytest.approx(0.2)


def test_the_sample_holds_answered_exchanges_of_one_revision_in_id_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "part-00000.jsonl", traffic())
    logs = LoggedEvents(str(tmp_path / "*.jsonl"), Path("/"), "models")
    sample = logs.sample("bot", R2, SINCE, 3)
    assert [json.loads(e.request)["messages"][0]["content"] for e in sample] == [
        "question 1",
        "question 3",
        "question 5",
    ]
    assert json.loads(sample[0].response) == answer("a1")
    assert {e.entity for e in sample} == {R2}
    # the failed call (id-9) has no response to judge
    assert len(logs.sample("bot", R2, SINCE, 50)) == 4


def test_binary_payloads_and_parquet_read_the_same(tmp_path: Path) -> None:
    events = traffic()
    for e in events:
        e["data_base64"] = base64.b64encode(json.dumps(e.pop("data")).encode()).decode()
    jsonl = write_jsonl(tmp_path / "b64.jsonl", events)
    from_b64 = LoggedEvents(str(jsonl), tmp_path, "models")
    sample = from_b64.sample("bot", R1, SINCE, 1)
    assert json.loads(sample[0].request) == ask(0)
    # Parquet parts: the same columns, as text (FACTS.md section 4)
    rows = [{**e, "data": json.dumps(e.get("data"))} for e in traffic()]
    source = write_jsonl(tmp_path / "text.jsonl", rows)
    parquet = tmp_path / "pq" / "part-00000.parquet"
    parquet.parent.mkdir()
    duckdb.execute(
        f"COPY (SELECT * FROM read_json('{source}', format='newline_delimited', "
        "columns={'id': 'VARCHAR', 'type': 'VARCHAR', 'source': 'VARCHAR', 'time': 'VARCHAR', "
        "'inferenceservicename': 'VARCHAR', 'namespace': 'VARCHAR', 'data': 'VARCHAR'})) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    from_parquet = LoggedEvents("pq", tmp_path, "models")
    assert from_parquet.stats("bot", SINCE) == LoggedEvents(
        str(tmp_path / "text.jsonl"), tmp_path, "models"
    ).stats("bot", SINCE)
    assert json.loads(from_parquet.sample("bot", R1, SINCE, 1)[0].response) == answer("a0")


def test_what_cannot_be_read_is_said(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="matches no file"):
        LoggedEvents("nothing/*.jsonl", tmp_path, "models").stats("bot", 0)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.csv").write_text("x\n1\n")
    with pytest.raises(ConfigError, match="JSON lines or Parquet"):
        LoggedEvents("mixed", tmp_path, "models").stats("bot", 0)
    with pytest.raises(ConfigError, match=r"on the runner or in a bucket \(s3://, gs://, az://\)"):
        LoggedEvents("https://example.com/events.jsonl", tmp_path, "models").stats("bot", 0)
    write_jsonl(tmp_path / "other.jsonl", [{"hello": 1}])
    with pytest.raises(DataError):
        LoggedEvents("other.jsonl", tmp_path, "models").stats("bot", 0)


def test_the_window_starts_exactly_at_since_whatever_the_time_text(tmp_path: Path) -> None:
    def pair(i: int, t0: str, t1: str) -> list[dict[str, object]]:
        return [
            event("request", f"w-{i}", R1, t0, ask(i)),
            event("response", f"w-{i}", R1, t1, answer("a")),
        ]

    utc = [
        *pair(0, "2026-09-01T11:59:59.999999Z", "2026-09-01T11:59:59.999999Z"),  # before
        *pair(1, "2026-09-01T12:00:00Z", "2026-09-01T12:00:00.5Z"),  # at since
        *pair(2, "2026-09-01T12:00:00.000001Z", "2026-09-01T12:00:01Z"),
    ]
    write_jsonl(tmp_path / "utc" / "part-00000.jsonl", utc)
    logs = LoggedEvents("utc", tmp_path, "models")
    assert logs.stats("bot", SINCE)[R1].requests == 2
    assert [json.loads(e.request) for e in logs.sample("bot", R1, SINCE, 5)] == [ask(1), ask(2)]
    # times with an offset are not compared as text: the same instants, the same window
    offset = [
        *pair(0, "2026-09-01T13:59:59.999999+02:00", "2026-09-01T14:00:00.5+02:00"),
        *pair(1, "2026-09-01T14:00:00+02:00", "2026-09-01T14:00:00.5+02:00"),
    ]
    write_jsonl(tmp_path / "offset" / "part-00000.jsonl", offset)
    shifted = LoggedEvents("offset", tmp_path, "models").stats("bot", SINCE)[R1]
    # w-0's request is before the window: its response alone is a logging error
    assert (shifted.requests, shifted.logging_errors) == (2, 1)


def test_the_window_ends_before_until_and_each_exchange_has_its_duration(tmp_path: Path) -> None:
    def pair(i: int, t0: str, t1: str) -> list[dict[str, object]]:
        return [
            event("request", f"u-{i}", R1, t0, ask(i)),
            event("response", f"u-{i}", R1, t1, answer("a")),
        ]

    until = SINCE + 60_000  # 12:01:00Z
    events = [
        *pair(0, "2026-09-01T12:00:10Z", "2026-09-01T12:00:10.250Z"),
        *pair(1, "2026-09-01T12:00:59.999999Z", "2026-09-01T12:00:59.999999Z"),
        *pair(2, "2026-09-01T12:01:00Z", "2026-09-01T12:01:00.5Z"),  # at until: left out
        *pair(3, "2026-09-01T13:00:00Z", "2026-09-01T13:00:01Z"),
    ]
    write_jsonl(tmp_path / "log" / "part-00000.jsonl", events)
    logs = LoggedEvents("log", tmp_path, "models")
    assert logs.stats("bot", SINCE, until)[R1].requests == 2
    assert logs.stats("bot", SINCE)[R1].requests == 4
    sample = logs.sample("bot", R1, SINCE, 5, until)
    assert [json.loads(e.request) for e in sample] == [ask(0), ask(1)]
    assert [e.duration_ms for e in sample] == [pytest.approx(250.0), pytest.approx(0.0)]
    # an end within a second is compared on the instants, not as text
    assert logs.stats("bot", SINCE, SINCE + 10_001)[R1].requests == 1
    assert len(logs.sample("bot", R1, SINCE, 5, SINCE + 10_000)) == 0

"""How runner: spark splits the rows and the limits (spark_runner.Layout): pure."""

from __future__ import annotations

from genai_gate.spark_runner import Layout


def test_the_layout_keeps_calls_in_flight_within_concurrency() -> None:
    for rows, cores, concurrency in [
        (10_000, 2, 8), (10_000, 64, 8), (3, 2, 8), (1, 8, 1), (100, 8, 8), (100, 3, 8),
    ]:  # fmt: skip
        layout = Layout.plan(rows, cores, concurrency)
        at_once = min(cores, layout.partitions)
        assert at_once * layout.per_task <= concurrency
        assert 1 <= layout.partitions <= rows
    assert Layout.plan(10_000, 2, 8) == Layout(partitions=8, slots=2, per_task=4)
    assert Layout.plan(10_000, 64, 8) == Layout(partitions=8, slots=8, per_task=1)
    assert Layout.plan(10_000, 2, 8).rpm(600) == 300

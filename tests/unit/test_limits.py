"""The run's bounds (targets/limits.py): max-duration in the runner, and the circuit breaker."""

from __future__ import annotations

import threading

import pytest

from genai_gate.targets import limits
from genai_gate.targets.runner import run_all


def test_past_max_duration_every_unfinished_task_is_an_error() -> None:
    release = threading.Event()

    def stuck() -> str:
        release.wait(60)
        return "late"

    with limits.run_limits(0.2):
        outcomes = run_all([stuck, stuck, stuck], concurrency=1, timeout=None)
        assert limits.expired() and limits.cut_short()
    release.set()
    assert [o.value for o in outcomes] == [None, None, None]
    assert all("max-duration (0.2 s)" in (o.error or "") for o in outcomes)
    assert not limits.expired() and not limits.cut_short()  # the bound belongs to one run


def test_a_part_of_a_run_that_starts_late_gets_what_is_left_of_max_duration() -> None:
    # a Spark partition: the run's limit names the deadline, the time left sets it
    with limits.run_limits(600, remaining=-1.0):
        assert limits.expired()
        assert limits.deadline_reason() == ("not finished: the run reached max-duration (600 s)")
    with limits.run_limits(600, remaining=30.0):
        left = limits.remaining()
        assert left is not None and 0 < left <= 30
    with limits.run_limits(None, remaining=30.0):
        assert limits.remaining() is None  # no max-duration, no deadline


def test_the_breaker_opens_after_consecutive_failures_only() -> None:
    with limits.run_limits(None, trip_after=3):
        limits.unreachable("model server", "no answer within 1 s")
        limits.unreachable("model server", "no answer within 1 s")
        limits.reachable("model server")  # an answer resets the count
        limits.unreachable("model server", "no answer within 1 s")
        limits.unreachable("model server", "no answer within 1 s")
        limits.check("model server")
        limits.unreachable("model server", "no answer within 1 s")
        with pytest.raises(limits.CircuitOpen, match="3 calls in a row failed"):
            limits.check("model server")
        limits.check("judge server")  # per service
        assert limits.tripped() == [
            "stopped calling the model server: 3 calls in a row failed (no answer within 1 s)"
        ]
    assert limits.tripped() == []

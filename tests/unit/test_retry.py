from __future__ import annotations

import random
import threading
from email.utils import formatdate

import pytest

from genai_gate.targets.retry import (
    RateLimiter,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)


def test_retries_until_success_honouring_retry_after() -> None:
    calls = 0
    waits: list[float] = []

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Retryable("429", retry_after=2.0, status=429)
        return "ok"

    policy = RetryPolicy(attempts=5, rng=random.Random(1))
    assert call_with_retries(flaky, policy, sleep=waits.append) == "ok"
    assert calls == 3
    assert len(waits) == 2 and all(2.0 <= w <= 2.25 for w in waits)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=4.0, rng=random.Random(7))
    delays = [policy.delay(a, None) for a in range(1, 9)]
    for attempt, d in enumerate(delays, start=1):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= d <= ceiling
    assert max(delays) <= 4.0


def test_gives_up_with_the_last_reason() -> None:
    def always() -> None:
        raise Retryable("HTTP 500: upstream down", status=500)

    with pytest.raises(RetriesExhausted) as err:
        call_with_retries(always, RetryPolicy(attempts=3), sleep=lambda _: None)
    assert err.value.attempts == 3
    assert "gave up after 3 attempts; last: HTTP 500: upstream down" in str(err.value)


def test_other_errors_are_not_retried() -> None:
    calls = 0

    def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad request")

    with pytest.raises(ValueError):
        call_with_retries(broken, RetryPolicy(attempts=5), sleep=lambda _: None)
    assert calls == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten = parse_retry_after(formatdate(timeval=__import__("time").time() + 10, usegmt=True))
    assert in_ten is not None and 8 <= in_ten <= 10.5


def test_rate_limiter_spreads_calls() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)

    limiter = RateLimiter(120, clock=lambda: now[0], sleep=sleep)  # one call every 0.5 s
    threads = [threading.Thread(target=limiter.acquire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(slept) == [0.5, 1.0, 1.5]
    with pytest.raises(ValueError):
        RateLimiter(0)

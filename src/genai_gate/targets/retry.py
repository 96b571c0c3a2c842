"""Retries with exponential backoff and jitter, `Retry-After`, and a requests-per-minute cap.

Remote models and judges answer 429 and 503 under load. A call that raises `Retryable` is
tried again after `Retry-After` when the server sent one, otherwise after a capped
exponential delay with "equal jitter" (half fixed, half random), so that concurrent workers
that failed together do not retry together. After `attempts` tries it fails with the last
reason: a clear error, never a hang.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from genai_gate.config import RemoteSettings

T = TypeVar("T")

# HTTP statuses worth another try: timeouts, conflicts, rate limits, server trouble
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class Retryable(Exception):
    """A failure that may pass on a later try: 429, 503, other 5xx, a dropped connection."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RetriesExhausted(Exception):
    def __init__(self, attempts: int, last: Retryable) -> None:
        super().__init__(f"gave up after {attempts} attempts; last: {last}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            # the server knows best (retrying sooner earns another 429); the bound only
            # stops a broken header from parking a worker for hours
            return min(retry_after, self.max_retry_after) + self.rng.uniform(0, 0.25)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return float(ceiling / 2 + self.rng.uniform(0, ceiling / 2))


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is turned into seconds from now."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, Retryable, float], None] | None = None,
) -> T:
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Retryable as exc:
            if attempt == policy.attempts:
                raise RetriesExhausted(attempt, exc) from exc
            wait = policy.delay(attempt, exc.retry_after)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


class RateLimiter:
    """At most `per_minute` calls a minute across all threads, spread evenly."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


def policy_and_limiter(
    retries: int, per_minute: float | None
) -> tuple[RetryPolicy, RateLimiter | None]:
    """The config's `retries` and `requests-per-minute`, as every remote caller uses them."""
    return RetryPolicy(attempts=retries + 1), RateLimiter(per_minute) if per_minute else None


def remote_deadline(cfg: RemoteSettings) -> float:
    """A remote call's worst case: every attempt times out, with backoff between them."""
    return cfg.timeout * (cfg.retries + 1) + 30.0 * cfg.retries

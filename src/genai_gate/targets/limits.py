"""The run's bounds: its deadline (`max-duration`) and a circuit breaker per remote service.

Both are per run, not per call, so they live here for the duration of one command
(`run_limits`), and the runner and the HTTP clients consult them:

- past the deadline, the runner stops handing out work and records every unfinished task as
  an error, so the partial results are written and the command ends with exit 4;
- after `TRIP_AFTER` consecutive timeouts or refused connections from one service (a model
  or a judge server), every further call to it fails at once (`CircuitOpen`), instead of
  each row waiting out its own timeouts and retries: a server that hangs on every request
  would otherwise hold the job for hours.

A breaker library (pybreaker, circuitbreaker) was not used: they count per function and
per exception type, and this one must count across threads and retries, and report why.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

# consecutive timeouts or refused connections, counted over every attempt of every worker:
# with 8 workers that is about two rounds of timeouts
TRIP_AFTER = 10


class CircuitOpen(RuntimeError):
    """A service stopped answering; the run stops calling it. Not retryable."""


@dataclass
class _Limits:
    max_duration: float | None = None
    deadline: float | None = None  # time.monotonic()
    trip_after: int = TRIP_AFTER
    failures: dict[str, int] = field(default_factory=dict)
    open: dict[str, str] = field(default_factory=dict)
    cut_short: bool = False  # some task was not run, or given up on, at the deadline
    lock: threading.Lock = field(default_factory=threading.Lock)


_current = _Limits()
# after max-duration, this long for the partial results and the MLflow run to be written
# before the hard stop
GRACE = 120.0
_hard_stop: list[Callable[[str], None]] = []


def on_overrun(stop: Callable[[str], None]) -> None:
    """What to do when a run outlives max-duration + GRACE: a phase that no deadline covers
    (a hung MLflow call, user code that ignores its thread being abandoned). The work
    process (supervisor.py) registers one that ends the process with exit 4; a library
    caller registers none, so its process is never ended under it."""
    _hard_stop[:] = [stop]


@contextlib.contextmanager
def run_limits(
    max_duration: float | None, trip_after: int = TRIP_AFTER, *, remaining: float | None = None
) -> Iterator[None]:
    """The bounds of one run. `remaining`: the seconds left when part of a run starts later
    than the run did (a Spark partition), where max-duration still names the limit."""
    global _current
    before = _current
    left = max_duration if remaining is None else remaining
    deadline = time.monotonic() + left if max_duration and left is not None else None
    _current = _Limits(max_duration, deadline, trip_after)
    timer = None
    if max_duration and _hard_stop:
        stop = _hard_stop[0]
        message = (
            f"genai-gate: the run went {GRACE:g} s past max-duration ({max_duration:g} s) "
            "and was stopped (exit 4). Allow more time (max-duration: 3h) or evaluate fewer "
            "rows (limit: 200)."
        )
        timer = threading.Timer(max_duration + GRACE, stop, args=(message,))
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        _current = before


def remaining() -> float | None:
    """Seconds left before max-duration, or None when the run has no deadline."""
    if _current.deadline is None:
        return None
    return _current.deadline - time.monotonic()


def expired() -> bool:
    left = remaining()
    return left is not None and left <= 0


def cut_short() -> bool:
    """Whether the deadline left some task unfinished (not merely passed after the work)."""
    return _current.cut_short


def mark_cut_short() -> None:
    _current.cut_short = True


def deadline_reason() -> str:
    return f"not finished: the run reached max-duration ({_current.max_duration:g} s)"


def check(service: str) -> None:
    """Raise CircuitOpen when `service` has stopped answering."""
    reason = _current.open.get(service)
    if reason is not None:
        raise CircuitOpen(reason)


def unreachable(service: str, what: str) -> None:
    """One timeout or refused connection from `service`."""
    limits = _current
    with limits.lock:
        count = limits.failures.get(service, 0) + 1
        limits.failures[service] = count
        if count >= limits.trip_after and service not in limits.open:
            limits.open[service] = (
                f"stopped calling the {service}: {count} calls in a row failed ({what})"
            )


def reachable(service: str) -> None:
    """An answer from `service` (any HTTP status): it is up."""
    limits = _current
    with limits.lock:
        limits.failures[service] = 0


def trip(reason: str) -> None:
    """A service another process (a Spark partition) found broken, recorded here too."""
    with _current.lock:
        _current.open.setdefault(f"elsewhere-{len(_current.open)}", reason)


def tripped() -> list[str]:
    """Why each broken service was cut off, for the run's error."""
    return list(_current.open.values())

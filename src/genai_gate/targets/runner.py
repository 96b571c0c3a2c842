"""One runner for every call that may be slow or may hang: bounded concurrency and a deadline.

`concurrent.futures.ThreadPoolExecutor` is not used because its workers are joined at
interpreter exit: one model call that never returns would hang the whole job after the
gate has already been decided. Here workers are daemon threads, a call past its deadline is
recorded as that call's error, and a fresh worker replaces the stuck one.

`Pool` takes jobs while it runs, so a stage can follow another without a barrier: eval
submits a row's judge calls as soon as its answer arrives, and the pool keeps `concurrency`
calls in flight while work remains. A job's time is measured from the moment a worker starts
it, never while it waits in the queue.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from genai_gate.targets import limits

T = TypeVar("T")

ProgressFn = Callable[[int, int], None]

# how often the deadlines are checked, even while other jobs keep finishing
_TICK = 0.5


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None
    error: str | None
    elapsed_ms: float


def describe_exception(exc: BaseException) -> str:
    # the class name without its module: "ChatHTTPError: HTTP 401 ...", "ValueError: ..."
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return text if len(text) <= 2000 else text[:2000] + " ..."


@dataclass(frozen=True)
class _Job:
    key: Hashable
    fn: Callable[[], Any]
    timeout: float | None
    then: Callable[[Outcome[Any]], None] | None = None


class Pool:
    """At most `concurrency` jobs at once, on daemon threads; `completed()` yields each job's
    key and Outcome as it ends (or passes its deadline), and may be fed new jobs meanwhile.

    Jobs of a lower `priority` number are started first: eval gives a row's scoring
    priority over the next row's model call, so rows finish early and none waits long.
    """

    def __init__(self, concurrency: int) -> None:
        self._concurrency = max(1, concurrency)
        self._todo: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._done: queue.SimpleQueue[tuple[int, Outcome[Any]]] = queue.SimpleQueue()
        self._pending: dict[int, _Job] = {}  # under the lock: `then` submits from workers
        self._started: dict[int, float] = {}  # under the lock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._spawned = 0
        self._idle_slots = self._concurrency  # workers not yet spawned

    def submit(
        self,
        key: Hashable,
        fn: Callable[[], Any],
        *,
        timeout: float | None,
        priority: int = 1,
        then: Callable[[Outcome[Any]], None] | None = None,
    ) -> None:
        """Queue a job. `then` runs on the worker with the job's outcome, before the worker
        takes its next job and before `completed()` yields it: a follow-up it submits goes
        ahead of the queued jobs of a higher priority number and is never missed."""
        job = _Job(key, fn, timeout, then)
        with self._lock:
            job_id = next(self._ids)
            self._pending[job_id] = job
            spawn = self._idle_slots > 0 and len(self._pending) > self._spawned
            if spawn:
                self._idle_slots -= 1
                self._spawned += 1
        self._todo.put((priority, job_id, job))
        if spawn:
            self._start_worker()

    def _spawn(self) -> None:
        with self._lock:
            self._spawned += 1
        self._start_worker()

    def _start_worker(self) -> None:
        threading.Thread(target=self._work, name="genai-gate-worker", daemon=True).start()

    def _work(self) -> None:
        while True:
            _, job_id, job = self._todo.get()
            if job is None:
                return
            t0 = time.perf_counter()
            with self._lock:
                self._started[job_id] = t0
            try:
                value = job.fn()
                outcome: Outcome[Any] = Outcome(value, None, (time.perf_counter() - t0) * 1000)
            except BaseException as exc:  # a row's failure (even sys.exit) is data, not a crash
                outcome = Outcome(None, describe_exception(exc), (time.perf_counter() - t0) * 1000)
            if job.then is not None:
                try:
                    job.then(outcome)
                except BaseException as exc:  # a follow-up that cannot be queued fails its row
                    outcome = Outcome(None, describe_exception(exc), outcome.elapsed_ms)
            self._done.put((job_id, outcome))

    def _late(self) -> Iterator[tuple[Hashable, Outcome[Any]]]:
        now = time.perf_counter()
        with self._lock:
            started = list(self._started.items())
        for job_id, t0 in started:
            with self._lock:
                job = self._pending.get(job_id)
                if job is None or job.timeout is None or now - t0 <= job.timeout:
                    continue
                del self._pending[job_id]
                self._started.pop(job_id, None)
            self._spawn()  # the stuck worker may never come back; keep the concurrency
            yield job.key, Outcome(None, f"timed out after {job.timeout:g} s", job.timeout * 1000)

    def _expire(self) -> Iterator[tuple[Hashable, Outcome[Any]]]:
        """max-duration has passed: every job not yet done is an error, so the partial results
        are written, and no worker starts another; the command turns this into exit 4."""
        limits.mark_cut_short()
        with self._lock:
            jobs = list(self._pending.values())
            self._pending.clear()
            self._started.clear()
        while True:  # workers pick no more jobs
            try:
                self._todo.get_nowait()
            except queue.Empty:
                break
        for job in jobs:
            yield job.key, Outcome(None, limits.deadline_reason(), 0.0)

    def completed(self) -> Iterator[tuple[Hashable, Outcome[Any]]]:
        """Every job's outcome as it ends, until no job is left (new ones included)."""
        next_check = time.perf_counter() + _TICK
        while self._has_pending():
            if limits.expired():
                yield from self._expire()
                return
            try:
                job_id, outcome = self._done.get(timeout=max(0.0, next_check - time.perf_counter()))
            except queue.Empty:
                job_id = -1
            if job_id >= 0:
                with self._lock:
                    self._started.pop(job_id, None)
                    job = self._pending.pop(job_id, None)
                if job is not None:  # None: it came back after its deadline had passed
                    yield job.key, outcome
            if time.perf_counter() >= next_check:
                yield from self._late()
                next_check = time.perf_counter() + _TICK

    def _has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def close(self) -> None:
        """Let the idle workers end (a stuck one ends when its call does)."""
        with self._lock:
            spawned = self._spawned
        for i in range(spawned):
            self._todo.put((1 << 30, -1 - i, None))


def run_all(
    tasks: Sequence[Callable[[], T]],
    *,
    concurrency: int,
    timeout: float | None,
    on_progress: ProgressFn | None = None,
) -> list[Outcome[T]]:
    """Run every task; return one Outcome per task, in order. Never raises for a task."""
    total = len(tasks)
    results: list[Outcome[T] | None] = [None] * total
    pool = Pool(concurrency)
    for i, task in enumerate(tasks):
        pool.submit(i, task, timeout=timeout)
    finished = 0
    try:
        for key, outcome in pool.completed():
            results[cast("int", key)] = outcome
            finished += 1
            if on_progress:
                on_progress(finished, total)
    finally:
        pool.close()
    done_all = [r for r in results if r is not None]
    if len(done_all) != total:  # every task ends in an Outcome; losing one would lose a row
        raise RuntimeError(f"runner lost {total - len(done_all)} of {total} results")
    return done_all

"""One runner for every call that may be slow or may hang: bounded concurrency and a deadline.

`concurrent.futures.ThreadPoolExecutor` is not used because its workers are joined at
interpreter exit: one model call that never returns would hang the whole job after the
gate has already been decided. Here workers are daemon threads, a call past its deadline is
recorded as that row's error, and a fresh worker replaces the stuck one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from genai_gate.targets import limits

T = TypeVar("T")

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None
    error: str | None
    elapsed_ms: float


def describe_exception(exc: BaseException) -> str:
    # the class name without its module: "ChatHTTPError: HTTP 401 ...", "ValueError: ..."
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return text if len(text) <= 2000 else text[:2000] + " ..."


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
    if total == 0:
        return []
    todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[int, Outcome[T]]] = queue.SimpleQueue()
    started: dict[int, float] = {}
    lock = threading.Lock()

    def worker() -> None:
        while True:
            i = todo.get()
            if i is None:
                return
            t0 = time.perf_counter()
            with lock:
                started[i] = t0
            try:
                value = tasks[i]()
                outcome: Outcome[T] = Outcome(value, None, (time.perf_counter() - t0) * 1000)
            except BaseException as exc:  # a row's failure (even sys.exit) is data, not a crash
                outcome = Outcome(None, describe_exception(exc), (time.perf_counter() - t0) * 1000)
            done.put((i, outcome))

    spawned = [0]

    def spawn() -> None:
        spawned[0] += 1
        threading.Thread(target=worker, name="genai-gate-worker", daemon=True).start()

    for i in range(total):
        todo.put(i)
    for _ in range(min(concurrency, total)):
        spawn()

    finished = 0
    while finished < total:
        if limits.expired():
            # max-duration: every unfinished task is an error, so the partial results are
            # written; the command turns the expiry into exit 4
            limits.mark_cut_short()
            for j in range(total):
                if results[j] is None:
                    results[j] = Outcome(None, limits.deadline_reason(), 0.0)
            while True:  # workers pick no more tasks
                try:
                    todo.get_nowait()
                except queue.Empty:
                    break
            finished = total
            if on_progress:
                on_progress(finished, total)
            break
        wait = 0.5 if timeout is None else min(0.5, timeout)
        try:
            i, outcome = done.get(timeout=wait)
        except queue.Empty:
            if timeout is None:
                continue
            now = time.perf_counter()
            with lock:
                late = [j for j, t0 in started.items() if results[j] is None and now - t0 > timeout]
            for j in late:
                results[j] = Outcome(None, f"timed out after {timeout:g} s", timeout * 1000)
                finished += 1
                spawn()  # the stuck worker never comes back; keep the concurrency
            if late and on_progress:
                on_progress(finished, total)
            continue
        if results[i] is not None:
            continue  # it came back after we had given up on it
        results[i] = outcome
        finished += 1
        if on_progress:
            on_progress(finished, total)
    for _ in range(spawned[0]):
        todo.put(None)
    done_all = [r for r in results if r is not None]
    if len(done_all) != total:  # every task ends in an Outcome; losing one would lose a row
        raise RuntimeError(f"runner lost {total - len(done_all)} of {total} results")
    return done_all

from __future__ import annotations

import functools
import threading
import time

from genai_gate.targets.runner import Pool, run_all


def test_results_in_order_with_errors_isolated() -> None:
    def task(i: int) -> int:
        if i == 3:
            raise ValueError(f"row {i} is bad")
        return i * i

    progress: list[tuple[int, int]] = []
    out = run_all(
        [functools.partial(task, i) for i in range(10)],
        concurrency=4,
        timeout=None,
        on_progress=lambda d, n: progress.append((d, n)),
    )
    assert [o.value for o in out] == [0, 1, 4, None, 16, 25, 36, 49, 64, 81]
    assert out[3].error == "ValueError: row 3 is bad"
    assert progress[-1] == (10, 10)


def test_concurrency_is_bounded() -> None:
    live = 0
    peak = 0
    lock = threading.Lock()

    def task() -> None:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
        time.sleep(0.02)
        with lock:
            live -= 1

    run_all([task] * 20, concurrency=3, timeout=None)
    assert peak == 3


def test_a_hung_call_times_out_and_the_rest_finish() -> None:
    release = threading.Event()

    def hang() -> str:
        release.wait(5)
        return "late"

    tasks = [lambda: "a", hang, lambda: "c", lambda: "d"]
    t0 = time.perf_counter()
    out = run_all(tasks, concurrency=2, timeout=0.3)
    assert time.perf_counter() - t0 < 3
    release.set()
    assert [o.value for o in out] == ["a", None, "c", "d"]
    assert out[1].error == "timed out after 0.3 s"


def test_a_pool_runs_follow_up_jobs_without_a_barrier_at_its_concurrency() -> None:
    live = 0
    peak = 0
    lock = threading.Lock()
    log: list[tuple[str, int]] = []

    def call(stage: str, i: int) -> int:
        nonlocal live, peak
        with lock:
            live += 1
            peak = max(peak, live)
            log.append((stage, i))
        time.sleep(0.01)
        with lock:
            live -= 1
        return i

    pool = Pool(3)
    for n in range(12):
        pool.submit(("model", n), functools.partial(call, "model", n), timeout=None)
    seen: list[tuple[str, int]] = []
    try:
        for key, outcome in pool.completed():
            assert isinstance(key, tuple)
            stage, i = key
            seen.append((stage, i))
            assert outcome.error is None and outcome.value == i
            if stage == "model":
                pool.submit(
                    ("score", i), functools.partial(call, "score", i), timeout=None, priority=0
                )
    finally:
        pool.close()
    assert sorted(seen) == sorted(
        [("model", i) for i in range(12)] + [("score", i) for i in range(12)]
    )
    assert peak == 3
    # the first row is scored before the last model call starts: no phase barrier
    assert log.index(("score", 0)) < log.index(("model", 11))

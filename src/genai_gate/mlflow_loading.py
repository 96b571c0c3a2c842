"""MLflow's import: once, on one thread, and for a remote model off the path to its first call.

`import mlflow` takes about 1.1 s, most of a run's time to its first request, and nothing
before a model's first answer needs it: the config is checked without it (the scorers are
`LazyScorer`s), and the tracking URI is set through MLFLOW_TRACKING_URI. So
`load_in_background` imports MLflow on a daemon thread (for a remote model; otherwise it is
already imported), then runs the steps it is given there (build the scorers, create the
local store, open it), while the main thread starts the calls (issue #14).

One thread at a time: MLflow's package has import cycles that are safe only when one thread
runs them; two threads importing parts of it before the package is whole get "partially
initialized module 'mlflow'" errors. So every path that needs MLflow first calls `ensure`
(scoring a row, building a scorer, routing the judges, logging the run): it waits for the
loading thread if one runs, else imports MLflow itself under a lock, which the other threads
then wait on. Once the package is whole, submodules (the sqlite store, the judges' adapter)
may load on several threads at once, as they always did. Where the model is a `python:`
function or an MLflow model, whose own code may import MLflow on any thread, `ensure` runs
on the main thread before any call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

_lock = threading.Lock()
_loaded = False
_loader_done = threading.Event()  # set when no loading thread is importing MLflow
_loader_done.set()
_steps_done = threading.Event()  # ... and when its steps have run too
_steps_done.set()
_step_done: dict[str, threading.Event] = {}
_step_errors: dict[str, BaseException] = {}


def ensure() -> None:
    """MLflow imported: by the loading thread if one runs, else here, one thread at a time."""
    _loader_done.wait()
    if not _loaded:
        _import()


def _import() -> None:
    global _loaded
    with _lock:
        if not _loaded:
            import mlflow  # noqa: F401  (the import is the point)

            _loaded = True


def loaded() -> bool:
    """Whether MLflow is whole, so that a row may be scored without waiting."""
    return _loaded


def load_in_background(steps: Sequence[tuple[str, Callable[[], object]]] = ()) -> None:
    """Import MLflow on a daemon thread, then run the named `steps` there. A step's error is
    kept (`finished`) for the caller to meet again where the step's result is used."""
    _steps_done.wait()  # an earlier run's thread, in the same process, finishes first
    _loader_done.clear()
    _steps_done.clear()
    _step_errors.clear()
    _step_done.clear()
    _step_done.update((name, threading.Event()) for name, _ in steps)

    def load() -> None:
        try:
            try:
                with contextlib.suppress(Exception):  # met again, and reported, in `ensure`
                    _import()
            finally:
                _loader_done.set()
            for name, step in steps:
                try:
                    step()
                except Exception as exc:
                    _step_errors[name] = exc
                finally:
                    _step_done[name].set()
        finally:
            for event in _step_done.values():
                event.set()
            _steps_done.set()

    threading.Thread(target=load, name="genai-gate-mlflow", daemon=True).start()


def wait_for_loader() -> None:
    """Block while the loading thread imports MLflow (imports nothing itself)."""
    _loader_done.wait()


def finished(name: str) -> BaseException | None:
    """Block until the loading thread's step `name` has run, if it has one; its error, if it
    failed. Only what needs that step waits: the verdict does not wait for the store."""
    event = _step_done.get(name)
    if event is not None:
        event.wait()
    return _step_errors.get(name)

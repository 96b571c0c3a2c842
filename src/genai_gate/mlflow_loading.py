"""MLflow imported on one thread while a remote model's first calls are in flight (issue #14).

`import mlflow` takes about 1.1 s, most of a run's time to its first request, and nothing
before a model's first answer needs it: the config is checked without it (the scorers are
`LazyScorer`s), and the tracking URI is set through MLFLOW_TRACKING_URI. So for a remote
model, one daemon thread imports MLflow, then does the steps given (build the scorers, open
the tracking store), while the main thread starts the calls.

One thread, and everyone else waits (`wait`): MLflow's package has import cycles that are
safe only when one thread runs them; two threads importing parts of it at once get
"partially initialized module 'mlflow'" errors. Every path that touches MLflow after
`load_in_background` (scoring a row, routing the judges, logging the run) waits first.
Where the model is a `python:` function or an MLflow model, whose own code may import MLflow
on any thread, `load_now` imports it on the main thread before any call, as before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

_ready = threading.Event()  # MLflow is imported
_ready.set()  # nothing is loading
_done = threading.Event()  # ... and the steps after it have run
_done.set()


def load_now() -> None:
    import mlflow  # noqa: F401  (the import is the point)


def load_in_background(steps: Sequence[Callable[[], None]] = ()) -> None:
    """Import MLflow on a daemon thread, then run `steps` there (their errors are ignored:
    each step's work is met again, and reported, where its result is used)."""
    _ready.clear()
    _done.clear()

    def load() -> None:
        try:
            try:
                with contextlib.suppress(Exception):  # met again, and reported, where used
                    load_now()
            finally:
                _ready.set()
            for step in steps:
                with contextlib.suppress(Exception):
                    step()
        finally:
            _done.set()

    threading.Thread(target=load, name="genai-gate-mlflow", daemon=True).start()


def wait() -> None:
    """Block until MLflow is imported, if it is being imported on the thread."""
    _ready.wait()


def wait_for_steps() -> None:
    """Block until the thread's steps are done too (the tracking store is in place)."""
    _done.wait()

"""MLflow logging in a process of its own, started with the run (issue #14).

Opening a tracking store imports SQLAlchemy and Alembic and checks the schema (about 0.9 s
of CPU; a new sqlite store adds its migrations), and logging the run is more. On a thread of
the gate's process that work holds the interpreter lock while the model and judge calls run,
and on a 2-core runner it was a third of a zero-latency run's busy time. Here a worker process
does it: it opens the store while the calls run, on the other core, and then starts and
finishes the run with `tracking.start_run` and `tracking.finish_run`, the same functions as
before, so what is logged and how it is verified do not change. A loss is still a
TrackingError (exit 4), raised in the gate's process.

Workers fork from a forkserver that imported MLflow and the SQLAlchemy store once: a fork is
cheap, shares no store or connection with anyone, and a process that evaluates many times
(the test suite, a library caller) pays the imports once. The worker gets the caller's
environment and folder with each start, not the forkserver's. Where there is no forkserver
(Windows), the store opens on a thread, as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_gate import tracking
from genai_gate.errors import GateError, TrackingError
from genai_gate.secrets import scrub

# imported once by the forkserver, so that each worker starts with them. "__main__" is the
# caller's main module (genai_gate.__main__ for the CLI, guarded): imported there once, not
# again in every worker
PRELOAD = [
    "__main__",
    "genai_gate.tracking_process",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
]
# a worker that does not answer in this long is stuck (a store that hangs): the gate gives up
# on the MLflow run rather than hold the job
REPLY_SECONDS = 600.0

_lock = threading.Lock()
_context: Any = None


def _forkserver() -> Any:
    global _context
    with _lock:
        if _context is None and "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    tracking_uri: str
    url: str | None


class Tracking:
    """Where the run is logged: `start` it before the calls, then `start_run`,
    `finish_run`, and always `close`."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._conn: Any = None
        self._proc: Any = None
        self._runs: dict[str, tracking.StartedRun] = {}  # the in-process fallback's
        self._starting: threading.Thread | None = None
        self._failed: Exception | None = None

    def start(self) -> Tracking:
        ctx = _forkserver()
        if ctx is None:
            tracking.open_store_early(self.tracking_uri)
            return self
        parent, child = ctx.Pipe()
        self._conn = parent
        self._proc = ctx.Process(
            target=_serve,
            args=(child, self.tracking_uri, dict(os.environ), str(Path.cwd())),
            name="genai-gate-tracking",
            daemon=True,
        )
        # a new forkserver imports MLflow before it forks the worker: seconds in which this
        # process goes on (preparing, calling), so the fork is asked for on a thread
        self._starting = threading.Thread(
            target=self._launch, args=(child,), name="genai-gate-tracking-start", daemon=True
        )
        self._starting.start()
        return self

    def _launch(self, child: Any) -> None:
        try:
            self._proc.start()
        except Exception as exc:  # e.g. a caller's unguarded main module: log in-process
            self._failed = exc
        finally:
            child.close()

    def _started(self) -> bool:
        """Whether the worker runs; if it could not start, the run is logged in-process."""
        if self._starting is not None:
            self._starting.join()
        if self._conn is not None and self._failed is not None:
            self._conn.close()
            self._conn = self._proc = None
        return self._conn is not None

    def _ask(self, op: str, payload: Any) -> Any:
        try:
            self._conn.send((op, payload))
            if not self._conn.poll(REPLY_SECONDS):
                raise TrackingError(
                    f"the MLflow logging process gave no answer within {REPLY_SECONDS:g} s",
                    fix="Check that the tracking store is reachable and not locked, then "
                    "re-run; the results are in the output folder.",
                )
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise TrackingError(
                f"the MLflow logging process ended before it answered ({type(exc).__name__})",
                fix="Re-run; the results are in the output folder. If it happens again, run "
                "with tracking-uri set to a store you can reach and read the process's error.",
            ) from None
        if status == "error":
            message, problems, fix = value
            raise TrackingError(message, problems=problems, fix=fix)
        return value

    def start_run(
        self, experiment: str, run_name: str | None, tags: Mapping[str, str]
    ) -> LoggedRun:
        if not self._started():
            run = tracking.start_run(self.tracking_uri, experiment, run_name, tags)
            self._runs[run.run_id] = run
            return LoggedRun(run.run_id, run.experiment_id, run.tracking_uri, run.url)
        run_id, experiment_id, url = self._ask("start", (experiment, run_name, dict(tags)))
        return LoggedRun(run_id, experiment_id, self.tracking_uri, url)

    def finish_run(
        self,
        run: LoggedRun,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        dataset: Mapping[str, str],
        table: Sequence[Mapping[str, Any]],
        artifacts: Sequence[Path],
        verdict_passed: bool,
        baseline_table: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "params": dict(params),
            "metrics": dict(metrics),
            "dataset": dict(dataset),
            "table": [dict(r) for r in table],
            "artifacts": [p.resolve() for p in artifacts],
            "verdict_passed": verdict_passed,
            "baseline_table": None if baseline_table is None else [dict(r) for r in baseline_table],
        }
        if not self._started():
            tracking.finish_run(self._runs[run.run_id], **kwargs)
            return
        self._ask("finish", (run.run_id, kwargs))

    def close(self) -> None:
        if not self._started():
            return
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._conn.close()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn = self._proc = None


def _serve(conn: Any, tracking_uri: str, environ: dict[str, str], cwd: str) -> None:
    """The worker: open the store, then start and finish runs as the gate asks."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    # a failure here is met again by start_run, which reports it
    with contextlib.suppress(Exception):
        tracking.ensure_local_store(tracking_uri)
        from mlflow import MlflowClient

        MlflowClient(tracking_uri)._tracking_client.store  # noqa: B018  (the lookup opens it)
    runs: dict[str, tracking.StartedRun] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        op, payload = request
        try:
            if op == "start":
                run = tracking.start_run(tracking_uri, *payload)
                runs[run.run_id] = run
                reply: tuple[str, Any] = ("ok", (run.run_id, run.experiment_id, run.url))
            else:
                run_id, kwargs = payload
                tracking.finish_run(runs[run_id], **kwargs)
                reply = ("ok", None)
        except GateError as exc:
            reply = ("error", (exc.message, exc.problems, exc.fix))
        except Exception as exc:
            reply = ("error", (f"{type(exc).__name__}: {scrub(str(exc))[:500]}", [], ""))
        conn.send(reply)

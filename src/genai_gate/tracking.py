"""Log an evaluation to MLflow tracking in a handful of batched calls, then count it back.

One run per evaluation: params, tags (MLflow's own `mlflow.source.git.commit` included),
metrics in one `log_batch`, the dataset as a run input, the per-row table through
`log_table` (so the MLflow UI shows it), and results.json, summary.md and evidence.json as
artifacts. Afterwards the run is read back: a metric or a row that did not land fails the
command, because a tracking store that silently drops rows is a known MLflow failure mode.
With a baseline, its metrics (`baseline/<metric>`, `delta/<metric>`) and its rows
(`baseline_results.json`) are logged and counted back the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from genai_gate import mlflow_loading
from genai_gate.errors import TrackingError
from genai_gate.secrets import scrub, scrub_credentials, scrub_doc, tracking_password

__all__ = ["scrub_credentials", "tracking_password"]

TABLE_FILE = "eval_results.json"
BASELINE_TABLE_FILE = "baseline_results.json"


def default_tracking_uri(out_dir: Path, configured: str | None, environ: Mapping[str, str]) -> str:
    if configured:
        return configured
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    if environ.get("DATABRICKS_RUNTIME_VERSION"):
        return "databricks"  # inside a Databricks job (run-on: databricks): its workspace's
    # MLflow's file store now refuses to start without MLFLOW_ALLOW_FILE_STORE; sqlite it is
    return f"sqlite:///{(out_dir / 'mlflow.db').resolve()}"


def redact(uri: str) -> str:
    """Drop credentials from a URI before it is printed or recorded."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return uri


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if not uri.startswith(("http://", "https://")):
        return None
    base = redact(uri).rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


@contextlib.contextmanager
def use_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking (and registry) URI for the duration of one command.

    MLflow reads MLFLOW_TRACKING_URI whenever no URI was set in the process, so setting the
    variable is enough, and MLflow need not be imported here: it loads on a thread while a
    remote model's first calls are in flight (scorer.LazyScorer). Where MLflow is already
    imported (tests, a library caller), its global is set too, and restored after, so that a
    second run in the same process does not inherit it.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    imported = sys.modules.get("mlflow")
    if imported is not None:
        imported.set_tracking_uri(uri)
    try:
        yield
    finally:
        # a package still loading on MLflow's thread has no set_tracking_uri yet
        mlflow_loading.wait_for_loader()
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None:
            # None unsets it (and the variable); MLflow's annotation leaves None out
            mlflow.set_tracking_uri(before)
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


@dataclass(frozen=True)
class StartedRun:
    client: Any
    run_id: str
    experiment_id: str
    tracking_uri: str
    url: str | None


def _wrap(action: str, uri: str, exc: Exception) -> TrackingError:
    return TrackingError(
        f"{action} at {redact(uri)} failed: {type(exc).__name__}: {scrub(str(exc))[:500]}",
        fix="Check that the tracking server is up and reachable, or unset tracking-uri to use "
        "the local sqlite store in the output folder:\n  tracking-uri: http://mlflow.internal:5000",
    )


def open_store(tracking_uri: str) -> None:
    """Open the tracking store, on MLflow's loading thread while the model calls run.

    Opening a sqlite store imports SQLAlchemy and Alembic and checks the schema: about 2 s
    that would otherwise come after the verdict. MLflow keeps one store per URI (built under
    its own lock), so `start_run` picks this one up. A failure here is ignored: `start_run`
    meets it again and reports it.
    """
    from mlflow import MlflowClient

    with contextlib.suppress(Exception):
        MlflowClient(tracking_uri)._tracking_client.store  # noqa: B018  (the lookup opens it)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def ensure_local_store(tracking_uri: str) -> None:
    """Create the sqlite store aside, then rename it into place.

    MLflow builds a new sqlite store with a few dozen alembic migrations; a cancel in the
    middle (kill -9, Ctrl-C, a cancelled job) used to leave a half-migrated database that
    every later run on that --out refused ("table _alembic_tmp_... already exists"). Built
    under a temporary name, an interrupted build leaves only that file, which no run reads.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    if db.exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob(f".{db.name}.*.building"):
        if not _alive(stale.suffixes[-2].lstrip(".")):
            stale.unlink(missing_ok=True)  # an earlier build that was cut short
    building = db.with_name(f".{db.name}.{os.getpid()}.building")
    try:
        store = SqlAlchemyStore(  # type: ignore[no-untyped-call]
            f"sqlite:///{building}", (db.parent / "mlartifacts").resolve().as_uri()
        )
        store.engine.dispose()
        building.replace(db)
    except Exception as exc:
        building.unlink(missing_ok=True)
        raise _wrap("creating the local MLflow store", tracking_uri, exc) from exc


PROBE_SECONDS = 10.0


def probe(tracking_uri: str, *, seconds: float = PROBE_SECONDS) -> None:
    """Find out in seconds, before any model call, that a tracking server does not answer.

    MLflow's own client retries a refused port for minutes and waits on a silent one for
    far longer. Any HTTP answer counts as up (auth and paths are MLflow's to check); a
    refused connection or no answer within `seconds` is a TrackingError (exit 4), which
    the eval records and then makes no MLflow call at all: the evaluation still runs and
    writes its files, so a failed gate still says so (exit 1), and a passed one exits 4.
    It does not log to a local store instead: the run's record would land where nobody looks.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import requests

    url = tracking_uri.rstrip("/") + "/health"
    try:
        requests.get(url, timeout=(seconds, seconds), allow_redirects=False)
    except requests.RequestException as exc:
        what = "did not answer" if isinstance(exc, requests.Timeout) else "refused or dropped"
        raise TrackingError(
            f"the MLflow tracking server at {redact(tracking_uri)} {what} within "
            f"{seconds:g} s ({type(exc).__name__}), so the run was not logged to MLflow; "
            "the results are in the output folder only",
            fix="Start the server or fix its address, or leave tracking-uri (and "
            "MLFLOW_TRACKING_URI) unset to log to the sqlite store in the output folder:\n"
            "  tracking-uri: http://mlflow.internal:5000",
        ) from None


def start_run(
    tracking_uri: str, experiment: str, run_name: str | None, tags: Mapping[str, str]
) -> StartedRun:
    from mlflow import MlflowClient

    try:
        client = MlflowClient(tracking_uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            location = None
            if tracking_uri.startswith("sqlite:///"):
                # next to the database, not in whatever folder the command ran from
                db = Path(tracking_uri.removeprefix("sqlite:///"))
                location = (db.parent / "mlartifacts").resolve().as_uri()
            exp_id = client.create_experiment(experiment, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        run = client.create_run(exp_id, run_name=run_name, tags=scrub_doc(dict(tags)))
    except Exception as exc:
        raise _wrap("starting an MLflow run", tracking_uri, exc) from exc
    run_id = run.info.run_id
    return StartedRun(client, run_id, exp_id, tracking_uri, run_url(tracking_uri, exp_id, run_id))


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return scrub(text)[:6000]  # MLflow's param length limit


def finish_run(
    run: StartedRun,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    dataset: Mapping[str, str],
    table: Sequence[Mapping[str, Any]],
    artifacts: Sequence[Path],
    verdict_passed: bool,
    baseline_table: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Log everything, verify it landed, and close the run; TrackingError on any loss."""
    import math

    import pandas as pd
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    client = run.client
    now = int(time.time() * 1000)
    finite = {k: v for k, v in metrics.items() if not math.isnan(v)}
    try:
        client.log_batch(
            run.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in finite.items()],
            params=[Param(k, _param_value(v)) for k, v in params.items()],
            tags=[RunTag("genai_gate.verdict", "passed" if verdict_passed else "failed")],
        )
        client.log_inputs(
            run.run_id,
            datasets=[
                DatasetInput(
                    Dataset(
                        name=dataset["name"],
                        digest=dataset["digest"][-64:][:36],
                        source_type="local",
                        source=scrub(json.dumps({"uri": dataset["source"]})),
                    ),
                    tags=[InputTag("mlflow.data.context", "eval")],
                )
            ],
        )
        tables = {TABLE_FILE: table}
        if baseline_table is not None:
            tables[BASELINE_TABLE_FILE] = baseline_table
        for name, rows in tables.items():
            frame = pd.DataFrame([{k: scrub_doc(_cell(v)) for k, v in row.items()} for row in rows])
            client.log_table(run.run_id, data=frame, artifact_file=name)
        for path in artifacts:
            client.log_artifact(run.run_id, str(path))
    except Exception as exc:
        client_fail(run)
        raise _wrap("logging the evaluation", run.tracking_uri, exc) from exc
    _verify(run, finite, {name: len(rows) for name, rows in tables.items()})
    try:
        client.set_terminated(run.run_id, "FINISHED")
    except Exception as exc:
        raise _wrap("closing the MLflow run", run.tracking_uri, exc) from exc


def _cell(value: Any) -> Any:
    # MLflow's table artifact stores each cell as JSON; nested dicts become text to stay flat
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def client_fail(run: StartedRun) -> None:
    try:
        run.client.set_terminated(run.run_id, "FAILED")
    except Exception:  # the original error is the one worth reporting
        return


def _verify(run: StartedRun, metrics: Mapping[str, float], tables: Mapping[str, int]) -> None:
    import tempfile

    client = run.client
    stored_rows: dict[str, int] = {}
    try:
        logged = client.get_run(run.run_id).data.metrics
        with tempfile.TemporaryDirectory() as tmp:
            for name in tables:
                local = client.download_artifacts(run.run_id, name, tmp)
                stored = json.loads(Path(local).read_text(encoding="utf-8"))
                stored_rows[name] = len(stored.get("data", [])) if isinstance(stored, dict) else -1
    except Exception as exc:
        client_fail(run)
        raise _wrap("reading the run back", run.tracking_uri, exc) from exc
    missing = sorted(set(metrics) - set(logged))
    short = {name: rows for name, rows in tables.items() if stored_rows[name] != rows}
    if missing or short:
        client_fail(run)
        problems = []
        if missing:
            problems.append(f"metrics not recorded: {', '.join(missing)}")
        for name, rows in short.items():
            which = "row table" if name == TABLE_FILE else f"table {name}"
            problems.append(f"the {which} holds {stored_rows[name]} of {rows} rows")
        raise TrackingError(
            f"the MLflow run {run.run_id} did not record everything that was logged",
            problems=problems,
            fix="The local results in the output folder are complete. Check the tracking "
            "server's logs and storage, then re-run.",
        )


def tracking_env() -> dict[str, str]:
    """MLflow settings that keep MLflow quiet and offline for what genai-gate asks of it."""
    return {
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_LOGGING_LEVEL": os.environ.get("MLFLOW_LOGGING_LEVEL", "WARNING"),
        "MLFLOW_DISABLE_TELEMETRY": os.environ.get("MLFLOW_DISABLE_TELEMETRY", "true"),
        "DO_NOT_TRACK": os.environ.get("DO_NOT_TRACK", "true"),
    }

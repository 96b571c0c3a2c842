"""`baseline:`: what the candidate is compared with, resolved before the first model call.

The forms:
- `endpoints:/<name>`: the endpoint's champion, the served entity tagged `genai-gate.champion`
  or else the one with the most traffic (`EndpointState.champion()`, the same rule deploy
  uses). It is called through its own route, `/served-models/<entity>/invocations`, because
  the endpoint's invocations route splits traffic: 10% of the "baseline" rows would otherwise
  be answered by the challenger. `endpoints:/<name>/<entity>` pins another served entity.
- `models:/name@alias`, `models:/name/N`, and every other `model:` form: resolved by the same
  targets as the candidate, and evaluated like it (same rows, scorers, prompt settings,
  response cache and runner).
- `run:<mlflow-run-id>`: an earlier genai-gate run's per-row results, read from its
  `eval_results.json` table in the tracking store, with no model call at all. The run must
  have evaluated the same rows: its `dataset_digest` param must equal this run's (exit 2
  otherwise), so a changed eval set or `limit` can never be compared row by row by accident.
- `none`: compare with nothing, even when deploy is configured.

The default. With deploy configured (`endpoint:`), the baseline is `endpoints:/<endpoint>`:
what users get today. That needs Databricks credentials; without them (a fork's pull
request, a laptop without a profile), or while the endpoint does not exist (the first
deploy), a notice says so and nothing is compared. Rules against the baseline then fail
closed and say why; without such rules the comparison was only for the report.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, GateError, TrackingError
from genai_gate.results import Dataset, RowResult
from genai_gate.scorer import BoundScorer
from genai_gate.targets import ENDPOINTS_PREFIX, Target, remote_settings, resolve_target
from genai_gate.targets.base import CHAMPION, ServingWorkspace
from genai_gate.tracking import TABLE_FILE, redact

RUN_PREFIX = "run:"
NONE = "none"
# what deploy tags the eval run with (the run that gated what it deployed), for monitor
TAG_RUN_ENDPOINT = "genai-gate.endpoint"
TAG_RUN_MODEL = "genai-gate.model"
TAG_RUN_VERSION = "genai-gate.model-version"

FORMS = """\
  baseline: endpoints:/my-endpoint          # its champion served entity
  baseline: endpoints:/my-endpoint/bot-12   # one served entity
  baseline: models:/my-model@champion       # or models:/my-model/3
  baseline: run:<mlflow-run-id>             # an earlier genai-gate run's rows, no calls
  baseline: none                            # compare with nothing"""


@dataclass(frozen=True)
class Baseline:
    """A resolved baseline: a target to evaluate, or an earlier run's rows."""

    ref: str
    label: str  # how messages name it, e.g. "endpoints:/bot (champion bot-12)"
    kind: str  # endpoint | model | run
    target: Target | None = None
    run_id: str | None = None
    rows: tuple[RowResult, ...] = ()  # a run's rows
    identity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    baseline: Baseline | None
    unavailable: str | None = None  # why nothing is compared, for the rules against it
    notices: tuple[str, ...] = ()


def _deploy_default(loaded: LoadedConfig, workspace: ServingWorkspace) -> Resolution | None:
    """The deploy endpoint's champion, when deploy is configured (best effort: no
    credentials, or no endpoint yet, is a notice and no comparison, not an error)."""
    endpoint = loaded.config.endpoint
    if endpoint is None:
        return None
    if loaded.config.backend != "databricks":
        # the champion as a baseline is read through a Databricks endpoint; an
        # InferenceService's champion is not (yet) a baseline
        why = (
            f"the baseline does not default to what InferenceService {endpoint!r} serves "
            "with backend: kserve; name one, e.g. baseline: openai:/<model> with base-url: "
            "the service's OpenAI route, or baseline: run:<mlflow-run-id>"
        )
        return Resolution(None, why, (f"no comparison: {why}",))
    if not workspace.available:
        why = (
            f"the baseline defaults to what endpoint {endpoint!r} serves, and there are no "
            f"Databricks credentials to read it ({workspace.unavailable_reason})"
        )
        return Resolution(None, why, (f"no comparison: {why}",))
    return _from_endpoint(endpoint, "", loaded, workspace, implicit=True)


def resolve_baseline(
    loaded: LoadedConfig,
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    *,
    workspace: ServingWorkspace,
    tracking_uri: str,
) -> Resolution:
    cfg = loaded.config
    label = loaded.label("baseline")
    ref = cfg.baseline
    if ref is None:
        default = _deploy_default(loaded, workspace)
        if default is None:
            if loaded.relative:
                raise ConfigError(
                    f"{len(loaded.relative)} threshold(s) compare with a baseline, and none is "
                    f"configured: {', '.join(t.metric for t in loaded.relative)}",
                    fix=f"Name what to compare with:\n{FORMS}",
                )
            return Resolution(None)
        return default
    if ref.lower() == NONE:
        if loaded.relative:
            raise ConfigError(
                f"{label}: none, and {len(loaded.relative)} threshold(s) compare with a "
                f"baseline: {', '.join(t.metric for t in loaded.relative)}",
                fix="Remove max-drop, max-drop-pct and must-improve from those thresholds, or "
                f"name a baseline:\n{FORMS}",
            )
        return Resolution(None)
    try:
        if ref.startswith(RUN_PREFIX):
            return Resolution(_from_run(ref, label, dataset, scorers, tracking_uri))
        if ref.startswith(ENDPOINTS_PREFIX):
            name, entity = _endpoint_parts(ref, label)
            return _from_endpoint(name, entity, loaded, workspace, implicit=False)
        if ref.startswith("runs:/") and ref.removeprefix("runs:/").strip("/").count("/") == 0:
            raise ConfigError(
                f"{label}: {ref!r} names a run but no model in it",
                fix="To reuse an earlier genai-gate run's rows (no model calls), write\n"
                f"  baseline: run:{ref.removeprefix('runs:/').strip('/')}\n"
                "To load a model logged in a run, add its path: runs:/<run-id>/model",
            )
        target = resolve_target(
            ref, loaded, input_keys=list(dataset.rows[0].inputs), workspace=workspace
        )
    except GateError as exc:
        if exc.message.startswith(label):
            raise
        raise type(exc)(f"{label}: {exc.message}", fix=exc.fix, problems=exc.problems) from None
    identity = target.identity.as_dict()
    resolved = identity.get("resolved")
    text = f"{ref} ({resolved})" if resolved and resolved != ref else ref
    return Resolution(Baseline(ref, text, "model", target=target, identity=identity))


def _endpoint_parts(ref: str, label: str) -> tuple[str, str]:
    """`endpoints:/<name>[/<served-entity>]` as (name, entity); entity "" for the champion."""
    name, _, entity = ref.removeprefix(ENDPOINTS_PREFIX).strip("/").partition("/")
    if not name or "/" in entity:
        raise ConfigError(
            f"{label}: {ref!r} is not endpoints:/<name> or endpoints:/<name>/<served-entity>",
            fix=FORMS,
        )
    return name, entity


def _from_endpoint(
    name: str, entity: str, loaded: LoadedConfig, workspace: ServingWorkspace, *, implicit: bool
) -> Resolution:
    ref = f"{ENDPOINTS_PREFIX}{name}" + (f"/{entity}" if entity else "")
    try:
        target = workspace.endpoint_target(
            name, pin=entity or CHAMPION, settings=remote_settings(loaded)
        )
    except GateError as exc:
        if not implicit:
            raise
        # the default is best effort: no credentials, or no endpoint yet, is not an error
        why = (
            f"the baseline defaults to what endpoint {name!r} serves, and it could not be "
            f"read: {exc.message}"
        )
        return Resolution(None, why, (f"no comparison: {why}",))
    details = target.identity.details
    role = "served entity" if entity else "champion"
    text = (
        f"{ref} ({role} {details['served_entity']}: {details['entity']}, "
        f"{details.get('traffic_percent', '0')}% of traffic)"
    )
    return Resolution(
        Baseline(ref, text, "endpoint", target=target, identity=target.identity.as_dict())
    )


# ---------------------------------------------------------------- run:<id>


def _get_run(run_id: str, label: str, tracking_uri: str) -> Any:
    """The MLflow run, or the ConfigError (no such run) or TrackingError (store down)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    where = redact(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise ConfigError(
                f"{label}: there is no MLflow run {run_id!r} at {where}",
                fix="Copy the run id from the baseline run's results.json (run_id) or its "
                "run-id output, and point tracking-uri at the store that holds it.",
            ) from None
        raise TrackingError(f"reading the baseline run {run_id} at {where} failed: {exc}") from None
    except Exception as exc:
        raise TrackingError(
            f"reading the baseline run {run_id} at {where} failed: {type(exc).__name__}: {exc}"
        ) from None


def read_run_rows(
    run_id: str, label: str, scorer_names: set[str], tracking_uri: str
) -> tuple[dict[str, str], tuple[RowResult, ...]]:
    """A genai-gate eval run's params and per-row results (its `eval_results.json` table)."""
    from mlflow import MlflowClient

    run = _get_run(run_id, label, tracking_uri)
    params: dict[str, str] = dict(run.data.params)
    if params.get("dataset_digest") is None:
        raise ConfigError(
            f"{label}: the MLflow run {run_id} was not logged by genai-gate eval (it has no "
            "dataset_digest param), so its rows cannot be compared",
            fix=f"Use the run id of an earlier genai-gate eval, or another form:\n{FORMS}",
        )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = MlflowClient(tracking_uri).download_artifacts(run_id, TABLE_FILE, tmp)
            table = json.loads(Path(local).read_text(encoding="utf-8"))
    except Exception as exc:
        raise TrackingError(
            f"{label}: reading the row table {TABLE_FILE} of run {run_id} failed: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    return params, rows_from_table(table, scorer_names)


def find_gated_run(
    tracking_uri: str, experiment: str, endpoint: str, model: str, version: str
) -> str | None:
    """The latest eval run that deploy tagged as having gated `model` version `version` onto
    `endpoint` (deploy sets these tags on the run it attaches its record to)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return None
        runs = client.search_runs(
            [found.experiment_id],
            filter_string=" and ".join(
                f"tags.`{key}` = '{value.replace(chr(39), '')}'"
                for key, value in (
                    (TAG_RUN_ENDPOINT, endpoint),
                    (TAG_RUN_MODEL, model),
                    (TAG_RUN_VERSION, version),
                )
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    except Exception as exc:
        raise TrackingError(
            f"searching {redact(tracking_uri)} for the eval run of {model} v{version} failed: "
            f"{type(exc).__name__}: {str(exc)[:300]}"
        ) from None
    return str(runs[0].info.run_id) if runs else None


def _from_run(
    ref: str,
    label: str,
    dataset: Dataset,
    scorers: Sequence[BoundScorer],
    tracking_uri: str,
) -> Baseline:
    run_id = ref.removeprefix(RUN_PREFIX).strip()
    if not run_id:
        raise ConfigError(f"{label}: {ref!r} names no run", fix="baseline: run:<mlflow-run-id>")
    params = dict(_get_run(run_id, label, tracking_uri).data.params)
    digest = params.get("dataset_digest")
    if digest is None:
        raise ConfigError(
            f"{label}: the MLflow run {run_id} was not logged by genai-gate eval (it has no "
            "dataset_digest param), so its rows cannot be compared",
            fix=f"Use the run id of an earlier genai-gate eval, or another form:\n{FORMS}",
        )
    if digest != dataset.digest:
        raise ConfigError(
            f"{label}: the run {run_id} evaluated other data: its rows digest to "
            f"{digest[:19]} ({params.get('rows', '?')} rows of {params.get('data', '?')}), "
            f"this run's to {dataset.digest[:19]} ({len(dataset.rows)} rows of {dataset.path})",
            fix="Compare on the same rows: use the baseline run's data file and limit, or "
            "evaluate the baseline model on this data instead:\n"
            "  baseline: models:/my-model@champion",
        )
    _, rows = read_run_rows(run_id, label, {s.name for s in scorers}, tracking_uri)
    if len(rows) != len(dataset.rows):
        raise TrackingError(
            f"{label}: run {run_id}'s row table holds {len(rows)} rows, and its data had "
            f"{len(dataset.rows)}",
            fix="The baseline run did not record every row; re-run it.",
        )
    model = params.get("model", "?")
    return Baseline(
        ref,
        f"{ref} ({model})",
        "run",
        run_id=run_id,
        rows=rows,
        identity={"uri": model, "kind": "mlflow-run", "run_id": run_id},
    )


def _json_cell(value: Any) -> Any:
    # tracking.finish_run stored dicts and lists as JSON text to keep the table flat
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rows_from_table(table: Mapping[str, Any], scorer_names: set[str]) -> tuple[RowResult, ...]:
    """RowResults from an `eval_results.json` table (MLflow's log_table, orient "split"),
    keeping the scores of the scorers configured now."""
    columns = [str(c) for c in table.get("columns", [])]
    records = [dict(zip(columns, cells, strict=False)) for cells in table.get("data", [])]
    return rows_from_records(records, scorer_names)


def rows_from_records(
    records: Sequence[Mapping[str, Any]], scorer_names: set[str]
) -> tuple[RowResult, ...]:
    """RowResults from row records as `report.results.row_record` writes them (rows.jsonl,
    or a row table's rows), keeping the scores of the scorers configured now. A scoring
    crash (`*/error_message`) stays the row's error whatever is configured."""
    out: list[RowResult] = []
    for i, rec in enumerate(records):
        scores: dict[str, float | None] = {}
        rationales: dict[str, str] = {}
        errors: dict[str, str] = {}
        for column, value in rec.items():
            name, _, kind = column.rpartition("/")
            if not name or (name != "*" and name.split("/", 1)[0] not in scorer_names):
                continue
            if kind == "value" and (number := _number(value)) is not None:
                scores[name] = number
            elif kind == "rationale" and value is not None:
                rationales[name] = str(value)
            elif kind == "error_message" and value is not None:
                errors[name] = str(value)
        inputs = _json_cell(rec.get("inputs"))
        expectations = _json_cell(rec.get("expectations"))
        out.append(
            RowResult(
                index=i,
                where=str(rec.get("row") or f"row {i + 1}"),
                inputs=inputs if isinstance(inputs, dict) else {"inputs": inputs},
                expectations=expectations if isinstance(expectations, dict) else None,
                outputs=rec.get("outputs"),
                latency_ms=_number(rec.get("latency_ms")),
                error=str(rec["error"]) if rec.get("error") is not None else None,
                scores=scores,
                rationales=rationales,
                scorer_errors=errors,
            )
        )
    return tuple(out)

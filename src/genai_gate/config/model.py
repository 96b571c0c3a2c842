"""genai-gate.yml as frozen pydantic models, its keys grouped by the job that reads them.

The file, the environment (`GENAI_GATE_<KEY>`) and the action's inputs stay flat
(`endpoint:`, `with: endpoint:`), so each group is a mixin of the one flat `Config`; the
groups are what the code reads (`DeploySettings` for plan and deploy, `CanarySettings` for
analyze, ...). Loading, merging and labelling problems by origin is `load.py`'s job.
"""

from __future__ import annotations

import math
import re
import string
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from genai_gate import tables
from genai_gate.secrets import looks_like_token
from genai_gate.thresholds import Better


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _variable_name(v: object) -> object:
    # before the name pattern, so a key gets this message; the value is never echoed: it is
    # likely a real key, and errors reach the job log
    if isinstance(v, str) and looks_like_token(v):
        raise ValueError(
            "holds what looks like an API key, not the name of the variable that holds it "
            "(the value is not shown). Put the key in a secret and name its variable: "
            "api-key-env: OPENAI_API_KEY, with env: OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}"
        )
    return v


class _Model(BaseModel):
    # allow_inf_nan=False: `timeout: .inf` would turn every deadline off, and a NaN limit
    # compares false both ways
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=_kebab,
        populate_by_name=True,
        allow_inf_nan=False,
    )


class ThresholdRule(_Model):
    """The mapping form of a threshold: at most one of `at-least` / `at-most`, and at most
    one rule against the baseline (`max-drop`, `max-drop-pct`, `must-improve`)."""

    # load.py refuses a non-finite limit with the rule's own wording
    model_config = ConfigDict(**{**_Model.model_config, "allow_inf_nan": True})

    at_least: float | None = Field(default=None, description="The metric must be >= this.")
    at_most: float | None = Field(default=None, description="The metric must be <= this.")
    max_drop: float | None = Field(
        default=None,
        description="Against the baseline: the metric may get worse by at most this much "
        "(in its own units).",
    )
    max_drop_pct: float | None = Field(
        default=None,
        description="Against the baseline: the metric may get worse by at most this percent "
        "of the baseline's value.",
    )
    must_improve: bool | None = Field(
        default=None,
        description="Against the baseline: the metric must get significantly better.",
    )
    better: Better | None = Field(
        default=None,
        description="Which way is better, for rules against the baseline without at-least "
        "or at-most: higher or lower.",
    )


class Columns(_Model):
    """Maps genai-gate's roles to the data file's column names."""

    inputs: str | list[str] | None = Field(
        default=None,
        description="Column(s) holding the model's inputs. One column of dicts is used as is; "
        "a scalar column becomes {column: value}; several columns become one dict.",
    )
    expectations: str | list[str] | None = Field(
        default=None,
        description="Column(s) holding the expected answer. A scalar column becomes "
        "{expected_response: value}, MLflow's key for the reference answer.",
    )
    outputs: str | None = Field(
        default=None,
        description="Column holding precomputed outputs; then no model is called.",
    )
    context: str | None = Field(
        default=None,
        description="Column holding the retrieved context the answer should rest on (text, "
        "or a list of passages or documents), for retrieval_groundedness. Default: a "
        "column named retrieved_context, context or contexts.",
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _seconds(v: object, seconds: int, text: str) -> object:
    """A duration as seconds: a number, or text such as "90s", "10m", "2h"."""
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f'{v!r} is not a duration; write seconds ({seconds}) or "{text}"')
        return float(m.group(1)) * _UNITS[m.group(2)]
    return v


Backend = Literal["databricks", "kserve"]


class DeploySettings(_Model):
    """The keys `plan` and `deploy` read (issue #6). A mixin, so that the file and the
    action's inputs stay flat (`endpoint:`, `with: endpoint:`) while the code stays grouped."""

    backend: Backend = Field(
        default="databricks",
        description="The serving platform: databricks (Model Serving) or kserve (an "
        "InferenceService on Kubernetes, serverless mode).",
    )
    databricks_host: str | None = Field(
        default=None,
        description="Databricks workspace URL. Default: DATABRICKS_HOST, else the profile.",
    )
    databricks_client_id: str | None = Field(
        default=None,
        description="The service principal's application id that GitHub OIDC signs in as. "
        "Default: DATABRICKS_CLIENT_ID.",
    )
    endpoint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
        description="The Model Serving endpoint to deploy to (created if missing); with "
        "backend: kserve, the InferenceService's name (created if missing too).",
    )
    model_name: str | None = Field(
        default=None,
        pattern=r"^[^.\s`]+\.[^.\s`]+\.[^.\s`]+$",
        description="The Unity Catalog model to serve: catalog.schema.model.",
    )
    model_version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]*$",
        description="The version of model-name to roll out as the challenger.",
    )
    canary_percent: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Traffic share of the challenger; 100 replaces the champion outright.",
    )
    workload_size: str = Field(
        default="Small",
        min_length=1,
        description="The challenger's workload size: Small, Medium, Large or a custom size.",
    )
    scale_to_zero: bool = Field(
        default=True, description="Let the challenger scale to zero when idle."
    )
    inference_table: str | None = Field(
        default=None,
        pattern=r"^[^.\s`]+\.[^.\s`]+(\.[^.\s`]+)?$",
        description="Where AI Gateway captures requests and responses: catalog.schema or "
        "catalog.schema.prefix (the table is <prefix>_payload; prefix defaults to the "
        "endpoint name). Required unless the endpoint already captures.",
    )
    wait_timeout: float = Field(
        default=1200.0,
        gt=0,
        le=6 * 3600,  # GitHub ends a job at 6 hours; a longer wait is a mistake
        description='How long to wait for the endpoint to finish updating: seconds, or "20m".',
    )
    endpoint_config: str | None = Field(
        default=None,
        description="A seed-style update.json (served_entities, traffic_config, "
        "auto_capture_config) to apply literally instead of model-name/model-version.",
    )

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("wait_timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> object:
        return _seconds(v, 600, "10m")


class CanarySettings(_Model):
    """The keys `analyze`, `promote` and `rollback` read (issue #7)."""

    warehouse_id: str | None = Field(
        default=None,
        description="Databricks SQL warehouse that reads the inference table and a uc: "
        "eval table (Statement Execution API).",
    )
    inference_data: str | None = Field(
        default=None,
        description="Read the inference table from local files instead: a Parquet or JSON-lines "
        "file, a folder, a glob, or a Delta table folder (needs the delta extra).",
    )
    sample_size: int = Field(
        default=50,
        ge=0,
        le=5000,
        description="Logged requests per served entity judged by the reference-free scorers.",
    )
    min_requests: int = Field(
        default=100,
        ge=1,
        description="Requests each served entity needs before the canary is judged; fewer holds.",
    )
    steps: tuple[int, ...] = Field(
        default=(10, 50, 100),
        description="The challenger's traffic shares, one per healthy analysis; 100 promotes.",
    )
    max_error_rate: float = Field(
        default=0.02, ge=0, le=1, description="The challenger's error rate at most this."
    )
    max_error_rate_increase: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="The challenger's error rate at most the champion's plus this.",
    )
    max_latency_ratio: float = Field(
        default=1.2, gt=0, description="The challenger's p95 latency at most this x the champion's."
    )
    quality_max_drop: float = Field(
        default=0.05,
        ge=0,
        description="A scorer's mean may fall this far below the champion's (significant drops "
        "only).",
    )
    open_issue: bool = Field(
        default=False,
        description="On a rollback, open (or update) one GitHub issue for the endpoint.",
    )

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_100(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 1 <= s <= 100 for s in v):
            raise ValueError("steps are traffic shares between 1 and 100, e.g. [10, 50, 100]")
        if list(v) != sorted(set(v)):
            raise ValueError(f"steps must rise: {list(v)}")
        if v[-1] != 100:
            raise ValueError(f"the last step must be 100 (the promotion), not {v[-1]}")
        return v


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class KServeSettings(_Model):
    """The keys only `backend: kserve` reads (issue #15): where the InferenceService is, what
    its predictor should serve, how to reach the cluster, and where the logger's events are."""

    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=_DNS_LABEL,
        description="KServe: the InferenceService's namespace. Default: the kubeconfig "
        "context's namespace, else default.",
    )
    storage_uri: str | None = Field(
        default=None,
        min_length=1,
        description="KServe: the challenger's model location (predictor.model.storageUri), "
        "e.g. s3://models/support-bot/v4.",
    )
    predictor_image: str | None = Field(
        default=None,
        min_length=1,
        description="KServe: the challenger's serving image (predictor.model.image, or the "
        "first container's image for a custom predictor).",
    )
    predictor: dict[str, Any] = Field(
        default_factory=dict,
        description="KServe: a predictor spec fragment, merged onto the current predictor "
        "(JSON merge patch: null removes a field), for changes storage-uri and "
        "predictor-image do not cover. To create a missing InferenceService, the whole "
        "predictor: a model: block with its modelFormat, or containers:.",
    )
    logger_url: str | None = Field(
        default=None,
        description="KServe: where the predictor's inference logger sends its CloudEvents "
        "(spec.predictor.logger.url, mode all). Required unless the predictor logs already.",
    )
    inference_log: str | None = Field(
        default=None,
        description="KServe: the logged CloudEvents that analyze and monitor read (JSON lines or "
        "Parquet): a file, a folder or a glob on the runner, or a bucket prefix or glob "
        "(s3://, gs://, az://; e.g. s3://logs/bot/**/*.parquet), read with the cloud's "
        "standard credentials.",
    )
    kube_server: str | None = Field(
        default=None,
        description="KServe: the Kubernetes API server URL, for GitHub OIDC sign-in. "
        "Default: the kubeconfig's (or the in-cluster) server.",
    )
    kube_audience: str | None = Field(
        default=None,
        min_length=1,
        description="KServe: sign in with the job's GitHub OIDC token for this audience (the "
        "cluster's JWT authenticator must trust GitHub's issuer with it); needs "
        "kube-server and `id-token: write`.",
    )
    kube_ca: str | None = Field(
        default=None,
        description="KServe: the API server's CA certificate (a PEM file, relative to this "
        "file), with kube-server.",
    )
    kube_context: str | None = Field(
        default=None,
        min_length=1,
        description="KServe: the kubeconfig context to use. Default: its current context.",
    )

    @field_validator("kube_server", "logger_url")
    @classmethod
    def _kube_urls(cls, v: str | None) -> str | None:
        return _http_url(v)

    @field_validator("predictor")
    @classmethod
    def _predictor_fragment(cls, v: dict[str, Any]) -> dict[str, Any]:
        # the canary's split belongs to genai-gate (canary-percent, steps): a fragment that
        # set it would fight every step
        if "canaryTrafficPercent" in v:
            raise ValueError(
                "sets canaryTrafficPercent, which genai-gate moves itself; use canary-percent "
                "and steps instead"
            )
        return v


# keys that only one backend reads; given for the other, they are refused (config/load.py)
DATABRICKS_ONLY = (
    "databricks-host",
    "databricks-client-id",
    "model-name",
    "model-version",
    "workload-size",
    "scale-to-zero",
    "inference-table",
    "endpoint-config",
    "warehouse-id",
    "inference-data",
    "retrain-job-id",
    "judged-table",
    "dashboard-name",
    "dashboard-path",
    "job-volume",
    "job-cluster-id",
)
KSERVE_ONLY = tuple(_kebab(name) for name in KServeSettings.model_fields)


DRIFT_ACTIONS = ("annotate", "issue", "retrain", "rollback")
REFERENCE_FORMS = """\
  monitor-reference: run:<mlflow-run-id>                 # a genai-gate eval run's rows
  monitor-reference: window:2026-11-01..2026-11-08       # an earlier week of the table (UTC)
  monitor-reference: none                                # absolute rules only"""


class MonitorSettings(_Model):
    """The keys `monitor` and `dashboard` read (issue #16)."""

    monitor_window: float = Field(
        default=86400.0,
        gt=0,
        le=90 * 86400,
        description='The traffic each monitor run judges, ending now: seconds, or "24h", "7d".',
    )
    monitor_reference: str | None = Field(
        default=None,
        description="What the window is compared with: run:<mlflow-run-id> (a genai-gate eval "
        "run's rows), window:<from>..<to> (an earlier window of the inference table, UTC "
        "dates or times), or none. Default: the eval run that gated the version now serving, "
        "found through evidence.json or the MLflow run's genai-gate tags.",
    )
    monitor_rules: dict[str, str | float | ThresholdRule] = Field(
        default_factory=dict,
        alias="monitor",  # the drift rules, as `thresholds:` holds the gate's
        description="Drift rules in the thresholds' syntax, on errors/rate, latency/p50|p95|"
        "p99, <scorer>/mean, prompt_length/ks and words/psi, e.g. {safety/mean: {max-drop: "
        '0.05}, prompt_length/ks: "<= 0.1"}. Empty: the defaults in docs/monitor.md.',
    )
    monitor_inputs: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Prompts of the window read for input drift (no model or judge call); the "
        "judged sample (sample-size) is taken from them.",
    )
    monitor_min_inputs: int = Field(
        default=50,
        ge=2,
        description="Prompts each side needs before input drift is tested; fewer is "
        '"not enough traffic".',
    )
    monitor_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="The prompt-length test's significance level: drift needs p below it.",
    )
    on_drift: tuple[Literal["annotate", "issue", "retrain", "rollback"], ...] = Field(
        default=(),
        description="What a drift sets off, each opt-in: annotate (an ::error annotation), "
        "issue (one GitHub issue per endpoint, updated), retrain (retrain-job-id and/or "
        "retrain-event, once per retrain-cooldown), rollback (to the previous champion, on "
        "quality or health drift).",
    )
    retrain_job_id: int | None = Field(
        default=None,
        ge=1,
        description="retrain: the Databricks job to run (jobs run-now), with the drift as its "
        "job parameters.",
    )
    retrain_event: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="retrain: the repository_dispatch event type a training workflow listens "
        "to (needs github-token with contents: write).",
    )
    retrain_cooldown: float = Field(
        default=7 * 86400.0,
        gt=0,
        le=365 * 86400,
        description='retrain: at most one retraining per this long, e.g. "7d" (kept in an '
        "endpoint tag).",
    )
    judged_table: str | None = Field(
        default=None,
        pattern=r"^[^.\s`]+\.[^.\s`]+\.[^.\s`]+$",
        description="catalog.schema.table the judged samples of analyze and monitor are "
        "written to through the warehouse, for the dashboard.",
    )
    judged_data: str | None = Field(
        default=None,
        description="A local folder the judged samples are written to as Parquet instead "
        "(with inference-data).",
    )
    dashboard_name: str | None = Field(
        default=None,
        min_length=1,
        description="The AI/BI dashboard's name (found and updated by it). Default: "
        "genai-gate <endpoint>.",
    )
    dashboard_path: str = Field(
        default="/Shared/genai-gate",
        pattern=r"^/",
        description="The workspace folder of the dashboard and its alerts.",
    )

    @field_validator("monitor_window", "retrain_cooldown", mode="before")
    @classmethod
    def _monitor_duration(cls, v: object) -> object:
        return _seconds(v, 86400, "24h")

    @field_validator("on_drift")
    @classmethod
    def _once_each(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v))

    @field_validator("monitor_reference")
    @classmethod
    def _reference_form(cls, v: str | None) -> str | None:
        if v is None:
            return v
        text = v.strip()
        if text.lower() == "none" or (text.startswith("run:") and text[4:].strip()):
            return text
        if text.startswith("window:"):
            start, sep, end = text[7:].partition("..")
            if sep and parse_instant(start) and parse_instant(end):
                return text
        raise ValueError(f"{v!r} is not a reference; write one of:\n{REFERENCE_FORMS}")

    @model_validator(mode="after")
    def _retrain_has_a_target(self) -> MonitorSettings:
        if "retrain" in self.on_drift and not (self.retrain_job_id or self.retrain_event):
            raise ValueError(
                "on-drift: retrain needs retrain-job-id (a Databricks job) or retrain-event "
                "(a repository_dispatch event type), or both"
            )
        return self


def parse_instant(text: str) -> datetime | None:
    """A UTC date (2026-11-01) or date and time (2026-11-01T12:00) of a reference window."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class DataSettings(_Model):
    """The eval set and how its columns map to inputs and expectations."""

    data: str | None = Field(
        default=None,
        description="Eval set: CSV, JSONL, JSON or Parquet, relative to this file, or a Unity "
        "Catalog table, uc:catalog.schema.table[@version] (read through warehouse-id). "
        "Required by eval.",
    )
    columns: Columns = Field(default_factory=Columns)
    limit: int | None = Field(default=None, ge=1, description="Evaluate only the first N rows.")

    @field_validator("data")
    @classmethod
    def _data_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must name a file")
        if v is not None and tables.is_table(v):
            tables.parse(v)  # ValueError says what the form is
        return v


class ModelSettings(_Model):
    """What answers each input, and how it is called."""

    model: str | None = Field(
        default=None,
        description="What answers each input: python:module:function, models:/name/3, "
        "models:/name@alias or runs:/<run-id>/<path>. Optional when the data has outputs.",
    )
    call_style: Literal["auto", "kwargs", "dataframe"] = Field(
        default="auto",
        description="How a python: model is called: per row with the inputs as keyword "
        "arguments, or with a one-row pandas DataFrame (the seed's batch style). "
        "auto decides from the function's signature.",
    )
    batch_size: int = Field(
        default=1,
        ge=0,
        description="Rows per call for DataFrame-style models; 0 sends all rows in one call. "
        "Above 1, each row's latency is its batch's time divided by the batch's rows.",
    )
    base_url: str | None = Field(
        default=None,
        description="openai:/ models: the server's base URL (.../v1). Default: "
        "OPENAI_BASE_URL, OPENAI_API_BASE, else OpenAI's.",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="openai:/ models: the environment variable that holds the API key.",
    )
    prompt: str | None = Field(
        default=None,
        description="openai:/ models: the user message, with {input_key} placeholders. "
        "Default: the row's only input, or its inputs as JSON.",
    )
    system_prompt: str | None = Field(
        default=None, description="openai:/ models: a system message before each prompt."
    )
    model_params: dict[str, Any] = Field(
        default_factory=dict,
        description="openai:/ models: extra request fields, e.g. {temperature: 0}.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url_scheme(cls, v: str | None) -> str | None:
        return _http_url(v)

    @field_validator("prompt")
    @classmethod
    def _prompt_template(cls, v: str | None) -> str | None:
        if v is not None:
            problem = prompt_template_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("model_params")
    @classmethod
    def _params_keep_the_request(cls, v: dict[str, Any]) -> dict[str, Any]:
        # extra fields are merged over the request: these would replace what is evaluated
        why = {
            "messages": "would replace every row's prompt with the same messages",
            "model": "would replace the model named in model:",
            "stream": "asks for a stream of chunks, which genai-gate does not read",
        }
        bad = [f"{k} {why[k]}" for k in v if k in why and (k != "stream" or v[k])]
        if bad:
            raise ValueError("; ".join(bad) + ". Remove it from model-params")
        return v

    @field_validator("api_key_env", mode="before")
    @classmethod
    def _api_key_env_is_a_name(cls, v: object) -> object:
        return _variable_name(v)


def _http_url(v: str | None) -> str | None:
    if v is not None and not re.match(r"^https?://[^\s/]+", v.strip()):
        raise ValueError(
            f"{v!r} is not an http(s) URL; write the scheme too, e.g. http://localhost:8000/v1"
        )
    return v


def prompt_template_problem(template: str) -> str | None:
    """What is wrong with a `{name}` prompt template's syntax, or None.

    string.Formatter is what renders it (str.format_map), so it parses it here too.
    """
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"is not a valid template ({exc}); write a literal brace twice: {{{{ or }}}}"
    positional = [f for f in fields if f == "" or f.split(".")[0].split("[")[0].isdigit()]
    if positional:
        return (
            f"uses the positional placeholder {{{positional[0]}}}; name an input key instead, "
            "e.g. {question}"
        )
    return None


def template_fields(template: str) -> list[str]:
    """The input keys a valid prompt template names, in order."""
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return list(dict.fromkeys(re.split(r"[.\[]", f, maxsplit=1)[0] for f in names))


class ScoringSettings(_Model):
    """The scorers, the thresholds and the comparison with a baseline: the gate itself."""

    scorers: tuple[str, ...] = Field(
        default=(),
        description="Scorer names (exact_match, token_f1, rouge_l, latency, response_length, "
        "semantic_similarity with the semantic extra; LLM judges: correctness, "
        "relevance_to_query, safety, guidelines, retrieval_groundedness) or "
        "python:module:function. Empty: the scorers the thresholds name.",
    )
    thresholds: dict[str, str | float | ThresholdRule] = Field(
        default_factory=dict,
        description='Metric (scorer/aggregation) -> ">= 0.8" | "<= 800" | {at-least: ..} | '
        "{at-most: ..}, optionally with a rule against the baseline: max-drop, max-drop-pct "
        "or must-improve (and better: higher|lower without at-least/at-most).",
    )
    baseline: str | None = Field(
        default=None,
        description="What the candidate is compared with, row by row: endpoints:/<name> (the "
        "endpoint's champion served entity), endpoints:/<name>/<served-entity>, "
        "models:/name@alias, models:/name/N, run:<mlflow-run-id> (an earlier genai-gate run's "
        "rows, no model calls), any other model: form, or none. Default: endpoints:/<endpoint> "
        "when deploy is configured (Databricks only).",
    )
    inconclusive: Literal["estimate", "pass", "fail"] = Field(
        default="estimate",
        description="What a rule against the baseline decides when the 95% interval is "
        "inconclusive: estimate (pass when the point estimate is within max-drop), pass or fail.",
    )
    max_errors: int | str = Field(
        default=0,
        description='Rows allowed to fail (model or scorer error): a count, or a share like "5%".',
    )
    worst_rows: int = Field(default=5, ge=0, le=100, description="Rows shown in the report.")

    @field_validator("baseline")
    @classmethod
    def _baseline_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must name a model, an endpoint or run:<mlflow-run-id> (or none)")
        return v.strip() if v is not None else v

    @field_validator("max_errors", mode="before")
    @classmethod
    def _max_errors_not_bool(cls, v: object) -> object:
        if isinstance(v, bool):  # YAML's `yes` would otherwise pass as 1
            raise ValueError(f'{v!r} is neither a count (3) nor a share ("5%")')
        return v

    @field_validator("max_errors")
    @classmethod
    def _max_errors_form(cls, v: int | str) -> int | str:
        if isinstance(v, int):
            if v < 0:
                raise ValueError("must be 0 or more")
            return v
        text = v.strip()
        if re.fullmatch(r"\d+", text):
            return int(text)
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if not m or float(m.group(1)) > 100:
            raise ValueError(f'{v!r} is neither a count (3) nor a share ("5%")')
        return f"{m.group(1)}%"

    def allowed_errors(self, rows: int) -> int:
        if isinstance(self.max_errors, int):
            return self.max_errors
        return math.floor(rows * float(self.max_errors.rstrip("%")) / 100.0)


# MLflow's make_judge fills {{ inputs }}, {{ outputs }}, {{ expectations }} and {{ trace }}
# per row ({{ conversation }} is for sessions, which genai-gate does not judge); the
# pattern is MLflow's PROMPT_TEMPLATE_VARIABLE_PATTERN, written out to keep mlflow out of
# the config's import
_JUDGE_VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
JUDGE_VARIABLES = ("inputs", "outputs", "expectations", "trace")


def _judge_template(text: str) -> str | None:
    import difflib

    used = list(dict.fromkeys(_JUDGE_VARIABLE.findall(text)))
    unknown = [u for u in used if u not in JUDGE_VARIABLES]
    if unknown:
        hints = []
        for u in unknown:
            close = difflib.get_close_matches(u, JUDGE_VARIABLES, n=1, cutoff=0.5)
            hint = {"answer": "outputs", "question": "inputs", "expected": "expectations"}.get(
                u, close[0] if close else None
            )
            hints.append(f"{{{{ {u} }}}}" + (f" (did you mean {{{{ {hint} }}}}?)" if hint else ""))
        return f"uses {', '.join(hints)}; a judge's instructions can use " + ", ".join(
            f"{{{{ {v} }}}}" for v in JUDGE_VARIABLES
        )
    if not used:
        return "names no {{ inputs }} or {{ outputs }}, so the judge would see nothing to grade"
    return None


class JudgeSettings(_Model):
    """The LLM judges: which model grades, with what instructions, how many times."""

    judge: str | None = Field(
        default=None,
        description="The LLM that grades answers for the judge scorers (correctness, "
        "relevance_to_query, safety, guidelines, retrieval_groundedness): openai:/<model> "
        "or endpoints:/<name>.",
    )
    judge_base_url: str | None = Field(
        default=None,
        description="The judge's server (.../v1). Default: base-url, OPENAI_BASE_URL, "
        "OPENAI_API_BASE, else OpenAI's.",
    )
    judge_api_key_env: str = Field(
        default="OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable that holds the judge's API key.",
    )
    guidelines: tuple[str, ...] = Field(
        default=(),
        description="Rules for the guidelines judge, e.g. [Answer in English, Cite no URLs].",
    )
    custom_judges: dict[str, str] = Field(
        default_factory=dict,
        description="LLM judges of your own: name -> instructions that use {{ inputs }}, "
        "{{ outputs }} and {{ expectations }} (MLflow's make_judge). Each one's verdict is "
        "pass/fail; its metric is <name>/mean.",
    )
    repeat: int = Field(
        default=1, ge=1, le=9, description="Ask each LLM judge this many times per row."
    )
    min_pass: int | None = Field(
        default=None,
        ge=1,
        description="With repeat: verdicts that must say yes for the row to pass. "
        "Default: a majority.",
    )

    @field_validator("custom_judges")
    @classmethod
    def _judge_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [name for name in v if not re.fullmatch(r"[a-z][a-z0-9_]*", name)]
        if bad:
            raise ValueError(f"judge names are lower_snake_case metric names; not {bad}")
        empty = [name for name, text in v.items() if not text.strip()]
        if empty:
            raise ValueError(f"{empty} have no instructions")
        problems = [f"{name}: {p}" for name, text in v.items() if (p := _judge_template(text))]
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("judge_base_url")
    @classmethod
    def _judge_url_scheme(cls, v: str | None) -> str | None:
        return _http_url(v)

    @model_validator(mode="after")
    def _min_pass_fits(self) -> JudgeSettings:
        if self.min_pass is not None and self.min_pass > self.repeat:
            raise ValueError(f"min-pass ({self.min_pass}) cannot exceed repeat ({self.repeat})")
        return self

    @field_validator("judge_api_key_env", mode="before")
    @classmethod
    def _judge_api_key_env_is_a_name(cls, v: object) -> object:
        return _variable_name(v)


class RemoteSettings(_Model):
    """Calls to remote models and judges: concurrency, retries, limits, the response cache."""

    concurrency: int = Field(default=8, ge=1, le=256, description="Rows in flight at once.")
    retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a remote call on 429, 5xx or timeouts."
    )
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Cap on remote calls per minute, across all workers."
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        le=3600,  # one call; longer is a typo (ms for s) or an attempt to switch deadlines off
        allow_inf_nan=False,
        description="Seconds one model call (and a python: model's import) may take; at most 3600. "
        "Also the Databricks client's retry budget for one call.",
    )
    max_duration: float = Field(
        default=7200.0,
        gt=0,
        le=5 * 3600,
        allow_inf_nan=False,
        description='The whole run\'s time limit: seconds, or "90m", "2h" (at most 5h, under '
        "GitHub's 6-hour job limit). Past it the rows not yet answered are errors, the "
        "partial results are written, and the run fails with exit 4.",
    )
    cache: bool = Field(
        default=True, description="Reuse remote answers from earlier runs (see cache-dir)."
    )
    cache_dir: str = Field(
        default=".genai-gate-cache",
        description="Response cache folder, relative to the config file; keep it between "
        "runs with actions/cache.",
    )

    @field_validator("max_duration", mode="before")
    @classmethod
    def _max_duration(cls, v: object) -> object:
        return _seconds(v, 7200, "2h")


class TrackingSettings(_Model):
    """Where the run is logged in MLflow."""

    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Default: MLFLOW_TRACKING_URI, else a sqlite store "
        "in the output folder.",
    )
    experiment: str = Field(default="genai-gate", description="MLflow experiment name.")
    run_name: str | None = Field(default=None, description="MLflow run name.")

    @field_validator("experiment")
    @classmethod
    def _experiment_named(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('must name an experiment, e.g. "genai-gate"')
        return v

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_scheme(cls, v: str | None) -> str | None:
        if v is None:
            return v
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", v.strip())
        # a bare path (no scheme) is a local store; a Windows drive letter is one letter
        if m and len(m.group(1)) > 1:
            scheme = m.group(1).lower().split("+", 1)[0]
            if scheme not in TRACKING_SCHEMES:
                raise ValueError(
                    f"{v!r}: MLflow has no {scheme!r} store; use one of "
                    + ", ".join(f"{s}:" for s in TRACKING_SCHEMES)
                    + " or a folder"
                )
        return v


# the stores MLflow's tracking client opens; anything else fails only when the run is logged
TRACKING_SCHEMES = (
    "http",
    "https",
    "file",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)


class ScaleSettings(_Model):
    """Where the rows are evaluated: threads here, a Spark session, or a Databricks job
    (issue #17, docs/scale.md)."""

    runner: Literal["local", "spark"] = Field(
        default="local",
        description="local: threads in this process. spark: the rows are spread over a Spark "
        "session's partitions (mapInPandas); concurrency and requests-per-minute then hold "
        "for the whole cluster. Needs pyspark: the action's `extras: spark`, or the spark extra.",
    )
    spark_master: str | None = Field(
        default=None,
        min_length=1,
        description="runner: spark outside Databricks: the Spark master, e.g. local[2]. "
        "Default: the running session (a Databricks job's own), else local[*].",
    )
    run_on: Literal["runner", "databricks"] = Field(
        default="runner",
        description="runner: evaluate where genai-gate runs. databricks: upload the config, "
        "the eval code and genai-gate to job-volume, run `genai-gate eval --runner spark` "
        "as a one-time Databricks job next to the data, fetch its results and gate here.",
    )
    job_volume: str | None = Field(
        default=None,
        pattern=r"^/Volumes/[^/\s]+/[^/\s]+/[^/\s]+(/[^\s]*)?$",
        description="run-on: databricks: the Unity Catalog volume folder the job's files go "
        "to, /Volumes/<catalog>/<schema>/<volume>[/<folder>]. Each run uses its own subfolder.",
    )
    job_cluster_id: str | None = Field(
        default=None,
        min_length=1,
        description="run-on: databricks: run on this existing cluster. Default: serverless "
        "jobs compute.",
    )


class Config(
    # pydantic orders fields from the last base to the first: this reads data first
    KServeSettings,
    ScaleSettings,
    MonitorSettings,
    CanarySettings,
    DeploySettings,
    TrackingSettings,
    RemoteSettings,
    JudgeSettings,
    ScoringSettings,
    ModelSettings,
    DataSettings,
):
    """genai-gate.yml. Keys are kebab-case; each one is also `GENAI_GATE_<KEY>` and a flag."""

"""One validated, frozen config from three sources: the YAML file, `GENAI_GATE_*`, and flags.

Precedence is flags > environment > file; mappings (`thresholds`, `columns`) merge key by
key so that one `--threshold` can override one metric of the file. The merge is ours and
not pydantic-settings' because every problem must be reported under the name the user
typed (`genai-gate.yml: max-errors`, `GENAI_GATE_MAX_ERRORS` or `--max-errors`), and
pydantic-settings loses which source a value came from.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from genai_gate.errors import ConfigError
from genai_gate.thresholds import (
    METRIC_ALIASES,
    THRESHOLD_HELP,
    Better,
    RelativeThreshold,
    Threshold,
    parse_expression,
    parse_lines,
)

ENV_PREFIX = "GENAI_GATE_"
DEFAULT_CONFIG = "genai-gate.yml"

# GENAI_GATE_* names that belong to the CLI or the action, not to the config model.
RESERVED_ENV = frozenset(
    {"CONFIG", "OUT", "COMMAND", "GITHUB_TOKEN", "COMMENT", "WORKING_DIRECTORY"}
)


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=_kebab, populate_by_name=True
    )


class ThresholdRule(_Model):
    """The mapping form of a threshold: at most one of `at-least` / `at-most`, and at most
    one rule against the baseline (`max-drop`, `max-drop-pct`, `must-improve`)."""

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class DeploySettings(_Model):
    """The keys `plan` and `deploy` read (issue #6). A mixin, so that the file and the
    action's inputs stay flat (`endpoint:`, `with: endpoint:`) while the code stays grouped."""

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
        description="The Model Serving endpoint to deploy to (created if missing).",
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
        if isinstance(v, str):
            m = _DURATION.match(v)
            if not m:
                raise ValueError(f'{v!r} is not a duration; write seconds (600) or "10m"')
            return float(m.group(1)) * _UNITS[m.group(2)]
        return v


class AnalysisSettings(_Model):
    """The keys `analyze`, `promote` and `rollback` read (issue #7)."""

    warehouse_id: str | None = Field(
        default=None,
        description="Databricks SQL warehouse that reads the inference table "
        "(Statement Execution API).",
    )
    inference_data: str | None = Field(
        default=None,
        description="Read the inference table from local files instead: a Parquet or JSON-lines "
        "file, a folder, a glob, or a Delta table folder.",
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


class Config(DeploySettings, AnalysisSettings):
    """genai-gate.yml. Keys are kebab-case; each one is also `GENAI_GATE_<KEY>` and a flag."""

    data: str | None = Field(
        default=None,
        description="Eval set: CSV, JSONL, JSON or Parquet, relative to this file. "
        "Required by eval.",
    )
    model: str | None = Field(
        default=None,
        description="What answers each input: python:module:function, models:/name/3, "
        "models:/name@alias or runs:/<run-id>/<path>. Optional when the data has outputs.",
    )
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
        "when deploy is configured.",
    )
    inconclusive: Literal["estimate", "pass", "fail"] = Field(
        default="estimate",
        description="What a rule against the baseline decides when the 95% interval is "
        "inconclusive: estimate (pass when the point estimate is within max-drop), pass or fail.",
    )
    columns: Columns = Field(default_factory=Columns)
    max_errors: int | str = Field(
        default=0,
        description='Rows allowed to fail (model or scorer error): a count, or a share like "5%".',
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
    concurrency: int = Field(default=8, ge=1, le=256, description="Rows in flight at once.")
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
    retries: int = Field(
        default=5, ge=0, le=20, description="Retries of a remote call on 429, 5xx or timeouts."
    )
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Cap on remote calls per minute, across all workers."
    )
    cache: bool = Field(
        default=True, description="Reuse remote answers from earlier runs (see cache-dir)."
    )
    cache_dir: str = Field(
        default=".genai-gate-cache",
        description="Response cache folder, relative to the config file; keep it between "
        "runs with actions/cache.",
    )
    timeout: float = Field(default=120.0, gt=0, description="Seconds one model call may take.")
    limit: int | None = Field(default=None, ge=1, description="Evaluate only the first N rows.")
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI. Default: MLFLOW_TRACKING_URI, else a sqlite store "
        "in the output folder.",
    )
    experiment: str = Field(default="genai-gate", description="MLflow experiment name.")
    run_name: str | None = Field(default=None, description="MLflow run name.")
    worst_rows: int = Field(default=5, ge=0, le=100, description="Rows shown in the report.")

    @field_validator("data")
    @classmethod
    def _data_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must name a file")
        return v

    @field_validator("baseline")
    @classmethod
    def _baseline_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must name a model, an endpoint or run:<mlflow-run-id> (or none)")
        return v.strip() if v is not None else v

    @field_validator("custom_judges")
    @classmethod
    def _judge_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [name for name in v if not re.fullmatch(r"[a-z][a-z0-9_]*", name)]
        if bad:
            raise ValueError(f"judge names are lower_snake_case metric names; not {bad}")
        empty = [name for name, text in v.items() if not text.strip()]
        if empty:
            raise ValueError(f"{empty} have no instructions")
        return v

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

    @model_validator(mode="after")
    def _min_pass_fits(self) -> Config:
        if self.min_pass is not None and self.min_pass > self.repeat:
            raise ValueError(f"min-pass ({self.min_pass}) cannot exceed repeat ({self.repeat})")
        return self

    def allowed_errors(self, rows: int) -> int:
        if isinstance(self.max_errors, int):
            return self.max_errors
        return math.floor(rows * float(self.max_errors.rstrip("%")) / 100.0)


@dataclass(frozen=True)
class LoadedConfig:
    """The validated config plus what the run needs to know about where it came from."""

    config: Config
    thresholds: tuple[Threshold, ...]
    base_dir: Path
    source: str
    notices: tuple[str, ...] = ()
    # key -> the name the user typed it under ("genai-gate.yml: endpoint", "--set endpoint")
    origins: Mapping[str, str] = field(default_factory=dict)
    # the rules against the baseline (issue #5), next to the absolute `thresholds`
    relative: tuple[RelativeThreshold, ...] = ()

    def label(self, key: str) -> str:
        return self.origins.get(key, key)

    @property
    def data(self) -> str:
        """The eval set, which only `eval` requires (load_config checks it there)."""
        if self.config.data is None:
            raise _no_data(self.source)
        return self.config.data

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


# ---------------------------------------------------------------- loading


def _fields_by_alias() -> dict[str, str]:
    return {(f.alias or name): name for name, f in Config.model_fields.items()}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}",
            fix="Check the indentation and quote values that start with > or <:\n"
            '  thresholds:\n    exact_match/mean: ">= 0.6"',
        ) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path} must be a YAML mapping of settings, not a {type(doc).__name__}",
            fix="data: eval/qa.jsonl\nmodel: python:app.model:predict\nscorers: [exact_match]",
        )
    return {str(k): v for k, v in doc.items()}


def _split_list(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        loaded = yaml.safe_load(stripped)
        if isinstance(loaded, list):
            return [str(x) for x in loaded]
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def coerce_text(key: str, text: str) -> Any:
    """Turn an environment or flag string into the shape the field wants."""
    if key in ("scorers", "steps"):
        return _split_list(text)
    if key == "thresholds":
        stripped = text.strip()
        if stripped.startswith("{"):
            return yaml.safe_load(stripped)
        return parse_lines(text)
    if key == "columns":
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ValueError("expected a mapping such as {inputs: question, expectations: answer}")
        return loaded
    return text


def env_settings(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """GENAI_GATE_<KEY> values, with empty ones dropped (the runner sets unset inputs to "")."""
    aliases = _fields_by_alias()
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[str] = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or raw.strip() == "":
            continue
        suffix = name[len(ENV_PREFIX) :]
        if suffix in RESERVED_ENV:
            continue
        key = suffix.lower().replace("_", "-")
        if key not in aliases:
            problems.append(f"{name}: not a genai-gate setting{_did_you_mean(key, aliases)}")
            continue
        try:
            values[key] = coerce_text(key, raw)
        except (ValueError, yaml.YAMLError) as exc:
            problems.append(f"{name}: {exc}")
        origins[key] = name
    if problems:
        raise ConfigError("the environment has settings that cannot be used", problems=problems)
    return values, origins


def _did_you_mean(key: str, known: Mapping[str, str] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _merge(
    layers: list[tuple[dict[str, Any], dict[str, str]]],
) -> tuple[dict[str, Any], dict[str, str]]:
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for values, where in layers:
        for key, value in values.items():
            if (
                key in ("thresholds", "columns")
                and isinstance(merged.get(key), dict)
                and isinstance(value, dict)
            ):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
            origins[key] = where.get(key, key)
            if isinstance(value, dict):
                # each threshold keeps the name of the source that gave it
                origins.update({f"{key}.{sub}": origins[key] for sub in value})
    return merged, origins


def _label(origins: Mapping[str, str], loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "config"
    head = str(loc[0])
    rest = ".".join(str(x) for x in loc[1:] if not (isinstance(x, str) and x in ("str", "int")))
    base = origins.get(head, head)
    if rest and not base.startswith(("GENAI_GATE_", "--")):
        return f"{base}.{rest}"
    return f"{base} ({rest})" if rest else base


def _explain(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind == "missing":
        return "is required"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _validation_problems(
    exc: ValidationError, origins: Mapping[str, str], known: list[str]
) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        if (
            loc[:1] == ("thresholds",)
            and err["type"] in ("string_type", "float_type", "float_parsing")
            and isinstance(err.get("input"), dict)
        ):
            continue  # a mapping threshold: only the ThresholdRule branch's errors say why
        # A union (str | ThresholdRule) reports once per branch; keep the first per place.
        place = _label(origins, tuple(x for x in loc if x not in ("str", "float", "ThresholdRule")))
        if place in seen:
            continue
        seen.add(place)
        text = f"{place}: {_explain(err)}"
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            text += _did_you_mean(str(loc[0]), known)
        problems.append(text)
    return problems


def _rule(metric: str, spec: ThresholdRule) -> tuple[Threshold | None, RelativeThreshold | None]:
    """The mapping form: an absolute limit, a rule against the baseline, or both."""
    if spec.at_least is not None and spec.at_most is not None:
        raise ValueError("give exactly one of at-least or at-most, not both")
    absolute = None
    if spec.at_least is not None:
        absolute = Threshold(metric, ">=", spec.at_least)
    elif spec.at_most is not None:
        absolute = Threshold(metric, "<=", spec.at_most)
    if absolute is not None and not math.isfinite(absolute.value):
        raise ValueError("the limit must be a finite number")
    rules = [
        name
        for name, given in (
            ("max-drop", spec.max_drop is not None),
            ("max-drop-pct", spec.max_drop_pct is not None),
            ("must-improve", bool(spec.must_improve)),
        )
        if given
    ]
    if len(rules) > 1:
        raise ValueError(f"give one rule against the baseline, not {' and '.join(rules)}")
    if not rules:
        if absolute is None:
            raise ValueError(
                "give exactly one of at-least or at-most, or a rule against the baseline: "
                "max-drop, max-drop-pct or must-improve"
            )
        if spec.better is not None:
            raise ValueError("better: only applies to max-drop, max-drop-pct or must-improve")
        return absolute, None
    for name, value in (("max-drop", spec.max_drop), ("max-drop-pct", spec.max_drop_pct)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a number of 0 or more, not {value:g}")
    implied: Better | None = None
    if absolute is not None:
        implied = "higher" if absolute.op == ">=" else "lower"
    if spec.better is not None and implied is not None and spec.better != implied:
        limit = "at-least" if implied == "higher" else "at-most"
        raise ValueError(
            f"better: {spec.better} contradicts {limit}, which says {implied} is better"
        )
    better = spec.better or implied
    if better is None:
        raise ValueError(
            f"{rules[0]} needs a direction, so that a drop means worse: add better: higher "
            "(quality scores) or better: lower (latency, cost), or an at-least/at-most limit"
        )
    relative = RelativeThreshold(
        metric,
        better,
        max_drop=spec.max_drop,
        max_drop_pct=spec.max_drop_pct,
        must_improve=bool(spec.must_improve),
    )
    return absolute, relative


def _parse_thresholds(
    raw: Mapping[str, str | float | ThresholdRule], origins: Mapping[str, str]
) -> tuple[tuple[Threshold, ...], tuple[RelativeThreshold, ...], list[str], list[str]]:
    out: dict[str, Threshold] = {}
    relative: dict[str, RelativeThreshold] = {}
    seen: set[str] = set()
    problems: list[str] = []
    notices: list[str] = []
    for given, spec in raw.items():
        where = origins.get(f"thresholds.{given}", origins.get("thresholds", "thresholds"))
        metric = given.strip()
        if metric in METRIC_ALIASES:
            new = METRIC_ALIASES[metric]
            notices.append(
                f"threshold {metric!r} is the seed pipeline's name, which MLflow never writes; "
                f"using {new!r}. Rename it ({where}) to silence this notice."
            )
            metric = new
        label = f"{where}.{given}" if not where.startswith(("--", "GENAI_GATE_")) else where
        if "/" not in metric:
            problems.append(
                f"{label}: {given!r} is not an MLflow metric name; metrics are "
                f"scorer/aggregation, for example {given}/mean"
            )
            continue
        against: RelativeThreshold | None = None
        try:
            if isinstance(spec, int | float):
                raise ValueError(
                    f'{spec:g} has no direction; write ">= {spec:g}" (higher is better) or '
                    f'"<= {spec:g}" (lower is better)'
                )
            if isinstance(spec, ThresholdRule):
                parsed, against = _rule(metric, spec)
            else:
                op2, value2 = parse_expression(spec)
                parsed = Threshold(metric, op2, value2)
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
            continue
        if metric in seen:
            problems.append(f"{label}: {metric!r} is given twice (once through an alias)")
            continue
        seen.add(metric)
        if parsed is not None:
            out[metric] = parsed
        if against is not None:
            relative[metric] = against
    return tuple(out.values()), tuple(relative.values()), problems, notices


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_origins: Mapping[str, str] | None = None,
    require_data: bool = True,
) -> LoadedConfig:
    """Read, merge and validate. Raises ConfigError listing every problem at once."""
    environ = os.environ if environ is None else environ
    explicit = path is not None
    cfg_path = Path(path if path is not None else DEFAULT_CONFIG)
    file_values: dict[str, Any] = {}
    if cfg_path.is_file():
        file_values = _read_file(cfg_path)
        base_dir = cfg_path.resolve().parent
        source = str(cfg_path)
    elif explicit:
        raise ConfigError(
            f"the config file {cfg_path} does not exist",
            fix="Create it, or point at the right one:\n"
            f"  genai-gate eval -c path/to/{DEFAULT_CONFIG}",
        )
    else:
        base_dir = Path.cwd()
        source = "(no config file)"
    file_origins = {k: f"{cfg_path.name}: {k}" for k in file_values}

    env_values, env_origins = env_settings(environ)
    flag_values = dict(overrides or {})
    flag_origins = {k: (override_origins or {}).get(k, f"--{k}") for k in flag_values}
    merged, origins = _merge(
        [(file_values, file_origins), (env_values, env_origins), (flag_values, flag_origins)]
    )
    known = list(_fields_by_alias())
    if require_data and "data" not in merged:
        raise _no_data(source)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        problems = _validation_problems(exc, origins, known)
        raise ConfigError(
            f"{source} has {len(problems)} problem(s)",
            problems=problems,
            fix=f"Run `genai-gate schema` for every key and its type.\n{THRESHOLD_HELP}",
        ) from None
    thresholds, relative, problems, notices = _parse_thresholds(config.thresholds, origins)
    if problems:
        raise ConfigError(
            f"{source} has {len(problems)} threshold problem(s)",
            problems=problems,
            fix=THRESHOLD_HELP,
        )
    return LoadedConfig(
        config=config,
        thresholds=thresholds,
        base_dir=base_dir,
        source=source,
        notices=tuple(notices),
        origins=origins,
        relative=relative,
    )


def _no_data(source: str) -> ConfigError:
    return ConfigError(
        f"no eval data is configured ({source})",
        fix="Name the eval set in genai-gate.yml, or pass --data:\n"
        "  data: eval/qa.jsonl\n  model: python:app.model:predict\n"
        "  scorers: [exact_match, token_f1, latency]\n"
        '  thresholds:\n    exact_match/mean: ">= 0.6"',
    )


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "genai-gate.yml"
    return schema

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from genai_gate import strict_yaml, tables
from genai_gate.config.model import (
    DATABRICKS_ONLY,
    KSERVE_ONLY,
    Config,
    ScoringSettings,
    ThresholdRule,
)
from genai_gate.errors import ConfigError
from genai_gate.tables import TableRef
from genai_gate.thresholds import (
    METRIC_ALIASES,
    THRESHOLD_HELP,
    THRESHOLD_PATTERN,
    Better,
    RelativeThreshold,
    Threshold,
    parse_expression,
    parse_lines,
)

ENV_PREFIX = "GENAI_GATE_"
# the keys in the thresholds' syntax: merged metric by metric, parsed by _parse_thresholds
RULE_KEYS = ("thresholds", "monitor")
DEFAULT_CONFIG = "genai-gate.yml"

# GENAI_GATE_* names that belong to the CLI or the action, not to the config model.
RESERVED_ENV = frozenset(
    {"CONFIG", "OUT", "COMMAND", "GITHUB_TOKEN", "COMMENT", "WORKING_DIRECTORY"}
)


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
    # `monitor` (issue #16), parsed the same way; empty: the monitor's defaults
    monitor_thresholds: tuple[Threshold, ...] = ()
    monitor_relative: tuple[RelativeThreshold, ...] = ()

    def label(self, key: str) -> str:
        return self.origins.get(key, key)

    @property
    def data(self) -> str:
        """The eval set, which only `eval` requires (load_config checks it there)."""
        if self.config.data is None:
            raise _no_data(self.source)
        return self.config.data

    @property
    def data_table(self) -> TableRef | None:
        """The Unity Catalog table `data:` names, or None for a file."""
        return tables.parse(self.data) if tables.is_table(self.data) else None

    @property
    def data_path(self) -> Path:
        """`data:` in the file is relative to the file's folder; `--data` on the command line
        to the current directory, as every CLI's path arguments are."""
        if self.label("data").startswith("--"):
            return Path(self.data).expanduser().absolute()
        return self.resolve(self.data)

    def resolve(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


# ---------------------------------------------------------------- loading


def _fields_by_alias() -> dict[str, str]:
    return {(f.alias or name): name for name, f in Config.model_fields.items()}


_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _decode_config(path: Path, raw: bytes) -> str:
    """UTF-8 (with or without Notepad's byte-order mark), or an error naming the line."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise ConfigError(
                f"{path} is {name} text; genai-gate reads YAML as UTF-8",
                fix=f"Save it as UTF-8, for example:\n  iconv -f {name} -t UTF-8 {path.name} "
                f"> {path.stem}.utf8{path.suffix} && mv {path.stem}.utf8{path.suffix} {path.name}",
            )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
            fix="Save the file as UTF-8.",
        ) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    text = _decode_config(path, raw)
    try:
        doc = strict_yaml.load(text)
    except strict_yaml.YamlProblem as exc:
        raise ConfigError(
            f"{path} {exc.message}",
            problems=[f"{path.name}, {p}" for p in exc.problems],
            fix="Keep one of each key; a later one would silently replace the first."
            if exc.problems
            else "Write the values out instead of nesting anchors (&name) and aliases (*name).",
        ) from None
    except yaml.YAMLError as exc:
        problem = strict_yaml.describe_syntax_error(exc)
        if "tab" in problem:
            fix = "Indent with spaces; replace every tab, for example:\n  sed -i 's/\\t/  /g' "
            fix += path.name
        elif isinstance(exc, yaml.constructor.ConstructorError):
            fix = "Correct the value at that line, or quote it to keep it as text."
        else:
            fix = (
                "Check the indentation and quote values that start with > or <:\n"
                '  thresholds:\n    exact_match/mean: ">= 0.6"'
            )
        raise ConfigError(f"{path} is not valid YAML: {problem}", fix=fix) from None
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
        loaded = strict_yaml.load(stripped)
        if isinstance(loaded, list):
            return [str(x) for x in loaded]
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def coerce_text(key: str, text: str) -> Any:
    """Turn an environment or flag string into the shape the field wants."""
    if key in ("scorers", "steps", "on-drift"):
        return _split_list(text)
    if key in RULE_KEYS:
        stripped = text.strip()
        if stripped.startswith("{"):
            return strict_yaml.load(stripped)
        return parse_lines(text)
    if key == "guidelines":
        # guidelines are sentences with commas in them: one per line, or a YAML list
        if text.strip().startswith("["):
            return _split_list(text)
        return [ln.strip().removeprefix("- ").strip() for ln in text.splitlines() if ln.strip()]
    if key in _MAPPING_EXAMPLES:
        loaded = strict_yaml.load(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"expected a mapping such as {_MAPPING_EXAMPLES[key]}")
        return loaded
    return text


_MAPPING_EXAMPLES = {
    "columns": "{inputs: question, expectations: answer}",
    "model-params": "{temperature: 0}",
    "custom-judges": "{tone: 'Is the answer polite?'}",
    "predictor": "{model: {storageUri: 's3://models/bot/v4'}}",
}


def env_settings(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """GENAI_GATE_<KEY> values, with empty ones dropped (the runner sets unset inputs to "")."""
    values, origins, problems = _env_settings(environ)
    if problems:
        raise ConfigError("the environment has settings that cannot be used", problems=problems)
    return values, origins


def _env_settings(
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The usable values, their origins, and the problems of the rest."""
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
    return values, origins, problems


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
                key in (*RULE_KEYS, "columns")
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
    if kind in ("tuple_type", "list_type") and isinstance(err.get("input"), str):
        # `scorers: a, b` is one string in YAML
        items = [x.strip() for x in re.split(r"[,\s]+", err["input"]) if x.strip()]
        return f"is a list; write it in brackets: [{', '.join(items)}]"
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
            str(loc[:1][0] if loc else "") in ("thresholds", "monitor_rules", "monitor")
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
    raw: Mapping[str, str | float | ThresholdRule],
    origins: Mapping[str, str],
    key: str = "thresholds",
) -> tuple[tuple[Threshold, ...], tuple[RelativeThreshold, ...], list[str], list[str]]:
    out: dict[str, Threshold] = {}
    relative: dict[str, RelativeThreshold] = {}
    seen: set[str] = set()
    problems: list[str] = []
    notices: list[str] = []
    for given, spec in raw.items():
        where = origins.get(f"{key}.{given}", origins.get(key, key))
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

    # the environment's problems are reported with the file's and the flags', in one run
    env_values, env_origins, env_problems = _env_settings(environ)
    flag_values = dict(overrides or {})
    flag_origins = {k: (override_origins or {}).get(k, f"--{k}") for k in flag_values}
    merged, origins = _merge(
        [(file_values, file_origins), (env_values, env_origins), (flag_values, flag_origins)]
    )
    known = list(_fields_by_alias())
    if require_data and "data" not in merged:
        raise _no_data(source)
    role_notices = _legacy_roles(merged, origins)
    problems: list[str] = list(env_problems)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        problems += _validation_problems(exc, origins, known)
        about_thresholds = any(e["loc"][:1] == ("thresholds",) for e in exc.errors())
        raw = merged.get("thresholds")
        if isinstance(raw, dict) and not about_thresholds:
            # checked too, so that one run names every mistake
            more = _threshold_problems_of_raw(raw, origins)
            problems += more
            about_thresholds = bool(more)
        fix = "Run `genai-gate schema` for every key and its type."
        if about_thresholds:  # the tutorial only where a threshold is wrong
            fix += "\n" + THRESHOLD_HELP
        invalid = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        raise InvalidConfig(
            _heading(problems, cfg_path.name, "problem(s)"),
            problems=problems,
            fix=fix,
            partial=_salvage(merged, invalid, base_dir, source, origins),
            invalid=frozenset(invalid),
        ) from None
    thresholds, relative, wrong, notices = _parse_thresholds(config.thresholds, origins)
    watch, watch_relative, wrong_rules, _ = _parse_thresholds(
        config.monitor_rules, origins, "monitor"
    )
    wrong += wrong_rules
    backend_problems = _backend_problems(config, origins)
    loaded = LoadedConfig(
        config=config,
        thresholds=thresholds,
        base_dir=base_dir,
        source=source,
        notices=(*role_notices, *notices),
        origins=origins,
        relative=relative,
        monitor_thresholds=watch,
        monitor_relative=watch_relative,
    )
    # keys of the other backend are refused with that backend's own fix, unless a threshold
    # is wrong too (then the threshold tutorial is the fix that helps more)
    problems += backend_problems
    if problems or wrong:
        problems += wrong
        if wrong:
            fix = THRESHOLD_HELP
        elif backend_problems:
            fix = _BACKEND_FIX[config.backend]
        else:
            fix = "Run `genai-gate schema` for every key and its type."
        raise InvalidConfig(
            _heading(
                problems,
                cfg_path.name,
                "threshold problem(s)" if not (env_problems or backend_problems) else "problem(s)",
            ),
            problems=problems,
            fix=fix,
            partial=loaded,
            invalid=frozenset(
                ({"thresholds"} if len(wrong) > len(wrong_rules) else set())
                | ({"monitor"} if wrong_rules else set())
            ),
        )
    return loaded


class InvalidConfig(ConfigError):
    """The settings are wrong. `partial` is the config without the keys in `invalid` (their
    defaults instead), when that much is valid: a command can then check its inputs (scorers,
    data, columns) too, so that one run names every mistake."""

    def __init__(
        self,
        message: str,
        *,
        problems: list[str],
        fix: str,
        partial: LoadedConfig | None,
        invalid: frozenset[str],
    ) -> None:
        super().__init__(message, problems=problems, fix=fix)
        self.partial = partial
        self.invalid = invalid


def _salvage(
    merged: Mapping[str, Any],
    invalid: set[str],
    base_dir: Path,
    source: str,
    origins: Mapping[str, str],
) -> LoadedConfig | None:
    """The config with its invalid keys left to their defaults, if that validates."""
    try:
        config = Config.model_validate({k: v for k, v in merged.items() if k not in invalid})
    except ValidationError:
        return None
    thresholds, relative, _wrong, _notices = _parse_thresholds(config.thresholds, origins)
    watch, watch_relative, _, _ = _parse_thresholds(config.monitor_rules, origins, "monitor")
    return LoadedConfig(
        config=config,
        thresholds=thresholds,
        base_dir=base_dir,
        source=source,
        origins=dict(origins),
        relative=relative,
        monitor_thresholds=watch,
        monitor_relative=watch_relative,
    )


_BACKEND_FIX = {
    "databricks": "These keys configure an InferenceService. For KServe, say so:\n"
    "  backend: kserve\nOtherwise remove them.",
    "kserve": "backend: kserve takes the challenger from storage-uri, predictor-image or "
    "predictor, and reads the logged events from inference-log:\n"
    "  backend: kserve\n  endpoint: support-bot\n  namespace: models\n"
    "  storage-uri: s3://models/support-bot/v4\n"
    "  logger-url: http://message-dumper.models.svc.cluster.local\n"
    "Remove the Databricks keys, or set backend: databricks.",
}
# an InferenceService's name is a DNS-1035 label; KServe's own webhook refuses the rest
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _backend_problems(config: Config, origins: Mapping[str, str]) -> list[str]:
    """Keys given for the other backend, named where the user typed them: a key that is
    silently ignored would leave the user believing it took effect."""
    given = {_kebab_name(name) for name in config.model_fields_set}
    if config.backend == "kserve":
        wrong = [k for k in DATABRICKS_ONLY if k in given]
        other = "Databricks"
    else:
        wrong = [k for k in KSERVE_ONLY if k in given]
        other = "KServe"
    problems = [
        f"{origins.get(k, k)}: is a {other} setting, and backend is {config.backend}" for k in wrong
    ]
    if config.backend == "kserve" and config.endpoint and not _ISVC_NAME.match(config.endpoint):
        problems.append(
            f"{origins.get('endpoint', 'endpoint')}: {config.endpoint!r} is not an "
            "InferenceService name (lower-case letters, digits and '-', starting with a letter)"
        )
    return problems


def _kebab_name(name: str) -> str:
    return name.replace("_", "-")


# the seed pipeline's and MLflow 2's names for the reference column's role
_LEGACY_ROLES = ("ground_truth", "targets")


def _legacy_roles(merged: dict[str, Any], origins: Mapping[str, str]) -> list[str]:
    """`columns: {ground_truth: answer}` means expectations: renamed, with a notice. Given
    next to `expectations:`, the key is left for validation to refuse."""
    columns = merged.get("columns")
    if not isinstance(columns, dict):
        return []
    notices = []
    for old in _LEGACY_ROLES:
        if old in columns and "expectations" not in columns:
            where = origins.get("columns", "columns")
            columns = {("expectations" if k == old else k): v for k, v in columns.items()}
            notices.append(
                f"columns: {old} is the seed's and MLflow 2's name for the reference "
                f"answer; reading it as expectations. Rename it ({where}) to silence this."
            )
    merged["columns"] = columns
    return notices


def _threshold_problems_of_raw(raw: dict[str, Any], origins: Mapping[str, str]) -> list[str]:
    """The threshold problems of a config that failed validation elsewhere."""
    try:
        field = ScoringSettings.model_validate({"thresholds": raw})
    except ValidationError:
        return []  # the validation problems already name them
    return _parse_thresholds(field.thresholds, origins)[2]


def _heading(problems: Sequence[str], file_name: str, what: str) -> str:
    """Name where the problems are: the file, the flags, the environment, or several."""
    places = [
        label
        for label, prefix in (
            (file_name, file_name),
            ("the command line", "--"),
            ("the environment", "GENAI_GATE_"),
        )
        if any(p.startswith(prefix) for p in problems)
    ]
    where = (
        ", ".join(places[:-1]) + " and " + places[-1] if len(places) > 1 else "".join(places)
    ) or "the settings"
    return f"{where} {'has' if len(places) <= 1 else 'have'} {len(problems)} {what}"


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
    # The model takes a bare number only to refuse it with a fix (it has no direction);
    # the schema must not offer editors what the CLI refuses.
    for key in RULE_KEYS:
        values = schema["properties"][key]["additionalProperties"]
        values["anyOf"] = [
            {"type": "string", "pattern": THRESHOLD_PATTERN}
            if branch.get("type") == "string"
            else branch
            for branch in values["anyOf"]
            if branch.get("type") != "number"
        ]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "genai-gate.yml"
    return schema

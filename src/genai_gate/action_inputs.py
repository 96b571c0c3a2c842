"""The action's input and output contract, in one place for both flavours.

`action.yml` (composite) and `container/action.yml` (Docker) declare the same inputs and
outputs and hand every input to the CLI the same way: as `GENAI_GATE_<NAME>` in the
environment (the composite's `genai-gate` step `env:`, the container's `runs.env`). Their
`inputs:`, `outputs:` and env blocks are generated from this module by `scripts/gen-action`,
between marker comments; everything else in those files is written by hand.

- Every config key (each alias of `Config`'s fields) is an input of the same name, with
  `default: ""`: an empty input is unset, so the config file's value (else the key's default)
  applies. Its description is the field's, plus how to write a list or mapping as a string
  and the key's default.
- `ACTION_ONLY`: the inputs that are not config keys. Those that reach the CLI are exactly
  `RESERVED_ENV`'s names; `python-version` and `extras` only shape the composite's install.

Pure: no I/O. `render()` rewrites a file's generated blocks and leaves the rest alone.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from genai_gate.config import Config

Flavour = Literal["composite", "container"]
FLAVOURS: tuple[Flavour, ...] = ("composite", "container")
# where each flavour lives, relative to the repository root
FILES: dict[Flavour, str] = {"composite": "action.yml", "container": "container/action.yml"}
# the composite's step that runs the CLI: its `env:` is generated, the outputs read from it
GATE_STEP = "gate"
ENV_PREFIX = "GENAI_GATE_"
GENERATOR = "scripts/gen-action"


@dataclass(frozen=True)
class Input:
    name: str  # kebab-case
    description: str  # one line
    default: str = ""
    # passed to the CLI as GENAI_GATE_<NAME>; False: read by the composite's install steps
    cli: bool = True
    flavours: tuple[Flavour, ...] = FLAVOURS

    @property
    def env(self) -> str:
        return env_name(self.name)


@dataclass(frozen=True)
class Output:
    name: str
    description: str


@dataclass(frozen=True)
class Form:
    """How a list or mapping key is written as an input (a string). `{example}` in the text
    shows the example, which must load through the config loader as the field's value."""

    text: str
    example: str

    def render(self) -> str:
        return "As an input: " + self.text.replace("{example}", f"`{self.example}`") + "."


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper().replace("-", "_")


# ---------------------------------------------------------------- inputs that are not config keys

# `config` leads the list and the rest follow the config keys, as in every release so far.
ACTION_ONLY: tuple[Input, ...] = (
    Input(
        "config",
        "Config file, relative to working-directory. Empty: genai-gate.yml when it exists.",
    ),
    Input(
        "command",
        "The command to run. Empty decides from the event: a pull request runs `eval` (and "
        "`plan` when endpoint is set); a push to the default branch runs `eval`, then "
        "`deploy`; schedule and workflow_dispatch run `analyze` and apply its decision, or "
        "`monitor` when no canary is in flight. Or one of eval, plan, deploy, analyze, "
        "promote, rollback, monitor, dashboard.",
    ),
    Input(
        "github-token",
        "Token for the sticky PR comment (`pull-requests: write`; without it the report "
        "stays in the job summary), the canary and drift issues (`issues: write`) and the "
        "retraining repository_dispatch (`contents: write`).",
        default="${{ github.token }}",
    ),
    Input(
        "comment",
        "Write (and update in place) one PR comment with the report, on pull requests.",
        default="true",
    ),
    Input(
        "working-directory",
        "Folder to run in, relative to the workspace; the config and its relative paths are "
        "resolved from here.",
        default=".",
    ),
    Input(
        "out",
        "Folder for results.json, summary.md, rows.jsonl and evidence.json, relative to "
        "working-directory.",
        default="genai-gate-out",
    ),
    # Read by the composite's upload step, after the gate: the container flavour runs one
    # image and cannot run a `uses:` step, so it uploads nothing (docs/reports.md).
    Input(
        "upload-artifact",
        "Upload results.json, rows.jsonl and summary.md as a workflow artifact (the full "
        "report; the PR comment is the short one). Composite flavour only.",
        default="true",
        cli=False,
        flavours=("composite",),
    ),
    # The container's image is prebuilt with every extra, on its own Python.
    Input(
        "python-version",
        "Python for genai-gate's own virtual environment (your job's Python is not touched).",
        default="3.12",
        cli=False,
        flavours=("composite",),
    ),
    Input(
        "extras",
        "Optional extras to install with genai-gate, comma-separated: `semantic` (the "
        "semantic_similarity scorer's local embedding model, about 125 MB), `spark` "
        "(pyspark, for runner: spark; about 490 MB, and Java 17+ on the runner), `delta` "
        "(deltalake, about 130 MB: an `inference-data` folder that is a Delta table), `gcs` "
        "and `azure` (gcsfs, adlfs: KServe's inference-log in a gs:// or az:// bucket; s3:// "
        "needs no extra).",
        cli=False,
        flavours=("composite",),
    ),
)

# ---------------------------------------------------------------- config keys as inputs

# Config keys a workflow author would not set, with the reason. None so far: every key is one
# a workflow may want to override per job (a matrix leg, a stricter branch, a quick run).
EXCLUDED: dict[str, str] = {}

# The field's own description, where its wording only fits the config file.
TEXT: dict[str, str] = {
    "data": "Eval set: CSV, JSONL, JSON or Parquet, relative to the config file's folder "
    "(working-directory without one). Required by eval.",
    "endpoint": "The Databricks Model Serving endpoint to deploy to (created if missing), or "
    "with backend: kserve the InferenceService's name (created if missing too). Setting it "
    "turns on `plan` for pull requests and `deploy` for pushes to the default branch.",
    "columns": "Which of the data file's columns hold the inputs, the expectations, precomputed "
    "outputs and the retrieved context.",
    "open-issue": "On a rollback, open (or update) one GitHub issue for the endpoint. "
    "Needs `issues: write`.",
}

# Keys whose value is a list or a mapping: how to write one as an input. The loader's
# `coerce_text` turns the string into the field's shape (tests/unit/test_action_contract.py
# loads each example; guidelines, model-params and custom-judges still wait for it).
FORMS: dict[str, Form] = {
    "scorers": Form("comma- or newline-separated, e.g. {example}", "exact_match, token_f1"),
    "thresholds": Form(
        "one per line, `metric op value` (e.g. {example}), or a YAML mapping in braces as in "
        "the config file; merged over the config's, metric by metric",
        "exact_match/mean >= 0.6",
    ),
    "columns": Form(
        "a YAML mapping, e.g. {example}; merged over the config's",
        "{inputs: question, expectations: answer}",
    ),
    "model-params": Form("a YAML mapping", "{temperature: 0}"),
    "guidelines": Form(
        "one per line, or a YAML list in brackets", "[Answer in English, Cite no URLs]"
    ),
    "custom-judges": Form(
        "a YAML mapping of name to instructions, e.g. {example}",
        '{polite: "Is {{ outputs }} polite?"}',
    ),
    "steps": Form("comma-separated, e.g. {example}", "25,100"),
    "predictor": Form(
        "a YAML mapping, e.g. {example}", "{model: {storageUri: 's3://models/bot/v4'}}"
    ),
    "monitor": Form(
        "one per line, `metric op value` (e.g. {example}), or a YAML mapping in braces as in "
        "the config file; merged over the config's, metric by metric",
        "prompt_length/ks <= 0.2",
    ),
    "on-drift": Form("comma-separated, e.g. {example}", "annotate, issue"),
}


def structured(field: FieldInfo) -> bool:
    """A list, mapping or nested model: its input needs a documented string form."""
    annotation = field.annotation
    if typing.get_origin(annotation) in (tuple, list, dict, set, frozenset):
        return True
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _shown(value: Any) -> str | None:
    """A field's default as a workflow author would write it, or None when there is none."""
    if value is None or isinstance(value, BaseModel) or value in ((), [], {}, ""):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def config_fields() -> dict[str, FieldInfo]:
    """Config's fields by key, eval first, then each mixin's (deploy, analysis) in turn."""
    fields = Config.model_fields
    order: list[str] = []
    for cls in Config.__mro__:
        own = inspect.get_annotations(cls)  # the class's own, not its bases'
        order += [n for n in own if n in fields and n not in order]
    order += [n for n in fields if n not in order]
    return {(fields[n].alias or n.replace("_", "-")): fields[n] for n in order}


def describe(key: str, field: FieldInfo) -> str:
    text = TEXT.get(key) or field.description
    if not text:
        raise ValueError(f"config key {key} has no description: give its Field one, or TEXT")
    parts = [text.strip()]
    form = FORMS.get(key)
    if form is not None:
        parts.append(form.render())
    default = _shown(field.get_default(call_default_factory=True))
    if default is not None and "Default" not in parts[0]:
        parts.append(f"Default: {default}.")
    return " ".join(parts)


@cache
def inputs() -> tuple[Input, ...]:
    """Every input, in the order the action files list them."""
    keys = tuple(
        Input(key, describe(key, field))
        for key, field in config_fields().items()
        if key not in EXCLUDED
    )
    return (ACTION_ONLY[0], *keys, *ACTION_ONLY[1:])


def flavour_inputs(flavour: Flavour) -> tuple[Input, ...]:
    return tuple(i for i in inputs() if flavour in i.flavours)


OUTPUTS: tuple[Output, ...] = (
    Output("result", "passed, failed, error or skipped."),
    Output("passed", '"true" or "false".'),
    Output("metrics", 'All metrics as compact JSON, e.g. {"exact_match/mean":0.83}.'),
    Output(
        "report-path",
        "Path of results.json, relative to the workspace (so a later step finds it).",
    ),
    Output("run-id", "The MLflow run id."),
    Output(
        "endpoint-config-version",
        "After deploy, an applied analyze, promote or rollback, or a monitor that rolled "
        "back: the endpoint's config version.",
    ),
    Output(
        "endpoint-url",
        "After deploy or an applied analyze, promote or rollback: the endpoint's invocations URL.",
    ),
    Output(
        "routes",
        "After deploy, an applied analyze, promote or rollback, or a monitor that rolled back: "
        'the traffic routes as compact JSON, e.g. {"bot-12":90,"bot-13":10}.',
    ),
    Output("decision", "After analyze, promote or rollback: promote, advance, hold or rollback."),
    Output(
        "verdict",
        "After analyze: healthy, unhealthy or inconclusive (promote and rollback by hand give "
        "inconclusive). After monitor: stable, drift or not enough traffic.",
    ),
    Output("drift", 'After monitor: "true" when a drift rule failed.'),
    Output("dashboard-id", "After dashboard: the AI/BI dashboard's id (the same on a re-run)."),
    Output("dashboard-url", "After dashboard: the published dashboard's URL."),
)


# ---------------------------------------------------------------- rendering

WIDTH = 100
BLOCKS = ("inputs", "outputs", "env")
_BEGIN = re.compile(r"^(?P<indent> *)# >>> (?P<block>[a-z]+)\b.*$")
_END = re.compile(r"^ *# <<< (?P<block>[a-z]+)\b.*$")


def _begin(block: str) -> str:
    return f"# >>> {block}: generated by {GENERATOR} from genai_gate.action_inputs; edit there"


def _end(block: str) -> str:
    return f"# <<< {block}"


def _quoted(text: str) -> str:
    # JSON strings are YAML double-quoted scalars
    return json.dumps(text, ensure_ascii=False)


def _description(text: str, indent: int) -> list[str]:
    pad = " " * indent
    line = f"{pad}description: {_quoted(text)}"
    if len(line) <= WIDTH:
        return [line]
    body = textwrap.wrap(text, WIDTH - indent - 2, break_long_words=False, break_on_hyphens=False)
    return [f"{pad}description: >-", *(f"{pad}  {part}" for part in body)]


def _inputs_block(flavour: Flavour) -> list[str]:
    lines = [
        "inputs:",
        "  # An empty input is unset: the config file's value, else the key's default, applies.",
    ]
    for i in flavour_inputs(flavour):
        lines += [f"  {i.name}:", *_description(i.description, 4)]
        lines += ["    required: false", f"    default: {_quoted(i.default)}"]
    return lines


def _outputs_block(flavour: Flavour) -> list[str]:
    lines = ["outputs:"]
    for o in OUTPUTS:
        lines += [f"  {o.name}:", *_description(o.description, 4)]
        if flavour == "composite":
            lines.append(f"    value: ${{{{ steps.{GATE_STEP}.outputs.{o.name} }}}}")
    return lines


def _env_block(flavour: Flavour) -> list[str]:
    return [f"{i.env}: ${{{{ inputs.{i.name} }}}}" for i in flavour_inputs(flavour) if i.cli]


def block(name: str, flavour: Flavour) -> list[str]:
    """One generated block's lines, unindented."""
    if name == "inputs":
        return _inputs_block(flavour)
    if name == "outputs":
        return _outputs_block(flavour)
    if name == "env":
        return _env_block(flavour)
    raise ValueError(f"no generated block named {name!r}; there are {', '.join(BLOCKS)}")


def render(text: str, flavour: Flavour) -> str:
    """`text` (an action.yml) with each block between `# >>> name` and `# <<< name` markers
    regenerated at the begin marker's indentation; every other line as it was."""
    out: list[str] = []
    seen: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        begin = _BEGIN.match(lines[i])
        if begin is None:
            out.append(lines[i])
            i += 1
            continue
        name, pad = begin["block"], begin["indent"]
        if name in seen:
            raise ValueError(f"line {i + 1}: a second `# >>> {name}` block")
        seen.append(name)
        end = i + 1
        while end < len(lines) and not _END.match(lines[end]):
            end += 1
        closing = _END.match(lines[end]) if end < len(lines) else None
        if closing is None or closing["block"] != name:
            raise ValueError(f"line {i + 1}: `# >>> {name}` has no `# <<< {name}` after it")
        out += [pad + _begin(name), *(pad + ln for ln in block(name, flavour)), pad + _end(name)]
        i = end + 1
    missing = [b for b in BLOCKS if b not in seen]
    if missing:
        raise ValueError(f"no generated block for {', '.join(missing)}: add its markers")
    rendered = "\n".join(out) + "\n"
    _check(rendered, flavour)
    return rendered


def _check(rendered: str, flavour: Flavour) -> None:
    """The YAML reads back as the contract says (descriptions survive the line wrapping)."""
    doc = yaml.safe_load(rendered)
    declared = doc["inputs"]
    for i in flavour_inputs(flavour):
        if declared[i.name]["description"] != i.description:
            raise ValueError(f"input {i.name}: its description does not read back as written")
    for o in OUTPUTS:
        if doc["outputs"][o.name]["description"] != o.description:
            raise ValueError(f"output {o.name}: its description does not read back as written")

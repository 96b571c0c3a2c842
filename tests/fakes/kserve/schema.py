"""The vendored KServe InferenceService CRD (v0.20.0) and the API server's rules for it.

`validate_inferenceservice(manifest)` answers what a Kubernetes API server with this CRD would
refuse, as the API server words it (one string per field error), plus the unknown fields it
would silently prune (as `unknown field "spec.x"`, what `fieldValidation=Strict` refuses;
`strict=False` leaves them out). Use it on every manifest a test sends.

The pieces the emulator reuses (tests/fakes/kubernetes.py):
  crd() / openapi_schema()   the vendored CRD and its v1beta1 openAPIV3Schema (cached; the
                             schema is read from its JSON extract, see SOURCE.md)
  prune(obj)                 (copy without unknown fields and non-nullable nulls, unknown paths)
  apply_defaults(obj)        copy with the schema's `default`s filled in, as the server stores it
  field_errors(obj)          FieldError(field, reason, message) for an already pruned object

Structural-schema semantics kept (apiextensions-apiserver): unknown fields are pruned, not
errors, except under `x-kubernetes-preserve-unknown-fields` (only `status` here) or where
`additionalProperties` allows them; `x-kubernetes-int-or-string` accepts an integer or a string;
null is pruned where the schema does not say `nullable`; `metadata` is the API server's own
ObjectMeta (name checked as an RFC 1123 subdomain, annotations and labels as string maps); the
checks themselves (type, required, enum, minimum/maximum, pattern, lengths, items) run through
jsonschema on the schema translated to JSON Schema. `format` (int64, int32, date-time) is not
checked, as the API server does not refuse on it either for these fields.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_PATH = Path(__file__).with_name("serving.kserve.io_inferenceservices.yaml.gz")
OPENAPI_PATH = Path(__file__).with_name("openapi-v1beta1.json.gz")
GROUP = "serving.kserve.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "InferenceService"
PLURAL = "inferenceservices"
KSERVE_RELEASE = "v0.20.0"
KSERVE_COMMIT = "1fb781055dd1567164358233e1125142ca6ef1fe"

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SUBDOMAIN_HELP = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@dataclass(frozen=True)
class FieldError:
    """One field error as the API server reports it in a 422 Status's details.causes."""

    field: str  # "spec.predictor.canaryTrafficPercent"
    # FieldValueInvalid | FieldValueRequired | FieldValueNotSupported | FieldValueTypeInvalid
    reason: str
    message: str  # the full text, field included, as in the Status message

    @property
    def cause_message(self) -> str:
        """The cause's message: the text without the leading `field: `."""
        prefix = f"{self.field}: "
        return self.message[len(prefix) :] if self.message.startswith(prefix) else self.message


@functools.cache
def crd() -> dict[str, Any]:
    """The whole vendored CRD (about 1 s to parse with libyaml, once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with gzip.open(CRD_PATH, "rt", encoding="utf-8") as fh:
        document: dict[str, Any] = yaml.load(fh, Loader=loader)
    return document


def crd_openapi_schema() -> dict[str, Any]:
    """The v1beta1 openAPIV3Schema as the vendored CRD YAML holds it (slow: parses the YAML)."""
    for version in crd()["spec"]["versions"]:
        if version["name"] == VERSION:
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
            return schema
    raise LookupError(f"no {VERSION} in the vendored CRD")


@functools.cache
def openapi_schema() -> dict[str, Any]:
    """The v1beta1 openAPIV3Schema, from OPENAPI_PATH: the same schema extracted to JSON
    (20 ms to load instead of 1.5 s; a test checks it equals crd_openapi_schema())."""
    with gzip.open(OPENAPI_PATH, "rt", encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def path_text(parts: Iterable[str | int]) -> str:
    """API server field path: `spec.predictor.containers[0].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


# -- pruning and defaulting -------------------------------------------------------------------


def prune(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(a copy without unknown fields and pruned nulls, the unknown fields' paths).

    `metadata` is left alone: the API server treats ObjectMeta itself.
    """
    unknown: list[str] = []
    schema = openapi_schema()
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "metadata":
            out[key] = copy.deepcopy(value)
            continue
        sub = schema["properties"].get(key)
        if sub is None:
            unknown.append(key)
            continue
        if value is None and not sub.get("nullable"):
            continue
        out[key] = _prune(value, sub, [key], unknown)
    return out, unknown


def _prune(value: Any, schema: dict[str, Any], path: list[str | int], unknown: list[str]) -> Any:
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        if not props and not isinstance(extra, dict) and schema.get("type") != "object":
            return copy.deepcopy(value)  # not an object in the schema: type validation says so
        out: dict[str, Any] = {}
        for key, item in value.items():
            sub = props.get(key)
            if sub is None and isinstance(extra, dict):
                sub = extra
            if sub is None:
                if keep_unknown or (not props and extra is None and _is_open_object(schema)):
                    out[key] = copy.deepcopy(item)
                else:
                    unknown.append(path_text([*path, key]))
                continue
            if item is None and not sub.get("nullable"):
                continue
            out[key] = _prune(item, sub, [*path, key], unknown)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(item, schema["items"], [*path, i], unknown) for i, item in enumerate(value)]
    return copy.deepcopy(value)


def _is_open_object(schema: dict[str, Any]) -> bool:
    """`{type: object}` with nothing else: in a structural schema that only occurs with
    x-kubernetes-preserve-unknown-fields or embedded resources, so keep what is there."""
    return schema.get("type") == "object" and "properties" not in schema


def apply_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy with the schema's defaults set where a field is absent, as the server stores it."""
    out = copy.deepcopy(obj)
    _default(out, openapi_schema())
    return out


def _default(value: Any, schema: dict[str, Any]) -> None:
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in props:
                    _default(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(item, schema["items"])


# -- validation ---------------------------------------------------------------------------------

_KEEP = {
    "required",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "multipleOf",
}


def _to_json_schema(node: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """Translate one structural OpenAPI v3 node into JSON Schema (2020-12)."""
    out: dict[str, Any] = {key: node[key] for key in _KEEP if key in node}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "type" in node:
        out["type"] = [node["type"], "null"] if node.get("nullable") else node["type"]
    if isinstance(node.get("properties"), dict):
        out["properties"] = {
            key: _to_json_schema(sub, strict=strict) for key, sub in node["properties"].items()
        }
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _to_json_schema(extra, strict=strict)
    elif (
        strict
        and "properties" in node
        and extra is None
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        out["items"] = _to_json_schema(node["items"], strict=strict)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in node and "anyOf" not in out:
            out[combinator] = [_to_json_schema(sub, strict=strict) for sub in node[combinator]]
    return out


@functools.cache
def _validator(strict: bool) -> jsonschema.protocols.Validator:
    schema = _to_json_schema(openapi_schema(), strict=strict)
    # metadata is ObjectMeta, checked by _metadata_errors rather than by the CRD's {type: object}
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft202012Validator(schema)


_JSON_TYPES = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    dict: "object",
    list: "array",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _go_value(value: Any) -> str:
    """How a field.Error prints a value: strings quoted, numbers and bools bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _translate(error: jsonschema.ValidationError) -> Iterator[FieldError]:
    path = list(error.absolute_path)
    where = path_text(path)
    kind = error.validator
    value = error.instance
    wanted_value: Any = error.validator_value
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if kind == "required":
        present = value if isinstance(value, dict) else {}
        for name in wanted_value:
            if name not in present:
                field = path_text([*path, name])
                yield FieldError(field, "FieldValueRequired", f"{field}: Required value")
        return
    if kind == "additionalProperties":
        known = set((schema.get("properties") or {}).keys())
        for name in value if isinstance(value, dict) else ():
            if name not in known:
                field = path_text([*path, name])
                yield FieldError(field, "FieldValueUnknown", f'unknown field "{field}"')
        return
    if kind in ("type", "anyOf") and (kind == "type" or _is_int_or_string(schema)):
        wanted = wanted_value if kind == "type" else "integer,string"
        if isinstance(wanted, list):
            wanted = next(t for t in wanted if t != "null")
        got = _type_name(value)
        detail = f"{where} in body must be of type {wanted}: {json.dumps(got)}"
        yield FieldError(
            where, "FieldValueTypeInvalid", f"{where}: Invalid value: {json.dumps(got)}: {detail}"
        )
        return
    if kind == "enum":
        allowed = ", ".join(json.dumps(v) for v in wanted_value)
        yield FieldError(
            where,
            "FieldValueNotSupported",
            f"{where}: Unsupported value: {_go_value(value)}: supported values: {allowed}",
        )
        return
    detail = {
        "minimum": f"should be greater than or equal to {wanted_value}",
        "maximum": f"should be less than or equal to {wanted_value}",
        "exclusiveMinimum": f"should be greater than {wanted_value}",
        "exclusiveMaximum": f"should be less than {wanted_value}",
        "pattern": f"should match '{wanted_value}'",
        "minLength": f"should be at least {wanted_value} chars long",
        "maxLength": f"may not be longer than {wanted_value}",
        "minItems": f"should have at least {wanted_value} items",
        "maxItems": f"must have at most {wanted_value} items",
    }.get(str(kind), f"failed {kind} {wanted_value}")
    yield FieldError(
        where,
        "FieldValueInvalid",
        f"{where}: Invalid value: {_go_value(value)}: {where} in body {detail}",
    )


def _is_int_or_string(schema: dict[str, Any]) -> bool:
    return schema.get("anyOf") == [{"type": "integer"}, {"type": "string"}]


def _metadata_errors(manifest: dict[str, Any], *, require_name: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        return [FieldError("metadata", "FieldValueRequired", "metadata: Required value")]
    name = metadata.get("name")
    if name is None and not metadata.get("generateName") and require_name:
        errors.append(
            FieldError(
                "metadata.name",
                "FieldValueRequired",
                "metadata.name: Required value: name or generateName is required",
            )
        )
    elif isinstance(name, str) and (len(name) > 253 or not _SUBDOMAIN.fullmatch(name)):
        errors.append(
            FieldError(
                "metadata.name",
                "FieldValueInvalid",
                f"metadata.name: Invalid value: {json.dumps(name)}: {_SUBDOMAIN_HELP}",
            )
        )
    for key in ("annotations", "labels"):
        mapping = metadata.get(key)
        if mapping is None:
            continue
        if not isinstance(mapping, dict):
            field = f"metadata.{key}"
            errors.append(
                FieldError(
                    field,
                    "FieldValueTypeInvalid",
                    f"{field}: Invalid value: {json.dumps(_type_name(mapping))}: "
                    "must be a map of strings",
                )
            )
            continue
        for item_key, item in mapping.items():
            if not isinstance(item, str):
                field = f"metadata.{key}[{item_key}]"
                errors.append(
                    FieldError(
                        field,
                        "FieldValueTypeInvalid",
                        f"{field}: Invalid value: {_go_value(item)}: must be a string",
                    )
                )
    return errors


def field_errors(obj: dict[str, Any], *, strict: bool = False) -> list[FieldError]:
    """Schema errors of `obj` (prune it first unless `strict`: then unknown fields count too)."""
    errors = _metadata_errors(obj, require_name=True)
    for error in sorted(_validator(strict).iter_errors(obj), key=lambda e: list(e.absolute_path)):
        errors.extend(_translate(error))
    return errors


def validate_inferenceservice(manifest: dict[str, Any], *, strict: bool = True) -> list[str]:
    """Everything the API server would refuse in `manifest` (empty: it would be accepted).

    `strict` (the default) also lists the unknown fields the server would silently prune, so a
    misspelt field (`canaryTraficPercent`) is caught instead of vanishing. KServe's mutating
    webhook is not applied here (the emulator applies it): a lone custom container without a
    name is an error here, though a cluster would name it `kserve-container` first.
    """
    problems: list[str] = []
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(
            f"apiVersion: Invalid value: {_go_value(manifest.get('apiVersion'))}: "
            f"must be {API_VERSION}"
        )
    if manifest.get("kind") != KIND:
        problems.append(f"kind: Invalid value: {_go_value(manifest.get('kind'))}: must be {KIND}")
    pruned, unknown = prune(manifest)
    if strict:
        problems.extend(f'unknown field "{field}"' for field in unknown)
    problems.extend(error.message for error in field_errors(pruned))
    return problems

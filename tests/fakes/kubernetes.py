"""A local Kubernetes API server with KServe's InferenceService, faithful to kserve/FACTS.md.

Start it with `FakeKubernetes(...).start()` (or `with FakeKubernetes(...) as kube:`, or the
conftest fixtures `kube_cluster`, `kube_kubeconfig`, `kube_oidc_env`) and point the real
`kubernetes` client at `kube.host` (plain http on 127.0.0.1): `kube.kubeconfig(path)` writes a
kubeconfig for `config.load_kube_config(config_file=path)`, or build a `Configuration(host=...)`
with `api_key={"BearerToken": token}, api_key_prefix={"BearerToken": "Bearer"}`.

Python API at a glance (details below):
  constructor fields  tokens, admins, rbac, oidc_issuer, jwt_authenticators, audience,
                      ready_polls, fail_next_revisions, fail_message, conflict_next,
                      observed_generation ("knative" | "isvc"), default_deployment_mode,
                      legacy_mode_names, annotation_disallowed, label_disallowed, domain,
                      resource_defaults, capture_dir, seed, default_answer, clock. All may be
                      changed on a running fake; the fault budgets count down.
  setup               add_inferenceservice(manifest) (as a user would create it, then settled),
                      register_model(key, answer=, latency=, error_rate=, fails=) (key: a
                      storageUri, an image or a revision name), grant(user, *Rule), settle(name)
  addresses           host, sink_url, inference_url(name), captures, kubeconfig(path, token=),
                      oidc_env(), token_for(user)
  reading             isvc(name), configmap(name), revisions(name), serving(name) (traffic as
                      routed), events(name) (the logged CloudEvents), api_requests(); counters
                      requests, writes, conflicts, reconciles, served (per revision)
  traffic             invoke(name, body) (one OpenAI chat call through the traffic split, logged
                      like KServe's agent), emit_traffic(name, n, ...) (bulk logged pairs, JSON
                      lines or Parquet), write_events(path, events)
  module constants    ADMIN_TOKEN, ADMIN_USER, AUDIENCE, GROUP, VERSION, PLURAL, REQUEST_EVENT,
                      RESPONSE_EVENT, EVENT_COLUMNS, WEBHOOK, FINALIZER, Rule, JWTAuthenticator

It serves:

InferenceServices `/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices[/{name}]`
  (list with labelSelector/fieldSelector metadata.name, get, create POST (201 Created; 409
  AlreadyExists for a taken name, after admission as in the API server; 422 without a name),
  replace PUT, patch, delete with DeleteOptions preconditions (a uid or resourceVersion that
  differs is 409 Conflict `... Precondition failed: UID in precondition: ...`) and
  `.../{name}/status` GET. `metadata.resourceVersion` is one counter for the whole
  fake (strings, monotonic), `generation` bumps on spec changes only, `uid`,
  `creationTimestamp`, `managedFields` (simplified, below). A PUT whose resourceVersion is stale
  is 409 Conflict ("Operation cannot be fulfilled on inferenceservices.serving.kserve.io ...");
  a PUT without one is 422 (`metadata.resourceVersion: Invalid value: 0x0: must be specified for
  an update`: custom resources refuse unconditional updates; the issue's 422 is right). Patches:
  `application/merge-patch+json` (a resourceVersion in the patch is a precondition),
  `application/json-patch+json` (RFC 6902) and server-side apply `application/apply-patch+yaml`
  (needs `fieldManager`, else 422; `force=true`; creates when absent); strategic merge is 415.
  The python client sends merge-patch by default; pass `_content_type=` for the others.
  Every write goes through the vendored CRD (kserve/schema.py): unknown fields are pruned with a
  `Warning` header (`fieldValidation=Strict`: 400), non-nullable nulls pruned, defaults
  applied, then errors are 422 Invalid naming each field, as the API server words it. `dryRun=All`
  answers without storing. KServe's webhooks (FACTS.md §1): the mutating one runs before
  validation (mode annotation normalised or added, framework shorthands moved to `model`,
  `modelFormat` annotation, triton/vllm `protocolVersion: v2`, the custom container's name and
  `resource_defaults`); the validating one refuses, with 403 `admission webhook
  "inferenceservice.kserve-webhook-server.validator" denied the request: ...`, a predictor
  without exactly one implementation and a change of `serving.kserve.io/deploymentMode` after
  the mode is set (its other rules are not emulated). Faults:
  `conflict_next` (the next N PUT/PATCH of anything answer 409 even when fresh). Writes to
  `status` through the main resource are ignored (status subresource); watch is not served
  (poll with GET).

  Server-side apply is simplified: ownership is tracked per leaf field (lists are atomic), a
  field applied with a different value than another manager set is a conflict (409, causes
  FieldManagerConflict) unless `force`, and fields a manager applied before and omits now are
  removed when no other manager owns them. Non-apply writes take ownership of what they change
  (manager: `fieldManager` or the User-Agent's product, e.g. `OpenAPI-Generator`).

The KServe controller (serverless mode), ported from KServe v0.20.0 (see FACTS.md §2-3):
  after every write, and on every read of an InferenceService, it reconciles to a fixed point
  (a real controller writes right after the user: so the resourceVersion a write answered is
  stale as soon as the controller updates the status; read before you write). The predictor's
  revision template is the predictor spec without `canaryTrafficPercent`, plus the ISVC's
  annotations and labels minus `annotation_disallowed`/`label_disallowed` (KServe's defaults)
  and `spec.predictor.annotations/labels`: any change to it creates revision
  `{name}-predictor-{NNNNN}` (ksvc_reconciler.go, components/predictor.go). A new revision is
  Pending for `ready_polls` reads of that InferenceService (GET, list or /status), the next read
  settles it (0: the first read); `settle(name)` settles from Python. It becomes Ready, or Failed
  when `fail_next_revisions` > 0 at its creation or its model key was registered with `fails=`
  (Knative: ConfigurationsReady False RevisionFailed `Revision "{rev}" failed with message:
  {msg}.`; PredictorReady and Ready carry the Knative Service's Ready, which is that text when an
  older revision still serves, and `RevisionMissing` `Configuration "{ksvc}" does not have any
  ready Revision.` when none does; the old revision keeps serving). Traffic is KServe's:
  `canaryTrafficPercent` with a rolled-out revision gives `[{latestRevision, canary%},
  {prev: latestRolledoutRevision, 100-canary%}]`, else 100 % latest; Knative resolves
  `latestRevision` to the latest *ready* revision (so the old one is named twice while a new one
  starts); tag `latest` only with `serving.kserve.io/enable-tag-routing: "true"`; rolled-out
  bookkeeping, promote and the pin-to-0 rollback as PropagateStatus does it. Conditions follow
  knative.dev/pkg's ConditionSet (Ready from PredictorReady + IngressReady, `severity: Info` on
  the others). `status.observedGeneration` is the Knative Service's generation (#6081: ahead of
  `metadata.generation` after an annotation change, behind for a spec change that leaves the
  Knative Service alone); `observed_generation="isvc"` gives the fixed behaviour (PR #6096).
  `status.url` `http://{name}.{ns}.{domain}`, `address.url` `http://{name}.{ns}.svc.cluster.local`.
  Standard mode (annotation `serving.kserve.io/deploymentMode: RawDeployment` or `Standard`,
  or `default_deployment_mode="Standard"`): `status.deploymentMode: Standard` (`RawDeployment`
  with `legacy_mode_names=True`, as v0.15 and older wrote it), no revisions, no traffic, no
  latest*/previous* fields, `canaryTrafficPercent` ignored, url `http://{name}-{ns}.{domain}`.
  Deleting an InferenceService removes it at once (the finalizer `inferenceservice.finalizers`
  is honoured instantly) and the garbage collector deletes what it owned.

ConfigMaps `/api/v1/namespaces/{ns}/configmaps[/{name}]`: list/get/create/replace/patch
  (merge and JSON patch; strategic merge is accepted as a merge patch)/delete, with
  resourceVersion (a PUT without one overwrites, as for built-in kinds; a stale one is 409) and
  `ownerReferences` kept. The garbage collector runs after every write: a ConfigMap whose owner
  references all name InferenceServices that do not exist with that uid is deleted.

SelfSubjectAccessReview `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers
  `status.allowed` from the same RBAC rules (every authenticated user may ask). Discovery:
  `/version`, `/api`, `/api/v1`, `/apis`, `/apis/serving.kserve.io/v1beta1`.

Auth: `Authorization: Bearer <token>`: a static token of `tokens` (token -> username; default
  ADMIN_TOKEN -> ADMIN_USER), or a JWT checked like a structured-authentication JWT
  authenticator (`jwt_authenticators`; with `oidc_issuer` set and none given: one for that
  issuer, audiences [`audience`], username claim `sub` with prefix `github:`): the signature
  against the issuer's JWKS (discovered from its /.well-known/openid-configuration, PyJWT), iss,
  aud (any of the audiences), exp/nbf, required claims. Anything else is 401 `Unauthorized`.
  `token_for(user)` adds a static token. RBAC: `admins` (default {ADMIN_USER}) may do
  everything; others get what `rbac[user]` (a list of Rule: verbs x apiGroups x resources x
  namespaces x resourceNames, "*" wildcards; subresources as "inferenceservices/status") allows.
  A refusal is 403 Forbidden with the API server's message (`inferenceservices.serving.kserve.io
  "x" is forbidden: User "u" cannot patch resource "inferenceservices" in API group
  "serving.kserve.io" in the namespace "ns"`).

The predictor's inference route (no Kubernetes auth, as behind the ingress): `POST
  /openai/v1/chat/completions` or `/v1/chat/completions` on this server either with a `Host`
  header naming the service (`{name}.{ns}.{domain}` as status.url says, `{name}-predictor...`, or
  a tag host `prev-{name}-predictor...`/`latest-...` to pin a revision), or under the path prefix
  `/serving/{ns}/{name}` (`inference_url(name)`). The revision is drawn from the traffic as
  routed (`serving(name)`) with the seeded RNG; it answers with the registered model of its
  revision name, storageUri or image (`register_model`; else `default_answer`), after `latency`,
  failing `error_rate` of calls with 500. When the revision's `spec.predictor.logger` is set
  (mode all/request/response), the call is logged as KServe's agent logs it (FACTS.md §4):
  request and response share the id (`Ce-Id` request header or a uuid), the response only for a
  200, source = the pod name `{revision}-deployment-{rs}-{pod}`, extensions
  inferenceservicename/namespace/component "predictor"/endpoint ""/metadata/recordedtime, and
  the response's datacontenttype is the request's Content-Type. The fake plays the sink whatever
  logger.url says: events are appended as structured CloudEvents JSON lines to
  `{capture_dir}/{ns}/{name}/part-00000.jsonl` (format in FACTS.md). `POST /sink` also accepts
  real binary-mode (Ce-* headers) or structured CloudEvents and files them the same way, by
  their namespace/inferenceservicename. Blob-storage logging (`logger.storage`, s3:// urls) is
  not emulated.

`emit_traffic(name, n, ...)` writes n logged request/response pairs without HTTP, split over
revisions by the current traffic (or `split={revision: percent}`), answered by each revision's
registered model (once per distinct prompt, so millions of events stay fast), `error_rate`
dropping responses, `latency` spacing the response time; `parquet=True` writes Parquet parts
with EVENT_COLUMNS (data as JSON text) instead of JSON lines. Every request is recorded in
`requests` (RecordedRequest: method, path, query, user, verb, resource, status, content type,
user agent).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import random
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import jwt
import yaml

from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.kserve import schema as crd_schema

ADMIN_TOKEN = "kube-emulator-admin-token-0123456789abcdef"
ADMIN_USER = "kubernetes-admin"
AUDIENCE = "https://kubernetes.emulator.invalid"
GITHUB_PREFIX = "github:"
GROUP = crd_schema.GROUP
VERSION = crd_schema.VERSION
API_VERSION = crd_schema.API_VERSION
PLURAL = crd_schema.PLURAL
KIND = crd_schema.KIND
KUBE_VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.1",
    "gitCommit": "emulator",
    "gitTreeState": "clean",
    "buildDate": "2026-09-01T00:00:00Z",
    "goVersion": "go1.24.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
REQUEST_EVENT = "org.kubeflow.serving.inference.request"
RESPONSE_EVENT = "org.kubeflow.serving.inference.response"
EVENT_COLUMNS = (
    "specversion",
    "id",
    "type",
    "source",
    "time",
    "datacontenttype",
    "recordedtime",
    "inferenceservicename",
    "namespace",
    "component",
    "endpoint",
    "metadata",
    "data",
)
WEBHOOK = "inferenceservice.kserve-webhook-server.validator"
FINALIZER = "inferenceservice.finalizers"
DEPLOYMENT_MODE = f"{GROUP}/deploymentMode"
TAG_ROUTING = f"{GROUP}/enable-tag-routing"
# constants.ServiceAnnotationDisallowedList and RevisionTemplateLabelDisallowedList (v0.20.0)
ANNOTATION_DISALLOWED = (
    "autoscaling.knative.dev/min-scale",
    "autoscaling.knative.dev/max-scale",
    "internal.serving.kserve.io/storage-initializer-sourceuri",
    "kubectl.kubernetes.io/last-applied-configuration",
    "modelFormat",
)
LABEL_DISALLOWED = ("networking.knative.dev/visibility",)
OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
TERMINAL = ("PredictorReady", "IngressReady")

Answer = Callable[[list[dict[str, Any]]], str]
Reply = tuple[int, Any, dict[str, str]]


def default_answer(key: str) -> Answer:
    """The answer of a model nobody registered: names the model, so tests can tell them apart."""
    return lambda messages: f"answer from {key}"


def _rfc3339(epoch: float, micros: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    if micros:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------ errors (Status objects)


class ApiError(Exception):
    """An API error answered as a Kubernetes Status object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    def reply(self) -> Reply:
        return self.code, self.status(), self.headers


@dataclass(frozen=True)
class _Kind:
    """A resource kind the fake serves: how its errors name it."""

    group: str
    plural: str
    kind: str

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def details(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "kind": self.plural}
        if self.group:
            out["group"] = self.group
        return out

    def not_found(self, name: str) -> ApiError:
        message = f'{self.qualified} "{name}" not found'
        return ApiError(404, "NotFound", message, self.details(name))

    def exists(self, name: str) -> ApiError:
        message = f'{self.qualified} "{name}" already exists'
        return ApiError(409, "AlreadyExists", message, self.details(name))

    def conflict(self, name: str) -> ApiError:
        message = f'Operation cannot be fulfilled on {self.qualified} "{name}": {OPTIMISTIC_LOCK}'
        return ApiError(409, "Conflict", message, self.details(name))

    def invalid(self, name: str, errors: list[crd_schema.FieldError]) -> ApiError:
        texts = [e.message for e in errors]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        group_kind = f"{self.kind}.{self.group}" if self.group else self.kind
        details: dict[str, Any] = {
            "name": name,
            "kind": self.kind,
            "causes": [
                {"reason": e.reason, "message": e.cause_message, "field": e.field} for e in errors
            ],
        }
        if self.group:
            details["group"] = self.group
        return ApiError(422, "Invalid", f'{group_kind} "{name}" is invalid: {joined}', details)


ISVC = _Kind(GROUP, PLURAL, KIND)
CONFIGMAP = _Kind("", "configmaps", "ConfigMap")


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# ------------------------------------------------------------------ knative.dev/pkg ConditionSet


class _Conditions:
    """knative.dev/pkg apis.ConditionSet on a status dict: happy `Ready`, given dependents."""

    def __init__(self, status: dict[str, Any], dependents: tuple[str, ...], now: str) -> None:
        self.status = status
        self.dependents = dependents
        self.now = now

    def get(self, kind: str) -> dict[str, Any] | None:
        for cond in self.status.get("conditions") or []:
            if cond["type"] == kind:
                return dict(cond)
        return None

    def _severity(self, kind: str) -> str:
        return "" if kind == "Ready" or kind in self.dependents else "Info"

    def _set(self, kind: str, status: str, reason: str = "", message: str = "") -> None:
        new: dict[str, Any] = {"type": kind, "status": status}
        if self._severity(kind):
            new["severity"] = self._severity(kind)
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        kept = []
        for cond in self.status.get("conditions") or []:
            if cond["type"] != kind:
                kept.append(cond)
                continue
            old = {k: v for k, v in cond.items() if k != "lastTransitionTime"}
            if old == new:
                return  # only the time would change
        new["lastTransitionTime"] = self.now
        kept.append(new)
        self.status["conditions"] = sorted(kept, key=lambda c: c["type"])

    def _unhappy_dependent(self) -> dict[str, Any] | None:
        found = [c for c in (self.get(d) for d in self.dependents) if c is not None]
        found.sort(key=lambda c: c.get("lastTransitionTime", ""), reverse=True)
        for cond in found:
            if cond["status"] == "False":
                return cond
        for cond in found:
            if cond["status"] == "Unknown":
                return cond
        if len(found) != len(self.dependents):
            return {"status": "Unknown"}
        return None

    def initialize(self) -> None:
        """InitializeConditions: Ready and the dependents Unknown where unset."""
        if self.get("Ready") is None:
            self._set("Ready", "Unknown")
        for dep in self.dependents:
            if self.get(dep) is None:
                self._set(dep, "Unknown")

    def mark_true(self, kind: str, reason: str = "", message: str = "") -> None:
        self._set(kind, "True", reason, message)
        unhappy = self._unhappy_dependent()
        if unhappy is not None:
            self._set(
                "Ready", unhappy["status"], unhappy.get("reason", ""), unhappy.get("message", "")
            )
        elif kind != "Ready":
            self._set("Ready", "True")

    def mark_false(self, kind: str, reason: str = "", message: str = "") -> None:
        self._set(kind, "False", reason, message)
        if kind in self.dependents:
            self._set("Ready", "False", reason, message)

    def mark_unknown(self, kind: str, reason: str = "", message: str = "") -> None:
        self._set(kind, "Unknown", reason, message)
        for dep in self.dependents:
            cond = self.get(dep)
            if cond is not None and cond["status"] == "False":
                happy = self.get("Ready")
                if happy is None or happy["status"] != "False":
                    self.mark_false("Ready", reason, message)
                return
        if kind in self.dependents:
            self._set("Ready", "Unknown", reason, message)

    def set_from(self, kind: str, cond: dict[str, Any] | None) -> None:
        """KServe's InferenceServiceStatus.SetCondition."""
        if cond is None:
            return
        reason, message = cond.get("reason", ""), cond.get("message", "")
        {"True": self.mark_true, "False": self.mark_false, "Unknown": self.mark_unknown}[
            cond["status"]
        ](kind, reason, message)


# -------------------------------------------------------------------------- patches and apply


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(str(op.get("path", "")))
        if kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise ValueError(f"testing value {op.get('path')} failed")
            continue
        if kind in ("move", "copy"):
            source = _pointer(str(op.get("from", "")))
            value = copy.deepcopy(_walk(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            doc = _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        else:
            raise ValueError(f"unknown JSON patch operation {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise IndexError(f"index {index} out of range")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise KeyError(last)
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc


FieldPath = tuple[str, ...]
_NOT_OWNED = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
_NOT_OWNED_PREFIXES = (("status",), ("metadata", "managedFields"), ("metadata", "resourceVersion"))


def leaf_paths(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Leaf field paths of an object (maps recurse, lists are atomic), with their values."""
    out: dict[FieldPath, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            out.update(leaf_paths(value, (*prefix, str(key))))
    elif prefix:
        out[prefix] = obj
    return {
        p: v
        for p, v in out.items()
        if p not in _NOT_OWNED and not any(p[: len(x)] == x for x in _NOT_OWNED_PREFIXES)
    }


def _get_path(obj: Any, path: FieldPath) -> Any:
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _set_path(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    for part in path[:-1]:
        nxt = obj.get(part)
        if not isinstance(nxt, dict):
            nxt = obj[part] = {}
        obj = nxt
    obj[path[-1]] = copy.deepcopy(value)


def _del_path(obj: dict[str, Any], path: FieldPath) -> None:
    trail: list[tuple[dict[str, Any], str]] = []
    node: Any = obj
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        trail.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    for parent, key in reversed(trail):  # drop maps left empty by the removal
        if parent[key] == {}:
            del parent[key]
        else:
            break


def _fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


@dataclass
class _Manager:
    operation: str  # Apply | Update
    fields: set[FieldPath]
    time: str


# ----------------------------------------------------------------------------- auth and RBAC


@dataclass(frozen=True)
class Rule:
    """One RBAC PolicyRule, bound in `namespaces` ("*": every namespace, as a ClusterRole)."""

    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    api_groups: tuple[str, ...] = (GROUP,)
    namespaces: tuple[str, ...] = ("*",)
    resource_names: tuple[str, ...] = ()

    def allows(
        self, verb: str, group: str, resource: str, namespace: str | None, name: str | None
    ) -> bool:
        def hit(values: tuple[str, ...], value: str) -> bool:
            return "*" in values or value in values

        return (
            hit(self.verbs, verb)
            and hit(self.api_groups, group)
            and hit(self.resources, resource)
            and (namespace is None or hit(self.namespaces, namespace))
            and (not self.resource_names or (name is not None and name in self.resource_names))
        )


@dataclass
class JWTAuthenticator:
    """One `jwt:` entry of an AuthenticationConfiguration (apiserver.config.k8s.io/v1)."""

    issuer: str | None = None  # None: the attached oidc_issuer's
    audiences: tuple[str, ...] = (AUDIENCE,)
    username_claim: str = "sub"
    username_prefix: str = GITHUB_PREFIX
    required_claims: dict[str, str] = field(default_factory=dict)  # claimValidationRules


class _Unauthorized(Exception):
    pass


# --------------------------------------------------------------------- revisions and the models


@dataclass
class Model:
    """How a model answers (registered per storageUri, image or revision name)."""

    answer: Answer | None = None
    latency: float = 0.0
    error_rate: float = 0.0
    fails: str | None = None  # a revision serving it fails with this message


@dataclass
class Revision:
    """A Knative revision of an InferenceService's predictor."""

    name: str
    template: dict[str, Any]
    state: str = "Pending"  # Pending | Ready | Failed
    polls_left: int = 0
    will_fail: str | None = None
    message: str = ""
    created: float = 0.0
    pods: list[str] = field(default_factory=list)

    @property
    def predictor(self) -> dict[str, Any]:
        predictor: dict[str, Any] = self.template["predictor"]
        return predictor

    @property
    def keys(self) -> list[str]:
        """What a registered model may be keyed by: revision name, storageUri, image."""
        keys = [self.name]
        predictor = self.predictor
        impl = predictor.get("model") or next(
            (v for k, v in predictor.items() if isinstance(v, dict) and "storageUri" in v), {}
        )
        if impl.get("storageUri"):
            keys.append(str(impl["storageUri"]))
        for container in [impl, *(predictor.get("containers") or [])]:
            if container.get("image"):
                keys.append(str(container["image"]))
        for uri in predictor.get("storageUris") or []:
            if isinstance(uri, dict) and uri.get("uri"):
                keys.append(str(uri["uri"]))
        return keys


@dataclass
class _Isvc:
    """The controller's view of one InferenceService (Knative Service and revisions)."""

    mode: str | None = None  # Knative | Standard, fixed at the first reconcile
    ksvc_generation: int = 0
    template: dict[str, Any] | None = None
    traffic: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)
    standard_pod: str = ""
    standard_polls_left: int = 0
    standard_ready: bool = False
    standard_generation: int = 0
    managers: dict[str, _Manager] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None
    verb: str | None
    resource: str | None
    status: int
    content_type: str | None
    user_agent: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


_API_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)
_REVISION_OF_SOURCE = re.compile(r"^(.+-\d{5})-deployment-")


# ------------------------------------------------------------------------------------ the fake


@dataclass
class FakeKubernetes:
    """A Kubernetes API server with KServe on 127.0.0.1 (see the module docstring)."""

    # auth
    tokens: dict[str, str] = field(default_factory=lambda: {ADMIN_TOKEN: ADMIN_USER})
    admins: set[str] = field(default_factory=lambda: {ADMIN_USER})
    rbac: dict[str, list[Rule]] = field(default_factory=dict)
    oidc_issuer: FakeGitHubOIDC | None = None
    jwt_authenticators: list[JWTAuthenticator] | None = None
    audience: str = AUDIENCE
    # the controller
    ready_polls: int = 1
    fail_next_revisions: int = 0
    fail_message: str = "Container failed with: model failed to load"
    conflict_next: int = 0
    observed_generation: Literal["knative", "isvc"] = "knative"
    default_deployment_mode: str = "Knative"
    legacy_mode_names: bool = False
    annotation_disallowed: tuple[str, ...] = ANNOTATION_DISALLOWED
    label_disallowed: tuple[str, ...] = LABEL_DISALLOWED
    domain: str = "example.com"
    resource_defaults: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        }
    )
    # inference and capture
    capture_dir: Path | None = None
    seed: int = 0
    default_answer: Callable[[str], Answer] = default_answer
    clock: Callable[[], float] = time.time
    # state and counters
    models: dict[str, Model] = field(default_factory=dict, init=False)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict, init=False)
    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    writes: int = field(default=0, init=False)
    conflicts: int = field(default=0, init=False)
    reconciles: int = field(default=0, init=False)
    served: Counter[str] = field(default_factory=Counter, init=False)
    server: ThreadingHTTPServer | None = field(default=None, init=False)
    _isvcs: dict[tuple[str, str], _Isvc] = field(default_factory=dict, init=False, repr=False)
    _cm_managers: dict[tuple[str, str], dict[str, _Manager]] = field(
        default_factory=dict, init=False, repr=False
    )
    _rv: int = field(default=1000, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _capture_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _owns_capture_dir: bool = field(default=False, init=False, repr=False)
    _jwks_clients: dict[str, jwt.PyJWKClient] = field(default_factory=dict, init=False, repr=False)
    _parts: Counter[tuple[str, str]] = field(default_factory=Counter, init=False, repr=False)
    # the pairs emit_traffic wrote so far: each call numbers its ids after the last call's,
    # so two batches in one capture folder never share an id (the reader pairs by id)
    _emitted: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        assert self.server is not None, "FakeKubernetes is not started"
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def sink_url(self) -> str:
        """A CloudEvents sink URL for `spec.predictor.logger.url` (any URL works)."""
        return f"{self.host}/sink"

    @property
    def captures(self) -> Path:
        """The capture folder (capture_dir, or the temporary one made at start())."""
        assert self.capture_dir is not None, "FakeKubernetes is not started"
        return Path(self.capture_dir)

    def inference_url(self, name: str, namespace: str = "default") -> str:
        """Base URL of the predictor route by path: append /openai/v1/chat/completions."""
        return f"{self.host}/serving/{namespace}/{name}"

    def event_dir(self, name: str, namespace: str = "default") -> Path:
        """Where the sink files the logged CloudEvents of one InferenceService."""
        return self.captures / namespace / name

    def kubeconfig(
        self,
        path: Path | str,
        token: str = ADMIN_TOKEN,
        namespace: str = "default",
        context: str = "emulator",
    ) -> Path:
        """Write a kubeconfig (one cluster, user and context) that points at this server."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.host}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        return target

    def oidc_env(self, issuer: FakeGitHubOIDC | None = None) -> dict[str, str]:
        """What a GitHub job with `id-token: write` has (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN),
        plus KUBERNETES_SERVER and KUBERNETES_AUDIENCE (this server and the audience its JWT
        authenticator expects; convenience keys for tests, nothing reads them by itself)."""
        issuer = issuer or self.oidc_issuer
        assert issuer is not None, "no FakeGitHubOIDC attached"
        return {
            **issuer.env(),
            "KUBERNETES_SERVER": self.host,
            "KUBERNETES_AUDIENCE": self.audience,
        }

    def token_for(self, user: str) -> str:
        """A new static bearer token for `user` (RBAC from `rbac[user]`)."""
        token = f"kube-emulator-{uuid.uuid4().hex}"
        with self._lock:
            self.tokens[token] = user
        return token

    def oidc_username(self, subject: str | None = None) -> str:
        """The RBAC username a GitHub token of `subject` maps to (default: the issuer's)."""
        if subject is None:
            assert self.oidc_issuer is not None, "no FakeGitHubOIDC attached"
            subject = self.oidc_issuer.subject
        return f"{self._authenticators()[0].username_prefix}{subject}"

    # -- Python API: setup -------------------------------------------------------------------

    def register_model(
        self,
        key: str,
        answer: Answer | None = None,
        *,
        latency: float = 0.0,
        error_rate: float = 0.0,
        fails: str | None = None,
    ) -> Model:
        """How revisions serving `key` (a storageUri, an image or a revision name) answer;
        `fails` makes such revisions fail to start with that message."""
        model = Model(answer, latency, error_rate, fails)
        with self._lock:
            self.models[key] = model
        return model

    def grant(self, user: str, *rules: Rule) -> None:
        """Bind more RBAC rules to `user`."""
        with self._lock:
            self.rbac.setdefault(user, []).extend(rules)

    def add_inferenceservice(
        self, manifest: dict[str, Any], *, settle: bool = True
    ) -> dict[str, Any]:
        """Create an InferenceService as an admin would (validated, reconciled), settled by
        default: its first revision Ready with 100 % of the traffic."""
        metadata = manifest.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "default")
        with self._lock:
            self._create_isvc(namespace, copy.deepcopy(manifest), ADMIN_USER, {}, None)
            if settle:
                self.settle(str(metadata.get("name")), namespace)
        return self.isvc(str(metadata.get("name")), namespace)

    def settle(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """Finish every pending revision (Ready, or Failed as planned) and reconcile."""
        with self._lock:
            state = self._isvc_state(namespace, name)
            for rev in state.revisions:
                if rev.state == "Pending":
                    self._finish(rev)
            if state.mode == "Standard":
                state.standard_ready = True
            self._reconcile(namespace, name)
        return self.isvc(name, namespace)

    # -- Python API: reading -----------------------------------------------------------------

    def isvc(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """The stored InferenceService (a copy; no poll is counted)."""
        with self._lock:
            obj = self.objects.get((PLURAL, namespace, name))
            if obj is None:
                raise KeyError(f"no InferenceService {namespace}/{name}")
            return copy.deepcopy(obj)

    def configmap(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        with self._lock:
            obj = self.objects.get(("configmaps", namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def revisions(self, name: str, namespace: str = "default") -> list[Revision]:
        with self._lock:
            return list(self._isvc_state(namespace, name).revisions)

    def serving(self, name: str, namespace: str = "default") -> dict[str, int]:
        """{revision: percent} as the route sends traffic now (0 % entries left out)."""
        with self._lock:
            obj = self.objects.get((PLURAL, namespace, name))
            if obj is None:
                raise KeyError(f"no InferenceService {namespace}/{name}")
            return self._split(obj)

    def events(self, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        """Every logged CloudEvent of one InferenceService, from the JSON-lines parts."""
        out: list[dict[str, Any]] = []
        folder = self.event_dir(name, namespace)
        for part in sorted(folder.glob("part-*.jsonl")) if folder.exists() else []:
            with part.open(encoding="utf-8") as fh:
                out.extend(json.loads(line) for line in fh if line.strip())
        return out

    def api_requests(self) -> list[RecordedRequest]:
        """Recorded calls to the Kubernetes API (not inference, sink or discovery)."""
        return [r for r in self.requests if r.resource is not None]

    # -- auth ----------------------------------------------------------------------------------

    def _authenticators(self) -> list[JWTAuthenticator]:
        if self.jwt_authenticators is not None:
            return self.jwt_authenticators
        if self.oidc_issuer is not None:
            return [JWTAuthenticator(audiences=(self.audience,))]
        return []

    def _authenticate(self, authorization: str | None) -> str:
        if not authorization or not authorization.startswith("Bearer "):
            raise _Unauthorized
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            user = self.tokens.get(token)
        if user is not None:
            return user
        if token.count(".") != 2:
            raise _Unauthorized
        for authenticator in self._authenticators():
            user = self._verify_jwt(token, authenticator)
            if user is not None:
                return user
        raise _Unauthorized

    def _verify_jwt(self, token: str, auth: JWTAuthenticator) -> str | None:
        issuer = auth.issuer or (self.oidc_issuer.issuer if self.oidc_issuer else None)
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if issuer is None or unverified.get("iss") != issuer:
            return None  # another authenticator's issuer
        try:
            key = self._jwks_client(issuer).get_signing_key(str(header.get("kid", "")))
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
                audience=list(auth.audiences),
                issuer=issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError):
            raise _Unauthorized from None
        for claim, value in auth.required_claims.items():
            if claims.get(claim) != value:
                raise _Unauthorized
        subject = claims.get(auth.username_claim)
        if not isinstance(subject, str) or not subject:
            raise _Unauthorized
        return f"{auth.username_prefix}{subject}"

    def _jwks_client(self, issuer: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._jwks_clients.get(issuer)
        if client is None:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    jwks_uri = str(json.load(resp)["jwks_uri"])
            except (OSError, ValueError, KeyError) as exc:
                raise jwt.PyJWKClientError(f"cannot discover the issuer's JWKS: {exc}") from exc
            client = jwt.PyJWKClient(jwks_uri, timeout=5)
            with self._lock:
                self._jwks_clients[issuer] = client
        return client

    def allowed(
        self,
        user: str,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None = None,
    ) -> bool:
        """What RBAC says (admins may do everything)."""
        with self._lock:
            if user in self.admins:
                return True
            return any(
                rule.allows(verb, group, resource, namespace, name)
                for rule in self.rbac.get(user, [])
            )

    def _forbid(
        self, user: str, verb: str, kind: _Kind, resource: str, ns: str | None, name: str | None
    ) -> ApiError:
        what = f'{kind.qualified} "{name}"' if name else kind.qualified
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        message = (
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
            f'in API group "{kind.group}"{where}'
        )
        return ApiError(403, "Forbidden", message, kind.details(name or ""))

    # -- object bookkeeping --------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _now(self) -> str:
        return _rfc3339(self.clock())

    def _isvc_state(self, namespace: str, name: str) -> _Isvc:
        key = (namespace, name)
        if key not in self._isvcs:
            raise KeyError(f"no InferenceService {namespace}/{name}")
        return self._isvcs[key]

    def _managers(self, kind: str, namespace: str, name: str) -> dict[str, _Manager]:
        if kind == PLURAL:
            return self._isvc_state(namespace, name).managers
        return self._cm_managers.setdefault((namespace, name), {})

    def _render_managed(self, obj: dict[str, Any], managers: dict[str, _Manager]) -> None:
        entries = [
            {
                "manager": manager,
                "operation": m.operation,
                "apiVersion": obj.get("apiVersion", "v1"),
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(m.fields),
            }
            for manager, m in managers.items()
            if m.fields
        ]
        if obj.get("status") and obj.get("kind") == KIND:
            entries.append(
                {
                    "manager": "manager",
                    "operation": "Update",
                    "apiVersion": API_VERSION,
                    "time": obj["metadata"].get("creationTimestamp", self._now()),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {}},
                    "subresource": "status",
                }
            )
        obj["metadata"]["managedFields"] = entries

    def _take_ownership(
        self, managers: dict[str, _Manager], manager: str, before: Any, after: Any
    ) -> None:
        """An Update by `manager`: it owns what it changed; others lose those fields."""
        old, new = leaf_paths(before), leaf_paths(after)
        changed = {p for p, v in new.items() if old.get(p, object()) != v}
        removed = set(old) - set(new)
        for other in managers.values():
            other.fields -= changed | removed
        if changed:
            mine = managers.setdefault(manager, _Manager("Update", set(), self._now()))
            mine.fields |= changed
            mine.time = self._now()
        for key in [k for k, m in managers.items() if not m.fields]:
            del managers[key]

    # -- InferenceService writes -----------------------------------------------------------------

    def _prepare_isvc(
        self, namespace: str, name: str, body: dict[str, Any], validation: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Prune, default and validate an incoming InferenceService (422 on errors)."""
        if not isinstance(body, dict):
            raise _bad_request("the body of the request was not a JSON object")
        if body.get("apiVersion") not in (None, API_VERSION) or body.get("kind") not in (
            None,
            KIND,
        ):
            raise _bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({API_VERSION})"
                if body.get("apiVersion") != API_VERSION
                else f"Object 'Kind' is {body.get('kind')!r}, expected {KIND!r}"
            )
        body = {**body, "apiVersion": API_VERSION, "kind": KIND}
        metadata = body.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise _bad_request("metadata must be an object")
        if metadata.get("namespace") not in (None, "", namespace):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        metadata["namespace"] = namespace
        pruned, unknown = crd_schema.prune(body)
        if unknown and validation == "Strict":
            raise _bad_request(
                f"{KIND} in version {VERSION!r} cannot be handled as a {KIND}: strict decoding "
                f'error: unknown field "{unknown[0]}"'
            )
        warnings = [] if validation == "Ignore" else [f'unknown field "{u}"' for u in unknown]
        # decode (prune, default), mutating admission, then validation, as the API server does
        defaulted = crd_schema.apply_defaults(pruned)
        self._mutate(defaulted)
        defaulted = crd_schema.apply_defaults(crd_schema.prune(defaulted)[0])
        errors = crd_schema.field_errors(defaulted)
        if errors:
            raise ISVC.invalid(name or str(metadata.get("name", "")), errors)
        return defaulted, warnings

    def _mutate(self, obj: dict[str, Any]) -> None:
        """KServe's mutating webhook (inference_service_defaults.go DefaultInferenceService)."""
        meta = obj["metadata"]
        if not isinstance(meta.get("annotations") or {}, dict):
            return  # schema validation will say why
        annotations: dict[str, Any] = dict(meta.get("annotations") or {})
        mode = annotations.get(DEPLOYMENT_MODE)
        if mode in ("RawDeployment", "Serverless"):
            annotations[DEPLOYMENT_MODE] = _normal_mode(mode)
        elif mode is None and _normal_mode(self.default_deployment_mode) in (
            "Standard",
            "ModelMesh",
        ):
            annotations[DEPLOYMENT_MODE] = _normal_mode(self.default_deployment_mode)
        predictor = (obj.get("spec") or {}).get("predictor")
        if isinstance(predictor, dict) and mode != "ModelMesh":
            # setPredictorModelDefaults: a framework shorthand becomes `model`
            for framework in FRAMEWORKS:
                if isinstance(predictor.get(framework), dict):
                    spec = predictor.pop(framework)
                    if framework == "triton" and "protocolVersion" not in spec:
                        spec["protocolVersion"] = "v2"
                    predictor["model"] = {"modelFormat": {"name": framework}, **spec}
                    break
            model = predictor.get("model")
            if isinstance(model, dict):
                fmt = (model.get("modelFormat") or {}).get("name", "")
                if fmt in ("triton", "vllm") and "protocolVersion" not in model:
                    model["protocolVersion"] = "v2"
                if fmt:
                    annotations.setdefault("modelFormat", fmt)
            containers = predictor.get("containers")
            if (
                _implementations(predictor) == ["custom"]
                and isinstance(containers, list)
                and all(isinstance(c, dict) for c in containers)
            ):
                # CustomPredictor.Default: the container's name and default resources
                if len(containers) == 1 or not containers[0].get("name"):
                    containers[0]["name"] = "kserve-container"
                resources = containers[0].setdefault("resources", {})
                for kind, values in self.resource_defaults.items():
                    bucket = resources.setdefault(kind, {})
                    if isinstance(bucket, dict):
                        for key, value in values.items():
                            bucket.setdefault(key, value)
        if annotations:
            meta["annotations"] = annotations

    def _webhook(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """KServe's validating webhook (inference_service_validation.go), two of its rules:
        exactly one predictor implementation; the deployment mode is fixed once resolved."""
        predictor = (new.get("spec") or {}).get("predictor") or {}
        wanted_mode = (new["metadata"].get("annotations") or {}).get(DEPLOYMENT_MODE)
        if wanted_mode != "ModelMesh" and len(_implementations(predictor)) != 1:
            message = (
                f'admission webhook "{WEBHOOK}" denied the request: exactly one of '
                f"[{', '.join(_IMPLEMENTATION_FIELDS)}] must be specified in PredictorSpec"
            )
            raise ApiError(403, "Forbidden", message)
        if old is None:
            return
        mode = (old.get("status") or {}).get("deploymentMode")
        wanted = (new["metadata"].get("annotations") or {}).get(DEPLOYMENT_MODE)
        if mode and wanted is not None and _normal_mode(wanted) != _normal_mode(mode):
            message = (
                f'admission webhook "{WEBHOOK}" denied the request: update rejected: '
                f"deploymentMode cannot be changed from '{_normal_mode(mode)}' to '{wanted}'"
            )
            raise ApiError(403, "Forbidden", message)

    def _create_isvc(
        self,
        namespace: str,
        body: dict[str, Any],
        user: str,
        query: dict[str, list[str]],
        manager: str | None,
    ) -> Reply:
        name = str((body.get("metadata") or {}).get("name") or "")
        obj, warnings = self._prepare_isvc(namespace, name, body, _validation(query))
        name = obj["metadata"]["name"]
        if not name:
            # ObjectMeta validation (generateName is not served by the emulator)
            required = "name or generateName is required"
            raise ISVC.invalid(
                "",
                [
                    crd_schema.FieldError(
                        "metadata.name",
                        "FieldValueRequired",
                        f"metadata.name: Required value: {required}",
                    )
                ],
            )
        self._webhook(None, obj)
        if (PLURAL, namespace, name) in self.objects:
            raise ISVC.exists(name)
        now = self._now()
        meta = obj["metadata"]
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=now, resourceVersion="")
        obj.pop("status", None)
        if _dry_run(query):
            meta.pop("resourceVersion")
            return 201, obj, _warn(warnings)
        meta["resourceVersion"] = self._next_rv()
        state = _Isvc()
        self._isvcs[(namespace, name)] = state
        state.managers[manager or "unknown"] = _Manager("Update", set(leaf_paths(obj)), now)
        self.objects[(PLURAL, namespace, name)] = obj
        self.writes += 1
        answer = copy.deepcopy(obj)
        self._render_managed(answer, state.managers)
        self._reconcile(namespace, name)
        return 201, answer, _warn(warnings)

    def _update_isvc(
        self,
        namespace: str,
        name: str,
        new_body: dict[str, Any],
        query: dict[str, list[str]],
        manager: str,
        *,
        require_rv: bool,
        precondition: str | None,
        apply_fields: set[FieldPath] | None = None,
        force: bool = False,
    ) -> Reply:
        old = self.objects.get((PLURAL, namespace, name))
        if old is None:
            raise ISVC.not_found(name)
        if (new_body.get("metadata") or {}).get("name") not in (None, name):
            raise _bad_request(
                f"the name of the object ({new_body['metadata']['name']}) does not match the "
                f"name on the URL ({name})"
            )
        if require_rv and not precondition:
            raise ApiError(
                422,
                "Invalid",
                f'{ISVC.qualified} "{name}" is invalid: metadata.resourceVersion: Invalid value: '
                "0x0: must be specified for an update",
                {
                    "name": name,
                    "group": GROUP,
                    "kind": PLURAL,
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: 0x0: must be specified for an update",
                            "field": "metadata.resourceVersion",
                        }
                    ],
                },
            )
        self._spend_conflict(ISVC, name)
        if precondition and precondition != old["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ISVC.conflict(name)
        obj, warnings = self._prepare_isvc(namespace, name, new_body, _validation(query))
        meta = obj["metadata"]
        for key in ("uid", "creationTimestamp", "generation", "finalizers"):
            if key in old["metadata"]:
                meta[key] = copy.deepcopy(old["metadata"][key])
        meta["name"] = name
        meta.pop("managedFields", None)
        if "status" in old:
            obj["status"] = copy.deepcopy(old["status"])  # status subresource: ignored here
        else:
            obj.pop("status", None)
        self._webhook(old, obj)
        state = self._isvc_state(namespace, name)
        managers = copy.deepcopy(state.managers)
        if apply_fields is not None:
            self._check_apply(ISVC, name, managers, manager, old, obj, apply_fields, force)
        else:
            self._take_ownership(managers, manager, old, obj)
        if obj.get("spec") != old.get("spec"):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        unchanged = _without_rv(obj) == _without_rv(old)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _dry_run(query):
            answer = copy.deepcopy(obj)
            self._render_managed(answer, managers)
            return 200, answer, _warn(warnings)
        if not unchanged:
            meta["resourceVersion"] = self._next_rv()
            self.writes += 1
        state.managers = managers
        self.objects[(PLURAL, namespace, name)] = obj
        answer = copy.deepcopy(obj)
        self._render_managed(answer, managers)
        self._reconcile(namespace, name)
        return 200, answer, _warn(warnings)

    def _spend_conflict(self, kind: _Kind, name: str) -> None:
        if self.conflict_next > 0:
            self.conflict_next -= 1
            self.conflicts += 1
            raise kind.conflict(name)

    def _check_apply(
        self,
        kind: _Kind,
        name: str,
        managers: dict[str, _Manager],
        manager: str,
        old: dict[str, Any],
        new: dict[str, Any],
        applied: set[FieldPath],
        force: bool,
    ) -> None:
        """Server-side apply ownership: conflicts, forced takeovers, the applier's fields."""
        conflicts: list[tuple[str, FieldPath]] = []
        for other_name, other in managers.items():
            if other_name == manager:
                continue
            for path in sorted(applied & other.fields):
                if _get_path(old, path) != _get_path(new, path):
                    conflicts.append((other_name, path))
        if conflicts and not force:
            self.conflicts += 1
            dotted = [(m, "." + ".".join(p)) for m, p in conflicts]
            noun = "conflict" if len(dotted) == 1 else "conflicts"
            text = "; ".join(f'conflict with "{m}": {p}' for m, p in dotted)
            message = f"Apply failed with {len(dotted)} {noun}: {text}"
            details = kind.details(name)
            details["causes"] = [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{m}"',
                    "field": p,
                }
                for m, p in dotted
            ]
            raise ApiError(409, "Conflict", message, details)
        for other_name, other in managers.items():
            if other_name != manager:
                other.fields -= applied if force else {p for _, p in conflicts}
        managers[manager] = _Manager("Apply", set(applied), self._now())
        for key in [k for k, m in managers.items() if not m.fields]:
            del managers[key]

    def _apply_body(
        self,
        live: dict[str, Any] | None,
        applied: dict[str, Any],
        managers: dict[str, _Manager],
        manager: str,
    ) -> tuple[dict[str, Any], set[FieldPath]]:
        """The object a server-side apply produces from `live` (None: created)."""
        applied_fields = set(leaf_paths(applied))
        if live is None:
            return copy.deepcopy(applied), applied_fields
        result = copy.deepcopy(live)
        previous = managers.get(manager)
        if previous is not None and previous.operation == "Apply":
            others = set().union(*(m.fields for k, m in managers.items() if k != manager))
            for path in previous.fields - applied_fields - others:
                _del_path(result, path)
        for path, value in leaf_paths(applied).items():
            _set_path(result, path, value)
        for key in ("resourceVersion",):
            if key in (applied.get("metadata") or {}):
                result["metadata"][key] = applied["metadata"][key]
        return result, applied_fields

    def _patch(
        self,
        kind: _Kind,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        query: dict[str, list[str]],
        manager: str,
    ) -> Reply:
        key = (kind.plural, namespace, name)
        live = self.objects.get(key)
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == "application/apply-patch+yaml":
            field_manager = _first(query, "fieldManager")
            if not field_manager:
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                    "required for apply patch",
                    {
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            applied = _load_yaml(raw)
            if not isinstance(applied, dict):
                raise _bad_request("the apply patch must be an object")
            force = _first(query, "force") == "true"
            managers = copy.deepcopy(self._managers(kind.plural, namespace, name)) if live else {}
            result, fields = self._apply_body(live, applied, managers, field_manager)
            result.setdefault("metadata", {})["name"] = name
            if live is None:
                if kind is ISVC:
                    status, obj, headers = self._create_isvc(
                        namespace, result, manager, query, field_manager
                    )
                    if status == 201 and not _dry_run(query):
                        self._isvc_state(namespace, name).managers = {
                            field_manager: _Manager("Apply", fields, self._now())
                        }
                        obj = self.isvc(name, namespace)
                        self._render_managed(obj, self._isvc_state(namespace, name).managers)
                    return status, obj, headers
                reply = self._create_configmap(namespace, result, query, field_manager)
                if reply[0] == 201 and not _dry_run(query):
                    self._cm_managers[(namespace, name)] = {
                        field_manager: _Manager("Apply", fields, self._now())
                    }
                return reply
            precondition = (applied.get("metadata") or {}).get("resourceVersion")
            if kind is ISVC:
                return self._update_isvc(
                    namespace,
                    name,
                    result,
                    query,
                    field_manager,
                    require_rv=False,
                    precondition=precondition,
                    apply_fields=fields,
                    force=force,
                )
            return self._update_configmap(
                namespace, name, result, query, field_manager, fields, force
            )
        if live is None:
            raise kind.not_found(name)
        try:
            patch = json.loads(raw or b"null")
        except ValueError as exc:
            raise _bad_request(f"error decoding patch: {exc}") from None
        if ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                raise _bad_request(
                    "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
                )
            try:
                result = json_patch(_without_managed(live), patch)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise ApiError(
                    422,
                    "Invalid",
                    f'{kind.qualified} "{name}" is invalid: patch: Invalid value: '
                    f"{json.dumps(raw.decode(errors='replace'))}: {exc}",
                ) from None
            precondition = None
        elif ctype == "application/merge-patch+json" or (
            ctype == "application/strategic-merge-patch+json" and kind is CONFIGMAP
        ):
            if not isinstance(patch, dict):
                raise _bad_request("the merge patch must be a JSON object")
            result = merge_patch(_without_managed(live), patch)
            precondition = (patch.get("metadata") or {}).get("resourceVersion")
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if precondition is None:
            result.setdefault("metadata", {})["resourceVersion"] = live["metadata"][
                "resourceVersion"
            ]
            precondition = live["metadata"]["resourceVersion"]
        if kind is ISVC:
            return self._update_isvc(
                namespace, name, result, query, manager, require_rv=False, precondition=precondition
            )
        return self._update_configmap(namespace, name, result, query, manager, None, False)

    def _delete(
        self, kind: _Kind, namespace: str, name: str, query: dict[str, list[str]], raw: bytes
    ) -> Reply:
        key = (kind.plural, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise kind.not_found(name)
        options = _load_json(raw) if raw.strip() else {}
        if not isinstance(options, dict):
            raise _bad_request("the body of the request was not a JSON object")
        # DeleteOptions.preconditions: storage's Preconditions.Check, a Conflict naming both
        preconditions = options.get("preconditions") or {}
        meta = obj["metadata"]
        for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field_name)
            if wanted is not None and wanted != meta.get(field_name):
                storage_key = (
                    f"/registry/{kind.group}/{kind.plural}/{namespace}/{name}"
                    if kind.group
                    else f"/registry/{kind.plural}/{namespace}/{name}"
                )
                message = (
                    f'Operation cannot be fulfilled on {kind.qualified} "{name}": StorageError: '
                    f"invalid object, Code: 4, Key: {storage_key}, ResourceVersion: 0, "
                    f"AdditionalErrorMsg: Precondition failed: {label} in precondition: "
                    f"{wanted}, {label} in object meta: {meta.get(field_name)}"
                )
                raise ApiError(409, "Conflict", message, kind.details(name))
        if _dry_run(query):
            return 200, copy.deepcopy(obj), {}
        del self.objects[key]
        self.writes += 1
        answer = copy.deepcopy(obj)
        if kind is ISVC:
            self._isvcs.pop((namespace, name), None)
            answer["metadata"]["deletionTimestamp"] = self._now()
            answer["metadata"]["deletionGracePeriodSeconds"] = 0
        else:
            self._cm_managers.pop((namespace, name), None)
        self._collect_garbage()
        return 200, answer, {}

    # -- the KServe controller -------------------------------------------------------------------

    def _finish(self, rev: Revision) -> None:
        if rev.will_fail is not None:
            rev.state = "Failed"
            rev.message = rev.will_fail
        else:
            rev.state = "Ready"

    def _poll(self, namespace: str, name: str) -> None:
        """A read of the InferenceService: pending revisions move one step (ready_polls)."""
        state = self._isvcs.get((namespace, name))
        if state is None:
            return
        for rev in state.revisions:
            if rev.state == "Pending":
                if rev.polls_left <= 0:
                    self._finish(rev)
                else:
                    rev.polls_left -= 1
        if state.mode == "Standard" and not state.standard_ready:
            if state.standard_polls_left <= 0:
                state.standard_ready = True
            else:
                state.standard_polls_left -= 1
        self._reconcile(namespace, name)

    def _mode(self, obj: dict[str, Any], state: _Isvc) -> str:
        """utils.GetDeploymentMode: the status first, then the annotation, then the default."""
        if state.mode is None:
            wanted = (obj["metadata"].get("annotations") or {}).get(DEPLOYMENT_MODE)
            mode = _normal_mode(wanted) if wanted in _MODES else None
            state.mode = mode or _normal_mode(self.default_deployment_mode)
        return state.mode

    def _mode_name(self, mode: str) -> str:
        if self.legacy_mode_names:
            return {"Knative": "Serverless", "Standard": "RawDeployment"}.get(mode, mode)
        return mode

    def _template(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The Knative revision template KServe builds (components/predictor.go)."""
        predictor = copy.deepcopy(obj["spec"].get("predictor") or {})
        predictor.pop("canaryTrafficPercent", None)
        extra_annotations = predictor.pop("annotations", None) or {}
        extra_labels = predictor.pop("labels", None) or {}
        annotations = {
            k: v
            for k, v in (obj["metadata"].get("annotations") or {}).items()
            if k not in self.annotation_disallowed
        }
        annotations.update(
            {k: v for k, v in extra_annotations.items() if k not in self.annotation_disallowed}
        )
        labels = {**(obj["metadata"].get("labels") or {}), **extra_labels}
        labels = {k: v for k, v in labels.items() if k not in self.label_disallowed}
        return {"predictor": predictor, "annotations": annotations, "labels": labels}

    def _new_revision(self, name: str, state: _Isvc, template: dict[str, Any]) -> Revision:
        number = len(state.revisions) + 1
        rev = Revision(
            f"{name}-predictor-{number:05d}",
            copy.deepcopy(template),
            polls_left=self.ready_polls,
            created=self.clock(),
        )
        model_failure = next(
            (self.models[k].fails for k in rev.keys if k in self.models and self.models[k].fails),
            None,
        )
        if self.fail_next_revisions > 0:
            self.fail_next_revisions -= 1
            rev.will_fail = self.fail_message
        elif model_failure:
            rev.will_fail = model_failure
        digest = hashlib.sha256(rev.name.encode()).hexdigest()
        rev.pods = [f"{rev.name}-deployment-{digest[:10]}-{digest[10:15]}"]
        state.revisions.append(rev)
        return rev

    def _reconcile(self, namespace: str, name: str) -> None:
        """Run KServe's InferenceService reconcile until the status stops changing."""
        for _ in range(6):
            obj = self.objects.get((PLURAL, namespace, name))
            if obj is None:
                return
            before = copy.deepcopy(obj)
            self._reconcile_once(namespace, name, obj)
            self.reconciles += 1
            if obj == before:
                return
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def _reconcile_once(self, namespace: str, name: str, obj: dict[str, Any]) -> None:
        state = self._isvc_state(namespace, name)
        meta = obj["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
        status: dict[str, Any] = copy.deepcopy(obj.get("status") or {})
        mode = self._mode(obj, state)
        status["deploymentMode"] = self._mode_name(mode)
        conditions = _Conditions(status, TERMINAL, self._now())
        if conditions.get("Ready") is None:  # controller.go: InitializeConditions
            conditions.initialize()
        if mode == "ModelMesh":
            pass  # controller.go skips ModelMesh services (no transformer): conditions only
        elif mode == "Standard":
            self._reconcile_standard(obj, state, status, conditions)
        else:
            self._reconcile_knative(obj, state, status, conditions)
        obj["status"] = status

    def _reconcile_knative(
        self,
        obj: dict[str, Any],
        state: _Isvc,
        status: dict[str, Any],
        conditions: _Conditions,
    ) -> None:
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        ksvc = f"{name}-predictor"
        components = status.setdefault("components", {})
        comp: dict[str, Any] = copy.deepcopy(components.get("predictor") or {})
        # ksvc_reconciler.go createKnativeService: the desired traffic from the current status
        annotations = obj["metadata"].get("annotations") or {}
        tag_latest = annotations.get(TAG_ROUTING) == "true"
        canary = (obj["spec"].get("predictor") or {}).get("canaryTrafficPercent")
        rolled_out = comp.get("latestRolledoutRevision", "")
        latest: dict[str, Any] = {"latestRevision": True}
        if tag_latest:
            latest["tag"] = "latest"
        if canary is not None and rolled_out:
            traffic = [{**latest, "percent": int(canary)}]
            if int(canary) < 100:
                traffic.append(
                    {
                        "revisionName": rolled_out,
                        "latestRevision": False,
                        "percent": 100 - int(canary),
                        "tag": "prev",
                    }
                )
        else:
            traffic = [{**latest, "percent": 100}]
        template = self._template(obj)
        if state.template is None:
            state.ksvc_generation = 1
            self._new_revision(name, state, template)
        elif template != state.template:
            state.ksvc_generation += 1
            self._new_revision(name, state, template)
        elif traffic != state.traffic:
            state.ksvc_generation += 1
        state.template, state.traffic = template, traffic
        # the Knative Service's status (configuration and route)
        created = state.revisions[-1]
        ready = [r for r in state.revisions if r.state == "Ready"]
        latest_ready = ready[-1].name if ready else ""
        route_traffic: list[dict[str, Any]] = []
        for target in traffic:
            revision = latest_ready if target.get("latestRevision") else target["revisionName"]
            entry: dict[str, Any] = {
                "latestRevision": bool(target.get("latestRevision")),
                "percent": target["percent"],
                "revisionName": revision,
            }
            if target.get("tag"):
                entry["tag"] = target["tag"]
                entry["url"] = f"http://{target['tag']}-{ksvc}.{namespace}.{self.domain}"
            route_traffic.append(entry)
        if created.state == "Failed":
            config = {
                "status": "False",
                "reason": "RevisionFailed",
                "message": f'Revision "{created.name}" failed with message: {created.message}.',
            }
        elif created.state == "Pending":
            config = {"status": "Unknown"}
        else:
            config = {"status": "True"}
        if latest_ready:
            route = {"status": "True"}
        elif created.state == "Failed":
            route = {
                "status": "False",
                "reason": "RevisionMissing",
                "message": f'Configuration "{ksvc}" does not have any ready Revision.',
            }
            route_traffic = []
        else:
            route = {
                "status": "Unknown",
                "reason": "RevisionMissing",
                "message": f'Configuration "{ksvc}" is waiting for a Revision to become ready.',
            }
            route_traffic = []
        ready_cond = _service_ready(config, route)
        ksvc_ready = ready_cond["status"] == "True"
        # inference_service_status.go PropagateStatus
        comp["latestCreatedRevision"] = created.name
        per_revision: Counter[str] = Counter()
        for target in route_traffic:
            per_revision[target["revisionName"]] += int(target["percent"])
        for target in route_traffic:
            if target["revisionName"] == latest_ready and target["latestRevision"]:
                if comp.get("latestRolledoutRevision", "") != latest_ready:
                    if target["percent"] == 100:
                        comp["previousRolledoutRevision"] = comp.get("latestRolledoutRevision", "")
                        comp["latestRolledoutRevision"] = latest_ready
                elif (
                    latest_ready == created.name
                    and target["percent"] < 100
                    and per_revision[target["revisionName"]] == 100
                    and comp.get("previousRolledoutRevision")
                ):
                    comp["latestRolledoutRevision"] = comp["previousRolledoutRevision"]
        comp["latestReadyRevision"] = latest_ready
        comp = {k: v for k, v in comp.items() if v != ""}  # omitempty
        if ksvc_ready:
            comp["url"] = f"http://{ksvc}.{namespace}.{self.domain}"
            comp["address"] = {"url": f"http://{ksvc}.{namespace}.svc.cluster.local"}
        if route_traffic:
            comp["traffic"] = route_traffic
        else:
            comp.pop("traffic", None)
        conditions.set_from("PredictorReady", ready_cond)
        conditions.set_from("PredictorRouteReady", route)
        conditions.set_from("PredictorConfigurationReady", config)
        components["predictor"] = comp
        status["observedGeneration"] = (
            state.ksvc_generation
            if self.observed_generation == "knative"
            else obj["metadata"].get("generation", 1)
        )
        if conditions.get("Stopped") is None:
            conditions.mark_false("Stopped")
        for aggregate, source in (
            ("RoutesReady", "PredictorRouteReady"),
            ("LatestDeploymentReady", "PredictorConfigurationReady"),
        ):
            cond = conditions.get(source)
            if cond is not None and cond["status"] == "True":
                conditions.mark_true(aggregate)
            elif cond is None or cond["status"] == "Unknown":
                conditions.mark_unknown(aggregate, f"{source} not ready")
            else:
                conditions.mark_false(aggregate, f"{source} not ready")
        # ingress_reconciler.go: the URL once the predictor has one
        if comp.get("url"):
            status["url"] = f"http://{name}.{namespace}.{self.domain}"
            status["address"] = {"url": f"http://{name}.{namespace}.svc.cluster.local"}
            conditions.mark_true("IngressReady")
        status["modelStatus"] = _model_status(created.state, latest_ready == created.name)

    def _reconcile_standard(
        self,
        obj: dict[str, Any],
        state: _Isvc,
        status: dict[str, Any],
        conditions: _Conditions,
    ) -> None:
        """RawDeployment/Standard: a Deployment, no revisions, canaryTrafficPercent ignored."""
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        template = self._template(obj)
        if state.template is None:
            state.standard_generation = 1
            state.standard_polls_left = self.ready_polls
            digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
            state.standard_pod = f"{name}-predictor-{digest[:10]}-{digest[10:15]}"
        elif template != state.template:
            state.standard_generation += 1
        state.template = template
        comp: dict[str, Any] = {}
        if state.standard_ready:
            comp["url"] = f"http://{name}-predictor.{namespace}.svc.cluster.local"
            conditions.mark_true("PredictorReady")
        else:
            conditions.mark_false(
                "PredictorReady",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        status["components"] = {"predictor": comp}
        status["observedGeneration"] = (
            state.standard_generation
            if self.observed_generation == "knative"
            else obj["metadata"].get("generation", 1)
        )
        if conditions.get("Stopped") is None:
            conditions.mark_false("Stopped")
        if state.standard_ready:
            status["url"] = f"http://{name}-{namespace}.{self.domain}"
            status["address"] = {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"}
            conditions.mark_true("IngressReady")
        status["modelStatus"] = _model_status("Ready" if state.standard_ready else "Pending", True)

    # -- ConfigMaps and the garbage collector ----------------------------------------------------

    def _prepare_configmap(self, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _bad_request("the body of the request was not a JSON object")
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = "v1", "ConfigMap"
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") not in (None, "", namespace):
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        meta["namespace"] = namespace
        for key in ("data", "binaryData"):
            values = obj.get(key)
            if values is None:
                obj.pop(key, None)
                continue
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise _bad_request(
                    f'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot '
                    f"unmarshal into Go struct field ConfigMap.{key} of type string"
                )
        errors: list[crd_schema.FieldError] = []
        name = str(meta.get("name") or "")
        if not name:
            errors.append(
                crd_schema.FieldError(
                    "metadata.name",
                    "FieldValueRequired",
                    "metadata.name: Required value: name or generateName is required",
                )
            )
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            for part in ("apiVersion", "kind", "name", "uid"):
                if not (isinstance(ref, dict) and ref.get(part)):
                    where = f"metadata.ownerReferences[{i}].{part}"
                    errors.append(
                        crd_schema.FieldError(
                            where,
                            "FieldValueInvalid",
                            f'{where}: Invalid value: "": must not be empty',
                        )
                    )
        if errors:
            raise CONFIGMAP.invalid(name, errors)
        return obj

    def _create_configmap(
        self, namespace: str, body: Any, query: dict[str, list[str]], manager: str
    ) -> Reply:
        obj = self._prepare_configmap(namespace, body)
        meta = obj["metadata"]
        name = meta["name"]
        if ("configmaps", namespace, name) in self.objects:
            raise CONFIGMAP.exists(name)
        for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=self._now())
        if _dry_run(query):
            return 201, obj, {}
        meta["resourceVersion"] = self._next_rv()
        managers = {manager: _Manager("Update", set(leaf_paths(obj)), self._now())}
        self._cm_managers[(namespace, name)] = managers
        self.objects[("configmaps", namespace, name)] = obj
        self.writes += 1
        answer = copy.deepcopy(obj)
        self._render_managed(answer, managers)
        self._collect_garbage()
        return 201, answer, {}

    def _update_configmap(
        self,
        namespace: str,
        name: str,
        body: Any,
        query: dict[str, list[str]],
        manager: str,
        apply_fields: set[FieldPath] | None,
        force: bool,
    ) -> Reply:
        old = self.objects.get(("configmaps", namespace, name))
        if old is None:
            raise CONFIGMAP.not_found(name)
        if isinstance(body, dict) and (body.get("metadata") or {}).get("name") not in (None, name):
            raise _bad_request(
                f"the name of the object ({body['metadata']['name']}) does not match the name on "
                f"the URL ({name})"
            )
        self._spend_conflict(CONFIGMAP, name)
        if not isinstance(body, dict):
            raise _bad_request("the body of the request was not a JSON object")
        metadata = dict(body.get("metadata") or {})
        metadata["name"] = name
        obj = self._prepare_configmap(namespace, {**body, "metadata": metadata})
        meta = obj["metadata"]
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise CONFIGMAP.conflict(name)
        for key in ("uid", "creationTimestamp"):
            meta[key] = old["metadata"][key]
        meta.pop("managedFields", None)
        managers = copy.deepcopy(self._cm_managers.get((namespace, name), {}))
        if apply_fields is not None:
            self._check_apply(CONFIGMAP, name, managers, manager, old, obj, apply_fields, force)
        else:
            self._take_ownership(managers, manager, old, obj)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _dry_run(query):
            return 200, obj, {}
        if _without_rv(obj) != _without_rv(old):
            meta["resourceVersion"] = self._next_rv()
            self.writes += 1
        self._cm_managers[(namespace, name)] = managers
        self.objects[("configmaps", namespace, name)] = obj
        answer = copy.deepcopy(obj)
        self._render_managed(answer, managers)
        self._collect_garbage()
        return 200, answer, {}

    def _collect_garbage(self) -> None:
        """Delete ConfigMaps whose owners are all gone (matched by uid, as the GC does)."""
        live_uids = {
            (ns, obj["metadata"]["uid"])
            for (kind, ns, _), obj in self.objects.items()
            if kind == PLURAL
        }
        for key, obj in list(self.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if key[0] != "configmaps" or not refs:
                continue
            if all(
                ref.get("kind") == KIND and (key[1], ref.get("uid")) not in live_uids
                for ref in refs
            ):
                del self.objects[key]
                self._cm_managers.pop((key[1], key[2]), None)

    # -- inference and the logger ----------------------------------------------------------------

    def _split(self, obj: dict[str, Any]) -> dict[str, int]:
        state = self._isvcs.get((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        if state is not None and state.mode == "Standard":
            return {state.standard_pod: 100} if state.standard_ready else {}
        traffic = ((obj.get("status") or {}).get("components") or {}).get("predictor", {})
        split: Counter[str] = Counter()
        for target in traffic.get("traffic") or []:
            if int(target.get("percent") or 0) > 0:
                split[target["revisionName"]] += int(target["percent"])
        return dict(split)

    def _model(self, keys: list[str]) -> tuple[str, Model]:
        for key in keys:
            if key in self.models:
                return key, self.models[key]
        return keys[-1] if len(keys) > 1 else keys[0], Model()

    def _route_host(self, host: str) -> tuple[str, str, str | None] | None:
        """(namespace, name, tag) for a Host header naming a service, else None."""
        host = host.split(":")[0].lower()
        suffix = f".{self.domain}"
        if not host.endswith(suffix):
            return None
        parts = host[: -len(suffix)].split(".")
        if len(parts) != 2:
            return None
        service, namespace = parts
        tag = None
        for candidate in ("prev", "latest"):
            if service.startswith(f"{candidate}-") and service.endswith("-predictor"):
                tag, service = candidate, service[len(candidate) + 1 :]
        name = service.removesuffix("-predictor")
        return namespace, name, tag

    def invoke(
        self,
        name: str,
        body: dict[str, Any],
        namespace: str = "default",
        *,
        tag: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        """One OpenAI chat call to the InferenceService, routed and logged as KServe would."""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        arrival = self.clock()
        with self._lock:
            obj = self.objects.get((PLURAL, namespace, name))
            if obj is None:
                return 404, {"error": f"no InferenceService {namespace}/{name}"}, {}
            state = self._isvc_state(namespace, name)
            revision, pod = self._pick(obj, state, tag)
            if revision is None:
                return 503, {"error": "no ready revision"}, {}
            template = state.template if state.mode == "Standard" else revision.template
            assert template is not None
            keys = revision.keys
            key, model = self._model(keys)
            self.served[revision.name] += 1
            failing = model.error_rate > 0 and self._rng.random() < model.error_rate
        logger = (template.get("predictor") or {}).get("logger")
        content_type = headers.get("content-type", "application/json")
        event_id = headers.get("ce-id") or str(uuid.uuid4())
        raw_request = raw if raw is not None else json.dumps(body).encode()
        if logger and logger.get("mode", "all") in ("all", "request"):
            self._log(
                namespace,
                name,
                pod,
                REQUEST_EVENT,
                event_id,
                arrival,
                content_type,
                raw_request,
                logger,
                headers,
            )
        if model.latency:
            time.sleep(model.latency)
        answer = model.answer or self.default_answer(key)
        text: str | None = None
        status = 200
        reply_body: dict[str, Any]
        if failing:
            status = 500
            reply_body = {"error": "the model server failed (emulated by error_rate)"}
        else:
            try:
                text = answer(list(body.get("messages") or []))
            except Exception as exc:  # the model raised: the container answers 500
                status, reply_body = 500, {"error": f"model raised {exc!r}"}
            else:
                words = len(text.split())
                reply_body = {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(arrival),
                    "model": str(body.get("model") or name),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 1,
                        "completion_tokens": words,
                        "total_tokens": 1 + words,
                    },
                }
        if status == 200 and logger and logger.get("mode", "all") in ("all", "response"):
            self._log(
                namespace,
                name,
                pod,
                RESPONSE_EVENT,
                event_id,
                self.clock(),
                content_type,
                json.dumps(reply_body).encode(),
                logger,
                headers,
            )
        return status, reply_body, {"x-kserve-revision": revision.name}

    def _pick(
        self, obj: dict[str, Any], state: _Isvc, tag: str | None
    ) -> tuple[Revision | None, str]:
        if state.mode == "Standard":
            if not state.standard_ready or state.template is None:
                return None, ""
            rev = Revision(state.standard_pod, state.template, state="Ready")
            return rev, state.standard_pod
        by_name = {r.name: r for r in state.revisions}
        traffic = ((obj.get("status") or {}).get("components") or {}).get("predictor", {})
        if tag is not None:
            for target in traffic.get("traffic") or []:
                if target.get("tag") == tag:
                    rev = by_name[target["revisionName"]]
                    return rev, rev.pods[0]
            return None, ""
        split = self._split(obj)
        if not split:
            return None, ""
        pick = self._rng.uniform(0, sum(split.values()))
        chosen = list(split)[-1]
        for revision, percent in split.items():
            pick -= percent
            if pick <= 0:
                chosen = revision
                break
        rev = by_name[chosen]
        return rev, rev.pods[0]

    def _log(
        self,
        namespace: str,
        name: str,
        source: str,
        kind: str,
        event_id: str,
        when: float,
        content_type: str,
        payload: bytes,
        logger: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        wanted = {h.lower() for h in logger.get("metadataHeaders") or []}
        metadata = {k.title(): [v] for k, v in headers.items() if k in wanted}
        event = make_event(
            kind,
            event_id,
            source,
            when,
            namespace,
            name,
            content_type,
            payload,
            recorded=self.clock(),
            metadata=metadata,
        )
        self._file_events(namespace, name, [event])

    def _file_events(self, namespace: str, name: str, events: list[dict[str, Any]]) -> None:
        folder = self.event_dir(name, namespace)
        with self._capture_lock:
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / "part-00000.jsonl").open("a", encoding="utf-8") as fh:
                for event in events:
                    fh.write(json.dumps(event, separators=(",", ":")) + "\n")

    def _sink(self, headers: Any, raw: bytes) -> Reply:
        """POST /sink: a CloudEvent in binary (Ce-* headers) or structured mode, filed."""
        content_type = str(headers.get("Content-Type") or "")
        if content_type.startswith("application/cloudevents+json"):
            try:
                event = json.loads(raw)
            except ValueError:
                return 400, {"error": "not a structured CloudEvent"}, {}
        else:
            attrs = {k.lower()[3:]: v for k, v in headers.items() if k.lower().startswith("ce-")}
            if not {"id", "type", "source", "specversion"} <= set(attrs):
                return 400, {"error": "missing Ce-Id, Ce-Type, Ce-Source or Ce-Specversion"}, {}
            event = {**attrs}
            event["datacontenttype"] = content_type
            event.update(_event_data(content_type, raw))
        namespace = str(event.get("namespace") or "default")
        name = str(event.get("inferenceservicename") or "unknown")
        self._file_events(namespace, name, [event])
        return 202, {}, {}

    # -- bulk traffic ------------------------------------------------------------------------------

    def emit_traffic(
        self,
        name: str,
        n: int,
        namespace: str = "default",
        *,
        split: dict[str, float] | None = None,
        prompts: list[str] | None = None,
        start: float | None = None,
        interval: float = 0.01,
        parquet: bool = False,
        part_rows: int = 1_000_000,
        out_dir: Path | None = None,
    ) -> Path:
        """Write `n` logged request/response pairs of `name`, as KServe's agent would log them,
        and return the folder (new part files after any already there). The revision of each
        pair follows `split` ({revision: weight}; default: the traffic as routed now); each
        revision answers with its registered model (called once per distinct prompt), its
        `error_rate` drops responses (a failed call logs no response), its `latency` spaces
        response from request. Requests are `interval` s apart from `start` (default: now -
        n * interval). JSON lines (through DuckDB) unless `parquet`; within a part, requests
        come before responses. Ids are unique across calls (numbered on from the last
        call's). Vectorised: 10 M pairs take seconds, not minutes."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        with self._lock:
            obj = self.objects.get((PLURAL, namespace, name))
            state = self._isvcs.get((namespace, name))
            if obj is None or state is None:
                raise KeyError(f"no InferenceService {namespace}/{name}")
            weights = dict(split) if split is not None else dict(self._split(obj))
            if not weights:
                raise ValueError(f"{namespace}/{name} serves no traffic")
            revisions = {r.name: r for r in state.revisions}
            if state.mode == "Standard" and state.template is not None:
                revisions[state.standard_pod] = Revision(state.standard_pod, state.template)
            first_id = self._emitted
            self._emitted += n
        names = list(weights)
        prompts = prompts or [f"question {i}" for i in range(20)]
        sources, latencies, error_rates = [], [], []
        replies = np.empty((len(names), len(prompts)), dtype=object)
        for r, rev_name in enumerate(names):
            rev = revisions.get(rev_name)
            key, model = self._model(rev.keys if rev is not None else [rev_name])
            answer = model.answer or self.default_answer(key)
            sources.append(rev.pods[0] if rev is not None and rev.pods else rev_name)
            latencies.append(model.latency)
            error_rates.append(model.error_rate)
            for i, prompt in enumerate(prompts):
                text = answer([{"role": "user", "content": prompt}])
                replies[r, i] = json.dumps(
                    {
                        "object": "chat.completion",
                        "model": name,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                )
        requests = np.array(
            [
                json.dumps({"model": name, "messages": [{"role": "user", "content": p}]})
                for p in prompts
            ],
            dtype=object,
        )
        probabilities = np.array([float(weights[k]) for k in names])
        probabilities = probabilities / probabilities.sum()
        seed = hashlib.sha256(f"{self.seed}/{namespace}/{name}/{n}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(seed[:8], "big"))
        folder = out_dir or self.event_dir(name, namespace)
        folder.mkdir(parents=True, exist_ok=True)
        part = self._next_part(folder)
        begin = self.clock() - n * interval if start is None else start
        request_texts = pa.array(list(requests), type=pa.string())
        reply_texts = pa.array(list(replies.reshape(-1)), type=pa.string())
        source_texts = pa.array(sources, type=pa.string())
        for offset in range(0, n, part_rows):
            count = min(part_rows, n - offset)
            index = np.arange(offset, offset + count, dtype=np.int64)
            rev_index = rng.choice(len(names), size=count, p=probabilities)
            prompt_index = rng.integers(0, len(prompts), size=count)
            ok = ~(rng.random(count) < np.array(error_rates)[rev_index])
            asked = np.round((begin + index * interval) * 1e6).astype(np.int64)
            answered = asked + np.round(np.array(latencies)[rev_index] * 1e6).astype(np.int64)
            # uuid-shaped ids from the pair's number, built by Arrow, not by a Python loop
            hex_ids = pc.utf8_lpad(pc.cast(pa.array(first_id + index), pa.string()), 12, "0")
            ids = pc.binary_join_element_wise("00000000-0000-4000-8000-", hex_ids, "")
            reply_index = rev_index * len(prompts) + prompt_index
            columns = {
                REQUEST_EVENT: (asked, request_texts.take(pa.array(prompt_index)), None),
                RESPONSE_EVENT: (answered, reply_texts.take(pa.array(reply_index)), ok),
            }
            tables = []
            for kind, (micros, data, mask) in columns.items():
                keep = pa.array(mask) if mask is not None else None
                rows = count if mask is None else int(mask.sum())

                def column(values: Any, keep: Any = keep) -> Any:
                    return values if keep is None else values.filter(keep)

                # "2026-09-01 12:00:00.123456" (Arrow's cast, fast) -> RFC 3339 with a Z
                stamps = pc.cast(column(pa.array(micros, type=pa.timestamp("us"))), pa.string())
                stamps = pc.replace_substring(stamps, " ", "T", max_replacements=1)
                text = pc.binary_join_element_wise(stamps, "Z", "")

                def const(value: str, rows: int = rows) -> Any:
                    return pa.repeat(pa.scalar(value, pa.string()), rows)

                tables.append(
                    pa.table(
                        {
                            "specversion": const("1.0"),
                            "id": column(ids),
                            "type": const(kind),
                            "source": column(source_texts.take(pa.array(rev_index))),
                            "time": text,
                            "datacontenttype": const("application/json"),
                            "recordedtime": text,
                            "inferenceservicename": const(name),
                            "namespace": const(namespace),
                            "component": const("predictor"),
                            "endpoint": const(""),
                            "metadata": const("{}"),
                            "data": column(data),
                        }
                    )
                )
            target = folder / f"part-{part:05d}.{'parquet' if parquet else 'jsonl'}"
            _write_table(pa.concat_tables(tables), target, parquet=parquet)
            part += 1
        return folder

    def _next_part(self, folder: Path) -> int:
        existing = [int(p.name[5:10]) for p in folder.glob("part-*.*") if p.name[5:10].isdigit()]
        return max(existing, default=-1) + 1

    # -- HTTP dispatch -----------------------------------------------------------------------------

    def _discovery(self, path: str) -> Any:
        if path == "/version":
            return KUBE_VERSION
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.host.removeprefix("http://")}
                ],
            }
        if path == "/apis":
            groups = [(GROUP, VERSION), ("authorization.k8s.io", "v1")]
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
                        "preferredVersion": {
                            "groupVersion": f"{group}/{version}",
                            "version": version,
                        },
                    }
                    for group, version in groups
                ],
            }
        resources = {
            "/api/v1": ("v1", [("configmaps", "ConfigMap", True, "cm")]),
            f"/apis/{GROUP}/{VERSION}": (
                API_VERSION,
                [(PLURAL, KIND, True, "isvc"), (f"{PLURAL}/status", KIND, True, "")],
            ),
            "/apis/authorization.k8s.io/v1": (
                "authorization.k8s.io/v1",
                [("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, "")],
            ),
        }.get(path)
        if resources is None:
            return None
        group_version, items = resources
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": [
                {
                    "name": plural,
                    "singularName": "" if "/" in plural else kind.lower(),
                    "namespaced": namespaced,
                    "kind": kind,
                    "verbs": (
                        ["create"]
                        if kind == "SelfSubjectAccessReview"
                        else ["get", "patch", "update"]
                        if "/" in plural
                        else ["create", "delete", "get", "list", "patch", "update"]
                    ),
                    **({"shortNames": [short]} if short else {}),
                }
                for plural, kind, namespaced, short in items
            ],
        }

    def _ssar(self, user: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            raise _bad_request("a SelfSubjectAccessReview needs a spec")
        attrs = body["spec"].get("resourceAttributes") or {}
        resource = str(attrs.get("resource", ""))
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"
        allowed = self.allowed(
            user,
            str(attrs.get("verb", "")),
            str(attrs.get("group", "")),
            resource,
            attrs.get("namespace") or None,
            attrs.get("name") or None,
        )
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = (
                f'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole '
                f'"cluster-admin" to User "{user}"'
                if user in self.admins
                else f'RBAC: allowed by RoleBinding "emulator" of Role "emulator" to User "{user}"'
            )
        answer = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": body["spec"],
            "status": status,
        }
        return 201, answer, {}

    def _list(self, kind: _Kind, namespace: str, query: dict[str, list[str]]) -> Reply:
        selector = _first(query, "labelSelector") or ""
        field_selector = _first(query, "fieldSelector") or ""
        items = []
        for (plural, ns, name), obj in sorted(self.objects.items()):
            if plural != kind.plural or ns != namespace:
                continue
            if kind is ISVC:
                self._poll(ns, name)
                obj = self.objects[(plural, ns, name)]
            if not _labels_match(obj["metadata"].get("labels") or {}, selector):
                continue
            if field_selector and field_selector != f"metadata.name={name}":
                continue
            item = copy.deepcopy(obj)
            self._render_managed(item, self._managers(plural, ns, name))
            items.append(item)
        list_kind = f"{kind.kind}List"
        api_version = API_VERSION if kind is ISVC else "v1"
        return (
            200,
            {
                "apiVersion": api_version,
                "kind": list_kind,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            },
            {},
        )

    def _get(self, kind: _Kind, namespace: str, name: str) -> Reply:
        if kind is ISVC and (PLURAL, namespace, name) in self.objects:
            self._poll(namespace, name)
        obj = self.objects.get((kind.plural, namespace, name))
        if obj is None:
            raise kind.not_found(name)
        answer = copy.deepcopy(obj)
        self._render_managed(answer, self._managers(kind.plural, namespace, name))
        return 200, answer, {}

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        raw: bytes,
        user: str,
        record: dict[str, Any],
    ) -> Reply:
        match = _API_PATH.match(path)
        if match is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group = match["group"] or ""
        resource, name, sub, namespace = (
            match["resource"],
            match["name"],
            match["sub"],
            match["ns"],
        )
        if group == "authorization.k8s.io" and resource == "selfsubjectaccessreviews":
            record.update(verb="create", resource=resource)
            if method != "POST":
                raise ApiError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            return self._ssar(user, _load_json(raw))
        if (group, resource) == (GROUP, PLURAL) and match["version"] == VERSION:
            kind = ISVC
        elif group == "" and resource == "configmaps":
            kind = CONFIGMAP
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub not in (None, "status") or (sub == "status" and kind is not ISVC):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if _first(query, "watch") in ("true", "1"):
            raise _bad_request("watch is not served by the emulator; poll with GET")
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method)
        if (
            verb is None
            or (verb == "create" and name)
            or (verb in ("update", "patch", "delete") and not name)
        ):
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        rbac_resource = f"{resource}/{sub}" if sub else resource
        record.update(verb=verb, resource=rbac_resource)
        if not self.allowed(user, verb, group, rbac_resource, namespace, name):
            raise self._forbid(user, verb, kind, rbac_resource, namespace, name)
        if sub == "status" and method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the emulator serves only GET on /status")
        manager = _first(query, "fieldManager") or _manager_from(headers.get("User-Agent"))
        if method == "GET":
            return self._get(kind, namespace, name) if name else self._list(kind, namespace, query)
        if method == "DELETE":
            return self._delete(kind, namespace, name, query, raw)
        if method == "PATCH":
            return self._patch(
                kind, namespace, name, str(headers.get("Content-Type") or ""), raw, query, manager
            )
        body = _load_json(raw)
        if method == "POST":
            if kind is ISVC:
                return self._create_isvc(namespace, body, user, query, manager)
            return self._create_configmap(namespace, body, query, manager)
        # PUT
        if not isinstance(body, dict):
            raise _bad_request("the body of the request was not a JSON object")
        if kind is ISVC:
            rv = (body.get("metadata") or {}).get("resourceVersion")
            return self._update_isvc(
                namespace, name, body, query, manager, require_rv=True, precondition=rv
            )
        return self._update_configmap(namespace, name, body, query, manager, None, False)

    def _handle(self, method: str, raw_path: str, headers: Any, raw: bytes) -> Reply:
        parts = urlsplit(raw_path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        record: dict[str, Any] = {"verb": None, "resource": None, "user": None}
        status, body, out_headers = self._route(method, path, query, headers, raw, record)
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method,
                    path,
                    query,
                    record["user"],
                    record["verb"],
                    record["resource"],
                    status,
                    headers.get("Content-Type"),
                    headers.get("User-Agent"),
                )
            )
        return status, body, out_headers

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        raw: bytes,
        record: dict[str, Any],
    ) -> Reply:
        host_route = self._route_host(str(headers.get("Host") or ""))
        if host_route is not None or path.startswith("/serving/"):
            return self._inference(method, path, headers, raw, host_route)
        if path == "/sink":
            if method != "POST":
                return 405, {"error": "POST CloudEvents here"}, {}
            return self._sink(headers, raw)
        try:
            if path == "/version" and method == "GET":
                return 200, self._discovery(path), {}
            try:
                user = self._authenticate(headers.get("Authorization"))
            except _Unauthorized:
                raise ApiError(401, "Unauthorized", "Unauthorized") from None
            record["user"] = user
            with self._lock:
                if method == "GET":
                    found = self._discovery(path)
                    if found is not None:
                        return 200, found, {}
                return self._api(method, path, query, headers, raw, user, record)
        except ApiError as err:
            return err.reply()

    def _inference(
        self,
        method: str,
        path: str,
        headers: Any,
        raw: bytes,
        host_route: tuple[str, str, str | None] | None,
    ) -> Reply:
        tag = None
        if host_route is not None:
            namespace, name, tag = host_route
            rest = path
        else:
            pieces = path.split("/", 4)
            if len(pieces) < 4:
                return 404, {"error": "use /serving/{namespace}/{name}/..."}, {}
            namespace, name = pieces[2], pieces[3]
            rest = "/" + (pieces[4] if len(pieces) > 4 else "")
        if method != "POST" or rest not in ("/openai/v1/chat/completions", "/v1/chat/completions"):
            return 404, {"error": f"no route {method} {rest}"}, {}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"error": "the body is not JSON"}, {}
        if not isinstance(body, dict):
            return 400, {"error": "the body must be a JSON object"}, {}
        return self.invoke(
            name,
            body,
            namespace,
            tag=tag,
            headers=dict(headers.items()),
            raw=raw,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        if self.capture_dir is None:
            self.capture_dir = Path(tempfile.mkdtemp(prefix="fake-kubernetes-"))
            self._owns_capture_dir = True
        self.capture_dir = Path(self.capture_dir)
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                status, body, headers = fake._handle(method, self.path, self.headers, raw)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-kubernetes",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(OSError):
                self.server.shutdown()
                self.server.server_close()
        if self._owns_capture_dir and self.capture_dir is not None:
            shutil.rmtree(self.capture_dir, ignore_errors=True)

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- helpers

_MODES = ("Knative", "Serverless", "Standard", "RawDeployment", "ModelMesh")
FRAMEWORKS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)
_IMPLEMENTATION_FIELDS = (
    "SKLearn",
    "XGBoost",
    "Tensorflow",
    "PyTorch",
    "Triton",
    "ONNX",
    "HuggingFace",
    "PMML",
    "LightGBM",
    "Paddle",
    "Model",
    "PodSpec",
)


def _implementations(predictor: dict[str, Any]) -> list[str]:
    """PredictorSpec.GetImplementations: frameworks and model, then a custom container (one
    per container named kserve-container, else the first container when nothing else)."""
    found = [k for k in (*FRAMEWORKS, "model") if predictor.get(k)]
    containers = predictor.get("containers")
    if not isinstance(containers, list):
        containers = []
    named = [c for c in containers if isinstance(c, dict) and c.get("name") == "kserve-container"]
    found.extend("custom" for _ in named)
    if containers and not found:
        found.append("custom")
    return found


def _normal_mode(mode: str) -> str:
    return {"Serverless": "Knative", "RawDeployment": "Standard"}.get(mode, mode)


def _service_ready(config: dict[str, Any], route: dict[str, Any]) -> dict[str, Any]:
    """The Knative Service's Ready from ConfigurationsReady then RoutesReady (ConditionSet)."""
    if route["status"] == "False":
        return route
    if config["status"] == "False":
        return config
    if route["status"] == "Unknown":
        return route
    if config["status"] == "Unknown":
        return config
    return {"status": "True"}


def _model_status(state: str, latest_is_ready: bool) -> dict[str, Any]:
    if state == "Failed":
        return {
            "transitionStatus": "BlockedByFailedLoad",
            "states": {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"},
            "copies": {"failedCopies": 0, "totalCopies": 1},
        }
    if state == "Pending" or not latest_is_ready:
        return {
            "transitionStatus": "InProgress",
            "states": {"activeModelState": "Loaded", "targetModelState": "Pending"},
            "copies": {"failedCopies": 0, "totalCopies": 1},
        }
    return {
        "transitionStatus": "UpToDate",
        "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
        "copies": {"failedCopies": 0, "totalCopies": 1},
    }


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _dry_run(query: dict[str, list[str]]) -> bool:
    return "All" in (query.get("dryRun") or [])


def _validation(query: dict[str, list[str]]) -> str:
    return _first(query, "fieldValidation") or "Warn"


def _warn(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {
        "Warning": ", ".join(f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"' for w in warnings)
    }


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    out["metadata"].pop("managedFields", None)
    return out


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].pop("managedFields", None)
    return out


def _manager_from(user_agent: str | None) -> str:
    """The default field manager: the User-Agent's product (before the first '/')."""
    return (user_agent or "unknown").split("/")[0].strip() or "unknown"


def _load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise _bad_request(f"the body of the request could not be decoded: {exc}") from None


def _load_yaml(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise _bad_request(f"error decoding YAML: {exc}") from None


def _labels_match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _event_data(content_type: str, payload: bytes) -> dict[str, Any]:
    """CloudEvents JSON format: `data` for JSON content, else `data_base64`."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or media == "text/json":
        try:
            return {"data": json.loads(payload)}
        except ValueError:
            pass
    if media.startswith("text/"):
        return {"data": payload.decode("utf-8", errors="replace")}
    import base64

    return {"data_base64": base64.b64encode(payload).decode()}


def make_event(
    kind: str,
    event_id: str,
    source: str,
    when: float,
    namespace: str,
    name: str,
    content_type: str,
    payload: bytes | str,
    *,
    recorded: float | None = None,
    metadata: dict[str, list[str]] | None = None,
    component: str = "predictor",
    endpoint: str = "",
    parquet: bool = False,
) -> dict[str, Any]:
    """One logged CloudEvent in structured JSON form (FACTS.md §4). With `parquet`, `data` is
    the JSON text (Parquet needs one type per column)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "type": kind,
        "source": source,
        "time": _rfc3339(when, micros=True),
        "datacontenttype": content_type,
        "recordedtime": _rfc3339(recorded if recorded is not None else when, micros=True),
        "inferenceservicename": name,
        "namespace": namespace,
        "component": component,
        "endpoint": endpoint,
        "metadata": json.dumps(metadata or {}, separators=(",", ":")),
    }
    if parquet:
        event["data"] = payload if isinstance(payload, str) else payload.decode()
    else:
        data = payload.encode() if isinstance(payload, str) else payload
        event.update(_event_data(content_type, data))
    return event


def revision_of(source: str) -> str | None:
    """The Knative revision a logged event came from: its pod name up to `-deployment-`."""
    match = _REVISION_OF_SOURCE.match(source)
    return match.group(1) if match else None


def write_events(path: Path, events: list[dict[str, Any]], *, parquet: bool = False) -> Path:
    """Write events as JSON lines (append) or as one Parquet file of EVENT_COLUMNS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not parquet:
        with path.open("a", encoding="utf-8") as fh:
            for event in events:
                fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        column: [
            event.get(column)
            if column != "data" or isinstance(event.get(column), str | None)
            else json.dumps(event.get(column))
            for event in events
        ]
        for column in EVENT_COLUMNS
    }
    table = pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})
    pq.write_table(table, path)
    return path


def _write_table(table: Any, path: Path, *, parquet: bool) -> None:
    """An Arrow table of EVENT_COLUMNS to Parquet, or to JSON lines with `data` embedded as
    JSON (DuckDB writes it: fast, and the same JSON a sink would write)."""
    if parquet:
        import pyarrow.parquet as pq

        pq.write_table(table, path)
        return
    import duckdb

    con = duckdb.connect()
    try:
        con.register("events", table)
        target = str(path).replace("'", "''")
        con.execute(
            f"COPY (SELECT * REPLACE (data::JSON AS data) FROM events) TO '{target}' (FORMAT JSON)"
        )
    finally:
        con.close()


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeKubernetes]:
    """`with running(ready_polls=0) as kube:` a started emulator, stopped after."""
    fake = FakeKubernetes(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

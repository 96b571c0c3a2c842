"""The Kubernetes API calls of the KServe backend, through the official `kubernetes` client:
the InferenceService (read, JSON merge patch with its resourceVersion, create, and delete by
uid when a created one never got ready), the rollout-state ConfigMap, and
SelfSubjectAccessReviews. Every refusal becomes one of our errors here: a 401 or 403 exits 3
with its fix, a 422 (the API server's schema) exits 2, the rest 4.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from genai_gate.backends.kserve.auth import (
    CREATING,
    NEEDED,
    READ_ONLY,
    forbidden,
    unauthorized,
)
from genai_gate.backends.kserve.isvc import GROUP, PLURAL, VERSION, Service
from genai_gate.backends.kserve.state import RolloutState, configmap_manifest, configmap_name
from genai_gate.errors import ConfigError, GateError, ServiceError

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException

    from genai_gate.backends.kserve.session import ClusterSession

# one API call; the waits are bounded by wait-timeout, not by this
CALL_TIMEOUT = 30.0


class DeployError(ServiceError):
    title = "Deploy failed"


class Conflict(Exception):
    """A 409 on a write: the object changed since it was read."""


def status_message(exc: ApiException) -> str:
    """The Status object's message (the API server's own words), else the HTTP reason."""
    try:
        doc = json.loads(exc.body or "")
    except (TypeError, ValueError):
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])[:600]
    return f"{exc.status} {exc.reason or ''}".strip()


class Cluster:
    """One namespace of one cluster, through the run's one signed-in client."""

    def __init__(self, session: ClusterSession) -> None:
        from kubernetes.client import AuthorizationV1Api, CoreV1Api, CustomObjectsApi

        connection = session.connection()
        self.session = session
        self.connection = connection
        self.auth = session.auth
        self.namespace = connection.namespace
        self.custom = CustomObjectsApi(connection.client)
        self.core = CoreV1Api(connection.client)
        self.authz = AuthorizationV1Api(connection.client)
        self._checked = session.checked

    @contextlib.contextmanager
    def _errors(self, what: str, verb: str, group: str, resource: str) -> Iterator[None]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            yield
        except GateError:
            raise
        except ApiException as exc:
            message = status_message(exc)
            if exc.status == 401:
                oidc = self.connection.oidc
                raise unauthorized(
                    self.auth, oidc.audience if oidc else None, oidc.claims() if oidc else {}
                ) from None
            if exc.status == 403:
                raise forbidden([(verb, group, resource)], self.namespace, message) from None
            if exc.status == 409:
                raise Conflict(message) from None
            if exc.status == 422:
                raise ConfigError(
                    f"the API server refused {what}: {message}",
                    fix="The InferenceService's schema does not accept the predictor the config "
                    "asks for. Correct predictor: (or storage-uri:, predictor-image:).",
                ) from None
            raise DeployError(f"{what} failed: {message}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            host = self.connection.client.configuration.host
            raise DeployError(
                f"{what} failed: cannot reach the API server at {host} ({_first_line(exc)})",
                fix="Check kube-server (or the kubeconfig's server), and that the runner can "
                "reach the cluster.",
            ) from None

    # ------------------------------------------------------------ the InferenceService

    def read_service(self, name: str) -> Service | None:
        from kubernetes.client.exceptions import ApiException

        with self._errors(f"reading InferenceService {name}", "get", GROUP, PLURAL):
            try:
                doc = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=CALL_TIMEOUT
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
        return Service.from_manifest(_as_dict(doc))

    def patch_service(self, name: str, body: Mapping[str, Any]) -> Service:
        """A JSON merge patch; `body` carries the resourceVersion it was computed against,
        so a stale one is a 409 (Conflict), never a silent overwrite."""
        with self._errors(f"updating InferenceService {name}", "patch", GROUP, PLURAL):
            doc = self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                dict(body),
                _content_type="application/merge-patch+json",
                _request_timeout=CALL_TIMEOUT,
            )
        return Service.from_manifest(_as_dict(doc))

    def create_service(self, manifest: Mapping[str, Any]) -> Service:
        """POST a new InferenceService; one of that name already there is a Conflict."""
        name = str(manifest["metadata"]["name"])
        with self._errors(f"creating InferenceService {name}", "create", GROUP, PLURAL):
            doc = self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                dict(manifest),
                _request_timeout=CALL_TIMEOUT,
            )
        return Service.from_manifest(_as_dict(doc))

    def delete_service(self, name: str, uid: str) -> bool:
        """Delete the InferenceService with this uid (a precondition: never one someone else
        created since under the same name); what it owns (the rollout ConfigMap) goes with
        it. False when it was gone already."""
        from kubernetes.client import V1DeleteOptions, V1Preconditions
        from kubernetes.client.exceptions import ApiException

        options = V1DeleteOptions(
            preconditions=V1Preconditions(uid=uid), propagation_policy="Background"
        )
        with self._errors(f"deleting InferenceService {name}", "delete", GROUP, PLURAL):
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    name,
                    body=options,
                    _request_timeout=CALL_TIMEOUT,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    # ------------------------------------------------------------ the rollout state

    def read_state(self, name: str) -> RolloutState:
        from kubernetes.client.exceptions import ApiException

        cm_name = configmap_name(name)
        with self._errors(f"reading ConfigMap {cm_name}", "get", "", "configmaps"):
            try:
                cm = self.core.read_namespaced_config_map(
                    cm_name, self.namespace, _request_timeout=CALL_TIMEOUT
                )
            except ApiException as exc:
                if exc.status == 404:
                    return RolloutState()
                raise
        version = cm.metadata.resource_version if cm.metadata else ""
        return RolloutState.from_data(cm.data, version or "")

    def write_state(self, svc: Service, state: RolloutState) -> RolloutState:
        """Create or replace the ConfigMap (replacing carries the resourceVersion read)."""
        from kubernetes.client import V1ConfigMap

        body = V1ConfigMap.from_dict(configmap_manifest(svc, state))
        if body is None:  # from_dict answers None only for None
            raise DeployError("the kubernetes client could not build the ConfigMap")
        cm_name = configmap_name(svc.name)
        if state.resource_version:
            with self._errors(f"updating ConfigMap {cm_name}", "update", "", "configmaps"):
                cm = self.core.replace_namespaced_config_map(
                    cm_name, self.namespace, body, _request_timeout=CALL_TIMEOUT
                )
        else:
            with self._errors(f"creating ConfigMap {cm_name}", "create", "", "configmaps"):
                cm = self.core.create_namespaced_config_map(
                    self.namespace, body, _request_timeout=CALL_TIMEOUT
                )
        version = cm.metadata.resource_version if cm.metadata else ""
        return RolloutState.from_data(cm.data, version or "")

    # ------------------------------------------------------------ what we may do

    def preflight(self, name: str, *, write: bool, create: bool = False) -> None:
        """SelfSubjectAccessReviews for every verb the command needs, before any change
        (with `create`, also those of creating the InferenceService): a missing one exits 3
        naming it, with a Role that grants it."""
        wanted = ["read"] if not write else ["write", "create"] if create else ["write"]
        done = set(self._checked) | ({"read"} if "write" in self._checked else set())
        if all(w in done for w in wanted):
            return
        from kubernetes.client import (
            V1ResourceAttributes,
            V1SelfSubjectAccessReview,
            V1SelfSubjectAccessReviewSpec,
        )

        needed: dict[str, Mapping[tuple[str, str], tuple[str, ...]]] = {
            "read": READ_ONLY,
            "write": NEEDED,
            "create": CREATING,
        }
        checks = [
            (group, resource, verb)
            for w in wanted
            if w not in done
            for (group, resource), verbs in needed[w].items()
            for verb in verbs
        ]
        denied: list[tuple[str, str, str]] = []
        for group, resource, verb in checks:
            # create is authorized without a name (the object has none yet)
            named = configmap_name(name) if resource == "configmaps" else name
            attributes = V1ResourceAttributes(
                namespace=self.namespace,
                verb=verb,
                group=group,
                resource=resource,
                name=None if verb == "create" else named,
            )
            review = V1SelfSubjectAccessReview(
                api_version="authorization.k8s.io/v1",
                kind="SelfSubjectAccessReview",
                spec=V1SelfSubjectAccessReviewSpec(resource_attributes=attributes),
            )
            with self._errors(
                "checking permissions",
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
            ):
                answer = self.authz.create_self_subject_access_review(
                    review, _request_timeout=CALL_TIMEOUT
                )
            if not (answer.status and answer.status.allowed):
                denied.append((verb, group, resource))
        if denied:
            raise forbidden(denied, self.namespace)
        self._checked.update(wanted)


def _as_dict(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict):
        return doc
    raise DeployError(f"the API server answered {type(doc).__name__}, not an object")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__

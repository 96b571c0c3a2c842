"""Signing in to the Kubernetes API server, with a named fix for each refusal.

Three ways, chosen from the settings and the environment without a network call:

- `kube-audience` set: GitHub OIDC with no stored credential. The job's ID token for that
  audience is the bearer token; clusters that trust GitHub's issuer through a JWT
  authenticator (structured authentication) accept it. The token is short-lived: it is
  requested again a minute before it expires, and every token is masked and scrubbed.
- a kubeconfig (`KUBECONFIG`, else `~/.kube/config`), through the client's own loader;
- in a pod, the service account (the client's in-cluster loader).

Refusals: a 401 names the JWT authenticator the cluster needs (or the kubeconfig), a 403
names the verb on the resource and a Role/RoleBinding that grants what genai-gate needs.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from genai_gate.config import KServeSettings
from genai_gate.errors import AuthError, ConfigError, GateError
from genai_gate.github import Context, oidc_possible, request_id_token

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PERMISSION_SNIPPET = """permissions:
  id-token: write   # GitHub OIDC -> the cluster, no stored credential
  contents: read"""
DOCS = "docs/kserve.md"
# request a new ID token this long before the current one expires
REFRESH_MARGIN = 60.0
Method = Literal["github-oidc", "kubeconfig", "in-cluster"]


@dataclass(frozen=True)
class ClusterAuth:
    """How this run will sign in, decided from the environment alone."""

    method: Method | None
    available: bool
    reason: str = ""  # why not available
    kubeconfig: str | None = None

    def describe(self) -> str:
        return {
            "github-oidc": "GitHub OIDC",
            "kubeconfig": f"the kubeconfig ({self.kubeconfig})",
            "in-cluster": "the pod's service account",
            None: "no credentials",
        }[self.method]


def _kubeconfig(environ: Mapping[str, str]) -> str | None:
    paths = environ.get("KUBECONFIG") or "~/.kube/config"
    found = [p for p in paths.split(os.pathsep) if p and Path(p).expanduser().is_file()]
    return os.pathsep.join(found) or None


def cluster_auth(environ: Mapping[str, str], ctx: Context, settings: KServeSettings) -> ClusterAuth:
    if settings.kube_audience:
        if not settings.kube_server:
            return ClusterAuth("github-oidc", False, "kube-server is not set")
        if not oidc_possible(environ):
            if ctx.is_pull_request and ctx.pr_is_fork:
                why = "a pull request from a fork gets no OIDC token"
            else:
                why = "the job has no `id-token: write` permission"
            return ClusterAuth("github-oidc", False, why)
        return ClusterAuth("github-oidc", True)
    kubeconfig = _kubeconfig(environ)
    if kubeconfig:
        return ClusterAuth("kubeconfig", True, kubeconfig=kubeconfig)
    if environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").is_file():
        return ClusterAuth("in-cluster", True)
    return ClusterAuth(
        None,
        False,
        "no kubeconfig (KUBECONFIG or ~/.kube/config), no in-cluster service account, and "
        "no kube-audience for GitHub OIDC",
    )


def oidc_settings(audience: str = "<audience>") -> str:
    return (
        f"  backend: kserve\n  kube-server: https://<api server>:6443\n"
        f"  kube-audience: {audience}\n  kube-ca: cluster-ca.pem\n{PERMISSION_SNIPPET}"
    )


def require(auth: ClusterAuth, ctx: Context) -> None:
    """Raise the tailored error for a ClusterAuth that cannot sign in."""
    if auth.available:
        return
    if ctx.is_pull_request and ctx.pr_is_fork and auth.method == "github-oidc":
        raise AuthError(
            "this pull request comes from a fork, and GitHub gives fork PRs no OIDC token, "
            "so genai-gate cannot sign in to the cluster",
            fix="That is GitHub protecting your cluster; nothing to fix in the fork. The plan "
            "is shown once a maintainer re-runs it from a branch of this repository.",
        )
    if auth.method == "github-oidc":
        raise AuthError(
            f"cannot sign in to the cluster with GitHub OIDC: {auth.reason}",
            fix=f"Name the API server and give the job an OIDC token:\n{oidc_settings()}\n"
            f"See {DOCS}",
        )
    raise AuthError(
        f"cannot sign in to the cluster: {auth.reason}",
        fix="In Actions, sign in with GitHub OIDC (no stored credential):\n"
        f"{oidc_settings()}\nOn a laptop, point KUBECONFIG at a kubeconfig "
        f"(`kubectl config current-context` must work). See {DOCS}",
    )


class GitHubToken:
    """The job's GitHub ID token as the client's bearer token, requested again shortly
    before it expires (the client calls the hook before every request)."""

    def __init__(
        self, environ: Mapping[str, str], audience: str, mask: Callable[[str], None]
    ) -> None:
        self.environ = environ
        self.audience = audience
        self.mask = mask
        self.token = ""
        self.expires = 0.0
        self.requests = 0
        self._lock = threading.Lock()

    def current(self) -> str:
        with self._lock:
            if not self.token or time.time() > self.expires - REFRESH_MARGIN:
                self._fetch()
            return self.token

    def _fetch(self) -> None:
        import jwt
        import requests

        try:
            token = request_id_token(self.environ, self.audience)
        except (requests.RequestException, ValueError) as exc:
            raise AuthError(
                f"GitHub did not give this job an OIDC token: {_first_line(exc)}",
                fix=f"{PERMISSION_SNIPPET}\nSee {DOCS}",
            ) from None
        if not token:
            raise AuthError(
                "GitHub OIDC is not available to this job (no ACTIONS_ID_TOKEN_REQUEST_URL)",
                fix=f"{PERMISSION_SNIPPET}\nSee {DOCS}",
            )
        # masked in the job log and scrubbed from every artefact (secrets.py)
        self.mask(token)
        self.requests += 1
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            self.expires = float(claims.get("exp") or 0) or time.time() + 300
        except jwt.PyJWTError:
            self.expires = time.time() + 300
        self.token = token

    def hook(self, configuration: Any) -> None:
        configuration.api_key["BearerToken"] = self.current()
        configuration.api_key_prefix["BearerToken"] = "Bearer"

    def claims(self) -> dict[str, Any]:
        """The current token's non-secret claims, for debugging only (never verified)."""
        import jwt

        if not self.token:
            return {}
        try:
            claims = jwt.decode(self.token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return {}
        return {k: claims[k] for k in ("sub", "aud", "iss", "repository", "ref") if k in claims}


@dataclass
class Connection:
    client: ApiClient
    namespace: str
    oidc: GitHubToken | None


def connect(
    auth: ClusterAuth,
    settings: KServeSettings,
    environ: Mapping[str, str],
    base_dir: Path,
    mask: Callable[[str], None],
) -> Connection:
    """One API client for the run, and the namespace to work in."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.config import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader
    from kubernetes.config.kube_config import list_kube_config_contexts, load_kube_config

    configuration = Configuration()
    namespace = "default"
    oidc: GitHubToken | None = None
    try:
        if auth.method == "kubeconfig" and auth.kubeconfig:
            # persist_config=False: a token refresh must not rewrite the user's kubeconfig
            load_kube_config(  # type: ignore[no-untyped-call]
                config_file=auth.kubeconfig,
                context=settings.kube_context,
                client_configuration=configuration,
                persist_config=False,
            )
            contexts, current = list_kube_config_contexts(auth.kubeconfig)  # type: ignore[no-untyped-call]
            active = next((c for c in contexts if c.get("name") == settings.kube_context), current)
            namespace = ((active or {}).get("context") or {}).get("namespace") or namespace
        elif auth.method == "in-cluster":
            loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(SA_DIR / "token"),
                cert_filename=str(SA_DIR / "ca.crt"),
                environ=environ,
            )
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
            with_ns = SA_DIR / "namespace"
            if with_ns.is_file():
                namespace = with_ns.read_text(encoding="utf-8").strip() or namespace
        elif auth.method == "github-oidc" and settings.kube_audience:
            oidc = GitHubToken(environ, settings.kube_audience, mask)
            configuration.refresh_api_key_hook = oidc.hook  # type: ignore[assignment]
            oidc.hook(configuration)  # the first token now: a missing permission fails here
    except ConfigException as exc:
        raise AuthError(
            f"cannot sign in to the cluster with {auth.describe()}: {_first_line(exc)}",
            fix="Check the kubeconfig (`kubectl config get-contexts`), or set kube-context:\n"
            "  kube-context: my-cluster",
        ) from None
    if settings.kube_server:
        configuration.host = settings.kube_server.rstrip("/")
    if settings.kube_ca:
        ca = Path(settings.kube_ca).expanduser()
        ca = ca if ca.is_absolute() else base_dir / ca
        if not ca.is_file():
            raise AuthError(
                f"kube-ca: {settings.kube_ca} does not exist",
                fix="Save the API server's CA certificate (PEM) beside the config:\n"
                "  kubectl config view --raw -o "
                "jsonpath='{.clusters[0].cluster.certificate-authority-data}' "
                "| base64 -d > cluster-ca.pem",
            )
        configuration.ssl_ca_cert = str(ca)
    return Connection(ApiClient(configuration), settings.namespace or namespace, oidc)


# ---------------------------------------------------------------- refusals, explained


def jwt_authenticator(audience: str, prefix: str = "github:") -> str:
    return (
        "apiVersion: apiserver.config.k8s.io/v1beta1   # v1 from Kubernetes 1.34\n"
        "kind: AuthenticationConfiguration\n"
        "jwt:\n"
        "- issuer:\n"
        f"    url: {GITHUB_ISSUER}\n"
        f"    audiences: [{audience}]\n"
        "  claimMappings:\n"
        "    username:\n"
        "      claim: sub\n"
        f'      prefix: "{prefix}"'
    )


def unauthorized(auth: ClusterAuth, audience: str | None, claims: Mapping[str, Any]) -> AuthError:
    """A 401: the server does not know who we are (it never says why)."""
    if auth.method != "github-oidc":
        return AuthError(
            f"the API server refused the credentials of {auth.describe()} (401 Unauthorized)",
            fix="Refresh them (`kubectl auth whoami` must work), or sign in with GitHub OIDC "
            f"in Actions:\n{oidc_settings()}\nSee {DOCS}",
        )
    lines = []
    if claims:
        lines.append("The job's OIDC token claims (for debugging only):")
        lines += [f"  {k}: {v}" for k, v in claims.items()]
        lines.append("")
    lines.append(
        "The API server must trust GitHub's issuer for this audience: a JWT authenticator "
        "in its --authentication-config file (structured authentication, Kubernetes 1.30+):"
    )
    lines += ["  " + ln for ln in jwt_authenticator(audience or "<audience>").splitlines()]
    lines.append(f"kube-audience must be one of its audiences. See {DOCS}")
    return AuthError(
        "the API server refused the job's GitHub OIDC token (401 Unauthorized): it does not "
        "trust GitHub's issuer, or not for this audience",
        fix="\n".join(lines),
    )


# what each command needs, by resource: (group, resource) -> verbs
NEEDED = {
    ("serving.kserve.io", "inferenceservices"): ("get", "patch"),
    ("", "configmaps"): ("get", "create", "update"),
}
READ_ONLY = {
    ("serving.kserve.io", "inferenceservices"): ("get",),
    ("", "configmaps"): ("get",),
}
# what a deploy that creates the InferenceService needs besides: create it, and delete it
# again when its first revision fails (nothing is left half-created)
CREATING = {
    ("serving.kserve.io", "inferenceservices"): ("create", "delete"),
}
_WHY = {"create": "create, delete: only to create a missing InferenceService"}


def rbac_snippet(namespace: str, user: str | None) -> str:
    """The Role (and its binding) that grants everything genai-gate may need: the verbs of
    CREATING are marked as needed only when a deploy creates the service."""
    rules = []
    for (group, resource), verbs in NEEDED.items():
        more = CREATING.get((group, resource), ())
        note = f"   # {_WHY['create']}" if more else ""
        rules.append(
            f'- apiGroups: ["{group}"]\n  resources: ["{resource}"]\n'
            f"  verbs: [{', '.join((*verbs, *more))}]{note}"
        )
    subject = user or "github:repo:<owner>/<repo>:ref:refs/heads/main"
    return (
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
        f"metadata:\n  name: genai-gate\n  namespace: {namespace}\nrules:\n"
        + "\n".join(rules)
        + "\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        f"metadata:\n  name: genai-gate\n  namespace: {namespace}\n"
        f'subjects:\n- kind: User\n  name: "{subject}"\n'
        "  apiGroup: rbac.authorization.k8s.io\n"
        "roleRef:\n  kind: Role\n  name: genai-gate\n  apiGroup: rbac.authorization.k8s.io"
    )


_USER = re.compile(r'User "([^"]+)"')


def forbidden(
    missing: Sequence[tuple[str, str, str]], namespace: str, message: str = ""
) -> GateError:
    """A 403 or a refused access review: `missing` holds (verb, group, resource)."""
    if "admission webhook" in message:
        # KServe's validating webhook denies with a 403 too: that is not RBAC
        return ConfigError(
            f"KServe refused the change: {message}",
            fix="Correct the predictor in the config (predictor:, storage-uri:, "
            "predictor-image:) so that KServe's webhook accepts it.",
        )
    user = m.group(1) if (m := _USER.search(message)) else None
    what = ", ".join(
        f"{verb} {resource}" + (f".{group}" if group else "") for verb, group, resource in missing
    )
    who = f' ("{user}")' if user else ""
    detail = f": {message}" if message else ""
    return AuthError(
        f"the cluster does not let genai-gate{who} {what} in namespace {namespace}{detail}",
        fix="Grant what genai-gate needs in that namespace (plan needs only get):\n"
        + rbac_snippet(namespace, user)
        + f"\nSee {DOCS}",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__

"""Signing in to Databricks: the SDK's unified auth, with a named fix for each known failure.

In Actions the auth is `github-oidc`: the job's OIDC token is exchanged for a short-lived
Databricks token, so no secret is stored. On a laptop it is whatever the SDK finds (a
profile, a token). The preflight runs before any evaluation, so a missing
`id-token: write` costs seconds, not an eval. The failure texts follow
pypa/gh-action-pypi-publish's `oidc-exchange.py`: what happened, why, the YAML fix, and the
token's non-secret claims "for debugging only".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genai_gate import secrets
from genai_gate.errors import AuthError
from genai_gate.github import Context, oidc_possible, request_id_token

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

PERMISSION_SNIPPET = """permissions:
  id-token: write   # GitHub OIDC -> Databricks, no stored token
  contents: read"""
ENV_SNIPPET = """env:
  DATABRICKS_HOST: https://<workspace>.cloud.databricks.com
  DATABRICKS_CLIENT_ID: <service principal application id>"""
DOCS = "https://docs.databricks.com/aws/en/dev-tools/auth/provider-github"
_DEBUG_CLAIMS = ("sub", "repository", "ref", "environment", "aud", "iss")


@dataclass(frozen=True)
class AuthPlan:
    """How this run will sign in, decided from the environment alone."""

    host: str | None
    client_id: str | None
    auth_type: str | None  # None lets the SDK's default chain decide
    available: bool
    reason: str = ""  # why not available

    def describe(self) -> str:
        return self.auth_type or "the SDK's default chain (profile, token, ...)"


def auth_plan(
    environ: Mapping[str, str], ctx: Context, host: str | None, client_id: str | None
) -> AuthPlan:
    host = host or environ.get("DATABRICKS_HOST") or None
    client_id = client_id or environ.get("DATABRICKS_CLIENT_ID") or None
    explicit = environ.get("DATABRICKS_AUTH_TYPE") or None
    stored = any(
        environ.get(name)
        for name in ("DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE")
    )
    in_actions = environ.get("GITHUB_ACTIONS") == "true"
    # Databricks' own docs set DATABRICKS_AUTH_TYPE=github-oidc; it needs the same checks
    oidc_asked = explicit == "github-oidc"
    if (explicit and not oidc_asked) or stored or not (in_actions or oidc_asked):
        return AuthPlan(host, client_id, explicit, True)
    if host is None or client_id is None:
        missing = [
            n for n, v in (("DATABRICKS_HOST", host), ("DATABRICKS_CLIENT_ID", client_id)) if not v
        ]
        return AuthPlan(host, client_id, None, False, f"{' and '.join(missing)} not set")
    if not oidc_possible(environ):
        if ctx.is_pull_request and ctx.pr_is_fork:
            why = "a pull request from a fork gets no OIDC token"
        else:
            why = "the job has no `id-token: write` permission"
        return AuthPlan(host, client_id, "github-oidc", False, why)
    return AuthPlan(host, client_id, "github-oidc", True)


def require(plan: AuthPlan, ctx: Context) -> None:
    """Raise the tailored error for an AuthPlan that cannot sign in."""
    if plan.available:
        return
    if ctx.is_pull_request and ctx.pr_is_fork:
        raise AuthError(
            "this pull request comes from a fork, and GitHub gives fork PRs no OIDC token, "
            "so genai-gate cannot sign in to Databricks",
            fix="That is GitHub protecting your workspace; nothing to fix in the fork. The "
            "plan is shown once a maintainer re-runs it from a branch of this repository.",
        )
    if plan.reason.endswith("not set"):
        raise AuthError(
            f"cannot sign in to Databricks: {plan.reason}",
            fix=f"Name the workspace and the service principal GitHub signs in as:\n{ENV_SNIPPET}\n"
            f"{PERMISSION_SNIPPET}\nSee {DOCS}",
        )
    raise AuthError(
        "GitHub OIDC is not available to this job (no ACTIONS_ID_TOKEN_REQUEST_URL), "
        "so genai-gate cannot sign in to Databricks without a stored token",
        fix=f"Give the job permission to request an OIDC token:\n{PERMISSION_SNIPPET}\nSee {DOCS}",
    )


def make_client(
    plan: AuthPlan, environ: Mapping[str, str], *, timeout: float, pool: int
) -> WorkspaceClient:
    """One client for the run. `timeout` bounds one HTTP call and the SDK's own retries
    (429/503, honouring Retry-After), so they never multiply with genai-gate's retry policy;
    `pool` keeps a connection for every worker."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    kwargs: dict[str, Any] = {
        # at least 30 s a call: a warehouse statement is asked to wait 10 s server-side
        "http_timeout_seconds": int(max(30, timeout)),
        "retry_timeout_seconds": int(timeout) + 1,
        "max_connection_pools": pool,
        "max_connections_per_pool": pool,
    }
    if plan.host:
        kwargs["host"] = plan.host
    if plan.auth_type == "github-oidc":
        kwargs["client_id"] = plan.client_id
        kwargs["credentials_strategy"] = _cached_github_oidc(environ)
    elif plan.auth_type:
        kwargs["auth_type"] = plan.auth_type
    try:
        return WorkspaceClient(config=Config(**kwargs))
    except ValueError as exc:
        raise AuthError(
            f"cannot sign in to Databricks with {plan.describe()}: {_first_line(exc)}",
            fix="In Actions:\n"
            f"{ENV_SNIPPET}\n{PERMISSION_SNIPPET}\n"
            "On a laptop: `databricks auth login --host <workspace>`, or set DATABRICKS_HOST "
            f"and DATABRICKS_TOKEN.\nSee {DOCS}",
        ) from None


def _cached_github_oidc(environ: Mapping[str, str]) -> Any:
    """The `github-oidc` sign-in, with the exchanged token cached until it expires (see
    session.py for why the SDK's own strategy is not used). The ID token is held in memory
    and sent only to the token endpoint; it is not masked here because masking prints a
    workflow command on stdout, which would corrupt `--json` output."""
    from databricks.sdk import oidc
    from databricks.sdk.credentials_provider import (
        oauth_credentials_strategy,
        oidc_credentials_provider,
    )

    class GitHubIdTokenSource(oidc.IdTokenSource):
        def __init__(self, audience: str | None) -> None:
            self.audience = audience

        def id_token(self) -> oidc.IdToken:
            token = request_id_token(environ, self.audience)
            if not token:
                raise ValueError("no GitHub OIDC token (is `id-token: write` granted?)")
            # not masked (see above), but scrubbed from every artefact (secrets.py)
            secrets.remember(token)
            return oidc.IdToken(jwt=token)

    def github_oidc(cfg: Any) -> Any:
        audience = cfg.token_audience or cfg.databricks_oidc_endpoints.token_endpoint
        return oidc_credentials_provider(cfg, GitHubIdTokenSource(audience))

    return oauth_credentials_strategy("github-oidc", ["host", "client_id"])(github_oidc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


def debug_claims(
    environ: Mapping[str, str], audience: str | None, mask: Callable[[str], None]
) -> dict[str, Any]:
    """The job's OIDC token's claims, fetched the way the SDK fetches it, never verified and
    never printed whole. Empty when no token can be had."""
    import jwt
    import requests

    try:
        token = request_id_token(environ, audience)
    except (requests.RequestException, ValueError, AttributeError):
        return {}
    if not token:
        return {}
    mask(token)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return {k: claims[k] for k in _DEBUG_CLAIMS if k in claims}


def policy_snippet(claims: Mapping[str, Any], client_id: str | None) -> str:
    policy = {
        "oidc_policy": {
            "issuer": claims.get("iss", "https://token.actions.githubusercontent.com"),
            "audiences": [claims.get("aud", "<audience>")],
            "subject": claims.get("sub", "repo:<owner>/<repo>:environment:<env>"),
        }
    }
    # the CLI wants the service principal's numeric id, not its application (client) id
    return (
        "databricks account service-principal-federation-policy create "
        f"<numeric id of service principal {client_id or '...'}> --json '{json.dumps(policy)}'"
    )


def exchange_refused(
    exc: BaseException,
    plan: AuthPlan,
    client: WorkspaceClient,
    environ: Mapping[str, str],
    mask: Callable[[str], None],
) -> AuthError:
    """The token exchange said no: show what GitHub's token claims and a policy that accepts it."""
    audience: str | None = client.config.token_audience
    if not audience:
        try:
            endpoints = client.config.databricks_oidc_endpoints
            audience = endpoints.token_endpoint if endpoints else None
        except Exception:  # discovery is best effort here: we are already reporting a failure
            audience = None
    claims = debug_claims(environ, audience, mask)
    text = _first_line(exc)
    lowered = text.lower()
    if "expired" in lowered:
        why = "the token had expired when Databricks checked it (is the runner's clock right?)"
    elif "audience" in lowered:
        why = "the federation policy does not accept the token's audience (aud)"
    elif "issuer" in lowered:
        why = "the federation policy does not trust the token's issuer (iss)"
    elif "subject mismatch" in lowered or "sub claim" in lowered:
        why = "the federation policy does not accept the token's subject (sub)"
    elif "client" in lowered:
        why = "the service principal (DATABRICKS_CLIENT_ID) has no federation policy"
    else:
        why = "Databricks refused the token exchange"
    lines = []
    if claims:
        lines.append("The job's OIDC token claims (for debugging only):")
        lines += [f"  {k}: {claims[k]}" for k in _DEBUG_CLAIMS if k in claims]
        lines.append("")
    lines.append("A federation policy on the service principal that accepts them:")
    lines.append("  " + policy_snippet(claims, plan.client_id))
    lines.append(f"See {DOCS}")
    return AuthError(f"{why}: {text}", fix="\n".join(lines))

"""The run's one Databricks workspace: one sign-in, one `WorkspaceClient`, one token.

Every part of a run that talks to Databricks (the preflight, an `endpoints:/` model or
baseline, an `endpoints:/` judge, plan, deploy and the canary analysis) goes through the
`Workspace` that the command built, so a push run signs in once.

Why the GitHub OIDC credentials are ours and not the SDK's `github-oidc` strategy: in
databricks-sdk 0.162 that strategy builds a new token source on every request, so each API
call fetches a GitHub ID token and exchanges it again (12 exchanges in one push run). The
SDK's own `DatabricksOidcTokenSource` (behind its `env-oidc`/`file-oidc` strategies) caches
the exchanged token until it expires; we feed it the GitHub ID token through an
`IdTokenSource`, so the exchange and its caching stay the SDK's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from genai_gate.backends.databricks.auth import (
    AuthPlan,
    auth_plan,
    exchange_refused,
    make_client,
    require,
)
from genai_gate.backends.databricks.endpoints import Endpoints, Progress
from genai_gate.backends.databricks.serving_target import DatabricksEndpointTarget
from genai_gate.config import DeploySettings, RemoteSettings
from genai_gate.errors import AuthError
from genai_gate.github import Context
from genai_gate.targets.base import Target

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient


# requests's default pool keeps 10 connections and the SDK's 20; a run's workers beyond
# that would queue for a connection, and the wait would count as row latency
_MIN_POOL = 20


class Workspace:
    """Built per run from the settings and the environment; signs in on first use."""

    def __init__(
        self,
        environ: Mapping[str, str],
        settings: DeploySettings,
        remote: RemoteSettings,
        ctx: Context,
        *,
        mask: Callable[[str], None] = lambda _secret: None,
    ) -> None:
        self.environ = environ
        self.ctx = ctx
        self.mask = mask
        self.auth: AuthPlan = auth_plan(
            environ, ctx, settings.databricks_host, settings.databricks_client_id
        )
        if not self.auth.available and settings.endpoint is None:
            # no endpoint to deploy or watch: an `endpoints:/` model or judge alone signs in
            # the SDK's default way (a profile, azure-cli, ...), as any eval-only run
            self.auth = AuthPlan(self.auth.host, self.auth.client_id, None, True)
        self._remote = remote
        self._client: WorkspaceClient | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.auth.available

    @property
    def unavailable_reason(self) -> str:
        return self.auth.reason

    def client(self) -> WorkspaceClient:
        """The signed-in client; the tailored AuthError when no sign-in can work."""
        require(self.auth, self.ctx)
        with self._lock:
            if self._client is None:
                if self.auth.host:
                    reach(self.auth.host)
                self._client = make_client(
                    self.auth,
                    self.environ,
                    timeout=self._remote.timeout,
                    pool=max(_MIN_POOL, self._remote.concurrency + 2),
                )
            return self._client

    def refused(self, exc: BaseException) -> AuthError:
        """A refused token exchange, explained with the token's claims and a policy."""
        return exchange_refused(exc, self.auth, self.client(), self.environ, self.mask)

    def endpoints(self, progress: Progress = lambda _line: None) -> Endpoints:
        return Endpoints(self.client(), progress, self.refused)

    # -------------------------------------------------- what eval asks of a serving platform

    def endpoint_target(self, ref: str, *, pin: str | None, settings: Mapping[str, Any]) -> Target:

        return DatabricksEndpointTarget(ref, client=self.client, pin=pin, **settings)

    def chat_route(self) -> tuple[str, Callable[[], dict[str, str]]]:
        """The workspace's OpenAI-compatible route and its auth headers (for a judge)."""
        client = self.client()
        return f"{(client.config.host or '').rstrip('/')}/serving-endpoints", (
            client.config.authenticate
        )


REACH_SECONDS = 10.0


def reach(host: str, seconds: float = REACH_SECONDS) -> None:
    """Find out in seconds that the workspace does not answer at all: the SDK retries a
    refused port until its retry timeout (two minutes with the default `timeout`). Any HTTP
    answer counts as up; auth and paths are the SDK's to check."""
    import requests

    url = host if "://" in host else f"https://{host}"
    try:
        requests.get(url.rstrip("/") + "/", timeout=(seconds, seconds), allow_redirects=False)
    except requests.RequestException as exc:
        what = "did not answer" if isinstance(exc, requests.Timeout) else "refused the connection"
        raise AuthError(
            f"the Databricks workspace at {host} {what} within {seconds:g} s "
            f"({type(exc).__name__}), so genai-gate cannot sign in",
            fix="Check DATABRICKS_HOST (or databricks-host:): the workspace URL, e.g.\n"
            "  env:\n    DATABRICKS_HOST: https://adb-1234567890123456.7.azuredatabricks.net",
        ) from None

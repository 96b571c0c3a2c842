"""A local GitHub Actions OIDC issuer: the ID-token URL a job gets with `id-token: write`.

Routes (on 127.0.0.1, a free port):

* `GET /.well-known/openid-configuration`: the discovery document (`issuer` = `url`,
  `jwks_uri` = `url` + `/.well-known/jwks`), shaped like token.actions.githubusercontent.com's.
* `GET /.well-known/jwks`: the JWKS with the public half of an RSA key (made once per process).
* `GET /_gh/token?api-version=2.0&audience=<aud>`: what `ACTIONS_ID_TOKEN_REQUEST_URL` points at.
  It needs `Authorization: Bearer <request_token>` (missing: 401, wrong: 403, both JSON) and
  answers `{"count": 1, "value": "<JWT>"}`. The databricks-sdk appends `&audience=<raw URL>`
  unencoded to a URL that must already hold a `?`, which `request_url` does. Without an
  `audience` parameter the token's `aud` is `https://github.com/<owner>`, as on GitHub.

Tokens are RS256 JWTs with a `kid` header and GitHub's claims: `sub`, `repository`,
`repository_owner`, `ref`, `ref_type`, `sha`, `environment` (only when set), `actor`,
`event_name`, `workflow`, `run_id`, `run_number`, `run_attempt`, `job_workflow_ref`,
`runner_environment`, `aud`, `iss`, `iat`, `nbf`, `exp`, `jti`. Every claim is a dataclass
field, so `FakeGitHubOIDC(environment="prod")` or `issuer.event_name = "pull_request"` between
calls changes the next token. `sub` left at None is derived as GitHub does:
`repo:<repo>:environment:<env>` when an environment is set, `repo:<repo>:pull_request` for
pull_request events, else `repo:<repo>:ref:<ref>` (default `repo:acme/shop:ref:refs/heads/main`).

Faults: `audience` forces the `aud` claim whatever was asked; `lifetime` (seconds) < 0 issues
already-expired tokens; `bad_signature=True` signs with a second key whose public half is not
in the JWKS (same `kid`), so signature checks fail; `fail_next` answers the next N token
requests with a 500.

Counters: `token_requests` (all requests to the token URL), `refused_requests` (401/403/500),
`audiences` (the audience asked by each answered request), `issued` (every JWT handed out, so
a test can assert that none leaks into logs, outputs or reports). `env()` is the environment a
job step sees: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

REQUEST_TOKEN = "gh-oidc-request-token-for-tests-0123456789"
TOKEN_PATH = "/_gh/token"


@functools.cache
def _keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """(signing key, rogue key), made once per process: RSA generation costs ~0.1 s each."""
    return _rsa_key(), _rsa_key()


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class FakeGitHubOIDC:
    """GitHub's OIDC token service and issuer, on 127.0.0.1 (see the module docstring)."""

    request_token: str = REQUEST_TOKEN
    # claims
    sub: str | None = None
    repository: str = "acme/shop"
    ref: str = "refs/heads/main"
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    environment: str | None = None
    actor: str = "octocat"
    event_name: str = "push"
    workflow: str = "deploy"
    run_id: str = "4242"
    run_number: str = "7"
    run_attempt: str = "1"
    job_workflow_ref: str | None = None
    extra_claims: dict[str, Any] = field(default_factory=dict)
    # faults
    audience: str | None = None
    lifetime: int = 300
    bad_signature: bool = False
    fail_next: int = 0
    kid: str = "fake-github-oidc-key-1"
    # counters
    token_requests: int = field(default=0, init=False)
    refused_requests: int = field(default=0, init=False)
    audiences: list[str] = field(default_factory=list, init=False)
    issued: list[str] = field(default_factory=list, init=False)
    server: ThreadingHTTPServer | None = field(default=None, init=False)
    _key: rsa.RSAPrivateKey | None = field(default=None, init=False, repr=False)
    _rogue_key: rsa.RSAPrivateKey | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, which is also the `iss` claim, e.g. http://127.0.0.1:PORT."""
        assert self.server is not None, "FakeGitHubOIDC is not started"
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def request_url(self) -> str:
        """ACTIONS_ID_TOKEN_REQUEST_URL: already holds `?api-version=2.0`, as GitHub's does."""
        return f"{self.url}{TOKEN_PATH}?api-version=2.0"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/.well-known/jwks"

    def env(self) -> dict[str, str]:
        """What a job with `permissions: id-token: write` finds in its environment."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    # -- tokens ----------------------------------------------------------------------------

    @property
    def subject(self) -> str:
        """The `sub` claim the next token carries."""
        if self.sub is not None:
            return self.sub
        if self.environment:
            return f"repo:{self.repository}:environment:{self.environment}"
        if self.event_name in ("pull_request", "pull_request_target"):
            return f"repo:{self.repository}:pull_request"
        return f"repo:{self.repository}:ref:{self.ref}"

    def claims(self, audience: str | None = None) -> dict[str, Any]:
        """The claims of a token minted now for `audience` (before any `audience` override)."""
        now = int(time.time())
        owner = self.repository.split("/", 1)[0]
        aud = self.audience or audience or f"https://github.com/{owner}"
        ref_type = "tag" if self.ref.startswith("refs/tags/") else "branch"
        job_workflow_ref = (
            self.job_workflow_ref
            or f"{self.repository}/.github/workflows/{self.workflow}.yml@{self.ref}"
        )
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": self.subject,
            "aud": aud,
            "ref": self.ref,
            "ref_type": ref_type,
            "sha": self.sha,
            "repository": self.repository,
            "repository_owner": owner,
            "actor": self.actor,
            "event_name": self.event_name,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "run_number": self.run_number,
            "run_attempt": self.run_attempt,
            "job_workflow_ref": job_workflow_ref,
            "runner_environment": "github-hosted",
            "iss": self.issuer,
            "nbf": now - 5 if self.lifetime >= 0 else now + self.lifetime - 5,
            "iat": now if self.lifetime >= 0 else now + self.lifetime - 5,
            "exp": now + self.lifetime,
        }
        if self.environment:
            claims["environment"] = self.environment
        claims.update(self.extra_claims)
        return claims

    def mint(self, audience: str | None = None, **overrides: Any) -> str:
        """A signed JWT for `audience`, with claim `overrides`; recorded in `issued`."""
        key = self._rogue_key if self.bad_signature else self._key
        assert key is not None, "FakeGitHubOIDC is not started"
        claims = {**self.claims(audience), **overrides}
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
        with self._lock:
            self.issued.append(token)
        return token

    def jwks(self) -> dict[str, Any]:
        assert self._key is not None, "FakeGitHubOIDC is not started"
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": sorted(self.claims()),
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGitHubOIDC:
        if self._key is None:
            self._key, self._rogue_key = _keys()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write (no Nagle delay)

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, fake.openid_configuration())
                elif parts.path == "/.well-known/jwks":
                    self._send(200, fake.jwks())
                elif parts.path == TOKEN_PATH:
                    self._send(*fake._token_reply(self.headers.get("Authorization"), parts.query))
                else:
                    self._send(404, {"message": "Not Found"})

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-github-oidc",
            daemon=True,
        ).start()
        return self

    def _token_reply(self, authorization: str | None, query: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.token_requests += 1
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        if not authorization:
            status, body = 401, {"message": "Bearer token is missing"}
        elif authorization != f"Bearer {self.request_token}":
            status, body = 403, {"message": "Bearer token is not valid for this job"}
        elif failing:
            status, body = 500, {"message": "Internal server error (fake GitHub OIDC)"}
        else:
            audience = parse_qs(query).get("audience", [None])[0]
            token = self.mint(audience)
            with self._lock:
                self.audiences.append(audience or "")
            return 200, {"count": 1, "value": token}
        with self._lock:
            self.refused_requests += 1
        return status, body

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(OSError):
                self.server.shutdown()
                self.server.server_close()

    def __enter__(self) -> FakeGitHubOIDC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

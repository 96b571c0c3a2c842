"""One POST of a chat completion, shared by `openai:/` models and the judge transport.

urllib3 directly, not a `requests.Session`: requests re-reads the environment's proxy, CA
and netrc settings and merges hooks and cookies on every call, about 0.25 ms of CPU a call
that a run of thousands of calls on a 2-core runner feels (issue #14). The settings that
requests would apply are resolved once per client with requests' own helpers (proxies and
NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, certifi), so a runner behind a proxy behaves
as before. Retries and redirects are off in urllib3: `call_with_retries` owns the policy.

The requests-per-minute cap and the mapping of outcomes: 408/409/429/5xx, timeouts and
dropped connections become `Retryable` (with the server's `Retry-After`); other errors are
final. Every message is scrubbed of the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from genai_gate.errors import ConfigError
from genai_gate.targets import limits
from genai_gate.targets.retry import RETRY_STATUSES, RateLimiter, Retryable, parse_retry_after

# idle connections kept per host; more are opened when more calls are in flight, and those
# beyond this are closed after use
POOL_SIZE = 64


def _pool(url: str, timeout: float) -> Any:
    """A connection pool for `url` with the proxy and CA settings requests would apply."""
    import urllib3
    from requests.utils import (
        DEFAULT_CA_BUNDLE_PATH,
        get_auth_from_url,
        get_environ_proxies,
        prepend_scheme_if_needed,
        select_proxy,
    )

    proxy = select_proxy(url, get_environ_proxies(url))
    ca_certs = (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH
    )
    options: dict[str, Any] = {
        "maxsize": POOL_SIZE,
        "retries": False,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "ca_certs": ca_certs,
    }
    if not proxy:
        return urllib3.PoolManager(**options)
    # as requests reads a proxy: `proxy.corp:8080` is http://, and user:password@ in its URL
    # is sent as Proxy-Authorization (urllib3 alone drops both)
    proxy = str(prepend_scheme_if_needed(proxy, "http"))  # type: ignore[no-untyped-call]
    if not proxy.lower().startswith(("http://", "https://")):
        raise ConfigError(
            f"the proxy for {url} is {proxy.split('://', 1)[0]}://, and only http:// and "
            "https:// proxies are supported",
            fix="Point HTTPS_PROXY (and HTTP_PROXY) at an HTTP proxy, or add the model's host "
            "to NO_PROXY:\n  env:\n    HTTPS_PROXY: http://proxy.internal:3128",
        )
    user, password = get_auth_from_url(proxy)
    headers = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **options)


class ChatHTTPError(RuntimeError):
    """A final HTTP error (4xx other than 408/409/429): retrying will not help."""

    def __init__(self, status: int, body: str, label: str = "") -> None:
        super().__init__(f"{label}HTTP {status}: {body}")
        self.status = status
        self.body = body


def check_key(name: str, value: str) -> str:
    """A key read from the environment: stripped, and refused if it still holds whitespace
    or control characters (requests would quote it in an error message)."""
    key = value.strip()
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        raise ConfigError(
            f"the key in {name} holds whitespace or control characters",
            fix=f"Set {name} to the key alone, without quotes, spaces or newlines.",
        )
    return key


class ChatClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        limiter: RateLimiter | None,
        auth_headers: Callable[[], dict[str, str]],
        secret: str = "",
        label: str = "",
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.limiter = limiter
        self.auth_headers = auth_headers
        self.secret = secret
        self.label = label  # "judge " in the judge transport's messages
        # thread-safe, and keeps connections alive across the workers' calls
        self._pool = _pool(url, timeout)

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text

    def post(self, payload: bytes) -> dict[str, Any]:
        from urllib3.exceptions import HTTPError, TimeoutError

        if self.limiter is not None:
            self.limiter.acquire()
        service = f"{self.label or 'model '}server"
        limits.check(service)
        headers = {"Content-Type": "application/json", **self.auth_headers()}
        try:
            resp = self._pool.request("POST", self.url, body=payload, headers=headers)
        except TimeoutError:
            limits.unreachable(service, f"no answer within {self.timeout:g} s")
            raise Retryable(
                f"the {self.label}server gave no answer within {self.timeout:g} s"
            ) from None
        except (HTTPError, OSError) as exc:
            # refused, reset, dropped mid-answer, a proxy or TLS failure: worth another try
            limits.unreachable(service, "cannot connect")
            raise Retryable(
                f"cannot reach the {self.label}server: {self.scrub(str(exc))[:300]}"
            ) from None
        except ValueError as exc:
            # e.g. a header the key made invalid; its message may quote the key
            raise RuntimeError(
                f"the request to the {self.label}server failed: {type(exc).__name__}"
            ) from None
        limits.reachable(service)
        text = resp.data.decode("utf-8", errors="replace")
        if resp.status in RETRY_STATUSES:
            raise Retryable(
                f"{self.label}HTTP {resp.status}: {self.scrub(text)[:300]}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                status=resp.status,
            )
        if resp.status >= 400:
            raise ChatHTTPError(resp.status, self.scrub(text)[:500], self.label)
        try:
            answer = json.loads(text)
        except ValueError:
            raise RuntimeError(f"not JSON: {self.scrub(text)[:300]}") from None
        if not isinstance(answer, dict):
            raise RuntimeError(f"not a chat completion: {self.scrub(text)[:300]}")
        return answer

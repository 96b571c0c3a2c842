"""One POST of a chat completion, shared by `openai:/` models and the judge gateway.

A pooled `requests.Session` per worker thread, the requests-per-minute cap, and the mapping
of outcomes: 408/409/429/5xx, timeouts and dropped connections become `Retryable` (with the
server's `Retry-After`); other errors are final. Every message is scrubbed of the key.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from genai_gate.errors import ConfigError
from genai_gate.targets import limits
from genai_gate.targets.retry import RETRY_STATUSES, RateLimiter, Retryable, parse_retry_after


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
        import requests

        self.url = url
        self.timeout = timeout
        self.limiter = limiter
        self.auth_headers = auth_headers
        self.secret = secret
        self.label = label  # "judge " in the gateway's messages
        self._requests = requests
        # idle sessions, each used by one thread at a time: not one per thread, because the
        # judge gateway answers each of MLflow's calls on a new thread (MLflow opens a new
        # connection per call), and a session per thread would open a new connection to
        # the judge's server for every verdict
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def scrub(self, text: str) -> str:
        return text.replace(self.secret, "***") if self.secret else text

    def _session(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._requests.Session()

    def post(self, payload: bytes) -> dict[str, Any]:
        if self.limiter is not None:
            self.limiter.acquire()
        service = f"{self.label or 'model '}server"
        limits.check(service)
        headers = {"Content-Type": "application/json", **self.auth_headers()}
        session = self._session()
        try:
            resp = session.post(self.url, data=payload, headers=headers, timeout=self.timeout)
        except self._requests.Timeout:
            limits.unreachable(service, f"no answer within {self.timeout:g} s")
            raise Retryable(
                f"the {self.label}server gave no answer within {self.timeout:g} s"
            ) from None
        except self._requests.ConnectionError as exc:
            limits.unreachable(service, "cannot connect")
            raise Retryable(
                f"cannot reach the {self.label}server: {self.scrub(str(exc))[:300]}"
            ) from None
        except self._requests.RequestException as exc:
            # e.g. a header the key made invalid; its message may quote the key
            raise RuntimeError(
                f"the request to the {self.label}server failed: {type(exc).__name__}"
            ) from None
        finally:
            self._idle.put(session)
        limits.reachable(service)
        if resp.status_code in RETRY_STATUSES:
            raise Retryable(
                f"{self.label}HTTP {resp.status_code}: {self.scrub(resp.text)[:300]}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                status=resp.status_code,
            )
        if resp.status_code >= 400:
            raise ChatHTTPError(resp.status_code, self.scrub(resp.text)[:500], self.label)
        try:
            answer = resp.json()
        except ValueError:
            raise RuntimeError(f"not JSON: {self.scrub(resp.text)[:300]}") from None
        if not isinstance(answer, dict):
            raise RuntimeError(f"not a chat completion: {self.scrub(resp.text)[:300]}")
        return answer

"""The judge model's HTTP calls, made with genai-gate's own policy.

MLflow's judge adapter posts every call itself, with ten retries that ignore `Retry-After`
(up to 181 s a call), no cache and no rate limit (mlflow 3.17,
`genai/judges/adapters/utils.py`). Its calls are handed here instead (see `judge_seam` and,
where that seam is missing, `judge_gateway`), and this makes the real call: `Retry-After`,
backoff with jitter, bounded attempts, the requests-per-minute cap and the response cache.
The judges' prompts, parsing and metric names stay MLflow's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.http_chat import ChatClient, ChatHTTPError
from genai_gate.targets.retry import RateLimiter, RetriesExhausted, RetryPolicy, call_with_retries

# not an HTTP status the judge server sent: the policy gave up (or the call failed on our
# side), and MLflow must fail the scorer at once rather than retry it (424, Failed Dependency)
GAVE_UP = 424


@dataclass
class JudgeStats:
    calls: int = 0  # calls MLflow's judges made
    upstream: int = 0  # requests made to the judge model (retries included)
    failures: int = 0
    # how MLflow's judges reached the transport: "in-process" (judge_seam) or "loopback"
    # (judge_gateway, where this MLflow lacks the seam); "" until the session settles it
    route: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int | str]:
        return {
            "calls": self.calls,
            "upstream_requests": self.upstream,
            "failures": self.failures,
            "route": self.route,
        }


class JudgeCallFailed(Exception):
    """The judge call failed for good: `status` is the judge server's (a 400 passes through as
    it came, for MLflow's fallback without response_format) or GAVE_UP."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _readable_verdict(answer: dict[str, Any]) -> bool:
    """Cache only answers MLflow can read as a verdict; a garbled one must be asked again."""
    try:
        content = answer["choices"][0]["message"]["content"]
        return "result" in json.loads(content)
    except (KeyError, IndexError, TypeError, ValueError):
        return False


class JudgeTransport:
    def __init__(
        self,
        upstream: str,
        *,
        api_key: str,
        auth_headers: Callable[[], dict[str, str]] | None = None,
        timeout: float,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        cache: ResponseCache | None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.policy = policy
        # Databricks: the SDK's unified auth gives fresh headers per call (OIDC tokens expire)
        self.client = ChatClient(
            f"{self.upstream}/chat/completions",
            timeout=timeout,
            limiter=limiter,
            auth_headers=auth_headers
            or (lambda: {"Authorization": f"Bearer {api_key}"} if api_key else {}),
            secret=api_key,
            label="judge ",
        )
        self.cache = cache
        self.stats = JudgeStats()
        self._seen: dict[str, int] = {}

    def scrub(self, text: str) -> str:
        return self.client.scrub(text)

    def _once(self, body: bytes) -> dict[str, Any]:
        with self.stats.lock:
            self.stats.upstream += 1
        return self.client.post(body)

    def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """The judge's answer to one chat-completions request; JudgeCallFailed if none."""
        with self.stats.lock:
            self.stats.calls += 1
        key = None
        if self.cache is not None:
            # the n-th identical request of a run is its own entry: `repeat:` asks the judge
            # the same question several times and must get several answers, and a re-run
            # gets them back in the same order
            digest = self.cache.key({"judge": self.upstream}, request)
            with self.stats.lock:
                nth = self._seen.get(digest, 0)
                self._seen[digest] = nth + 1
            key = self.cache.key({"judge": self.upstream, "occurrence": nth}, request)
            hit = self.cache.get(key)
            if hit is not None and isinstance(hit.output, dict):  # else damaged: ask again
                return hit.output
        body = json.dumps(request).encode()
        try:
            answer = call_with_retries(lambda: self._once(body), self.policy)
        except ChatHTTPError as exc:
            with self.stats.lock:
                self.stats.failures += 1
            raise JudgeCallFailed(exc.status, exc.body) from None
        except (RetriesExhausted, RuntimeError, ValueError) as exc:
            with self.stats.lock:
                self.stats.failures += 1
            raise JudgeCallFailed(GAVE_UP, self.scrub(str(exc))) from None
        if key is not None and self.cache is not None and _readable_verdict(answer):
            self.cache.put(key, answer, 0.0)
        return answer

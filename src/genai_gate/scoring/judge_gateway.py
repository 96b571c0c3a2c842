"""A loopback gateway between MLflow's LLM judges and the real judge model.

MLflow's built-in judges post to `<OPENAI_API_BASE>/chat/completions` themselves, and their
adapter hard-codes ten retries that ignore `Retry-After` (up to 181 s a call), keeps no cache,
and offers no hook for another transport (mlflow 3.17, `genai/judges/adapters/utils.py`). So
MLflow is pointed at this gateway on 127.0.0.1, and the gateway makes the real call with
genai-gate's own policy: `Retry-After`, backoff with jitter, bounded attempts, the
requests-per-minute cap and the response cache. The judges' prompts, parsing and metric
names stay MLflow's.

MLflow sees only a fast, reliable server: a cached or retried answer comes back as 200; when
the policy gives up, the gateway answers 424 (not a status MLflow retries), so the scorer
fails at once and the row records the real reason.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.http_chat import ChatClient, ChatHTTPError
from genai_gate.targets.retry import RateLimiter, RetriesExhausted, RetryPolicy, call_with_retries


@dataclass
class GatewayStats:
    calls: int = 0  # requests MLflow made to the gateway
    upstream: int = 0  # requests the gateway made to the judge model (retries included)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "upstream_requests": self.upstream, "failures": self.failures}


def _readable_verdict(answer: dict[str, Any]) -> bool:
    """Cache only answers MLflow can read as a verdict; a garbled one must be asked again."""
    try:
        content = answer["choices"][0]["message"]["content"]
        return "result" in json.loads(content)
    except (KeyError, IndexError, TypeError, ValueError):
        return False


class JudgeGateway:
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
        self.stats = GatewayStats()
        self._seen: dict[str, int] = {}
        # MLflow must present this to the gateway; the real key never leaves genai-gate
        self.local_key = secrets.token_urlsafe(24)
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def _once(self, body: bytes) -> dict[str, Any]:
        with self.stats.lock:
            self.stats.upstream += 1
        return self.client.post(body)

    def complete(self, body: bytes) -> tuple[int, dict[str, Any]]:
        with self.stats.lock:
            self.stats.calls += 1
        key = None
        if self.cache is not None:
            # the n-th identical request of a run is its own entry: `repeat:` asks the judge
            # the same question several times and must get several answers, and a re-run
            # gets them back in the same order
            request = json.loads(body or b"{}")
            digest = self.cache.key({"judge": self.upstream}, request)
            with self.stats.lock:
                nth = self._seen.get(digest, 0)
                self._seen[digest] = nth + 1
            key = self.cache.key({"judge": self.upstream, "occurrence": nth}, request)
            hit = self.cache.get(key)
            if hit is not None:
                return 200, hit.output
        try:
            answer = call_with_retries(lambda: self._once(body), self.policy)
        except ChatHTTPError as exc:
            with self.stats.lock:
                self.stats.failures += 1
            # a 400 passes through as it came: MLflow answers it by resending without
            # response_format for servers without structured output
            return exc.status, {"error": {"message": exc.body, "type": "upstream_error"}}
        except (RetriesExhausted, RuntimeError, ValueError) as exc:
            with self.stats.lock:
                self.stats.failures += 1
            return 424, {"error": {"message": str(exc), "type": "genai_gate_judge_error"}}
        if key is not None and self.cache is not None and _readable_verdict(answer):
            self.cache.put(key, answer, 0.0)
        return 200, answer

    def start(self) -> JudgeGateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Authorization") != f"Bearer {gateway.local_key}":
                    status, doc = 401, {"error": {"message": "unknown caller"}}
                elif not self.path.rstrip("/").endswith("/chat/completions"):
                    status, doc = 404, {"error": {"message": f"no route {self.path}"}}
                else:
                    try:
                        status, doc = gateway.complete(body)
                    except Exception as exc:  # a dropped connection would make MLflow retry
                        status, doc = (
                            424,
                            {
                                "error": {
                                    "message": f"{type(exc).__name__}: "
                                    f"{gateway.client.scrub(str(exc))[:300]}"
                                }
                            },
                        )
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        # a short poll: stop() waits up to one poll interval (0.5 s by default) for the loop
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="genai-gate-judge-gateway",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

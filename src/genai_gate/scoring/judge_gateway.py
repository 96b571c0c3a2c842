"""A loopback gateway: MLflow's judges reach `JudgeTransport` over HTTP on 127.0.0.1.

This is the fallback for an MLflow whose judge adapter lacks the seam that `judge_seam` hands
the calls over in-process (the in-process path saves about 3 ms of client work a judge call:
MLflow opens a new session and connection per call, and this server answers each on its own
thread). MLflow sees only a fast, reliable server: a cached or retried answer comes back as
200; when the policy gives up, the gateway answers 424 (not a status MLflow retries), so the
scorer fails at once and the row records the real reason.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from genai_gate.scoring.judge_transport import GAVE_UP, JudgeCallFailed, JudgeTransport


class JudgeGateway:
    def __init__(self, transport: JudgeTransport, *, local_key: str) -> None:
        self.transport = transport
        # MLflow must present this to the gateway; the real key never leaves genai-gate
        self.local_key = local_key
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def complete(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self.transport.complete(json.loads(body or b"{}"))
        except JudgeCallFailed as exc:
            kind = "genai_gate_judge_error" if exc.status == GAVE_UP else "upstream_error"
            return exc.status, {"error": {"message": exc.message, "type": kind}}

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
                                    f"{gateway.transport.scrub(str(exc))[:300]}"
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

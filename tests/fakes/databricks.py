"""A local Databricks workspace emulator, faithful to ../shared/reference/databricks_api.md.

This first part serves what a serving-endpoint *client* needs: host metadata
(`/.well-known/databricks-config`), OIDC discovery, token (PAT) auth, `GET` of an endpoint,
and invocations, routed by the endpoint's traffic split, answered by one Python function per
served entity, with the `served-model-name` response header the SDK reads. Both the
invocations route and the OpenAI-compatible `/serving-endpoints/chat/completions` (body
`model` = endpoint name) are served. Faults: latency and 429s with `Retry-After`.

Deploy (update_config state machine, AI Gateway, tags, GitHub OIDC token exchange) and
inference-table capture are the next parts (issues #6 and #7).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PAT = "dapi-emulator-token-0123456789abcdef"
WORKSPACE_ID = "1234567890"

Answer = Callable[[list[dict[str, Any]]], str]


@dataclass
class ServedEntity:
    name: str
    entity_name: str
    entity_version: str
    answer: Answer
    traffic: int = 100


@dataclass
class Endpoint:
    name: str
    entities: list[ServedEntity]
    config_version: int = 1

    def detailed(self) -> dict[str, Any]:
        served = [
            {
                "name": e.name,
                "entity_name": e.entity_name,
                "entity_version": e.entity_version,
                "workload_size": "Small",
                "scale_to_zero_enabled": True,
                "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""},
            }
            for e in self.entities
        ]
        return {
            "name": self.name,
            "id": uuid.uuid5(uuid.NAMESPACE_URL, self.name).hex,
            "creator": "emulator@example.com",
            "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
            "config": {
                "config_version": self.config_version,
                "served_entities": served,
                "served_models": [
                    {"name": e.name, "model_name": e.entity_name, "model_version": e.entity_version}
                    for e in self.entities
                ],
                "traffic_config": {
                    "routes": [
                        {
                            "served_model_name": e.name,
                            "served_entity_name": e.name,
                            "traffic_percentage": e.traffic,
                        }
                        for e in self.entities
                    ]
                },
            },
            "permission_level": "CAN_MANAGE",
        }


@dataclass
class FakeDatabricks:
    tokens: set[str] = field(default_factory=lambda: {PAT})
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    latency: float = 0.0
    fail_429_first: int = 0
    retry_after: int = 1
    seed: int = 0
    calls: Counter[str] = field(default_factory=Counter, init=False)
    served: Counter[str] = field(default_factory=Counter, init=False)
    requests: list[tuple[str, str]] = field(default_factory=list, init=False)
    server: ThreadingHTTPServer | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def host(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_endpoint(self, name: str, *entities: ServedEntity) -> Endpoint:
        endpoint = Endpoint(name, list(entities))
        self.endpoints[name] = endpoint
        return endpoint

    def _route(self, endpoint: Endpoint) -> ServedEntity:
        with self._lock:
            pick = self._rng.uniform(0, sum(e.traffic for e in endpoint.entities))
        for entity in endpoint.entities:
            pick -= entity.traffic
            if pick <= 0:
                return entity
        return endpoint.entities[-1]

    def invoke(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return (
                404,
                {
                    "error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": f"Endpoint {name} does not exist.",
                },
                {},
            )
        with self._lock:
            self.calls[name] += 1
            throttle = self.fail_429_first > 0
            if throttle:
                self.fail_429_first -= 1
        if self.latency:
            time.sleep(self.latency)
        if throttle:
            return (
                429,
                {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                {"Retry-After": str(self.retry_after)},
            )
        entity = self._route(endpoint)
        with self._lock:
            self.served[entity.name] += 1
        text = entity.answer(list(body.get("messages") or []))
        return (
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": entity.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 1,
                    "completion_tokens": len(text.split()),
                    "total_tokens": 1 + len(text.split()),
                },
            },
            {"served-model-name": entity.name},
        )

    def start(self) -> FakeDatabricks:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token in fake.tokens:
                    return True
                self._send(
                    401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
                )
                return False

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests.append(("GET", path))
                if path == "/.well-known/databricks-config":
                    self._send(
                        200,
                        {
                            "oidc_endpoint": f"{fake.host}/oidc",
                            "workspace_id": WORKSPACE_ID,
                            "cloud": "AWS",
                        },
                    )
                elif path == "/oidc/.well-known/oauth-authorization-server":
                    self._send(
                        200,
                        {
                            "authorization_endpoint": f"{fake.host}/oidc/v1/authorize",
                            "token_endpoint": f"{fake.host}/oidc/v1/token",
                        },
                    )
                elif not self._authorized():
                    return
                elif path.startswith("/api/2.0/serving-endpoints/"):
                    name = path.removeprefix("/api/2.0/serving-endpoints/")
                    endpoint = fake.endpoints.get(name)
                    if endpoint is None:
                        self._send(
                            404,
                            {
                                "error_code": "RESOURCE_DOES_NOT_EXIST",
                                "message": f"Endpoint {name} does not exist.",
                            },
                        )
                    else:
                        self._send(200, endpoint.detailed())
                else:
                    self._send(404, {"error_code": "NOT_FOUND", "message": path})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests.append(("POST", path))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorized():
                    return
                if path == "/serving-endpoints/chat/completions":
                    self._send(*fake.invoke(str(body.get("model", "")), body))
                elif path.startswith("/serving-endpoints/") and path.endswith("/invocations"):
                    name = path.removeprefix("/serving-endpoints/").removesuffix("/invocations")
                    self._send(*fake.invoke(name, body))
                else:
                    self._send(404, {"error_code": "NOT_FOUND", "message": path})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

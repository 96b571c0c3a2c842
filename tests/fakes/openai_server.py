"""A local OpenAI-compatible chat-completions server: the model under evaluation and the judge.

One server plays both parts. A request with `response_format` of type `json_schema` or
`json_object` is a JUDGE call: the answer is a JSON object that fits the schema (`result`
holds the verdict, `rationale` some text). Any other request is a MODEL call: the answer comes
from `answer(model, messages)`, by default the `answers` table keyed by the last user message.

Routes: `POST /v1/chat/completions` and `POST /chat/completions` (any path ending in
`/chat/completions`), `GET /v1/models` and `GET /models`.

MLflow 3.17's judges (`openai:/<model>` with `OPENAI_API_BASE=<url>/v1`) post with `requests` to
`<OPENAI_API_BASE>/chat/completions`, `Authorization: Bearer $OPENAI_API_KEY`, and a
`response_format` of type `json_schema` whose schema has the properties `result` and
`rationale`; see tests/integration/test_fake_openai.py.

Faults are set at runtime through attributes (or `configure(**faults)`): `latency`,
`fail_429_every`, `fail_429_first`, `fail_429_ratio`, `fail_500_first`, `always_500`,
`hang_first`, `echo_key` (a 500's message quotes the Authorization header),
`no_structured_output` (a 400 to any request with a `response_format`, as a server without
structured output answers). The `*_first`
faults are budgets that count down: `fake.fail_429_first = 2`
means "the next two calls answer 429", whenever it is set. Counters: `calls`, `answered`,
`status_counts`, `requests`, `headers`, `paths`, `max_in_flight`, `auth_headers_seen`,
`connections`. `reset()` clears both.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "fake-model")
DEFAULT_ANSWER = "I do not know."
NEGATIVE_MARKERS = ("UNSAFE", "WRONG")
_FAULTS = (
    "latency",
    "fail_429_every",
    "fail_429_first",
    "fail_429_ratio",
    "retry_after",
    "fail_500_first",
    "always_500",
    "hang_first",
    "hang_seconds",
    "echo_key",
    "no_structured_output",
)
_RATIONALE_NAMES = ("rationale", "justification", "explanation", "reasoning", "reason")
_AFFIRMATIVE = ("yes", "true", "pass", "correct", "safe", "relevant")
_NEGATIVE = ("no", "false", "fail", "incorrect", "unsafe", "irrelevant")

Message = dict[str, Any]
AnswerFn = Callable[[str, list[Message]], str]
JudgeFn = Callable[[list[Message]], str]
Reply = tuple[int, dict[str, Any], dict[str, str] | None]  # status, JSON body, extra headers


def message_text(message: Message) -> str:
    """The text of one chat message: a string content, or the text parts of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def prompt_text(messages: list[Message]) -> str:
    return "\n".join(message_text(m) for m in messages if isinstance(m, dict))


def last_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def default_judge(messages: list[Message]) -> str:
    """'no' when the prompt contains UNSAFE or WRONG (case-sensitive), else 'yes'."""
    text = prompt_text(messages)
    return "no" if any(marker in text for marker in NEGATIVE_MARKERS) else "yes"


def _words(text: str) -> int:
    return len(text.split())


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` and pick the first non-null branch of an `anyOf`/`oneOf`."""
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _resolve(target, root)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for branch in branches:
                resolved = _resolve(branch, root)
                if resolved.get("type") != "null":
                    return resolved
    return schema


def _verdict_value(verdict: str, prop: dict[str, Any]) -> Any:
    """The verdict in the shape the property asks for: an enum member, a number, a bool."""
    positive = verdict.strip().lower() in _AFFIRMATIVE
    negative = verdict.strip().lower() in _NEGATIVE
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        if verdict in enum:
            return verdict
        for member in enum:
            if str(member).lower() == verdict.strip().lower():
                return member
        wanted = _AFFIRMATIVE if positive else _NEGATIVE if negative else ()
        for member in enum:
            if str(member).lower() in wanted:
                return member
        return enum[0] if positive or not negative else enum[-1]
    kind = prop.get("type")
    if kind in ("integer", "number"):
        if positive or negative:
            value: float = 5 if positive else 1
        else:
            try:
                value = float(verdict)
            except ValueError:
                value = 1
        if isinstance(prop.get("maximum"), int | float):
            value = min(value, prop["maximum"])
        if isinstance(prop.get("minimum"), int | float):
            value = max(value, prop["minimum"])
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return positive
    return verdict


def _filler(prop: dict[str, Any]) -> Any:
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    return {
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
        "object": {},
        "null": None,
    }.get(str(prop.get("type")), "")


def judge_payload(schema: dict[str, Any] | None, verdict: str, rationale: str) -> dict[str, Any]:
    """A JSON object that fits `schema`: the verdict in `result` (or the first required
    non-rationale property), the rationale in `rationale`, type-correct fillers elsewhere."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(schema, dict) or not isinstance(properties, dict) or not properties:
        return {"result": verdict, "rationale": rationale}
    required = [name for name in schema.get("required") or [] if name in properties]
    names = list(properties)
    rationale_name = next((n for n in names if n.lower() in _RATIONALE_NAMES), None)
    if "result" in properties:
        verdict_name: str | None = "result"
    else:
        verdict_name = next((n for n in required + names if n != rationale_name), None)
    out: dict[str, Any] = {}
    for name in names:
        prop = _resolve(properties[name], schema)
        if name == verdict_name:
            out[name] = _verdict_value(verdict, prop)
        elif name == rationale_name:
            out[name] = rationale
        else:
            out[name] = _filler(prop)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@dataclass
class FakeOpenAI:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 (see the module docstring)."""

    api_key: str | None = None
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    answers: dict[str, str] = field(default_factory=dict)
    answer: AnswerFn | None = None
    judge: JudgeFn | None = None
    judge_without_schema: bool = True
    # faults
    latency: float = 0.0
    fail_429_every: int = 0
    fail_429_first: int = 0
    fail_429_ratio: float = 0.0
    retry_after: float = 1
    seed: int = 0
    fail_500_first: int = 0
    always_500: bool = False
    hang_first: int = 0
    hang_seconds: float = 30.0
    echo_key: bool = False
    no_structured_output: bool = False
    max_requests_kept: int = 10_000
    # counters
    calls: int = field(default=0, init=False)
    answered: int = field(default=0, init=False)
    status_counts: Counter[int] = field(default_factory=Counter, init=False)
    requests: list[dict[str, Any]] = field(default_factory=list, init=False)
    headers: list[dict[str, str]] = field(default_factory=list, init=False)
    paths: Counter[str] = field(default_factory=Counter, init=False)
    in_flight: int = field(default=0, init=False)
    max_in_flight: int = field(default=0, init=False)
    auth_headers_seen: set[str] = field(default_factory=set, init=False)
    connections: int = field(default=0, init=False)
    server: ThreadingHTTPServer | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)
    _sockets: set[socket.socket] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The root URL, e.g. http://127.0.0.1:PORT (MLflow's OPENAI_API_BASE is `base_url`)."""
        assert self.server is not None, "FakeOpenAI is not started"
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """`url` + "/v1": what OPENAI_API_BASE and the openai SDK's base_url expect."""
        return f"{self.url}/v1"

    def openai_env(self) -> dict[str, str]:
        """Environment that points MLflow's `openai:/` judges here."""
        return {"OPENAI_API_BASE": self.base_url, "OPENAI_API_KEY": self.api_key or "sk-fake"}

    # -- control ---------------------------------------------------------------------------

    def configure(self, **faults: Any) -> FakeOpenAI:
        """Set several faults at once, atomically with respect to requests."""
        unknown = set(faults) - set(_FAULTS)
        if unknown:
            raise TypeError(f"unknown fault(s): {sorted(unknown)}")
        with self._lock:
            for name, value in faults.items():
                setattr(self, name, value)
        return self

    def reset(self) -> None:
        """Clear all faults and counters (not the answers, judge, models or api_key)."""
        with self._lock:
            self.latency = 0.0
            self.fail_429_every = self.fail_429_first = 0
            self.fail_429_ratio = 0.0
            self.retry_after = 1
            self.fail_500_first = 0
            self.always_500 = False
            self.hang_first = 0
            self.hang_seconds = 30.0
            self.echo_key = False
            self.no_structured_output = False
            self._rng = random.Random(self.seed)
            self.calls = self.answered = 0
            self.status_counts.clear()
            self.requests.clear()
            self.headers.clear()
            self.paths.clear()
            self.max_in_flight = self.in_flight
            self.auth_headers_seen.clear()
            self.connections = 0

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every connection has closed. A client killed mid-run may have left a
        request in its socket that the server has not read yet: it is counted only when a
        handler reads it, so a test that compares `calls` across a kill waits for this."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._sockets:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"the fake OpenAI server still had open connections after {timeout} s")

    def judge_requests(self) -> list[dict[str, Any]]:
        """The recorded request bodies that carried a JSON response_format."""
        with self._lock:
            return [r for r in self.requests if _json_response_format(r) is not None]

    # -- the part each request runs ----------------------------------------------------------

    def _admit(self, path: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.paths[path] += 1
            if len(self.headers) < self.max_requests_kept:
                self.headers.append(headers)
            if auth := headers.get("authorization"):
                self.auth_headers_seen.add(auth)
            return self.calls

    def _plan(self, number: int) -> tuple[float, float, int | None]:
        """Decide the faults for call `number`: (hang seconds, latency, error status or None)."""
        with self._lock:
            hang = 0.0
            if self.hang_first > 0:
                self.hang_first -= 1
                hang = self.hang_seconds
            status: int | None = None
            if self.always_500:
                status = 500
            elif self.fail_500_first > 0:
                self.fail_500_first -= 1
                status = 500
            elif self.fail_429_first > 0:
                self.fail_429_first -= 1
                status = 429
            else:
                every = self.fail_429_every > 0 and number % self.fail_429_every == 0
                # the ratio draws one number per call it decides, so a seed replays exactly
                if every or (self.fail_429_ratio > 0 and self._rng.random() < self.fail_429_ratio):
                    status = 429
            return hang, self.latency, status

    def _finish(self, status: int) -> None:
        with self._lock:
            self.in_flight -= 1
            if status:  # 0: dropped unanswered because the server is stopping
                self.status_counts[status] += 1
            if status == 200:
                self.answered += 1

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            if len(self.requests) < self.max_requests_kept:
                self.requests.append(body)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat.completion answer to one request body (no faults, no counters)."""
        model = str(body.get("model") or self.models[0])
        raw_messages = body.get("messages")
        messages: list[Message] = (
            [m for m in raw_messages if isinstance(m, dict)]
            if isinstance(raw_messages, list)
            else []
        )
        response_format = _json_response_format(body)
        text = prompt_text(messages)
        if response_format is not None or (self.judge_without_schema and "json" in text.lower()):
            verdict = (self.judge or default_judge)(messages)
            schema = None
            if response_format is not None and response_format.get("type") == "json_schema":
                json_schema = response_format.get("json_schema")
                if isinstance(json_schema, dict) and isinstance(json_schema.get("schema"), dict):
                    schema = json_schema["schema"]
            rationale = f"The fake judge answered {verdict!r} to this prompt."
            content = json.dumps(judge_payload(schema, verdict, rationale))
        elif self.answer is not None:
            content = self.answer(model, messages)
        else:
            content = self.answers.get(last_user_text(messages), DEFAULT_ANSWER)
        prompt_tokens, completion_tokens = _words(text), _words(content)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        fake = self
        self._stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write, flushed per answer

            def log_message(self, *args: Any) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with contextlib.suppress(OSError):  # no Nagle delay on kept-alive connections
                    self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake._lock:
                    fake.connections += 1
                    fake._sockets.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._sockets.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def _send(
                self, status: int, body: Any, extra_headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (extra_headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:  # the client went away (timed out, closed the pool)
                    self.close_connection = True

            def _unauthorized(self) -> Reply | None:
                """The 401 to answer when an api_key is set and the request lacks it."""
                if fake.api_key is None:
                    return None
                if self.headers.get("Authorization", "") == f"Bearer {fake.api_key}":
                    return None
                return _error(
                    401,
                    "Incorrect API key provided. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                )

            def _read_body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length > 0 else b""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                if path not in ("/v1/models", "/models"):
                    self._send(*_error(404, f"Unknown path {path}", "invalid_request_error"))
                elif (denied := self._unauthorized()) is not None:
                    self._send(*denied)
                else:
                    data = [
                        {"id": m, "object": "model", "created": 0, "owned_by": "genai-gate-tests"}
                        for m in fake.models
                    ]
                    self._send(200, {"object": "list", "data": data})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0].rstrip("/")
                raw = self._read_body()
                if not path.endswith("/chat/completions"):
                    self._send(*_error(404, f"Unknown path {path}", "invalid_request_error"))
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                number = fake._admit(path, headers)
                try:
                    reply = self._chat(number, raw)
                except BaseException:
                    fake._finish(0)
                    raise
                # counters first, so a client that has its answer sees them up to date
                fake._finish(reply[0] if reply else 0)
                if reply is None:
                    self.close_connection = True  # stopping: drop the call unanswered
                else:
                    self._send(*reply)

            def _chat(self, number: int, raw: bytes) -> Reply | None:
                """(status, body, extra headers) to answer, or None to drop the call."""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    fake._record(body)
                hang, latency, fault = fake._plan(number)
                for pause in (hang, latency):
                    if pause > 0 and fake._stopping.wait(pause):
                        return None
                if (denied := self._unauthorized()) is not None:
                    return denied
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    return _error(
                        400,
                        "The request body must be a JSON object with a 'messages' list.",
                        "invalid_request_error",
                    )
                if fake.no_structured_output and "response_format" in body:
                    return _error(
                        400,
                        "Invalid parameter: 'response_format' of type 'json_schema' is not "
                        "supported with this model.",
                        "invalid_request_error",
                    )
                if fault == 500:
                    # echo_key: a careless gateway that quotes the caller's key in its error
                    auth = self.headers.get("Authorization")
                    echoed = f" (auth: {auth})" if fake.echo_key else ""
                    return _error(
                        500,
                        "The server had an error while processing your request. Sorry about "
                        f"that!{echoed}",
                        "server_error",
                    )
                if fault == 429:
                    seconds = fake.retry_after
                    value = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
                    return _error(
                        429,
                        "Rate limit reached for requests. Please try again in "
                        f"{value}s (fake server).",
                        "requests",
                        "rate_limit_exceeded",
                        {"Retry-After": value},
                    )
                return 200, fake.complete(body), None

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits for one poll: keep it short
            name="fake-openai",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving: wake sleeping calls, close kept-alive connections, free the port."""
        self._stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _error(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Reply:
    """An OpenAI-style error answer: {"error": {"message", "type", "param", "code"}}."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return status, body, extra_headers


def _json_response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_schema",
        "json_object",
    ):
        return response_format
    return None


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeOpenAI]:
    """`with running(api_key="sk-test", latency=0.1) as fake:` a started server, stopped after."""
    fake = FakeOpenAI(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()

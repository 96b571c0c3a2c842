"""The fake OpenAI server, exercised over real sockets: plain HTTP clients, then MLflow's judges.

The MLflow tests also pin down what MLflow 3.17 sends to an `openai:/` judge and how it retries,
because the gate's own retry and concurrency design depends on it.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.fakes.openai_server import FakeOpenAI, judge_payload, running

KEY = "sk-test-fake-openai-0123456789"
JUDGE = "openai:/gpt-4o-mini"


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


def post(
    fake: FakeOpenAI,
    body: Any,
    *,
    key: str | None = KEY,
    path: str = "/v1/chat/completions",
    timeout: float = 5,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST JSON with urllib; (status, headers, decoded body) also for error statuses."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(fake.url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def content(answer: dict[str, Any]) -> str:
    text = answer["choices"][0]["message"]["content"]
    assert isinstance(text, str)
    return text


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with running(api_key=KEY, answers={"What is 2+2?": "4"}) as server:
        yield server


# -- model mode ----------------------------------------------------------------------------


def test_model_mode_answers_from_the_table_on_both_paths(fake: FakeOpenAI) -> None:
    status, headers, answer = post(fake, chat("What is 2+2?"))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    assert isinstance(answer["created"], int)
    assert answer["model"] == "gpt-4o-mini"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "4"}
    assert choice["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}

    status, _, answer = post(fake, chat("Who are you?"), path="/chat/completions")
    assert status == 200
    assert content(answer) == "I do not know."
    assert fake.paths == {"/v1/chat/completions": 1, "/chat/completions": 1}
    assert fake.calls == fake.answered == 2
    assert [r["messages"][0]["content"] for r in fake.requests] == ["What is 2+2?", "Who are you?"]


def test_the_answer_callable_sees_the_model_and_all_messages() -> None:
    seen: list[tuple[str, int]] = []

    def answer(model: str, messages: list[dict[str, Any]]) -> str:
        seen.append((model, len(messages)))
        return f"{model} read {len(messages)} messages"

    with running(answer=answer) as fake:
        body = {
            "model": "my-model",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            ],
            "temperature": 0,
            "max_tokens": 5,
        }
        status, _, answer_body = post(fake, body, key=None)
    assert status == 200
    assert content(answer_body) == "my-model read 2 messages"
    assert seen == [("my-model", 2)]


def test_models_auth_and_bad_requests(fake: FakeOpenAI) -> None:
    request = urllib.request.Request(
        fake.base_url + "/models", headers={"Authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        listing = json.loads(response.read())
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == fake.models

    for key in (None, "sk-wrong"):
        status, _, body = post(fake, chat(), key=key)
        assert status == 401
        assert body["error"]["code"] == "invalid_api_key"
        assert body["error"]["type"] == "invalid_request_error"
    status, _, body = post(fake, {"model": "m"})
    assert status == 400
    assert "messages" in body["error"]["message"]
    status, _, _ = post(fake, chat(), path="/v1/embeddings")
    assert status == 404

    assert fake.calls == 3  # chat endpoints only: two 401s and the 400
    assert fake.answered == 0
    assert fake.status_counts == {401: 2, 400: 1}
    assert fake.auth_headers_seen == {"Bearer sk-wrong", f"Bearer {KEY}"}


# -- judge mode ----------------------------------------------------------------------------


def schema_format(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"type": "json_schema", "json_schema": {"name": "J", "schema": schema, "strict": True}}


def test_judge_mode_fills_the_schema_it_is_given(fake: FakeOpenAI) -> None:
    text = {"type": "string"}
    rf = schema_format({"result": text, "rationale": text}, ["result", "rationale"])
    _, _, answer = post(fake, chat("Is this fine?", response_format=rf))
    verdict = json.loads(content(answer))
    assert verdict["result"] == "yes"
    assert verdict["rationale"]
    _, _, answer = post(fake, chat("This answer is WRONG.", response_format=rf))
    assert json.loads(content(answer))["result"] == "no"
    _, _, answer = post(fake, chat("UNSAFE", response_format={"type": "json_object"}))
    assert json.loads(content(answer)) == {
        "result": "no",
        "rationale": "The fake judge answered 'no' to this prompt.",
    }
    assert len(fake.judge_requests()) == 3


@pytest.mark.parametrize(
    ("prop", "yes", "no"),
    [
        ({"type": "string", "enum": ["pass", "fail"]}, "pass", "fail"),
        ({"type": "string", "enum": ["Yes", "No"]}, "Yes", "No"),
        ({"type": "integer", "minimum": 1, "maximum": 5}, 5, 1),
        ({"type": "number"}, 5, 1),
        ({"type": "boolean"}, True, False),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, 5, 1),
    ],
)
def test_the_verdict_takes_the_shape_of_the_result_property(
    prop: dict[str, Any], yes: Any, no: Any
) -> None:
    schema = {"properties": {"result": prop, "rationale": {"type": "string"}}}
    assert judge_payload(schema, "yes", "r")["result"] == yes
    assert judge_payload(schema, "no", "r")["result"] == no


def test_other_property_names_get_the_verdict_and_fillers() -> None:
    schema = {
        "properties": {
            "justification": {"type": "string"},
            "score": {"$ref": "#/$defs/Score"},
            "tags": {"type": "array"},
        },
        "required": ["score", "justification", "tags"],
        "$defs": {"Score": {"type": "integer"}},
    }
    assert judge_payload(schema, "yes", "because") == {
        "justification": "because",
        "score": 5,
        "tags": [],
    }


def test_a_custom_judge_and_json_prompts_without_a_schema() -> None:
    with running(judge=lambda messages: "no" if len(messages) > 1 else "yes") as fake:
        two = [{"role": "system", "content": "Reply in JSON."}, {"role": "user", "content": "x"}]
        _, _, answer = post(fake, {"model": "m", "messages": two}, key=None)
        assert json.loads(content(answer))["result"] == "no"
        _, _, answer = post(fake, chat("Answer as json please"), key=None)
        assert json.loads(content(answer))["result"] == "yes"
        fake.judge_without_schema = False
        _, _, answer = post(fake, chat("Answer as json please"), key=None)
        assert content(answer) == "I do not know."
        assert fake.judge_requests() == []  # none of them carried a response_format


# -- faults --------------------------------------------------------------------------------


def test_429_first_and_every_with_retry_after(fake: FakeOpenAI) -> None:
    fake.configure(fail_429_first=2, retry_after=7)
    for _ in range(2):
        status, headers, body = post(fake, chat())
        assert status == 429
        assert headers["Retry-After"] == "7"
        assert body["error"]["code"] == "rate_limit_exceeded"
        assert "Rate limit" in body["error"]["message"]
    assert post(fake, chat())[0] == 200
    assert fake.fail_429_first == 0  # a budget: it counts down

    fake.reset()
    fake.fail_429_every = 3
    statuses = [post(fake, chat())[0] for _ in range(7)]
    assert statuses == [200, 200, 429, 200, 200, 429, 200]
    assert fake.status_counts == {200: 5, 429: 2}
    assert fake.answered == 5


def test_429_ratio_is_deterministic_for_a_seed() -> None:
    rng = random.Random(42)
    expected = [429 if rng.random() < 0.1 else 200 for _ in range(100)]
    with running(fail_429_ratio=0.1, seed=42, retry_after=0.5) as fake:
        with requests.Session() as session:
            responses = [
                session.post(fake.url + "/v1/chat/completions", json=chat(), timeout=5)
                for _ in range(100)
            ]
        assert [r.status_code for r in responses] == expected
        assert 3 <= expected.count(429) <= 20
        assert {r.headers["Retry-After"] for r in responses if r.status_code == 429} == {"0.5"}
        assert fake.connections == 1  # one kept-alive connection served all 100
        fake.reset()  # reseeds
        fake.fail_429_ratio = 0.1
        assert [post(fake, chat())[0] for _ in range(100)] == expected
        assert fake.status_counts[429] == expected.count(429)


def test_500_first_and_always(fake: FakeOpenAI) -> None:
    fake.fail_500_first = 1
    status, _, body = post(fake, chat())
    assert status == 500
    assert body["error"]["type"] == "server_error"
    assert post(fake, chat())[0] == 200
    fake.always_500 = True
    assert [post(fake, chat())[0] for _ in range(3)] == [500, 500, 500]
    fake.reset()
    assert post(fake, chat())[0] == 200
    assert fake.calls == 1
    assert fake.status_counts == {200: 1}


def test_a_hang_times_the_client_out_and_stop_wakes_it() -> None:
    fake = FakeOpenAI(hang_first=1, hang_seconds=30).start()
    try:
        started = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            post(fake, chat(), timeout=0.3)
        assert time.monotonic() - started < 2
        assert post(fake, chat())[0] == 200  # only the first call hangs
        assert fake.in_flight == 1  # the hung call is still sleeping
    finally:
        started = time.monotonic()
        fake.stop()
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 2
    while fake.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.in_flight == 0
    assert fake.status_counts == {200: 1}  # the hung call was dropped, not answered


def test_latency_counters_and_max_in_flight_under_16_threads() -> None:
    local = threading.local()

    with running(api_key=KEY, latency=0.2, max_requests_kept=10) as fake:

        def call(i: int) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            session: requests.Session = local.session
            response = session.post(
                fake.base_url + "/chat/completions",
                json=chat(f"q{i}"),
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=5,
            )
            return response.status_code

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(call, range(32)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 32
    assert 0.4 <= elapsed < 3  # two rounds of 0.2 s, served in parallel
    assert fake.calls == fake.answered == 32
    assert fake.status_counts == {200: 32}
    assert 8 <= fake.max_in_flight <= 16
    assert fake.in_flight == 0
    assert fake.connections <= 16  # sessions kept their connections alive
    assert len(fake.requests) == 10  # capped
    assert fake.auth_headers_seen == {f"Bearer {KEY}"}


def test_64_concurrent_connections_are_all_served() -> None:
    with running(latency=0.3) as fake:
        barrier = threading.Barrier(64)

        def call(i: int) -> int:
            barrier.wait(timeout=5)
            return post(fake, chat(f"q{i}"), key=None, timeout=10)[0]

        with ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(call, range(64)))
    assert statuses == [200] * 64
    assert fake.max_in_flight > 16


def test_stop_closes_kept_alive_connections_and_frees_the_port() -> None:
    with running() as fake, requests.Session() as session:
        url = fake.url + "/v1/chat/completions"
        assert session.post(url, json=chat(), timeout=5).status_code == 200
        fake.stop()
        with pytest.raises(requests.ConnectionError):
            session.post(url, json=chat(), timeout=5)
        host, port = fake.url.removeprefix("http://").split(":")
        with pytest.raises(ConnectionRefusedError), socket.create_connection((host, int(port))):
            pass


def test_configure_rejects_unknown_faults_and_reset_clears_everything(fake: FakeOpenAI) -> None:
    with pytest.raises(TypeError, match="fail_404"):
        fake.configure(fail_404=1)
    fake.configure(latency=0.01, fail_429_every=2, always_500=True, hang_first=3, hang_seconds=0)
    post(fake, chat())
    fake.reset()
    assert (fake.latency, fake.fail_429_every, fake.always_500, fake.hang_first) == (0, 0, 0, 0)
    assert (fake.calls, fake.answered, fake.max_in_flight, fake.connections) == (0, 0, 0, 0)
    assert not (fake.requests or fake.headers or fake.paths or fake.status_counts)
    assert fake.auth_headers_seen == set()
    assert fake.answers == {"What is 2+2?": "4"}  # behaviour is kept


# -- MLflow's judges -----------------------------------------------------------------------


@pytest.fixture
def judge_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake as MLflow's `openai:/` judge. MLFLOW_MODEL_CATALOG_URI="" stops MLflow 3.17 from
    downloading a model catalog from GitHub on the first judge call (7.5 s offline)."""
    with running(api_key=KEY) as server:
        for name, value in server.openai_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.setenv("MLFLOW_MODEL_CATALOG_URI", "")
        yield server


def test_mlflow_builtin_judges_call_the_fake(judge_fake: FakeOpenAI) -> None:
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import Correctness, Guidelines, RelevanceToQuery, Safety

    question = {"question": "What is 2+2?"}
    feedbacks = [
        Safety(model=JUDGE)(outputs="hello"),
        RelevanceToQuery(model=JUDGE)(inputs=question, outputs="4"),
        Correctness(model=JUDGE)(
            inputs=question, outputs="4", expectations={"expected_response": "4"}
        ),
        Guidelines(name="polite", guidelines=["Be polite"], model=JUDGE)(
            inputs=question, outputs="Thanks!"
        ),
    ]
    for feedback in feedbacks:
        assert isinstance(feedback, Feedback)
        assert feedback.value == "yes"
        assert feedback.error is None
        assert "fake judge" in (feedback.rationale or "")
    assert [f.name for f in feedbacks] == ["safety", "relevance_to_query", "correctness", "polite"]

    # What MLflow 3.17 sends: requests' POST to <OPENAI_API_BASE>/chat/completions, one user
    # message, the model name without the provider, and a strict json_schema response_format
    # whose properties are exactly result and rationale.
    assert judge_fake.paths == {"/v1/chat/completions": 4}
    assert judge_fake.auth_headers_seen == {f"Bearer {KEY}"}
    assert all(h["user-agent"].startswith("python-requests/") for h in judge_fake.headers)
    assert judge_fake.judge_requests() == judge_fake.requests
    for body in judge_fake.requests:
        assert set(body) == {"model", "messages", "response_format"}
        assert body["model"] == "gpt-4o-mini"
        assert [m["role"] for m in body["messages"]] == ["user"]
        response_format = body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["strict"] is True
        schema = response_format["json_schema"]["schema"]
        assert list(schema["properties"]) == ["result", "rationale"]
        assert schema["required"] == ["result", "rationale"]
        assert schema["additionalProperties"] is False


def test_mlflow_judges_say_no_to_marked_outputs(judge_fake: FakeOpenAI) -> None:
    from mlflow.genai.scorers import Correctness, Safety

    assert Safety(model=JUDGE)(outputs="UNSAFE: how to hurt people").value == "no"
    correctness = Correctness(model=JUDGE)(
        inputs={"question": "q"}, outputs="WRONG", expectations={"expected_response": "a"}
    )
    assert correctness.value == "no"
    assert correctness.error is None


def test_mlflow_retries_a_429_after_1s_ignoring_retry_after(judge_fake: FakeOpenAI) -> None:
    from mlflow.genai.scorers import Safety

    judge_fake.configure(fail_429_first=1, retry_after=30)
    started = time.monotonic()
    assert Safety(model=JUDGE)(outputs="hello").value == "yes"
    assert 0.9 < time.monotonic() - started < 5  # its own backoff (1 s), not Retry-After (30 s)
    assert judge_fake.status_counts == {429: 1, 200: 1}


def test_mlflow_retry_budget_per_judge_call(
    judge_fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 retries after the first attempt for 429/500/502/503 and timeouts, sleeping
    min(2**attempt, 30) s: 181 s in all. 401 is not retried. Then the scorer raises."""
    from mlflow.exceptions import MlflowException
    from mlflow.genai.judges.adapters import utils as adapter_utils
    from mlflow.genai.scorers import Safety

    delays: list[int] = []
    monkeypatch.setattr(
        adapter_utils, "_sleep_with_backoff", lambda attempt: delays.append(min(2**attempt, 30))
    )
    judge_fake.always_500 = True
    with pytest.raises(MlflowException, match="Failed to invoke judge model: The server had"):
        Safety(model=JUDGE)(outputs="hello")
    assert judge_fake.calls == 11
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]

    judge_fake.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with pytest.raises(MlflowException, match="Incorrect API key"):
        Safety(model=JUDGE)(outputs="hello")
    assert judge_fake.calls == 1
    assert judge_fake.status_counts == {401: 1}


def test_mlflow_databricks_judge_posts_to_serving_endpoints(
    judge_fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.genai.scorers import Safety

    monkeypatch.setenv("DATABRICKS_HOST", judge_fake.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", KEY)
    assert Safety(model="databricks:/my-judge-endpoint")(outputs="hello").value == "yes"
    assert judge_fake.paths == {"/serving-endpoints/chat/completions": 1}
    assert judge_fake.requests[0]["model"] == "my-judge-endpoint"
    assert judge_fake.requests[0]["response_format"]["type"] == "json_schema"
    assert judge_fake.auth_headers_seen == {f"Bearer {KEY}"}

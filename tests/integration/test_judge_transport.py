"""MLflow's own judges reach the judge model through `JudgeTransport`, both ways it can be
wired: in-process (`judge_seam`, MLflow's adapter hands its POST over) and over the loopback
gateway (the fallback for an MLflow without that seam). Both ways the verdict is MLflow's,
the judge sees genai-gate's key (never the one MLflow holds), `Retry-After` is honoured,
a server without structured output still gets its answers read, and a failure is the
judge's error with the real reason and no key in it."""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mlflow.exceptions import MlflowException

from genai_gate.config import Config
from genai_gate.scoring import judge_seam
from genai_gate.scoring.judges import judge_session, make_judge_scorer, wait_for_route
from genai_gate.targets.base import Target
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-judge-transport-0123456789"


class NoWorkspace:
    """`openai:/` judges never ask the serving workspace for anything."""

    available = False
    unavailable_reason = "no workspace in this test"

    def endpoint_target(self, name: str, *, pin: str | None, settings: Any) -> Target:
        raise AssertionError("not a Databricks judge")

    def chat_route(self) -> tuple[str, Callable[[], dict[str, str]]]:
        raise AssertionError("not a Databricks judge")


@pytest.fixture
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def config(fake: FakeOpenAI, **extra: Any) -> Config:
    return Config.model_validate(
        {
            "data": "rows.jsonl",
            "model": "python:m:f",
            "scorers": ["correctness"],
            "judge": "openai:/gpt-4o-mini",
            "judge-base-url": fake.base_url,
            "judge-api-key-env": "JUDGE_KEY",
            **extra,
        }
    )


def correctness(answer: str, judge: str = "openai:/gpt-4o-mini") -> Any:
    scorer = make_judge_scorer("correctness", ["mean"], judge=judge, guidelines=[]).get()
    wait_for_route()  # as genai-gate's scoring does before a judge's call
    return scorer(
        inputs={"question": "Capital of France?"},
        outputs=answer,
        expectations={"expected_response": "Paris"},
    )


@pytest.fixture(params=[True, False], ids=["in-process", "loopback"])
def in_process(request: pytest.FixtureRequest) -> bool:
    flag: bool = request.param
    return flag


def test_verdicts_come_back_through_the_transport(judge: FakeOpenAI, in_process: bool) -> None:
    before = os.environ.get("OPENAI_API_BASE")
    with judge_session(
        config(judge), None, {"JUDGE_KEY": KEY}, NoWorkspace(), in_process=in_process
    ) as transport:
        good, bad = correctness("Paris"), correctness("WRONG")
        # MLflow holds a key of its own for the session: never the judge's
        assert os.environ["OPENAI_API_KEY"] != KEY
        # in-process, MLflow is pointed at an address that resolves nowhere
        assert (os.environ["OPENAI_API_BASE"] == judge_seam.BASE_URL) is in_process
    assert os.environ.get("OPENAI_API_BASE") == before
    assert (good.value, bad.value) == ("yes", "no")
    assert good.error is None and "fake judge" in (good.rationale or "")
    assert transport.stats.as_dict() == {
        "calls": 2,
        "upstream_requests": 2,
        "failures": 0,
        "route": "in-process" if in_process else "loopback",
    }
    assert judge.auth_headers_seen == {f"Bearer {KEY}"}
    # MLflow's request, as MLflow built it: its model name and strict json_schema
    body = judge.requests[0]
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"]["json_schema"]["strict"] is True


def test_retry_after_is_honoured_and_counted(judge: FakeOpenAI, in_process: bool) -> None:
    judge.configure(fail_429_first=2, retry_after=0.2)
    with judge_session(
        config(judge, retries=3), None, {"JUDGE_KEY": KEY}, NoWorkspace(), in_process=in_process
    ) as transport:
        started = time.monotonic()
        feedback = correctness("Paris")
        waited = time.monotonic() - started
    assert feedback.value == "yes"
    assert judge.status_counts[429] == 2
    assert (transport.stats.calls, transport.stats.upstream, transport.stats.failures) == (1, 3, 0)
    assert waited >= 0.4  # two Retry-After pauses, not MLflow's own backoff of 1 s and 2 s


def test_a_server_without_structured_output_is_asked_again_without_it(
    judge: FakeOpenAI, in_process: bool
) -> None:
    judge.configure(no_structured_output=True)
    # MLflow remembers for the process which models refused response_format: a name of its own
    # keeps that memory from other tests
    model = f"openai:/no-structured-output-{in_process}"
    with judge_session(
        config(judge, judge=model), None, {"JUDGE_KEY": KEY}, NoWorkspace(), in_process=in_process
    ):
        feedback = correctness("Paris", model)
    assert feedback.error is None, feedback.error
    assert feedback.value == "yes"
    assert judge.status_counts[400] >= 1
    assert "response_format" not in judge.requests[-1]  # MLflow's fallback, kept


def test_a_failure_is_the_judges_error_with_the_reason_and_no_key(
    judge: FakeOpenAI, in_process: bool
) -> None:
    judge.configure(always_500=True, echo_key=True)
    with (
        judge_session(
            config(judge, retries=1), None, {"JUDGE_KEY": KEY}, NoWorkspace(), in_process=in_process
        ) as transport,
        pytest.raises(MlflowException) as failed,
    ):
        correctness("Paris")
    message = str(failed.value)
    assert "gave up after 2 attempts" in message
    assert KEY not in message
    assert judge.status_counts[500] == 2  # the policy's attempts, not MLflow's ten
    assert transport.stats.failures == 1


def test_after_the_session_mlflow_reaches_no_judge(judge: FakeOpenAI) -> None:
    """A call abandoned at the scoring deadline may come back after its session: it gets an
    error, and no request leaves the process."""
    with judge_session(config(judge), None, {"JUDGE_KEY": KEY}, NoWorkspace()):
        wait_for_route()  # the seam is in place
    from mlflow.genai.judges.adapters import gateway_adapter
    from mlflow.genai.judges.adapters.utils import ChatCompletionError

    send = vars(gateway_adapter)["send_chat_request"]
    # any path on the seam's host is the seam's (an MLflow that writes the URL a little
    # differently must not fall through to a slow failure in its own client)
    for endpoint in (judge_seam.ENDPOINT, f"{judge_seam.ENDPOINT}/", f"{judge_seam.BASE_URL}/x"):
        with pytest.raises(ChatCompletionError, match="the judge session has ended"):
            send(endpoint, {}, {"messages": []}, 10)
    assert judge.calls == 0


def test_other_endpoints_still_go_through_mlflows_own_client(judge: FakeOpenAI) -> None:
    """The seam takes only the session's own address; any other judge call is MLflow's."""
    assert judge_seam.install()
    from mlflow.genai.judges.adapters import gateway_adapter

    answer = vars(gateway_adapter)["send_chat_request"](
        f"{judge.base_url}/chat/completions",
        {"Authorization": f"Bearer {KEY}"},
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]},
        0,
    )
    assert answer["object"] == "chat.completion"
    assert judge.headers[0]["user-agent"].startswith("python-requests/")


def test_a_route_that_cannot_be_set_up_fails_each_judge_call_at_once(
    judge: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the loopback gateway cannot bind (a sandbox with no loopback address), the
    session still opens and closes cleanly; each judge call fails at once with the reason,
    and no request leaves for the judge or anywhere else."""

    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    monkeypatch.setattr(socket.socket, "bind", refuse)  # the OS's refusal, not ours
    with judge_session(
        config(judge), None, {"JUDGE_KEY": KEY}, NoWorkspace(), in_process=False
    ) as transport:
        for _ in range(2):  # every call, not only the first
            with pytest.raises(RuntimeError, match=r"could not be reached.*Cannot assign"):
                wait_for_route()
        # MLflow's judges were never pointed at a public provider
        assert os.environ["OPENAI_API_BASE"] == judge_seam.BASE_URL
        assert transport.stats.route == "loopback"
    assert judge.calls == 0

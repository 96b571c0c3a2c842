"""`openai:/` models against a real local OpenAI-compatible server: concurrency, retries,
timeouts, the response cache, prompts and keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.fakes.openai_server import FakeOpenAI

KEY = "sk-test-secret-key-0123456789"
QUESTIONS = {f"question {i}": f"answer {i}" for i in range(40)}


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=KEY, answers=dict(QUESTIONS)).start()
    yield fake
    fake.stop()


def setup(project: Project, llm: FakeOpenAI, extra: str = "") -> Path:
    project.jsonl(
        "llm.jsonl",
        [
            {"inputs": {"question": q}, "expectations": {"expected_response": a}}
            for q, a in QUESTIONS.items()
        ],
    )
    return project.config(
        "data: llm.jsonl\nmodel: openai:/gpt-4o-mini\n"
        f"base-url: {llm.base_url}\napi-key-env: TEST_LLM_KEY\n"
        "scorers: [exact_match, latency]\n"
        'thresholds:\n  exact_match/mean: ">= 1"\n'
        f"cache-dir: {project.root / 'cache'}\n" + extra
    )


def run(cli: Any, project: Project, *flags: str) -> Any:
    return project.eval(cli, *flags, env={"TEST_LLM_KEY": KEY})


def test_correct_under_concurrency(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    llm.latency = 0.05
    setup(project, llm, "concurrency: 16\ncache: false\n")
    r = run(cli, project)
    assert r.code == 0, r.text
    assert llm.answered == 40
    assert 2 <= llm.max_in_flight <= 16
    doc = project.results()
    assert doc["metrics"]["exact_match/mean"] == 1.0
    assert doc["metrics"]["latency/p50"] >= 50
    assert doc["model_identity"]["kind"] == "openai"


def test_every_429_is_retried_and_nothing_is_lost(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    llm.configure(fail_429_ratio=0.3, retry_after=0)
    setup(project, llm, "cache: false\nretries: 10\n")
    r = run(cli, project)
    assert r.code == 0, r.text
    assert llm.status_counts[429] > 0
    assert llm.status_counts[200] == 40
    assert project.results()["errors"]["rows"] == 0


def test_a_persistent_500_fails_clearly_without_hanging(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    llm.configure(always_500=True)
    setup(project, llm, "cache: false\nretries: 2\n")
    r = run(cli, project, "--limit", "3")
    assert r.code == 1, r.text
    details = project.results()["errors"]["details"]
    assert len(details) == 3
    assert "gave up after 3 attempts; last: HTTP 500" in details[0]["message"]
    assert llm.calls == 9


def test_a_hung_call_times_out_and_is_retried(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    llm.configure(hang_first=1, hang_seconds=30)
    setup(project, llm, "cache: false\ntimeout: 0.5\nretries: 1\nconcurrency: 1\n")
    r = run(cli, project, "--limit", "2")
    assert r.code == 0, r.text
    assert llm.answered == 2


def test_the_cache_makes_a_rerun_free(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm)
    assert run(cli, project).code == 0
    assert project.results()["cache"]["misses"] == 40
    first_latency = project.results()["metrics"]["latency/p50"]
    calls = llm.calls
    r = run(cli, project)
    assert r.code == 0, r.text
    assert llm.calls == calls  # zero remote calls
    cache = project.results()["cache"]
    assert (cache["hits"], cache["misses"]) == (40, 0)
    assert project.results()["metrics"]["latency/p50"] == first_latency
    # a different prompt is a different answer: no stale hits
    project.config(
        (project.root / "genai-gate.yml").read_text() + "system-prompt: Answer briefly.\n"
    )
    run(cli, project)
    assert project.results()["cache"]["misses"] == 40


def test_prompt_template_and_system_prompt_are_sent(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    llm.answer = lambda model, messages: "answer " + messages[-1]["content"].split()[-1]
    setup(
        project,
        llm,
        "cache: false\nsystem-prompt: You are terse.\n"
        "prompt: 'Q: {question}'\nmodel-params: {temperature: 0}\n",
    )
    r = run(cli, project, "--limit", "2")
    assert r.code == 0, r.text
    body = llm.requests[0]
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["messages"][1]["content"].startswith("Q: question ")
    assert body["temperature"] == 0
    assert body["model"] == "gpt-4o-mini"


def test_the_key_is_sent_but_never_shown(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    llm.configure(always_500=True)
    setup(project, llm, "cache: false\nretries: 0\n")
    r = run(cli, project, "--limit", "1")
    assert r.code == 1
    assert llm.auth_headers_seen == {f"Bearer {KEY}"}
    assert KEY not in r.text
    for name in ("results.json", "summary.md", "rows.jsonl", "evidence.json"):
        assert KEY not in (project.out / name).read_text()


def test_a_wrong_key_is_an_error_per_row(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm, "cache: false\n")
    r = project.eval(cli, "--limit", "1", env={"TEST_LLM_KEY": "wrong"})
    assert r.code == 1
    assert "HTTP 401" in json.dumps(project.results()["errors"])


def test_keys_are_stripped_and_bad_ones_refused(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    setup(project, llm, "cache: false\n")
    r = project.eval(cli, "--limit", "1", env={"TEST_LLM_KEY": KEY + "\n"})
    assert r.code == 0, r.text
    r = project.eval(cli, "--limit", "1", env={"TEST_LLM_KEY": "sk-a b"})
    assert r.code == 2
    assert "TEST_LLM_KEY holds whitespace" in r.err and "sk-a b" not in r.text


def test_url_credentials_are_redacted(cli: Any, project: Project, llm: FakeOpenAI) -> None:
    setup(project, llm, "cache: false\n")
    text = (
        (project.root / "genai-gate.yml")
        .read_text()
        .replace("http://127.0.0.1", "http://user:pa55word@127.0.0.1")
    )
    project.config(text)
    r = run(cli, project, "--limit", "1")
    # requests turns URL credentials into Basic auth, which this server refuses: either way
    # the password must not appear anywhere
    assert r.code in (0, 1), r.text
    assert "pa55word" not in r.text
    for name in ("results.json", "summary.md", "evidence.json"):
        assert "pa55word" not in (project.out / name).read_text(), name


def test_a_rows_judge_call_follows_its_answer_without_a_phase_barrier(
    cli: Any, project: Project, llm: FakeOpenAI
) -> None:
    # one worker: the pool's order is the pipeline's order, a row's judge call going first
    rows = list(QUESTIONS.items())[:4]
    project.jsonl(
        "llm.jsonl",
        [{"inputs": {"question": q}, "expectations": {"expected_response": a}} for q, a in rows],
    )
    project.config(
        "data: llm.jsonl\nmodel: openai:/gpt-4o-mini\n"
        f"base-url: {llm.base_url}\napi-key-env: TEST_LLM_KEY\n"
        f"judge: openai:/gpt-4o-mini\njudge-base-url: {llm.base_url}\n"
        "judge-api-key-env: TEST_LLM_KEY\n"
        "scorers: [exact_match, correctness]\nconcurrency: 1\ncache: false\n"
        'thresholds:\n  exact_match/mean: ">= 1"\n  correctness/mean: ">= 1"\n'
    )
    r = run(cli, project)
    assert r.code == 0, r.text
    kinds = ["judge" if "response_format" in body else "model" for body in llm.requests]
    assert kinds == ["model", "judge"] * 4
    doc = project.results()
    assert doc["judge"]["calls"] == 4
    assert doc["metrics"]["correctness/mean"] == 1.0

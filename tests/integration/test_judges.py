"""LLM judges (MLflow's built-ins) graded by a local OpenAI-compatible server, through the
judge transport: verdicts reach the metrics and the gate; 429s are retried; re-runs are free."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project, child_env
from tests.fakes.openai_server import FakeOpenAI

JUDGE_KEY = "sk-judge-secret-0123456789"

MODEL = """
def predict(question):
    return {"q1": "Paris", "q2": "4", "q3": "WRONG and UNSAFE", "q4": "blue"}[question]
"""


@pytest.fixture
def judge() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=JUDGE_KEY).start()
    yield fake
    fake.stop()


def setup(project: Project, judge: FakeOpenAI, thresholds: str, extra: str = "") -> None:
    project.write("judged_model.py", MODEL)
    project.jsonl(
        "j.jsonl",
        [
            {"inputs": {"question": q}, "expectations": {"expected_response": a}}
            for q, a in [("q1", "Paris"), ("q2", "4"), ("q3", "x"), ("q4", "blue")]
        ],
    )
    project.config(
        "data: j.jsonl\nmodel: python:judged_model:predict\n"
        "scorers: [correctness, safety, relevance_to_query, guidelines]\n"
        "guidelines: [Answer politely.]\n"
        f"judge: openai:/gpt-4o-mini\njudge-base-url: {judge.base_url}\n"
        "judge-api-key-env: JUDGE_KEY\n"
        f"cache-dir: {project.root / 'cache'}\n"
        f"thresholds:\n{thresholds}" + extra
    )


def run(cli: Any, project: Project) -> Any:
    return project.eval(cli, env={"JUDGE_KEY": JUDGE_KEY})


def test_verdicts_reach_the_metrics_and_the_gate(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    setup(project, judge, '  correctness/mean: ">= 0.75"\n  safety/mean: ">= 0.75"\n')
    r = run(cli, project)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["correctness/mean"] == 0.75  # q3's answer is judged wrong
    assert doc["metrics"]["safety/mean"] == 0.75
    assert doc["metrics"]["guidelines/mean"] == 0.75
    assert doc["judge"]["calls"] == 16  # 4 judges x 4 rows
    assert doc["judge"]["route"] == "in-process"  # MLflow's POST handed over, no HTTP hop
    assert {h.get("authorization") for h in judge.headers} == {f"Bearer {JUDGE_KEY}"}
    assert all(b.get("response_format", {}).get("type") == "json_schema" for b in judge.requests)
    # and a stricter bar fails, closed
    setup(project, judge, '  safety/mean: ">= 1"\n')
    assert run(cli, project).code == 1


def test_429s_are_retried_with_retry_after_and_rerun_is_free(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    judge.configure(fail_429_first=3, retry_after=0)
    setup(project, judge, '  correctness/mean: ">= 0.5"\n')
    r = run(cli, project)
    assert r.code == 0, r.text
    assert judge.status_counts[429] == 3
    stats = project.results()["judge"]
    assert stats["upstream_requests"] == stats["calls"] + 3
    calls = judge.calls
    assert run(cli, project).code == 0
    assert judge.calls == calls  # every verdict came from the cache
    assert project.results()["judge"]["cache"]["hits"] == 16


def test_a_cached_rerun_does_no_judge_work_and_keeps_every_verdict(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    setup(project, judge, '  correctness/mean: ">= 0.75"\n')
    assert run(cli, project).code == 0
    first = project.results()
    first_rows = (project.out / "rows.jsonl").read_text(encoding="utf-8")
    assert run(cli, project).code == 0
    again = project.results()
    # the verdicts came whole from the cache: MLflow's judges never reached the transport
    assert again["judge"]["calls"] == 0
    assert again["judge"]["cache"]["hits"] == 16
    assert again["metrics"] == first["metrics"]
    again_rows = (project.out / "rows.jsonl").read_text(encoding="utf-8")
    strip = [
        {k: v for k, v in json.loads(line).items() if k != "latency_ms"}
        for text in (first_rows, again_rows)
        for line in text.splitlines()
    ]
    assert strip[: len(strip) // 2] == strip[len(strip) // 2 :]  # scores and rationales


def test_a_rerun_in_another_process_finds_every_verdict(
    project: Project, judge: FakeOpenAI
) -> None:
    """The verdict cache's key is the same in every process: MLflow serialises a judge's
    `required_columns` (a set) in the order of the process's string-hash seed, and seeds 1
    and 2 order it differently, so a key taken from that dump missed on every second run."""
    setup(project, judge, '  correctness/mean: ">= 0.75"\n')
    env = child_env(JUDGE_KEY=JUDGE_KEY)
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "genai_gate", "eval", "-q", "--out", str(project.out)],
            cwd=project.root,
            env={**env, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    again = project.results()
    assert again["judge"]["calls"] == 0  # not one verdict went through MLflow's judge path
    assert again["judge"]["cache"]["hits"] == 16


def test_a_judge_that_keeps_failing_is_a_row_error_not_a_pass(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    judge.configure(always_500=True)
    setup(project, judge, '  correctness/mean: ">= 0.5"\n', "retries: 1\ncache: false\n")
    r = run(cli, project)
    assert r.code == 1, r.text
    doc = project.results()
    assert doc["errors"]["rows"] == 4
    assert "gave up after 2 attempts" in doc["errors"]["details"][0]["message"]
    assert JUDGE_KEY not in r.text


def test_judges_need_a_judge_model(cli: Any, project: Project) -> None:
    project.write("judged_model.py", MODEL)
    project.jsonl("j.jsonl", [{"inputs": {"question": "q1"}}])
    project.config("data: j.jsonl\nmodel: python:judged_model:predict\nscorers: [safety]\n")
    r = run(cli, project)
    assert r.code == 2
    assert "safety is an LLM judge, and no judge model is configured" in r.err


def test_the_seeds_answer_correctness_maps_to_correctness(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    setup(project, judge, '  answer_correctness_score: ">= 0.5"\n')
    project.config(
        (project.root / "genai-gate.yml")
        .read_text()
        .replace(
            "scorers: [correctness, safety, relevance_to_query, guidelines]",
            "scorers: [answer_correctness]",
        )
    )
    r = run(cli, project)
    assert r.code == 0, r.text
    assert "'answer_correctness' is the seed's legacy LLM metric" in r.err
    assert "correctness/mean" in project.results()["metrics"]


def test_repeat_and_min_pass_tame_a_flaky_judge(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    # the judge says "no" on every third call, whatever it is asked
    calls = {"n": 0}

    def flaky(messages: Any) -> str:
        calls["n"] += 1
        return "no" if calls["n"] % 3 == 0 else "yes"

    judge.judge = flaky
    setup(project, judge, '  safety/mean: ">= 0.75"\n', "repeat: 3\nmin-pass: 2\nconcurrency: 1\n")
    project.config(
        (project.root / "genai-gate.yml")
        .read_text()
        .replace(
            "scorers: [correctness, safety, relevance_to_query, guidelines]", "scorers: [safety]"
        )
    )
    r = run(cli, project)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["judge"]["calls"] == 12  # 3 asks x 4 rows, each its own call
    # q3 is "WRONG and UNSAFE", but this judge ignores content: 2 of 3 say yes on every row
    assert doc["metrics"]["safety/mean"] == 1.0
    first = judge.calls
    assert run(cli, project).code == 0  # the re-run replays all 12 answers from the cache
    assert judge.calls == first


def test_min_pass_above_repeat_is_a_config_error(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    setup(project, judge, '  safety/mean: ">= 0.5"\n', "repeat: 2\nmin-pass: 3\n")
    r = run(cli, project)
    assert r.code == 2
    assert "min-pass (3) cannot exceed repeat (2)" in r.err


def test_custom_judges_from_instructions(cli: Any, project: Project, judge: FakeOpenAI) -> None:
    setup(project, judge, '  concise/mean: ">= 0.75"\n')
    text = (
        (project.root / "genai-gate.yml")
        .read_text()
        .replace("scorers: [correctness, safety, relevance_to_query, guidelines]", "scorers: []")
    )
    project.config(
        text + "custom-judges:\n  concise: 'Is {{ outputs }} a short, direct "
        "answer to {{ inputs }}?'\n"
    )
    r = run(cli, project)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["concise/mean"] == 0.75  # the judge fails q3's WRONG answer
    assert any("short, direct answer" in json.dumps(b) for b in judge.requests)
    project.config(text + "custom-judges:\n  Concise Check: 'x'\n")
    r = run(cli, project)
    assert r.code == 2
    assert "lower_snake_case" in r.err


def test_the_model_never_sees_the_judges_settings(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    setup(project, judge, '  safety/mean: ">= 0"\n')
    project.write(
        "judged_model.py",
        "import os\n\ndef predict(question):\n"
        "    return os.environ.get('OPENAI_API_BASE', 'unset') + ' ' + question\n",
    )
    project.config(
        (project.root / "genai-gate.yml")
        .read_text()
        .replace(
            "scorers: [correctness, safety, relevance_to_query, guidelines]", "scorers: [safety]"
        )
    )
    r = run(cli, project)
    assert r.code == 0, r.text
    rows = (project.out / "rows.jsonl").read_text()
    assert '"outputs": "unset q1"' in rows


def test_an_unreadable_verdict_is_not_cached(cli: Any, project: Project, judge: FakeOpenAI) -> None:
    setup(project, judge, '  safety/mean: ">= 0"\n', "max-errors: 4\n")
    project.config(
        (project.root / "genai-gate.yml")
        .read_text()
        .replace(
            "scorers: [correctness, safety, relevance_to_query, guidelines]", "scorers: [safety]"
        )
    )
    judge.judge_without_schema = False
    judge.answer = lambda model, messages: "I refuse to answer in JSON"
    original = judge.complete

    def garbled(body: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in body.items() if k != "response_format"}
        return original(body)

    judge.complete = garbled  # type: ignore[method-assign]
    run(cli, project)
    first = judge.calls
    run(cli, project)
    assert judge.calls == 2 * first  # asked again: nothing garbled was kept


# ---------------------------------------------------------------- retrieval_groundedness

RAG_MODEL = """
import pathlib

def predict(question):
    # a marker per call: the tests check that a config error stops before any call
    with open(pathlib.Path(__file__).with_name("calls.txt"), "a") as f:
        f.write(question + "\\n")
    return {"q1": "Paris", "q2": "4", "q3": "WRONG: Lyon", "q4": "blue"}[question]
"""
RAG_ROWS: list[dict[str, Any]] = [
    {"inputs": {"question": "q1"}, "retrieved_context": "Paris is the capital of France."},
    {"inputs": {"question": "q2"}, "retrieved_context": ["2 + 2 = 4", "Arithmetic facts."]},
    {"inputs": {"question": "q3"}, "retrieved_context": "Paris is the capital of France."},
    {
        "inputs": {"question": "q4"},
        "retrieved_context": [{"page_content": "The sky is blue.", "metadata": {"doc_uri": "s"}}],
    },
]


def rag_setup(
    project: Project, judge: FakeOpenAI, rows: list[dict[str, Any]], extra: str = ""
) -> None:
    project.write("rag_model.py", RAG_MODEL)
    project.jsonl("rag.jsonl", rows)
    project.config(
        "data: rag.jsonl\nmodel: python:rag_model:predict\n"
        "scorers: [retrieval_groundedness]\n"
        f"judge: openai:/gpt-4o-mini\njudge-base-url: {judge.base_url}\n"
        "judge-api-key-env: JUDGE_KEY\n"
        f"cache-dir: {project.root / 'cache'}\n" + extra
    )


def test_retrieval_groundedness_verdicts_reach_the_metrics_and_the_gate(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    rag_setup(project, judge, RAG_ROWS, 'thresholds:\n  retrieval_groundedness/mean: ">= 0.75"\n')
    r = run(cli, project)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["retrieval_groundedness/mean"] == 0.75  # q3's WRONG answer
    assert doc["judge"]["calls"] == 4
    # MLflow's judge read the passages from the RETRIEVER span of the row's trace
    prompts = [json.dumps(b) for b in judge.judge_requests()]
    assert any("Paris is the capital of France." in p for p in prompts)
    assert any("2 + 2 = 4" in p and "Arithmetic facts." in p for p in prompts)
    assert any("The sky is blue." in p for p in prompts)
    rows = [json.loads(line) for line in (project.out / "rows.jsonl").read_text().splitlines()]
    assert [row["retrieval_groundedness/value"] for row in rows] == [1.0, 1.0, 0.0, 1.0]
    # a stricter bar fails, closed
    rag_setup(project, judge, RAG_ROWS, 'thresholds:\n  retrieval_groundedness/mean: ">= 1"\n')
    assert run(cli, project).code == 1


def test_retrieval_groundedness_with_repeat(cli: Any, project: Project, judge: FakeOpenAI) -> None:
    rag_setup(project, judge, RAG_ROWS, "repeat: 3\ncache: false\n")
    r = run(cli, project)
    assert r.code == 0, r.text
    doc = project.results()
    assert doc["metrics"]["retrieval_groundedness/mean"] == 0.75
    assert doc["judge"]["calls"] == 12


def test_retrieval_groundedness_without_a_context_column_stops_before_any_call(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    rows = [{"inputs": r["inputs"]} for r in RAG_ROWS]
    rag_setup(project, judge, rows)
    r = run(cli, project)
    assert r.code == 2, r.text
    assert "retrieval_groundedness judges the answer against the retrieved context" in r.err
    assert "rag.jsonl has no context column" in r.err
    assert "columns:\n      context: passages" in r.err  # the fix, as YAML
    assert not (project.root / "calls.txt").exists()  # the model was never called
    assert judge.calls == 0


def test_retrieval_groundedness_names_rows_without_context(
    cli: Any, project: Project, judge: FakeOpenAI
) -> None:
    rows = [*RAG_ROWS[:3], {"inputs": {"question": "q4"}, "retrieved_context": []}]
    rag_setup(project, judge, rows)
    r = run(cli, project)
    assert r.code == 2, r.text
    assert "1 row(s) have none in column 'retrieved_context': line 4" in r.err
    assert not (project.root / "calls.txt").exists()


def test_the_row_trace_carries_a_retriever_span_mlflow_reads() -> None:
    from mlflow.genai.utils.trace_utils import (
        extract_request_from_trace,
        extract_response_from_trace,
        extract_retrieval_context_from_trace,
    )

    from genai_gate.scoring.traces import row_trace

    docs = ({"page_content": "Paris is the capital.", "metadata": {"doc_uri": "a.md"}},)
    trace = row_trace(
        "tr-1",
        inputs={"question": "Capital?"},
        outputs="Paris",
        context=docs,
        latency_ms=12.5,
        metadata={},
    )
    assert "Capital?" in str(extract_request_from_trace(trace))
    assert extract_response_from_trace(trace) == "Paris"
    (passages,) = extract_retrieval_context_from_trace(trace).values()
    assert passages == [{"content": "Paris is the capital.", "doc_uri": "a.md"}]
    assert trace.info.execution_duration == 12
    # without context the trace stays as it was: no spans
    bare = row_trace("tr-2", inputs={}, outputs="", context=None, latency_ms=None, metadata={})
    assert not bare.data.spans

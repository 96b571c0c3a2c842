"""Watch the canary end to end in the Databricks emulator.

Deploy a canary, drive traffic through the invocations endpoint (two local models of
different quality answer for the champion and the challenger), let the inference-table
rows land, then `analyze`, decide and apply: through the SQL warehouse (Statement
Execution, statements that PEND and RUN before they succeed) and through local files
(DuckDB).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genai_gate.evidence import read_records
from tests.action_env import github_env, read_outputs
from tests.conftest import CliResult, child_env
from tests.fakes.databricks import WAREHOUSE_ID, FakeDatabricks
from tests.import_audit import audited

pytestmark = pytest.mark.integration

CHECKS = '''
def polite(outputs) -> float:
    """1 when the answer is a real answer, 0 when the model gave up."""
    return 0.0 if "sorry" in str(outputs).lower() else 1.0
'''

BASE = """
endpoint: bot
model-name: main.ml.bot
model-version: 13
inference-table: main.mon
scorers: ["python:checks:polite"]
thresholds:
  polite/mean: ">= 0.5"   # the gate's threshold also says which way is better
min-requests: 30
sample-size: 30
"""


def good(messages: list[dict[str, Any]]) -> str:
    return f"The answer to {messages[-1]['content']!r} is 42."


def sloppy(messages: list[dict[str, Any]]) -> str:
    # gives up on most questions: the quality scorer sees it, error rates do not
    text = str(messages[-1]["content"])
    return "Sorry, I cannot help." if sum(map(ord, text)) % 4 else good(messages)


@pytest.fixture
def ws(databricks_workspace: FakeDatabricks) -> FakeDatabricks:
    fake = databricks_workspace
    fake.update_polls = 0
    fake.statement_polls = 1  # every statement is PENDING, then RUNNING, before it succeeds
    fake.register_model_version("main.ml.bot", "12", good)
    return fake


@pytest.fixture
def job(ws: FakeDatabricks, databricks_job: Callable[..., dict[str, str]]) -> dict[str, str]:
    """A schedule on main in a job with `id-token: write` and the workspace in its env."""
    return databricks_job("schedule")


class Canary:
    def __init__(self, cli: Any, root: Path, ws: FakeDatabricks, env: dict[str, str]) -> None:
        self.cli, self.root, self.ws, self.env = cli, root, ws, env
        (root / "checks.py").write_text(CHECKS)

    def config(self, extra: str = "", scorers: str = '["python:checks:polite"]') -> Path:
        path = self.root / "genai-gate.yml"
        text = BASE.replace('["python:checks:polite"]', scorers)
        if "polite" not in scorers:
            text = text.replace('  polite/mean: ">= 0.5"', "  {}")
        path.write_text(text + extra)
        return path

    def run(
        self, *argv: str, extra: str = "", scorers: str = '["python:checks:polite"]'
    ) -> CliResult:
        cfg = self.config(extra, scorers)
        result: CliResult = self.cli(
            argv[0], "-c", str(cfg), "--out", str(self.root / "out"), *argv[1:], env=self.env
        )
        return result

    def traffic(self, n: int) -> None:
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.errors.base import DatabricksError
        from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

        w = WorkspaceClient(
            host=self.ws.host, token=self.ws.pat_env()["DATABRICKS_TOKEN"], auth_type="pat"
        )
        for i in range(n):
            # an erroring challenger answers 500: the row is captured all the same
            with contextlib.suppress(DatabricksError):
                w.serving_endpoints.query(
                    "bot",
                    messages=[ChatMessage(role=ChatMessageRole.USER, content=f"question {i}")],
                )

    def routes(self) -> dict[str, int]:
        detailed = self.ws.endpoints["bot"].detailed()
        return {
            r.get("served_entity_name") or r["served_model_name"]: r["traffic_percentage"]
            for r in detailed["config"]["traffic_config"]["routes"]
        }

    def tags(self) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self.ws.endpoints["bot"].tags}


@pytest.fixture
def canary(cli: Any, tmp_path: Path, ws: FakeDatabricks, job: dict[str, str]) -> Canary:
    c = Canary(cli, tmp_path, ws, job)
    # v12 is serving; the merge of v13 deployed it as a 10% canary
    ws.register_model_version("main.ml.bot", "13", good)
    first = c.run("deploy", "--set", "model-version=12")
    assert first.code == 0, first.text
    return c


def deploy_challenger(c: Canary) -> None:
    result = c.run("deploy")
    assert result.code == 0, result.text
    assert c.routes() == {"bot-12": 90, "bot-13": 10}


WAREHOUSE = f"warehouse-id: {WAREHOUSE_ID}\n"


def test_a_healthy_canary_advances_then_is_promoted(canary: Canary, ws: FakeDatabricks) -> None:
    deploy_challenger(canary)
    canary.traffic(400)
    assert (ws.captures / "main.mon.bot_payload").is_dir()  # the rows landed

    first = canary.run("analyze", "--apply", extra=WAREHOUSE)
    assert first.code == 0, first.text
    assert "healthy, advance" in first.out
    assert canary.routes() == {"bot-12": 50, "bot-13": 50}
    assert canary.tags()["genai-gate.step"] == "50"
    assert ws.statements  # the aggregation ran as SQL on the warehouse

    canary.traffic(150)
    second = canary.run("analyze", "--apply", extra=WAREHOUSE)
    assert second.code == 0, second.text
    assert "healthy, promote" in second.out
    assert canary.routes() == {"bot-13": 100}
    assert canary.tags() == {
        "genai-gate.champion": "bot-13",
        "genai-gate.step": "100",
        "genai-gate.previous-champion": "main.ml.bot/12",
    }
    records = read_records(canary.root / "out" / "evidence.json")
    assert [r.get("decision") for r in records if r["kind"] == "analysis"] == ["advance", "promote"]


def test_a_worse_challenger_is_rolled_back_on_quality(canary: Canary, ws: FakeDatabricks) -> None:
    ws.register_model_version("main.ml.bot", "13", sloppy)
    ws.model_versions[("main.ml.bot", "13")].answer = sloppy
    deploy_challenger(canary)
    canary.traffic(800)
    judged = "judged-table: main.mon.judged\n"
    result = canary.run("analyze", "--apply", extra=WAREHOUSE + judged)
    assert result.code == 1, result.text
    assert "unhealthy, roll back" in result.out
    assert "polite/mean vs champion" in result.out
    # both samples' scores went back through the warehouse, for the dashboard (issue #16)
    written = ws.sql(
        "SELECT served_entity, source, count(*) AS n, avg(score) AS mean "
        "FROM main.mon.judged GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(r["served_entity"], r["source"], r["n"]) for r in written] == [
        ("bot-12", "analyze", 30),
        ("bot-13", "analyze", 30),
    ]
    assert written[0]["mean"] > written[1]["mean"]
    assert canary.routes() == {"bot-12": 100}
    assert "genai-gate.challenger" not in canary.tags()


def test_an_erroring_challenger_is_rolled_back_from_local_files(
    canary: Canary, ws: FakeDatabricks
) -> None:
    ws.model_versions[("main.ml.bot", "13")].error_rate = 0.3
    deploy_challenger(canary)
    canary.traffic(800)
    local = f"inference-data: {ws.captures / 'main.mon.bot_payload'}\n"
    result = canary.run("analyze", "--apply", extra=local)
    assert result.code == 1, result.text
    assert "error rate" in result.out
    assert canary.routes() == {"bot-12": 100}
    doc = json.loads((canary.root / "out" / "analysis.json").read_text())
    assert doc["decision"] == "rollback" and doc["applied"] is True
    assert doc["traffic"]["bot-13"]["error_rate"] > 0.15


def test_low_traffic_holds_as_inconclusive(canary: Canary, ws: FakeDatabricks) -> None:
    deploy_challenger(canary)
    canary.traffic(60)  # about 6 requests reach the challenger
    result = canary.run("analyze", "--apply", extra=WAREHOUSE)
    assert result.code == 0, result.text
    assert "inconclusive, hold" in result.out
    assert canary.routes() == {"bot-12": 90, "bot-13": 10}


def test_analyze_alone_only_reports(canary: Canary, ws: FakeDatabricks) -> None:
    ws.model_versions[("main.ml.bot", "13")].error_rate = 0.3
    deploy_challenger(canary)
    canary.traffic(500)
    result = canary.run("analyze", extra=WAREHOUSE)
    assert result.code == 1, result.text
    assert "**Not applied**" in result.out
    assert canary.routes() == {"bot-12": 90, "bot-13": 10}


def test_promote_and_rollback_by_hand(canary: Canary) -> None:
    deploy_challenger(canary)
    back = canary.run("rollback")
    assert back.code == 0, back.text
    assert canary.routes() == {"bot-12": 100}
    deploy_challenger(canary)
    forward = canary.run("promote")
    assert forward.code == 0, forward.text
    assert canary.routes() == {"bot-13": 100}


def test_the_action_on_a_schedule_analyzes_applies_and_opens_one_issue(
    canary: Canary, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    from tests.fakes.github_api import WRITE_TOKEN, FakeGitHub

    ws.model_versions[("main.ml.bot", "13")].error_rate = 0.3
    github = FakeGitHub().start()
    env = {
        **job,
        "GITHUB_API_URL": github.url,
        "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN,
        "GENAI_GATE_CONFIG": str(canary.config(WAREHOUSE + "open-issue: true\n")),
        "GENAI_GATE_OUT": str(canary.root / "out"),
    }
    try:
        for _ in range(2):  # the canary fails twice: one issue, updated
            deploy_challenger(canary)
            canary.traffic(500)
            canary.config(WAREHOUSE + "open-issue: true\n")
            result: CliResult = canary.cli("action", env=env)
            assert result.code == 1, result.text
            assert "::group::genai-gate analyze" in result.out
            assert "::error title=genai-gate%3A canary rolled back::" in result.out
            assert canary.routes() == {"bot-12": 100}
    finally:
        github.stop()
    outputs = read_outputs(Path(job["GITHUB_OUTPUT"]))
    assert outputs["decision"] == "rollback" and outputs["result"] == "failed"
    summary = Path(job["GITHUB_STEP_SUMMARY"]).read_text()
    assert "genai-gate canary `bot`: unhealthy, roll back" in summary
    assert len(github.issues) == 1
    issue = next(iter(github.issues.values()))
    assert issue["title"] == "genai-gate: canary on bot rolled back"
    assert "unhealthy, roll back" in issue["body"]
    assert [c["issue"] for c in github.comments.values()] == [issue["number"]]


def test_an_llm_judge_grades_live_traffic(canary: Canary, ws: FakeDatabricks) -> None:
    """The same MLflow judge that gates PRs (safety) judges the canary's logged answers."""
    from tests.fakes.openai_server import FakeOpenAI

    def unsafe(messages: list[dict[str, Any]]) -> str:
        text = str(messages[-1]["content"])
        return "UNSAFE advice." if sum(map(ord, text)) % 3 else good(messages)

    ws.model_versions[("main.ml.bot", "13")].answer = unsafe
    deploy_challenger(canary)
    canary.traffic(400)
    judge = FakeOpenAI(api_key="sk-judge-0123456789").start()
    try:
        canary.env["JUDGE_KEY"] = "sk-judge-0123456789"
        extra = (
            WAREHOUSE + "judge: openai:/gpt-4o-mini\n"
            f"judge-base-url: {judge.base_url}\njudge-api-key-env: JUDGE_KEY\n"
            f"cache-dir: {canary.root / 'cache'}\n"
        )
        result = canary.run("analyze", extra=extra, scorers="[safety]")
    finally:
        judge.stop()
    assert result.code == 1, result.text
    assert "safety/mean vs champion" in result.out
    assert len(judge.judge_requests()) >= 60  # both samples went to the judge


def test_results_come_back_in_chunks_from_the_warehouse(canary: Canary, ws: FakeDatabricks) -> None:
    ws.sql_chunk_rows = 7  # the 30-row samples span five chunks
    deploy_challenger(canary)
    canary.traffic(400)
    result = canary.run("analyze", "--json", extra=WAREHOUSE)
    assert result.code == 0, result.text
    doc = json.loads(result.out)
    assert [q["samples"] for q in doc["quality"]] == [[30, 30]]


def test_an_unknown_warehouse_is_named(canary: Canary, ws: FakeDatabricks) -> None:
    deploy_challenger(canary)
    canary.traffic(50)
    result = canary.run("analyze", extra="warehouse-id: no-such-warehouse\n")
    assert result.code == 4, result.text
    assert "running SQL on the warehouse failed" in result.err


def test_traffic_never_moves_from_a_pull_request(
    canary: Canary, ws: FakeDatabricks, tmp_path: Path
) -> None:
    from tests.action_env import pr_payload

    deploy_challenger(canary)
    pr = github_env(tmp_path / "pr", event="pull_request", payload=pr_payload())
    canary.env = {**canary.env, **{k: v for k, v in pr.items() if k.startswith("GITHUB_")}}
    result = canary.run("promote")
    assert result.code == 2, result.text
    assert "does not run on pull_request events" in result.err
    assert canary.routes() == {"bot-12": 90, "bot-13": 10}


def test_a_schedule_with_no_canary_in_flight_monitors_the_champion(
    canary: Canary, ws: FakeDatabricks, job: dict[str, str]
) -> None:
    """Only the champion serves: the schedule runs `monitor` (issue #16); with no traffic
    nothing is judged, so the step says `skipped`, not `passed`."""
    env = {
        **job,
        "GENAI_GATE_CONFIG": str(canary.config(WAREHOUSE)),
        "GENAI_GATE_OUT": str(canary.root / "out"),
    }
    result: CliResult = canary.cli("action", env=env)
    assert result.code == 0, result.text
    assert "genai-gate monitor `bot`: not enough traffic" in result.out
    outputs = read_outputs(Path(job["GITHUB_OUTPUT"]))
    assert outputs["result"] == "skipped" and outputs["passed"] == "false"
    assert canary.routes() == {"bot-12": 100}


def test_an_analysis_in_its_own_process_loads_mlflow_before_its_threads(
    canary: Canary, ws: FakeDatabricks, tmp_path: Path
) -> None:
    """The canary's scorers are built up front, so MLflow is imported on the main thread
    before the judge's route, the SQL polling or any scoring thread starts: none of them
    loads a part of it half-way (tests.import_audit)."""
    from tests.fakes.openai_server import FakeOpenAI

    ws.model_versions[("main.ml.bot", "13")].answer = sloppy
    deploy_challenger(canary)
    canary.traffic(400)
    with FakeOpenAI(api_key="sk-judge-0123456789") as judge:
        extra = (
            WAREHOUSE + "judge: openai:/gpt-4o-mini\n"
            f"judge-base-url: {judge.base_url}\njudge-api-key-env: JUDGE_KEY\n"
            f"cache-dir: {canary.root / 'cache'}\n"
        )
        cfg = canary.config(extra, scorers='["python:checks:polite", safety]')
        done, threads = audited(
            ["analyze", "-c", str(cfg), "--out", str(canary.root / "out")],
            cwd=canary.root,
            env=child_env(**canary.env, JUDGE_KEY="sk-judge-0123456789"),
            tmp_path=tmp_path,
        )
        judged = len(judge.judge_requests())
    assert done.returncode == 1, done.stdout + done.stderr  # the sloppy challenger is worse
    assert "polite/mean vs champion" in done.stdout
    assert threads == ["MainThread"]
    assert judged >= 60  # the judge was reached from the threads that started after the import

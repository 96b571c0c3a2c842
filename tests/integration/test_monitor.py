"""Watch the champion after the canary, in the Databricks emulator.

The gate evaluates v13 (an MLflow run in the out folder), deploy puts it on the endpoint and
tags that run, then traffic flows through the invocations route (the emulator's clock spreads
it over days) and `monitor` judges a window of the inference table against the reference:
the eval run found through evidence.json, or an earlier window. Drift sets off the actions
the config opts into, each seen by a fake: Jobs run-now and repository_dispatch (once per
cool-down), one GitHub issue, and a rollback to the previous champion.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from genai_gate.evidence import read_records, verify_chain
from tests.action_env import read_outputs
from tests.conftest import CliResult
from tests.fakes.databricks import WAREHOUSE_ID, FakeDatabricks
from tests.fakes.github_api import WRITE_TOKEN, FakeGitHub

pytestmark = pytest.mark.integration

CHECKS = '''
def polite(outputs) -> float:
    """1 when the answer is a real answer, 0 when the model gave up."""
    return 0.0 if "sorry" in str(outputs).lower() else 1.0
'''

APP = """
def predict(question):
    return f"The answer to {question!r} is 42."
"""

BASE = """
endpoint: bot
model-name: main.ml.bot
model-version: 13
inference-table: main.mon
data: qa.jsonl
model: python:app:predict
scorers: ["python:checks:polite"]
thresholds:
  polite/mean: ">= 0.5"   # also says which way is better
min-requests: 30
sample-size: 40
monitor-min-inputs: 30
"""
WAREHOUSE = f"warehouse-id: {WAREHOUSE_ID}\n"
QUESTIONS = 40


def good(messages: list[dict[str, Any]]) -> str:
    return f"The answer to {messages[-1]['content']!r} is 42."


def sloppy(messages: list[dict[str, Any]]) -> str:
    text = str(messages[-1]["content"])
    return "Sorry, I cannot help." if sum(map(ord, text)) % 4 else good(messages)


def question(i: int) -> str:
    return f"question {i % QUESTIONS}"


class Shop:
    """A project that gated and shipped main.ml.bot v13 onto endpoint `bot`."""

    def __init__(self, cli: Any, root: Path, ws: FakeDatabricks, env: dict[str, str]) -> None:
        self.cli, self.root, self.ws, self.env = cli, root, ws, env
        root.mkdir(parents=True, exist_ok=True)
        (root / "checks.py").write_text(CHECKS)
        (root / "app.py").write_text(APP)
        rows = [{"inputs": {"question": question(i)}} for i in range(QUESTIONS)]
        (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.at: float | None = None  # the emulator's clock; None: now
        ws.clock = lambda: self.at if self.at is not None else time.time()

    @property
    def out(self) -> Path:
        return self.root / "out"

    def config(self, extra: str = "") -> Path:
        path = self.root / "genai-gate.yml"
        path.write_text(BASE + extra)
        return path

    def run(self, *argv: str, extra: str = "", env: dict[str, str] | None = None) -> CliResult:
        cfg = self.config(extra)
        result: CliResult = self.cli(
            argv[0],
            "-c",
            str(cfg),
            "--out",
            str(self.out),
            *argv[1:],
            env={**self.env, **(env or {})},
        )
        return result

    def traffic(
        self,
        n: int,
        *,
        days_ago: float = 0.0,
        over_days: float = 0.0,
        prompt: Callable[[int], str] = question,
    ) -> None:
        """n requests, the last `days_ago` days back, spread evenly over `over_days`."""
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.errors.base import DatabricksError
        from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

        w = WorkspaceClient(
            host=self.ws.host, token=self.ws.pat_env()["DATABRICKS_TOKEN"], auth_type="pat"
        )
        end = time.time() - days_ago * 86400
        for i in range(n):
            self.at = end - (n - 1 - i) / max(n - 1, 1) * over_days * 86400 - 1
            with contextlib.suppress(DatabricksError):
                w.serving_endpoints.query(
                    "bot", messages=[ChatMessage(role=ChatMessageRole.USER, content=prompt(i))]
                )
        self.at = None

    def routes(self) -> dict[str, int]:
        detailed = self.ws.endpoints["bot"].detailed()
        return {
            r.get("served_entity_name") or r["served_model_name"]: r["traffic_percentage"]
            for r in detailed["config"]["traffic_config"]["routes"]
        }

    def tags(self) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self.ws.endpoints["bot"].tags}

    def record(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.out / "monitor.json").read_text())
        return doc

    def check(self, metric: str) -> dict[str, Any]:
        return next(c for c in self.record()["checks"] if c["metric"] == metric)


@pytest.fixture
def shop(
    cli: Any,
    tmp_path: Path,
    databricks_workspace: FakeDatabricks,
    databricks_job: Callable[..., dict[str, str]],
) -> Shop:
    ws = databricks_workspace
    ws.update_polls = 0
    ws.register_model_version("main.ml.bot", "12", good)
    ws.register_model_version("main.ml.bot", "13", good)
    return Shop(cli, tmp_path / "shop", ws, databricks_job("schedule"))


def ship(shop: Shop) -> str:
    """The gate passes v13 and deploy puts it on the endpoint; the eval's MLflow run id."""
    gated = shop.run("eval")
    assert gated.code == 0, gated.text
    deployed = shop.run("deploy")
    assert deployed.code == 0, deployed.text
    run_id: str = json.loads((shop.out / "results.json").read_text())["run_id"]
    return run_id


@pytest.fixture
def shipped(shop: Shop) -> Shop:
    shop.run_id = ship(shop)  # type: ignore[attr-defined]
    assert shop.routes() == {"bot-13": 100}
    return shop


def test_a_stable_week_shows_no_drift_against_the_gates_own_eval(shipped: Shop) -> None:
    shipped.traffic(7 * 40, over_days=6.5)
    result = shipped.run("monitor", extra=WAREHOUSE + "monitor-window: 7d\n")
    assert result.code == 0, result.text
    assert "genai-gate monitor `bot`: stable" in result.out
    record = shipped.record()
    # the reference was found through evidence.json: the run that gated what serves
    assert record["reference"]["kind"] == "run"
    assert record["reference"]["run_id"] == shipped.run_id  # type: ignore[attr-defined]
    assert record["traffic"]["requests"] == 280
    assert record["sample"] == {"prompts": 280, "judged": 40}
    assert {c["metric"]: c["status"] for c in record["checks"]} == {
        "errors/rate": "ok",
        "prompt_length/ks": "ok",
        "words/psi": "ok",
        "latency/p95": "no reference",  # an eval run's latency is its client's
        "polite/mean": "ok",
    }
    records = read_records(shipped.out / "evidence.json")
    assert [r["kind"] for r in records] == ["eval", "deploy", "monitor"]
    assert verify_chain(records) == []
    page = (shipped.out / "monitor.html").read_text()
    assert "<script" not in page and "Content-Security-Policy" in page and "<svg" in page


def test_a_quality_drop_is_caught_with_its_interval(shipped: Shop) -> None:
    shipped.ws.model_versions[("main.ml.bot", "13")].answer = sloppy  # the model degraded
    shipped.traffic(200)
    result = shipped.run("monitor", "--window", "24h", extra=WAREHOUSE)
    assert result.code == 1, result.text
    assert "genai-gate monitor `bot`: drift" in result.out
    polite = shipped.check("polite/mean")
    assert polite["status"] == "drift" and polite["reference"] == 1.0
    low, high = polite["ci"]
    assert low <= polite["delta"] <= high < -0.05  # significantly worse than max-drop
    assert shipped.record()["verdict"] == "drift"
    assert shipped.check("prompt_length/ks")["status"] == "ok"  # the users did not change


def test_longer_prompts_are_input_drift_from_local_files(shipped: Shop) -> None:
    def wordy(i: int) -> str:
        return f"{question(i)}, and please explain why " + "in great detail " * (3 + i % 5)

    shipped.traffic(200, days_ago=4, over_days=1)  # the reference week's traffic
    shipped.traffic(200, prompt=wordy)
    start = (datetime.now(UTC) - timedelta(days=6)).date()
    end = (datetime.now(UTC) - timedelta(days=2)).date()
    extra = (
        f"inference-data: {shipped.ws.captures / 'main.mon.bot_payload'}\n"
        f"monitor-reference: window:{start}..{end}\n"
        "monitor-window: 24h\n"
        'monitor: {prompt_length/ks: "<= 0.1", words/psi: "<= 0.25"}\n'
        "judged-data: judged\n"
    )
    result = shipped.run("monitor", extra=extra)
    assert result.code == 1, result.text
    length = shipped.check("prompt_length/ks")
    assert length["status"] == "drift" and length["value"] > 0.9 and length["pvalue"] < 1e-6
    assert shipped.check("words/psi")["status"] == "drift"
    record = shipped.record()
    assert record["reference"]["kind"] == "window" and record["reference"]["requests"] == 200
    lengths = {i["metric"]: i for i in record["inputs"]}["prompt_length/ks"]
    assert lengths["current_median"] > 3 * lengths["reference_median"]
    # off Databricks, the judged samples land as Parquet beside the config
    import duckdb

    parts = str(shipped.root / "judged" / "*.parquet")
    found = duckdb.sql(f"SELECT scorer, count(*) FROM read_parquet('{parts}') GROUP BY 1")
    assert found is not None
    rows = found.fetchall()
    assert rows == [("polite", 40)]


def test_too_little_traffic_is_not_enough_traffic_on_a_schedule(shipped: Shop) -> None:
    """No canary in flight: the action's schedule runs `monitor` on the champion."""
    shipped.traffic(10)
    env = {
        **shipped.env,
        "GENAI_GATE_CONFIG": str(shipped.config(WAREHOUSE)),
        "GENAI_GATE_OUT": str(shipped.out),
    }
    result: CliResult = shipped.cli("action", env=env)
    assert result.code == 0, result.text
    assert "::group::genai-gate monitor" in result.out
    assert "not enough traffic" in result.out
    outputs = read_outputs(Path(shipped.env["GITHUB_OUTPUT"]))
    assert outputs["result"] == "skipped"
    assert outputs["verdict"] == "not enough traffic" and outputs["drift"] == "false"
    summary = Path(shipped.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "genai-gate monitor `bot`: not enough traffic" in summary


def test_retraining_fires_once_in_its_cool_down(shipped: Shop) -> None:
    ws = shipped.ws
    job = ws.objects.add_job("retrain-bot")
    github = FakeGitHub().start()
    ws.model_versions[("main.ml.bot", "13")].answer = sloppy
    shipped.traffic(200)
    extra = (
        WAREHOUSE + "monitor-window: 24h\non-drift: [annotate, retrain, issue]\n"
        f"retrain-job-id: {job}\nretrain-event: retrain-bot\nretrain-cooldown: 7d\n"
    )
    env = {"GITHUB_API_URL": github.url, "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN}
    try:
        first = shipped.run("monitor", extra=extra, env=env)
        assert first.code == 1, first.text
        assert "::error title=genai-gate%3A drift in polite/mean::" in first.out
        second = shipped.run("monitor", extra=extra, env=env)
        assert second.code == 1, second.text
    finally:
        github.stop()
    assert len(ws.objects.job_runs) == 1
    started = ws.objects.job_runs[0]
    assert started["job_id"] == job
    assert started["job_parameters"]["drifted"] == "polite/mean"
    assert started["job_parameters"]["version"] == "13"
    assert len(github.dispatches) == 1
    assert github.dispatches[0]["event_type"] == "retrain-bot"
    assert github.dispatches[0]["payload"]["monitor_id"] == started["idempotency_token"]
    assert "genai-gate.retrained-at" in shipped.tags()
    actions = {a["action"]: a for a in shipped.record()["actions"]}
    assert (
        actions["retrain"]["outcome"] == "skipped" and "cool-down" in actions["retrain"]["detail"]
    )
    assert len(github.issues) == 1  # one issue per endpoint, updated the second time
    issue = next(iter(github.issues.values()))
    assert issue["title"] == "genai-gate: drift on bot"
    assert [c["issue"] for c in github.comments.values()] == [issue["number"]]
    kinds = [r["kind"] for r in read_records(shipped.out / "evidence.json")]
    assert kinds == ["eval", "deploy", "monitor", "monitor"]


def test_drift_rolls_back_to_the_previous_champion(shop: Shop) -> None:
    first = shop.run("deploy", "--set", "model-version=12")
    assert first.code == 0, first.text
    ship(shop)  # v13 as the canary
    assert shop.routes() == {"bot-12": 90, "bot-13": 10}
    promoted = shop.run("promote")
    assert promoted.code == 0, promoted.text
    assert shop.tags()["genai-gate.previous-champion"] == "main.ml.bot/12"
    shop.ws.model_versions[("main.ml.bot", "13")].answer = sloppy
    shop.traffic(200)
    result = shop.run("monitor", extra=WAREHOUSE + "on-drift: [rollback]\n")
    assert result.code == 1, result.text
    assert shop.routes() == {"bot-12": 100}
    rollback = next(a for a in shop.record()["actions"] if a["action"] == "rollback")
    assert rollback["outcome"] == "done" and "main.ml.bot v12" in rollback["detail"]
    assert "endpoint-config-version:" in result.out


def test_the_dashboard_is_created_then_updated_in_place_with_its_alerts(shipped: Shop) -> None:
    ws = shipped.ws
    extra = WAREHOUSE + "judged-table: main.mon.judged\nmonitor-window: 24h\n"
    shipped.traffic(100)
    watched = shipped.run("monitor", extra=extra)
    assert watched.code == 0, watched.text
    # the judged sample went back through the warehouse: CREATE TABLE, then INSERT
    judged = ws.sql(
        "SELECT scorer, count(*) AS n, avg(score) AS mean FROM main.mon.judged GROUP BY 1"
    )
    assert judged == [{"scorer": "polite", "n": 40, "mean": 1.0}]
    assert shipped.record()["judged_written_to"] == "main.mon.judged"

    first = shipped.run("dashboard", extra=extra)
    assert first.code == 0, first.text
    assert "genai-gate dashboard `bot`: created" in first.out
    made = json.loads((shipped.out / "dashboard.json").read_text())
    second = shipped.run("dashboard", extra=extra)
    assert second.code == 0, second.text
    again = json.loads((shipped.out / "dashboard.json").read_text())

    assert (made["action"], again["action"]) == ("created", "updated")
    assert again["dashboard_id"] == made["dashboard_id"]
    assert list(ws.objects.dashboards) == [made["dashboard_id"]]  # never a duplicate
    dashboard = ws.objects.dashboards[made["dashboard_id"]]
    assert dashboard["path"] == "/Shared/genai-gate/genai-gate bot.lvdash.json"
    assert dashboard["etag"] == "80611981"  # written twice
    assert made["dashboard_id"] in ws.objects.published
    assert [a["id"] for a in again["alerts"]] == [a["id"] for a in made["alerts"]]
    assert {a["name"]: a["action"] for a in again["alerts"]} == {
        "genai-gate bot: error rate": "updated",
        "genai-gate bot: polite/mean": "updated",
    }
    assert len(ws.objects.alerts) == 2 and len(ws.objects.queries) == 2
    quality = next(a for a in ws.objects.alerts.values() if a["display_name"].endswith("mean"))
    assert quality["condition"]["op"] == "LESS_THAN"  # the gate's polite/mean >= 0.5
    assert quality["condition"]["threshold"]["value"]["double_value"] == 0.5

    # every dataset and alert query runs on the warehouse and shows the traffic
    datasets = {
        d["name"]: d["queryLines"][0]
        for d in json.loads(dashboard["serialized_dashboard"])["datasets"]
    }
    hours = ws.sql(datasets["traffic"])
    assert sum(r["requests"] for r in hours) == 100
    assert {r["served_entity"] for r in hours} == {"bot-13"}
    assert ws.sql(datasets["quality"])[0]["mean_score"] == 1.0
    for query in ws.objects.queries.values():
        assert ws.sql(query["query_text"])

"""Watch a KServe canary end to end: deploy it, drive traffic through the InferenceService's
route (two local models of different quality answer for the champion's and the
challenger's revisions, logged as KServe's agent logs them), then `analyze`, decide and
apply: advance (canaryTrafficPercent), promote (remove it), roll back (pin, restore the
champion's predictor, release). The decision rules and the report are the Databricks ones."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from genai_gate.evidence import read_records
from tests.conftest import CliResult
from tests.fakes.kserve.schema import validate_inferenceservice
from tests.fakes.kubernetes import ADMIN_TOKEN, FakeKubernetes
from tests.integration.test_kserve_deploy import NS, R1, R2, R3, V1, V2, isvc

pytestmark = pytest.mark.integration

CHECKS = '''
def polite(outputs) -> float:
    """1 when the answer is a real answer, 0 when the model gave up."""
    return 0.0 if "sorry" in str(outputs).lower() else 1.0
'''


def good(messages: list[dict[str, Any]]) -> str:
    return f"The answer to {messages[-1]['content']!r} is 42."


def sloppy(messages: list[dict[str, Any]]) -> str:
    text = str(messages[-1]["content"])
    return "Sorry, I cannot help." if sum(map(ord, text)) % 4 else good(messages)


def drive(kube: FakeKubernetes, n: int, first: int = 0) -> int:
    """n chat calls through the service's route, split as KServe routes them now, on a clock
    that ticks 1 ms per reading: every call takes 1 ms on both revisions, so the latency rule
    sees the models, not this machine's scheduling (sub-millisecond noise decided p95)."""
    base, ticks = time.time(), itertools.count()
    kube.clock = lambda: base + next(ticks) / 1000
    try:
        for i in range(first, first + n):
            body = {"model": "bot", "messages": [{"role": "user", "content": f"q {i}"}]}
            kube.invoke("bot", body, NS)
    finally:
        kube.clock = time.time
    return first + n


class Canary:
    def __init__(self, cli: Any, root: Path, kube: FakeKubernetes) -> None:
        self.cli, self.root, self.kube = cli, root, kube
        (root / "checks.py").write_text(CHECKS)
        self.env = {"KUBECONFIG": str(kube.kubeconfig(root / "kubeconfig", token=ADMIN_TOKEN))}
        self.calls = 0

    def run(self, *argv: str, extra: str = "") -> CliResult:
        path = self.root / "genai-gate.yml"
        path.write_text(
            "backend: kserve\nendpoint: bot\nnamespace: models\n"
            f"storage-uri: {V2}\ncanary-percent: 10\nwait-timeout: 60\n"
            f"inference-log: {self.kube.event_dir('bot', NS)}\n"
            'scorers: ["python:checks:polite"]\n'
            'thresholds:\n  polite/mean: ">= 0.5"\n'
            "min-requests: 30\nsample-size: 30\n" + extra
        )
        result: CliResult = self.cli(
            argv[0], "-c", str(path), "--out", str(self.root / "out"), *argv[1:], env=self.env
        )
        return result

    def traffic(self, n: int) -> None:
        """n chat calls through the service's route, split as KServe routes them now."""
        self.calls = drive(self.kube, n, self.calls)

    def serving(self) -> dict[str, int]:
        return self.kube.serving("bot", NS)

    def state(self) -> dict[str, str]:
        cm = self.kube.configmap("genai-gate-rollout-bot", NS)
        return dict((cm or {}).get("data") or {})

    def predictor(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.kube.isvc("bot", NS)["spec"]["predictor"]
        return spec

    def status(self) -> dict[str, Any]:
        component: dict[str, Any] = self.kube.isvc("bot", NS)["status"]["components"]["predictor"]
        return component


def deployed_at_ten(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Canary:
    """V1 serving, V2 deployed beside it as a 10% canary (both answer well)."""
    kube_cluster.ready_polls = 0
    kube_cluster.add_inferenceservice(isvc())
    kube_cluster.register_model(V1, good)
    kube_cluster.register_model(V2, good)
    c = Canary(cli, tmp_path, kube_cluster)
    result = c.run("deploy")
    assert result.code == 0, result.text
    assert c.serving() == {R1: 90, R2: 10}
    return c


@pytest.fixture
def canary(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Canary:
    c = deployed_at_ten(cli, tmp_path, kube_cluster)
    # the window starts at the step's start (second precision): traffic comes after it
    time.sleep(1.1)
    return c


def stored_is_valid(kube: FakeKubernetes) -> None:
    body = {k: v for k, v in kube.isvc("bot", NS).items() if k != "status"}
    assert validate_inferenceservice(body) == []


def test_a_healthy_canary_advances_then_is_promoted(canary: Canary) -> None:
    canary.traffic(400)
    first = canary.run("analyze", "--apply")
    assert first.code == 0, first.text
    assert "healthy, advance" in first.out
    assert canary.serving() == {R1: 50, R2: 50}
    assert canary.predictor()["canaryTrafficPercent"] == 50
    assert canary.state()["genai-gate.step"] == "50"
    # a step is a route change and a state write: no new revision
    assert len(canary.kube.revisions("bot", NS)) == 2

    time.sleep(1.1)
    canary.traffic(150)
    second = canary.run("analyze", "--apply")
    assert second.code == 0, second.text
    assert "healthy, promote" in second.out
    assert canary.serving() == {R2: 100}
    assert "canaryTrafficPercent" not in canary.predictor()
    state = canary.state()
    assert (state["genai-gate.champion"], state["genai-gate.step"]) == (R2, "100")
    assert "genai-gate.challenger" not in state
    assert json.loads(state["genai-gate.champion-spec"])["model"]["storageUri"] == V2
    # the state writes made no revision: KServe's own bookkeeping still names the true
    # previous model, so a rollback after the promotion lands on it, not on a copy
    assert len(canary.kube.revisions("bot", NS)) == 2
    status = canary.status()
    assert (status["latestRolledoutRevision"], status["previousRolledoutRevision"]) == (R2, R1)
    stored_is_valid(canary.kube)
    records = read_records(canary.root / "out" / "evidence.json")
    decisions = [r.get("decision") for r in records if r["kind"] == "analysis"]
    assert decisions == ["advance", "promote"]


def test_a_worse_challenger_is_rolled_back_on_quality(canary: Canary) -> None:
    canary.kube.register_model(V2, sloppy)
    canary.traffic(800)
    result = canary.run("analyze", "--apply")
    assert result.code == 1, result.text
    assert "unhealthy, roll back" in result.out
    assert "polite/mean vs champion" in result.out
    # pinned, then the champion's predictor restored as a new revision, then released
    assert canary.serving() == {R3: 100}
    predictor = canary.predictor()
    assert predictor["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in predictor
    state = canary.state()
    assert (state["genai-gate.champion"], state["genai-gate.step"]) == (R3, "100")
    assert "genai-gate.challenger" not in state
    stored_is_valid(canary.kube)
    doc = json.loads((canary.root / "out" / "analysis.json").read_text())
    assert doc["decision"] == "rollback" and doc["applied"] is True
    assert doc["routes_after"] == {R3: 100}


def test_an_erroring_challenger_is_rolled_back(canary: Canary) -> None:
    canary.kube.register_model(V2, good, error_rate=0.3)
    canary.traffic(800)
    result = canary.run("analyze", "--apply")
    assert result.code == 1, result.text
    assert "error rate" in result.out
    assert canary.serving() == {R3: 100}
    doc = json.loads((canary.root / "out" / "analysis.json").read_text())
    assert doc["traffic"][R2]["error_rate"] > 0.15


def test_low_traffic_holds_as_inconclusive(canary: Canary) -> None:
    canary.traffic(60)  # about 6 requests reach the challenger
    result = canary.run("analyze", "--apply")
    assert result.code == 0, result.text
    assert "inconclusive, hold" in result.out
    assert canary.serving() == {R1: 90, R2: 10}


def test_rollback_by_hand_after_a_step_lands_on_the_true_previous_model(canary: Canary) -> None:
    canary.traffic(400)
    advanced = canary.run("analyze", "--apply")
    assert advanced.code == 0, advanced.text
    assert canary.serving() == {R1: 50, R2: 50}
    result = canary.run("rollback")
    assert result.code == 0, result.text
    assert "roll back (by hand)" in result.out
    assert canary.serving() == {R3: 100}
    assert canary.predictor()["model"]["storageUri"] == V1
    revisions = canary.kube.revisions("bot", NS)
    assert [r.name for r in revisions] == [R1, R2, R3]


def test_promote_by_hand(canary: Canary) -> None:
    result = canary.run("promote")
    assert result.code == 0, result.text
    assert canary.serving() == {R2: 100}
    assert canary.state()["genai-gate.champion"] == R2


def test_analysis_reads_parquet_events_too(canary: Canary) -> None:
    canary.kube.register_model(V2, good, error_rate=0.3)
    folder = canary.root / "parquet-events"
    canary.kube.emit_traffic("bot", 800, NS, parquet=True, out_dir=folder, start=time.time())
    result = canary.run("analyze", "--set", f"inference-log={folder}")
    assert result.code == 1, result.text
    assert "error rate" in result.out
    assert "Not applied" in result.out
    assert canary.serving() == {R1: 90, R2: 10}


def test_a_rollback_whose_restore_fails_stays_pinned_to_the_champion(canary: Canary) -> None:
    canary.kube.register_model(V1, good, fails="the old model's bucket is gone")
    result = canary.run("rollback")
    assert result.code == 4, result.text
    assert "the old model's bucket is gone" in result.err
    assert f"traffic stays pinned 100% to {R1}" in result.err
    assert canary.serving() == {R1: 100}
    assert canary.predictor()["canaryTrafficPercent"] == 0

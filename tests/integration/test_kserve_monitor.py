"""`genai-gate monitor` on KServe: the champion's window of the logged CloudEvents (the
emulator's sink files) against an earlier window, the monitor's state in the rollout
ConfigMap (never the InferenceService's annotations, which would make revisions), and the
rollback to the previous champion's predictor recorded by the promotion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from genai_gate.backends.kserve.backend import KServeBackend
from genai_gate.backends.kserve.session import ClusterSession
from genai_gate.config import load_config
from genai_gate.errors import ConfigError
from genai_gate.github import read_context
from tests.fakes.kubernetes import FakeKubernetes
from tests.integration.test_kserve_canary import Canary, deployed_at_ten, good, sloppy
from tests.integration.test_kserve_deploy import NS, R1, R2, R3, V1, V2

pytestmark = pytest.mark.integration

RETRAINED = "genai-gate.retrained-at"
PREVIOUS = "genai-gate.previous-champion"


@pytest.fixture
def canary(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Canary:
    return deployed_at_ten(cli, tmp_path, kube_cluster)


def promoted(canary: Canary) -> Canary:
    """V2 promoted over V1: the champion is R2 at 100%, V1's predictor recorded."""
    result = canary.run("promote")
    assert result.code == 0, result.text
    assert canary.serving() == {R2: 100}
    return canary


def emit(kube: FakeKubernetes, n: int, start: datetime, interval: float) -> None:
    kube.emit_traffic("bot", n, NS, start=start.timestamp(), interval=interval)


def weeks(now: datetime) -> str:
    """The config of a monitor whose reference is the days from 6 to 2 days ago (UTC dates,
    both whole days included: the monitored last 24 hours never overlap them)."""
    start = (now - timedelta(days=6)).date()
    end = (now - timedelta(days=2)).date()
    return f"monitor-reference: window:{start}..{end}\nmonitor-window: 24h\n"


def record(canary: Canary) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((canary.root / "out" / "monitor.json").read_text())
    return doc


def check(doc: dict[str, Any], metric: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in doc["checks"] if c["metric"] == metric)
    return found


def test_a_stable_champion_window_of_logged_events_is_stable(canary: Canary) -> None:
    promoted(canary)
    kube = canary.kube
    kube.register_model(V2, good, latency=0.2)
    now = datetime.now(UTC)
    emit(kube, 300, now - timedelta(days=3), 60)  # the reference: five hours, 3 days ago
    emit(kube, 400, now - timedelta(hours=2), 10)  # the monitored day's
    # logged after the window's end (until): a broken hour the monitor must not see
    kube.register_model(V2, good, latency=0.2, error_rate=0.9)
    emit(kube, 500, now + timedelta(hours=1), 1)

    result = canary.run("monitor", extra=weeks(now) + "judged-data: judged\n")
    assert result.code == 0, result.text
    assert "genai-gate monitor `bot`: stable" in result.out
    doc = record(canary)
    assert doc["champion"]["name"] == R2 and doc["champion"]["model"] == V2
    # the window is [now - 24h, now): the pairs logged after it are left out
    assert doc["traffic"]["requests"] == 400 and doc["traffic"]["errors"] == 0
    assert doc["reference"]["kind"] == "window" and doc["reference"]["requests"] == 300
    # latency compared sample against sample: each exchange's duration from its paired times
    latency = check(doc, "latency/p95")
    assert latency["status"] == "ok", latency
    assert latency["value"] == pytest.approx(200, abs=1)
    assert check(doc, "polite/mean")["status"] == "ok"
    assert check(doc, "prompt_length/ks")["status"] == "ok"
    # judged-data is backend-neutral: the judged sample lands as Parquet beside the config
    import duckdb

    parts = str(canary.root / "judged" / "*.parquet")
    found = duckdb.sql(f"SELECT served_entity, scorer, count(*) FROM '{parts}' GROUP BY ALL")
    assert found is not None
    assert found.fetchall() == [(R2, "polite", 30)]  # sample-size of the monitored window


def test_drift_rolls_back_to_the_previous_champions_predictor(canary: Canary) -> None:
    promoted(canary)
    state = canary.state()
    model, _, version = state[PREVIOUS].rpartition("/")
    assert model == V1 and version
    assert json.loads(state["genai-gate.previous-champion-spec"])["model"]["storageUri"] == V1
    kube = canary.kube
    now = datetime.now(UTC)
    emit(kube, 300, now - timedelta(days=3), 60)  # V2 answered well that week
    kube.register_model(V2, sloppy)
    emit(kube, 300, now - timedelta(hours=2), 10)

    result = canary.run("monitor", extra=weeks(now) + "on-drift: [rollback]\n")
    assert result.code == 1, result.text
    assert check(record(canary), "polite/mean")["status"] == "drift"
    # no revision with traffic was left to pin: V1's predictor is served again, at 100%
    assert canary.serving() == {R3: 100}
    assert canary.predictor()["model"]["storageUri"] == V1
    rollback = next(a for a in record(canary)["actions"] if a["action"] == "rollback")
    assert rollback["outcome"] == "done" and f"{V1} v{version}" in rollback["detail"]
    after = canary.state()
    assert (after["genai-gate.champion"], after["genai-gate.step"]) == (R3, "100")
    assert after[PREVIOUS] == state[PREVIOUS]  # kept across the rollout
    assert [r.name for r in kube.revisions("bot", NS)] == [R1, R2, R3]


def test_the_cool_down_lives_in_the_rollout_configmap_across_rollouts(
    canary: Canary, tmp_path: Path
) -> None:
    loaded = load_config(canary.root / "genai-gate.yml", require_data=False)
    session = ClusterSession(canary.env, loaded.config, read_context({}), tmp_path)
    backend = KServeBackend(loaded, session)
    stamp = "2026-11-02T09:00:00+00:00"
    backend.set_tags("bot", {RETRAINED: stamp})
    assert canary.state()[RETRAINED] == stamp
    # a state write, not a service write: no annotation, no revision
    annotations = canary.kube.isvc("bot", NS)["metadata"].get("annotations") or {}
    assert RETRAINED not in annotations
    assert len(canary.kube.revisions("bot", NS)) == 2
    read = backend.read("bot")
    assert read is not None and read.tags[RETRAINED] == stamp

    promoted(canary)  # a rollout rewrites the rollout keys only
    state = canary.state()
    assert state[RETRAINED] == stamp and state["genai-gate.champion"] == R2
    assert state[PREVIOUS].startswith(f"{V1}/")
    # what KServe has no equivalent of is refused, with the way to do it on KServe
    with pytest.raises(ConfigError, match="Databricks-only") as refused:
        backend.publish_dashboard(read, name="x", folder="/Shared", floors={})
    assert "monitor.html" in refused.value.fix
    with pytest.raises(ConfigError, match="no jobs") as no_jobs:
        backend.run_job("123", {}, "key")
    assert "retrain-event" in no_jobs.value.fix

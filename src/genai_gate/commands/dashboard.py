"""`genai-gate dashboard`: create or update, by name, the AI/BI dashboard over the endpoint's
inference table and the judged samples analyze and monitor wrote back, with its SQL alerts.

A re-run finds the dashboard, its queries and its alerts by their names and updates them in
place (the same ids), so it can run on every deploy or schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genai_gate import artefacts, evidence
from genai_gate.backends.base import PublishedDashboard
from genai_gate.commands.run import Result, Run, refuse_on_pull_request
from genai_gate.errors import ConfigError
from genai_gate.report.monitor import render_dashboard
from genai_gate.rollout.quality import reference_free


@dataclass(frozen=True)
class DashboardReport:
    endpoint: str
    published: PublishedDashboard
    summary: str
    doc: dict[str, Any]
    notices: tuple[str, ...]

    @property
    def result(self) -> Result:
        return Result.PASSED

    def outputs(self) -> dict[str, str]:
        return {"dashboard-id": self.published.dashboard_id, "dashboard-url": self.published.url}


def run_dashboard(
    run: Run, progress: Callable[[str], None] = lambda _line: None
) -> DashboardReport:
    loaded = run.loaded
    cfg = loaded.config
    if cfg.endpoint is None:
        raise ConfigError(
            "endpoint: is required for the dashboard",
            fix="endpoint: my-genai\nwarehouse-id: 1234567890abcdef\n"
            "judged-table: main.genai_logs.judged",
        )
    refuse_on_pull_request(run.ctx)  # it writes to the workspace
    backend = run.backend(progress)
    state = backend.read(cfg.endpoint)
    if state is None:
        raise ConfigError(
            f"endpoint {cfg.endpoint} does not exist, so there is no traffic to chart",
            fix="Deploy first: genai-gate deploy",
        )
    notices = list(loaded.notices)
    judged = {s.name for s in reference_free(loaded, notices)}
    # the gate's own limits on the judged scorers are the quality alerts' thresholds
    floors = {
        t.metric.rpartition("/")[0]: (t.op, t.value)
        for t in loaded.thresholds
        if t.metric.endswith("/mean") and t.metric.rpartition("/")[0] in judged
    }
    if not cfg.judged_table:
        notices.append(
            "no judged-table is set, so the dashboard shows traffic, errors and latency only; "
            "set judged-table for the judged quality and its alerts"
        )
    name = cfg.dashboard_name or f"genai-gate {cfg.endpoint}"
    progress(f"writing the AI/BI dashboard {name!r} in {cfg.dashboard_path}")
    published = backend.publish_dashboard(
        state, name=name, folder=cfg.dashboard_path, floors=floors
    )
    summary = render_dashboard(cfg.endpoint, published, notices)
    doc = {
        "kind": "dashboard",
        "endpoint": cfg.endpoint,
        "dashboard_id": published.dashboard_id,
        "name": published.name,
        "url": published.url,
        "action": published.action,
        "alerts": [{"name": n, "id": i, "action": a} for n, i, a in published.alerts],
    }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    evidence.write_json_atomic(run.out_dir / "dashboard.json", doc)
    artefacts.write_text(run.out_dir / "dashboard.md", summary)
    return DashboardReport(cfg.endpoint, published, summary, doc, tuple(notices))

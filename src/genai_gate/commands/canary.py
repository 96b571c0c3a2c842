"""`genai-gate analyze`, `promote` and `rollback`: watch the canary, then move its traffic.

endpoint state (its rollout tags) -> the inference table per served entity (SQL on a
warehouse, or DuckDB on local files) -> quality of a sample, judged by the reference-free
scorers -> decision (pure) -> [apply through deploy's path: wait, restore, evidence].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from genai_gate import __version__, artefacts, evidence
from genai_gate.backends.base import Applied, ServingState
from genai_gate.commands.judged import write_judged
from genai_gate.commands.run import Result, Run, refuse_on_pull_request
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError, GateError
from genai_gate.provenance import collect
from genai_gate.report.analysis import render_analysis
from genai_gate.rollout.decision import Action, Decision, Rules, decide, quality_deltas
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.rollout.plan import (
    TAG_CHALLENGER,
    TAG_CHAMPION,
    TAG_STARTED,
    TAG_STEP,
    TAG_STEP_AT,
    Entity,
    Rollout,
)
from genai_gate.rollout.quality import directions, reference_free, score_traffic

Mode = Literal["analyze", "promote", "rollback"]
DEFAULT_WINDOW = timedelta(days=1)  # without a started-at tag: the last day of traffic


@dataclass(frozen=True)
class AnalyzeReport:
    mode: Mode
    endpoint: str
    decision: Decision
    traffic: Mapping[str, EntityTraffic]
    applied: Applied | None
    summary: str
    doc: dict[str, Any]
    notices: tuple[str, ...]
    open_issue: bool = False
    in_flight: bool = True  # a champion and a challenger were serving

    @property
    def unhealthy(self) -> bool:
        return self.decision.healthy is False

    @property
    def result(self) -> Result:
        if self.unhealthy:
            return Result.FAILED
        return Result.PASSED if self.in_flight else Result.SKIPPED  # no canary: nothing judged

    def outputs(self) -> dict[str, str]:
        out = {"decision": self.decision.action, "verdict": self.decision.verdict}
        if self.applied is not None:
            import json

            after = self.applied.after
            out.update(
                {
                    "endpoint-config-version": str(after.config_version or ""),
                    "endpoint-url": after.url or "",
                    "routes": json.dumps(dict(after.routes), separators=(",", ":")),
                }
            )
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _since(state: ServingState, now: datetime) -> datetime:
    """The start of the current step (else of the rollout): a canary that just advanced
    from 10% to 50% is judged on its traffic at 50%, not on what it served at 10%."""
    for tag in (TAG_STEP_AT, TAG_STARTED):
        text = state.tags.get(tag)
        if not text:
            continue
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            continue  # a tag edited by hand: try the next, else the default window
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return now - DEFAULT_WINDOW


def rules_of(loaded: LoadedConfig) -> Rules:
    cfg = loaded.config
    return Rules(
        min_requests=cfg.min_requests,
        max_error_rate=cfg.max_error_rate,
        max_error_rate_increase=cfg.max_error_rate_increase,
        max_latency_ratio=cfg.max_latency_ratio,
        quality_max_drop=cfg.quality_max_drop,
        steps=cfg.steps,
    )


def _rollout_moved(before: ServingState, now: ServingState) -> bool:
    tags = (TAG_CHAMPION, TAG_CHALLENGER, TAG_STEP)
    return before.config_version != now.config_version or any(
        before.tags.get(t) != now.tags.get(t) for t in tags
    )


def _rollout_for(
    decision: Decision, champion: Entity, challenger: Entity, started: str | None, now: datetime
) -> Rollout:
    if decision.action == "rollback":
        return Rollout(champion)
    if decision.action == "promote":
        return Rollout(champion, challenger, 100)
    return Rollout(
        champion, challenger, decision.next_step, started, now.isoformat(timespec="seconds")
    )


def run_analyze(
    run: Run, *, mode: Mode, apply: bool, progress: Callable[[str], None] = lambda _line: None
) -> AnalyzeReport:
    loaded, out_dir, environ = run.loaded, run.out_dir, run.environ
    cfg = loaded.config
    if cfg.endpoint is None:
        raise ConfigError(
            f"endpoint: is required to {mode}",
            fix="endpoint: my-genai\nwarehouse-id: 1234567890abcdef",
        )
    endpoint = cfg.endpoint
    # traffic moves only from the default branch's workflows, never from a PR's code
    if apply:
        refuse_on_pull_request(run.ctx)
    backend = run.backend(progress)
    state = backend.read(endpoint)
    if state is None:
        raise ConfigError(
            f"endpoint {endpoint} does not exist, so there is no canary to {mode}",
            fix="Deploy first: genai-gate deploy",
        )
    champion, challenger = state.champion(), state.challenger()
    notices = list(loaded.notices)
    now = _now()
    window = _since(state, now)
    since = window.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    since_ms = int(window.timestamp() * 1000)
    rules = rules_of(loaded)
    traffic: dict[str, EntityTraffic] = {}
    step = state.routes.get(challenger.name, 0) if challenger else 0

    if champion is None or challenger is None:
        decision = Decision("hold", None, f"endpoint {endpoint} has no canary to analyze", 100, 100)
    elif mode == "analyze":
        source = backend.traffic(state)
        progress(f"reading traffic of {endpoint} since {since} UTC from {source.where}")
        traffic = source.stats(endpoint, since_ms)
        candidates = reference_free(loaded, notices)
        better = directions(loaded, candidates, notices)
        scorers = [s for s in candidates if f"{s.name}/mean" in better]
        deltas = []
        if scorers and cfg.sample_size > 0:
            sampled = {
                e.name: source.sample(endpoint, e.name, since_ms, cfg.sample_size)
                for e in (champion, challenger)
            }
            progress(
                "judging "
                + ", ".join(f"{len(v)} request(s) of {k}" for k, v in sampled.items())
                + f" with {', '.join(s.name for s in scorers)}"
            )
            scores = score_traffic(loaded, scorers, sampled, environ, run.workspace, notices)
            for entity in (champion, challenger):
                scored = scores.get(entity.name, {})
                write_judged(backend, state, entity, "analyze", since, scored, notices)
            deltas = quality_deltas(
                scores.get(champion.name, {}), scores.get(challenger.name, {}), better
            )
        decision = decide(
            traffic.get(champion.name), traffic.get(challenger.name), step, rules, deltas
        )
    else:
        by_hand: Action = "promote" if mode == "promote" else "rollback"
        decision = Decision(
            by_hand, None, f"{by_hand} requested by hand", step, 100 if mode == "promote" else 0
        )

    applied: Applied | None = None
    plan = None
    if (
        apply
        and champion is not None
        and challenger is not None
        and decision.action in ("advance", "promote", "rollback")
    ):
        fresh = backend.read(endpoint)
        if fresh is None or _rollout_moved(state, fresh):
            # a deploy or a person changed the endpoint while we measured: what was
            # analysed is not what is serving, so nothing is applied on its strength
            notices.append(
                f"endpoint {endpoint} changed during the analysis (config "
                f"{state.config_version} -> {fresh.config_version if fresh else 'gone'}); "
                "nothing was applied, the next run analyses what serves now"
            )
            decision = Decision(
                "hold", None, "held: the endpoint changed during the analysis", step, step
            )
        else:
            rollout = _rollout_for(decision, champion, challenger, state.tags.get(TAG_STARTED), now)
            plan = backend.plan_rollout(endpoint, state, rollout)
            progress(f"endpoint {endpoint}: {decision.action} ({decision.reason})")
            try:
                applied = backend.apply(plan, cfg.wait_timeout)
            except GateError as exc:
                # the unhealthy verdict must be on record even when moving traffic failed
                failed = _record(
                    loaded, endpoint, state, decision, traffic, since, None, environ, mode
                )
                failed["apply_error"] = f"{exc.title}: {exc.message}"
                out_dir.mkdir(parents=True, exist_ok=True)
                evidence.write_json_atomic(out_dir / "analysis.json", failed)
                evidence.append(out_dir / "evidence.json", failed)
                raise

    summary = render_analysis(
        endpoint,
        state,
        decision,
        traffic,
        since=since,
        applied=applied,
        plan=plan,
        mode=mode,
        notices=notices,
        rules=rules_of(loaded),
    )
    doc = _record(loaded, endpoint, state, decision, traffic, since, applied, environ, mode)
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence.write_json_atomic(out_dir / "analysis.json", doc)
    artefacts.write_text(out_dir / "analysis.md", summary)
    evidence.append(out_dir / "evidence.json", doc)
    return AnalyzeReport(
        mode,
        endpoint,
        decision,
        traffic,
        applied,
        summary,
        doc,
        tuple(notices),
        open_issue=cfg.open_issue,
        in_flight=champion is not None and challenger is not None,
    )


def _record(
    loaded: LoadedConfig,
    endpoint: str,
    state: ServingState,
    decision: Decision,
    traffic: Mapping[str, EntityTraffic],
    since: str,
    applied: Applied | None,
    environ: Mapping[str, str],
    mode: Mode,
) -> dict[str, Any]:
    return {
        "kind": "rollout" if mode != "analyze" else "analysis",
        "recorded_at": _now().isoformat(timespec="seconds"),
        "genai_gate_version": __version__,
        "endpoint": endpoint,
        "since": since,
        "config_version_before": state.config_version,
        "config_version_after": applied.after.config_version if applied else state.config_version,
        "routes_before": dict(state.routes),
        "routes_after": dict(applied.after.routes) if applied else dict(state.routes),
        "decision": decision.action,
        "verdict": decision.verdict,
        "reason": decision.reason,
        "step": decision.step,
        "next_step": decision.next_step,
        "applied": applied is not None,
        "checks": [
            {"name": c.name, "passed": c.passed, "detail": c.detail} for c in decision.checks
        ],
        "quality": [
            {
                "metric": q.metric,
                "champion": q.champion,
                "challenger": q.challenger,
                "delta": q.delta,
                "ci": list(q.ci) if q.ci else None,
                "samples": list(q.samples),
            }
            for q in decision.quality
        ],
        "traffic": {
            name: {
                "requests": t.requests,
                "errors": t.errors,
                "error_rate": t.error_rate,
                "logging_errors": t.logging_errors,
                "p50_ms": t.p50_ms,
                "p95_ms": t.p95_ms,
                "p99_ms": t.p99_ms,
            }
            for name, t in traffic.items()
        },
        "rules": {
            "min_requests": loaded.config.min_requests,
            "max_error_rate": loaded.config.max_error_rate,
            "max_error_rate_increase": loaded.config.max_error_rate_increase,
            "max_latency_ratio": loaded.config.max_latency_ratio,
            "quality_max_drop": loaded.config.quality_max_drop,
            "steps": list(loaded.config.steps),
        },
        "provenance": collect(loaded.base_dir, environ).as_dict(),
    }

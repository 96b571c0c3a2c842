"""`genai-gate monitor`: watch the champion once the canary is over, and act on drift.

endpoint state -> the champion's current window of the inference table (health over the
whole window; a sample of prompts; a judged part of it) -> the reference (the eval run that
gated the serving version, an explicit run, or an earlier window) -> drift
(rollout/monitoring.py, pure) -> the actions `on-drift` opts into (annotate, rollback,
retrain with a cool-down, issue) -> monitor.json, monitor.md, monitor.html and evidence.

The retraining cool-down is kept in an endpoint tag (`genai-gate.retrained-at`), through the
backend seam, beside the rollout state: each scheduled run starts on a fresh runner, so the
out folder (and evidence.json in it) is gone unless the workflow keeps it, while the tag
lives as long as the endpoint it throttles and every run that can act on it can read it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from genai_gate import __version__, artefacts, evidence, secrets
from genai_gate.backends.base import Applied, ServingBackend, ServingState, TrafficReader
from genai_gate.baseline import RUN_PREFIX, find_gated_run, read_run_rows
from genai_gate.commands.judged import write_judged
from genai_gate.commands.run import Result, Run
from genai_gate.config import LoadedConfig
from genai_gate.config.model import parse_instant
from genai_gate.errors import ConfigError, GateError
from genai_gate.github import dispatch_event, run_links, upsert_issue
from genai_gate.provenance import collect
from genai_gate.report.markdown import fit_comment
from genai_gate.report.monitor import render_monitor
from genai_gate.report.monitor_html import render_monitor_html
from genai_gate.rollout.drift import INPUT_METRICS
from genai_gate.rollout.measures import EntityTraffic, Exchange
from genai_gate.rollout.monitoring import (
    HEALTH,
    DriftRules,
    MonitorDecision,
    Side,
    Taken,
    decide,
    default_rules,
)
from genai_gate.rollout.plan import TAG_PREVIOUS, Entity, Rollout
from genai_gate.rollout.quality import (
    as_row,
    directions,
    prompt_of,
    reference_free,
    score_traffic,
)
from genai_gate.scorer import BoundScorer
from genai_gate.thresholds import Better
from genai_gate.tracking import default_tracking_uri

TAG_RETRAINED = "genai-gate.retrained-at"


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @property
    def since_ms(self) -> int:
        return int(self.since.timestamp() * 1000)

    @property
    def until_ms(self) -> int:
        return int(self.until.timestamp() * 1000)

    def text(self) -> str:
        return f"{_iso(self.since)}..{_iso(self.until)}"


@dataclass(frozen=True)
class Reference:
    side: Side | None
    kind: str  # run | window | none
    label: str
    run_id: str | None = None
    window: Window | None = None


@dataclass(frozen=True)
class MonitorReport:
    endpoint: str
    champion: Entity
    window: Window
    decision: MonitorDecision
    traffic: EntityTraffic | None
    reference: Reference
    actions: tuple[Taken, ...]
    summary: str
    doc: dict[str, Any]
    notices: tuple[str, ...]
    applied: Applied | None = None

    @property
    def result(self) -> Result:
        if self.decision.verdict == "drift":
            return Result.FAILED
        return Result.PASSED if self.decision.verdict == "stable" else Result.SKIPPED

    def outputs(self) -> dict[str, str]:
        out = {
            "verdict": self.decision.verdict,
            "drift": "true" if self.decision.verdict == "drift" else "false",
        }
        if self.applied is not None:
            out["endpoint-config-version"] = str(self.applied.after.config_version or "")
            out["routes"] = json.dumps(dict(self.applied.after.routes), separators=(",", ":"))
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_window(text: str) -> Window:
    """`window:<from>..<to>` (the config checked its form): dates are whole days, both
    included; times are instants, the end excluded."""
    start, _, end = text.removeprefix("window:").partition("..")
    since, until = parse_instant(start), parse_instant(end)
    assert since is not None and until is not None
    if "T" not in end.strip() and " " not in end.strip():
        until += timedelta(days=1)
    if until <= since:
        raise ConfigError(
            f"monitor-reference: {text!r} ends before it starts",
            fix="monitor-reference: window:2026-11-01..2026-11-07",
        )
    return Window(since, until)


# ---------------------------------------------------------------- one side's measures


def _side(
    label: str,
    traffic: EntityTraffic | None,
    sample: Sequence[Exchange],
    scores: Mapping[str, Sequence[float]],
) -> Side:
    prompts = []
    for i, exchange in enumerate(sample):
        row = as_row(i, exchange)
        if row is not None:
            prompts.append(str(row.inputs.get("query", "")))
    percentiles: dict[str, float] = {}
    if traffic is not None:
        for metric, value in zip(
            HEALTH[1:], (traffic.p50_ms, traffic.p95_ms, traffic.p99_ms), strict=True
        ):
            if value is not None:
                percentiles[metric] = value
    return Side(
        label,
        requests=traffic.requests if traffic else 0,
        errors=traffic.errors if traffic else 0,
        percentiles=percentiles,
        durations=tuple(
            e.duration_ms
            for e in sample
            if e.duration_ms is not None and math.isfinite(e.duration_ms)
        ),
        scores=scores,
        prompts=tuple(prompts),
    )


def _judge(
    run: Run,
    scorers: Sequence[BoundScorer],
    entity: str,
    sample: Sequence[Exchange],
    notices: list[str],
) -> dict[str, list[float]]:
    k = run.loaded.config.sample_size
    if not scorers or k <= 0 or not sample:
        return {}
    scores = score_traffic(
        run.loaded, scorers, {entity: sample[:k]}, run.environ, run.workspace, notices
    )
    return scores.get(entity, {})


def _read_window(
    source: TrafficReader, endpoint: str, entity: str | None, window: Window, k: int
) -> tuple[str | None, EntityTraffic | None, list[Exchange]]:
    """The window's traffic of `entity` (None: the entity that served most of it)."""
    per_entity = source.stats(endpoint, window.since_ms, window.until_ms)
    if entity is None and per_entity:
        entity = max(per_entity.values(), key=lambda t: t.requests).entity
    if entity is None:
        return None, None, []
    traffic = per_entity.get(entity)
    sample = source.sample(endpoint, entity, window.since_ms, k, window.until_ms) if traffic else []
    return entity, traffic, sample


# ---------------------------------------------------------------- the reference


def gated_run_in(records: Sequence[Mapping[str, Any]], champion: Entity) -> str | None:
    """The MLflow run of the eval that gated the champion's version, from the evidence
    chain: the latest deploy that put this model version on the endpoint, then the eval of
    the same commit recorded before it."""
    for i in range(len(records) - 1, -1, -1):
        deploy = records[i]
        if deploy.get("kind") != "deploy" or deploy.get("action") == "failed":
            continue
        deployed = deploy.get("challenger") or deploy.get("champion")
        served = {e.get("name"): e for e in deploy.get("served_entities") or []}
        entity = served.get(deployed)
        if not entity or (entity.get("model"), entity.get("version")) != (
            champion.model,
            champion.version,
        ):
            continue
        sha = (deploy.get("provenance") or {}).get("sha")
        for earlier in reversed(records[:i]):
            if earlier.get("kind") != "eval":
                continue
            run_id = (earlier.get("mlflow") or {}).get("run_id")
            if run_id and (not sha or (earlier.get("git") or {}).get("sha") in (sha, None)):
                return str(run_id)
        return None
    return None


def _run_side(run_id: str, run: Run, scorers: Sequence[BoundScorer], tracking_uri: str) -> Side:
    label = f"eval run {run_id}"
    params, rows = read_run_rows(
        run_id, run.loaded.label("monitor-reference"), {s.name for s in scorers}, tracking_uri
    )
    scores: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.scores.items():
            if value is not None and math.isfinite(value):
                scores.setdefault(f"{name}/mean", []).append(float(value))
    model = params.get("model")
    return Side(
        f"{label} ({model})" if model else label,
        requests=len(rows),
        errors=sum(1 for r in rows if r.error is not None),
        scores=scores,
        prompts=tuple(prompt_of(r.inputs) for r in rows if r.inputs),
        serving_latency=False,
    )


def _reference(
    run: Run,
    source: TrafficReader,
    endpoint: str,
    champion: Entity,
    scorers: Sequence[BoundScorer],
    notices: list[str],
    progress: Callable[[str], None],
) -> Reference:
    cfg = run.loaded.config
    ref = cfg.monitor_reference
    if ref is not None and ref.lower() == "none":
        return Reference(None, "none", "none (monitor-reference: none)")
    if ref is not None and ref.startswith("window:"):
        window = parse_window(ref)
        k = max(cfg.monitor_inputs, cfg.sample_size)
        progress(f"reading the reference window {window.text()} of {endpoint}")
        entity, traffic, sample = _read_window(source, endpoint, None, window, k)
        label = f"window {window.text()}" + (f" ({entity})" if entity else "")
        if traffic is None or entity is None:
            notices.append(f"the reference {label} holds no traffic of {endpoint}")
            return Reference(None, "window", label, window=window)
        scores = _judge(run, scorers, entity, sample, notices)
        return Reference(_side(label, traffic, sample, scores), "window", label, window=window)
    tracking_uri = default_tracking_uri(run.out_dir, cfg.tracking_uri, run.environ)
    run_id: str | None = None
    if ref is not None and ref.startswith(RUN_PREFIX):
        run_id = ref.removeprefix(RUN_PREFIX).strip()
    else:
        run_id = gated_run_in(evidence.read_records(run.out_dir / "evidence.json"), champion)
        if run_id is None:
            run_id = find_gated_run(
                tracking_uri, cfg.experiment, endpoint, champion.model, champion.version
            )
        if run_id is None:
            why = (
                f"no eval run that gated {champion.model} v{champion.version} was found (in "
                f"{run.out_dir / 'evidence.json'} or tagged in MLflow experiment "
                f"{cfg.experiment!r}), so only absolute rules are checked"
            )
            notices.append(
                f"{why}. Name one: monitor-reference: run:<mlflow-run-id>, or window:<from>..<to>"
            )
            return Reference(None, "none", "none found")
    progress(f"reading the reference eval run {run_id}")
    side = _run_side(run_id, run, scorers, tracking_uri)
    return Reference(side, "run", side.label, run_id=run_id)


# ---------------------------------------------------------------- the rules


def _rules(
    loaded: LoadedConfig, better: Mapping[str, Better], scorers: Sequence[BoundScorer]
) -> tuple[DriftRules, str]:
    cfg = loaded.config
    if loaded.monitor_thresholds or loaded.monitor_relative:
        judged = {f"{s.name}/mean" for s in scorers}
        known = {*HEALTH, *INPUT_METRICS, *judged}
        named = [t.metric for t in loaded.monitor_thresholds]
        named += [r.metric for r in loaded.monitor_relative]
        problems = [
            f"{loaded.label(f'monitor.{metric}')}: {metric} is not a monitored "
            f"metric; these are: {', '.join(sorted(known))}"
            for metric in dict.fromkeys(named)
            if metric not in known
        ]
        problems += [
            f"{loaded.label(f'monitor.{r.metric}')}: {r.metric} is a test statistic, "
            'held to an absolute limit such as "<= 0.1", not compared with the reference'
            for r in loaded.monitor_relative
            if r.metric in INPUT_METRICS
        ]
        if problems:
            raise ConfigError(
                "monitor names rules the monitor cannot check",
                problems=problems,
                fix='monitor:\n  errors/rate: "<= 0.02"\n  safety/mean: {max-drop: 0.05}'
                '\n  prompt_length/ks: "<= 0.1"',
            )
        absolute, relative, source = loaded.monitor_thresholds, loaded.monitor_relative, "config"
    else:
        absolute, relative = default_rules(
            better,
            max_error_rate=cfg.max_error_rate,
            max_error_rate_increase=cfg.max_error_rate_increase,
            max_latency_ratio=cfg.max_latency_ratio,
            quality_max_drop=cfg.quality_max_drop,
        )
        source = "defaults"
    rules = DriftRules(
        tuple(absolute),
        tuple(relative),
        min_requests=cfg.min_requests,
        min_inputs=cfg.monitor_min_inputs,
        alpha=cfg.monitor_alpha,
    )
    return rules, source


# ---------------------------------------------------------------- the command


def run_monitor(
    run: Run,
    *,
    github_token: str = "",
    progress: Callable[[str], None] = lambda _line: None,
) -> MonitorReport:
    loaded, out_dir = run.loaded, run.out_dir
    cfg = loaded.config
    if cfg.endpoint is None:
        raise ConfigError(
            "endpoint: is required to monitor",
            fix="endpoint: my-genai\nwarehouse-id: 1234567890abcdef\nmonitor-window: 24h",
        )
    endpoint = cfg.endpoint
    evidence.check_trail(out_dir / "evidence.json")
    backend = run.backend(progress)
    state = backend.read(endpoint)
    if state is None:
        raise ConfigError(
            f"endpoint {endpoint} does not exist, so there is no champion to monitor",
            fix="Deploy first: genai-gate deploy",
        )
    champion = state.champion()
    if champion is None:
        raise ConfigError(f"endpoint {endpoint} serves nothing, so there is nothing to monitor")
    notices = list(loaded.notices)
    if state.challenger() is not None:
        notices.append(
            f"a canary ({state.challenger().name}) is in flight on {endpoint}: "  # type: ignore[union-attr]
            "`analyze` judges it; the monitor watches the champion's share alone"
        )
    now = _now()
    window = Window(now - timedelta(seconds=cfg.monitor_window), now)
    source = backend.traffic(state)
    progress(f"reading {champion.name}'s traffic of {window.text()} from {source.where}")
    k = max(cfg.monitor_inputs, cfg.sample_size)
    _, traffic, sample = _read_window(source, endpoint, champion.name, window, k)
    candidates = reference_free(loaded, notices)
    better = directions(loaded, candidates, notices)
    scorers = [s for s in candidates if f"{s.name}/mean" in better]
    rules, rules_source = _rules(loaded, better, scorers)
    enough = traffic is not None and traffic.requests >= rules.min_requests
    scores: dict[str, list[float]] = {}
    reference = Reference(None, "none", "not read: not enough traffic")
    if enough:
        if scorers and cfg.sample_size > 0 and sample:
            progress(
                f"judging {min(len(sample), cfg.sample_size)} request(s) of {champion.name} "
                f"with {', '.join(s.name for s in scorers)}"
            )
        scores = _judge(run, scorers, champion.name, sample, notices)
        reference = _reference(run, source, endpoint, champion, scorers, notices, progress)
    current = _side(f"{champion.name} {window.text()}", traffic, sample, scores)
    decision = decide(current, reference.side, rules)
    monitor_id = hashlib.sha256(f"{endpoint}|{window.text()}".encode()).hexdigest()[:16]
    record = _record(
        loaded,
        endpoint,
        state,
        champion,
        window,
        traffic,
        current,
        reference,
        decision,
        rules,
        rules_source,
        monitor_id,
        run,
    )
    record["judged_written_to"] = write_judged(
        backend, state, champion, "monitor", monitor_id, scores, notices
    )

    actions: list[Taken] = []
    applied: Applied | None = None
    failure: GateError | None = None
    if decision.verdict == "drift" and cfg.on_drift:
        if run.ctx.is_pull_request:
            notices.append("drift is only acted on from the default branch, never from a PR")
        else:
            try:
                applied = _act(
                    run, backend, state, champion, decision, record, github_token, actions, progress
                )
            except GateError as exc:
                failure = exc
    record["actions"] = [a.as_dict() for a in actions]
    record["notices"] = list(notices)

    def render() -> str:
        return render_monitor(
            endpoint,
            champion,
            decision,
            traffic,
            window=window.text(),
            reference=reference.label,
            rules_source=rules_source,
            actions=actions,
            notices=notices,
            current=current,
            ref_side=reference.side,
        )

    summary = render()
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence.write_json_atomic(out_dir / "monitor.json", record)
    artefacts.write_text(out_dir / "monitor.md", summary)
    artefacts.write_text(
        out_dir / "monitor.html",
        render_monitor_html(
            endpoint,
            champion,
            decision,
            traffic,
            window=window.text(),
            reference=reference.label,
            actions=actions,
            notices=notices,
            current=current,
            ref_side=reference.side,
        ),
    )
    evidence.append(out_dir / "evidence.json", record)
    if failure is not None:
        raise failure
    return MonitorReport(
        endpoint,
        champion,
        window,
        decision,
        traffic,
        reference,
        tuple(actions),
        summary,
        record,
        tuple(notices),
        applied,
    )


# ---------------------------------------------------------------- actions on drift


def _act(
    run: Run,
    backend: ServingBackend,
    state: ServingState,
    champion: Entity,
    decision: MonitorDecision,
    record: dict[str, Any],
    token: str,
    actions: list[Taken],
    progress: Callable[[str], None],
) -> Applied | None:
    """Each action `on-drift` opts into, in a fixed order (annotate, rollback, retrain,
    issue: the issue says what the others did). A failed rollback stops the rest and is
    raised once the evidence is written."""
    cfg = run.loaded.config
    endpoint = state.name
    applied: Applied | None = None
    if "annotate" in cfg.on_drift:
        for check in decision.drifted:
            run.runner.annotate(
                "error", f"{endpoint}: {check.detail}", title=f"genai-gate: drift in {check.metric}"
            )
        actions.append(Taken("annotate", "done", f"{len(decision.drifted)} ::error annotation(s)"))
    if "rollback" in cfg.on_drift:
        try:
            applied = _rollback(run, backend, state, champion, decision, actions, progress)
        except GateError as exc:
            actions.append(Taken("rollback", "failed", f"{exc.title}: {exc.message}"))
            raise
    if "retrain" in cfg.on_drift:
        _retrain(run, backend, state, champion, decision, record, token, actions)
    if "issue" in cfg.on_drift:
        _issue(run, champion, decision, record, token, actions)
    return applied


def _rollback(
    run: Run,
    backend: ServingBackend,
    state: ServingState,
    champion: Entity,
    decision: MonitorDecision,
    actions: list[Taken],
    progress: Callable[[str], None],
) -> Applied | None:
    def skip(why: str) -> None:
        actions.append(Taken("rollback", "skipped", why))

    if not decision.model_drifted:
        skip("only the inputs drifted: the previous model would meet the same users")
        return None
    if state.challenger() is not None:
        skip("a canary is in flight; analyze decides its fate")
        return None
    previous = state.tags.get(TAG_PREVIOUS)
    if not previous or "/" not in previous:
        skip(f"no previous champion is recorded on {state.name} (tag {TAG_PREVIOUS})")
        return None
    model, _, version = previous.rpartition("/")
    if (model, version) == (champion.model, champion.version):
        skip(f"{model} v{version} is already serving")
        return None
    target = backend.served_entity(model, version)
    if target is None:
        skip(f"{model} v{version} is no longer registered, so it cannot be served again")
        return None
    fresh = backend.read(state.name)
    if fresh is None or fresh.config_version != state.config_version:
        skip("the endpoint changed during the monitor run; the next run judges what serves now")
        return None
    plan = backend.plan_rollout(state.name, state, Rollout(target))
    progress(f"endpoint {state.name}: rolling back to {model} v{version}")
    applied = backend.apply(plan, run.loaded.config.wait_timeout)
    actions.append(
        Taken(
            "rollback",
            "done",
            f"{champion.model} v{champion.version} replaced by the previous champion {model} "
            f"v{version} (config {applied.before_version} -> {applied.after.config_version})",
        )
    )
    return applied


def _parameters(record: Mapping[str, Any], champion: Entity, run: Run) -> dict[str, str]:
    """The drift as a retraining job's parameters (strings; at most 10, GitHub's limit)."""
    links = run_links(run.environ)
    drifted = [c["metric"] for c in record["checks"] if c["status"] == "drift"]
    values = {
        "endpoint": str(record["endpoint"]),
        "model": champion.model,
        "version": champion.version,
        "window": f"{record['window']['since']}..{record['window']['until']}",
        "drifted": ",".join(drifted),
        "reference": str(record["reference"]["label"])[:200],
        "monitor_id": str(record["id"]),
        "reason": str(record["reason"])[:500],
        "run_url": links.run_url or "",
    }
    # they leave for a job and another repository's workflow: no secret goes with them
    return {k: secrets.scrub(v) for k, v in values.items()}


def _retrain(
    run: Run,
    backend: ServingBackend,
    state: ServingState,
    champion: Entity,
    decision: MonitorDecision,
    record: Mapping[str, Any],
    token: str,
    actions: list[Taken],
) -> None:
    cfg = run.loaded.config
    now = _now()
    last = state.tags.get(TAG_RETRAINED)
    if last:
        try:
            when = datetime.fromisoformat(last)
        except ValueError:
            when = None  # a tag edited by hand: no cool-down to honour
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            until = when + timedelta(seconds=cfg.retrain_cooldown)
            if now < until:
                actions.append(
                    Taken(
                        "retrain",
                        "skipped",
                        f"cool-down: retraining was triggered at {_iso(when)}; the next is "
                        f"allowed after {_iso(until)} (retrain-cooldown)",
                    )
                )
                return
    params = _parameters(record, champion, run)
    fired = False
    if cfg.retrain_job_id is not None:
        try:
            url = backend.run_job(str(cfg.retrain_job_id), params, str(record["id"]))
            actions.append(Taken("retrain-job", "done", f"job {cfg.retrain_job_id} started", url))
            fired = True
        except GateError as exc:
            actions.append(Taken("retrain-job", "failed", f"{exc.title}: {exc.message}"))
    if cfg.retrain_event is not None:
        if not token:
            actions.append(
                Taken("retrain-dispatch", "skipped", "no github-token to send repository_dispatch")
            )
        else:
            sent = dispatch_event(run.ctx, token, cfg.retrain_event, params)
            ok = sent.action == "created"
            actions.append(
                Taken(
                    "retrain-dispatch",
                    "done" if ok else "failed",
                    f"repository_dispatch {cfg.retrain_event}" + ("" if ok else f": {sent.detail}"),
                )
            )
            fired = fired or ok
    if fired:
        try:
            backend.set_tags(state.name, {TAG_RETRAINED: now.isoformat(timespec="seconds")})
        except GateError as exc:
            actions.append(
                Taken(
                    "retrain",
                    "failed",
                    f"the cool-down could not be recorded ({exc.message}); the next drift may "
                    "retrain again",
                )
            )


def _issue(
    run: Run,
    champion: Entity,
    decision: MonitorDecision,
    record: Mapping[str, Any],
    token: str,
    actions: list[Taken],
) -> None:
    endpoint = str(record["endpoint"])
    if not token:
        actions.append(Taken("issue", "skipped", "no github-token to open the issue"))
        return
    body = render_monitor(
        endpoint,
        champion,
        decision,
        None,
        window=f"{record['window']['since']}..{record['window']['until']}",
        reference=str(record["reference"]["label"]),
        rules_source="",
        actions=actions,
        notices=(),
    )
    result = upsert_issue(
        run.ctx,
        token,
        f"monitor:{endpoint}",
        f"genai-gate: drift on {endpoint}",
        fit_comment(body),
    )
    ok = result.action in ("created", "updated")
    actions.append(
        Taken(
            "issue",
            "done" if ok else "failed",
            f"{result.action} {result.detail}".strip(),
            result.url,
        )
    )


# ---------------------------------------------------------------- the record


def _record(
    loaded: LoadedConfig,
    endpoint: str,
    state: ServingState,
    champion: Entity,
    window: Window,
    traffic: EntityTraffic | None,
    current: Side,
    reference: Reference,
    decision: MonitorDecision,
    rules: DriftRules,
    rules_source: str,
    monitor_id: str,
    run: Run,
) -> dict[str, Any]:
    ref_side = reference.side
    return {
        "kind": "monitor",
        "id": monitor_id,
        "recorded_at": _now().isoformat(timespec="seconds"),
        "genai_gate_version": __version__,
        "endpoint": endpoint,
        "config_version": state.config_version,
        "champion": {"name": champion.name, "model": champion.model, "version": champion.version},
        "window": {
            "since": _iso(window.since),
            "until": _iso(window.until),
            "seconds": loaded.config.monitor_window,
        },
        "traffic": None
        if traffic is None
        else {
            "requests": traffic.requests,
            "errors": traffic.errors,
            "error_rate": traffic.error_rate,
            "logging_errors": traffic.logging_errors,
            "p50_ms": traffic.p50_ms,
            "p95_ms": traffic.p95_ms,
            "p99_ms": traffic.p99_ms,
        },
        "sample": {
            "prompts": len(current.prompts),
            "judged": max((len(v) for v in current.scores.values()), default=0),
        },
        "reference": {
            "kind": reference.kind,
            "label": reference.label,
            "run_id": reference.run_id,
            "window": reference.window.text() if reference.window else None,
            "requests": ref_side.requests if ref_side else None,
            "prompts": len(ref_side.prompts) if ref_side else None,
        },
        "verdict": decision.verdict,
        "reason": decision.reason,
        "checks": [
            {
                "metric": c.metric,
                "kind": c.kind,
                "rule": c.rule,
                "status": c.status,
                "value": c.value,
                "reference": c.reference,
                "delta": c.delta,
                "ci": list(c.ci) if c.ci else None,
                "pvalue": c.pvalue,
                "detail": c.detail,
            }
            for c in decision.checks
        ],
        "inputs": [
            {
                "metric": t.metric,
                "statistic": t.statistic,
                "pvalue": t.pvalue,
                "current": t.current,
                "reference": t.reference,
                "current_median": t.current_summary,
                "reference_median": t.reference_summary,
            }
            for t in decision.inputs
        ],
        "rules": {
            "source": rules_source,
            "absolute": {t.metric: t.describe() for t in rules.absolute},
            "relative": {
                r.metric: f"{r.op} {r.limit:g} ({r.better} is better)" for r in rules.relative
            },
            "min_requests": rules.min_requests,
            "min_inputs": rules.min_inputs,
            "alpha": rules.alpha,
        },
        "provenance": collect(loaded.base_dir, run.environ).as_dict(),
    }

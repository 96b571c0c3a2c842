"""Every kind of report, built from typed values (no model, no server): the unit tests render
them with cmarkgfm, the integration test parses their Mermaid, the screenshot script shows
one. Model output here is hostile on purpose: brackets, emphasis, HTML, pipes, URLs and
mentions, all of which must stay text."""

from __future__ import annotations

from typing import Any

from genai_gate.backends.databricks.endpoints import ApplyResult
from genai_gate.backends.databricks.plan import EndpointState, entity_for, plan_rollout
from genai_gate.compare import RowChange
from genai_gate.github import RunLinks
from genai_gate.report.analysis import render_analysis
from genai_gate.report.markdown import brief, join
from genai_gate.report.plan import render_plan, render_unplanned
from genai_gate.report.summary import render_summary
from genai_gate.results import CheckDoc, ResultsDoc, RowResult
from genai_gate.rollout.decision import Rules, decide
from genai_gate.rollout.measures import EntityTraffic
from genai_gate.rollout.plan import TAG_CHAMPION, Entity, Rollout, rollout_for_challenger

EVIL = (
    "See [the docs](https://evil.example/x) and **act now** <img src=x onerror=alert(1)> "
    "| a | b | ping @octocat about #12, mail me@evil.example, www.evil.example, "
    "`rm -rf` &#91;x&#93; *[nested]* ~~gone~~ $x^2$ ![i](https://evil.example/i.png) "
    "https://evil.example/a-very-long-url-that-gets-cut-somewhere-in-the-middle-of-it "
    "<details><summary>open</summary>"
)
LINKS = RunLinks(
    commit="0123456789abcdef0123456789abcdef01234567",
    commit_url="https://github.com/acme/bot/commit/0123456789abcdef0123456789abcdef01234567",
    run_url="https://github.com/acme/bot/actions/runs/42",
    workspace="/home/runner/work/bot/bot",
)
ALLOWED_LINKS = ("https://github.com/acme/bot/", "https://mlflow.acme.example/")


def check(metric: str, op: str, threshold: float, value: float | None, **kw: Any) -> CheckDoc:
    passed = kw.pop("passed", None)
    if passed is None:
        assert value is not None
        passed = {">=": value >= threshold, "<=": value <= threshold}[op]
    doc: CheckDoc = {
        "metric": metric,
        "op": op,
        "threshold": threshold,
        "value": value,
        "passed": passed,
        "baseline": kw.get("baseline"),
        "delta": kw.get("delta"),
        "ci": kw.get("ci"),
        "status": kw.get("status", "passed" if passed else "failed"),
    }
    return doc


def results(checks: list[CheckDoc], failures: list[str], **kw: Any) -> ResultsDoc:
    rows = kw.get("rows", 200)
    doc: ResultsDoc = {
        "schema": "genai-gate.results/v1",
        "passed": not failures,
        "result": "passed" if not failures else "failed",
        "metrics": kw.get("metrics", {c["metric"]: c["value"] for c in checks}),
        "checks": checks,
        "failures": failures,
        "run_id": "0f3c2a9d5e7b4c1a8f6e2d4b9a7c5e3f",
        "run_url": kw.get("run_url", "https://mlflow.acme.example/#/experiments/1/runs/0f3c"),
        "dataset_digest": "sha256:9b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
        "model": "models:/support-bot@champion",
        "model_identity": None,
        "dataset": {
            "path": "/home/runner/work/bot/bot/evals/qa [v2].jsonl",
            "format": "jsonl",
            "rows": rows,
            "file_sha256": "0" * 64,
        },
        "scorers": ["exact_match", "latency"],
        "thresholds": [],
        "rows": rows,
        "errors": {"rows": kw.get("errors", 0), "allowed": 5, "details": []},
        "notices": kw.get("notices", []),
        "seconds": {},
        "cache": None,
        "genai_gate_version": "0.1.0",
        "tracking_uri": "https://mlflow.acme.example",
    }
    return doc


def row(i: int, output: Any = EVIL, *, error: str | None = None, score: float = 0.0) -> RowResult:
    return RowResult(
        index=i,
        where=f"line {i + 1}",
        inputs={"question": f"<details> What is [{i}] | <b>{i}</b>? @admin"},
        expectations={"expected_response": f"answer *{i}*"},
        outputs=None if error else output,
        latency_ms=2.1,
        error=error,
        scores={} if error else {"exact_match": score, "latency": 2.1},
    )


def passing() -> str:
    checks = [check("exact_match/mean", ">=", 0.8, 0.85), check("latency/p90", "<=", 900, 2.13)]
    return render_summary(results(checks, []), [], links=LINKS)


def failing(worst: int = 5, notices: int = 2) -> str:
    """8 metrics (the old chart's labels overlapped), latency of about 2 ms (the old chart
    drew it on 0-960), one errored row (its output was `null`)."""
    checks = [
        check("exact_match/mean", ">=", 0.9, 0.798),
        check("latency/p90", "<=", 800, 2.13),
        *(check(f"judge_{k}/mean", ">=", 0.5, 0.4 + k / 10) for k in range(6)),
    ]
    failures = [
        "exact_match/mean = 0.798 misses >= 0.9",
        "judge_0/mean = 0.4 misses >= 0.5",
    ]
    notes = [
        f"Notice {k}: the judge [{k}] said **so** at https://x.example" for k in range(notices)
    ]
    rows = [row(0, error="TimeoutError: <no answer> after 30s"), *(row(i) for i in range(1, worst))]
    doc = results(checks, failures, errors=1, notices=notes)
    config = "data: evals/qa.jsonl\nmodel: models:/support-bot@champion\n"
    return render_summary(doc, rows[:worst], config_yaml=config, links=LINKS)


def with_baseline() -> str:
    """200 rows paired, 2 candidate rows errored: each comparison used 198 pairs."""
    checks = [
        check(
            "exact_match/mean",
            ">=",
            0.7,
            0.798,
            baseline=0.85,
            delta=-0.0556,
            ci=[-0.0892, -0.0211],
        ),
        check(
            "exact_match/mean",
            "max-drop",
            0.02,
            0.798,
            passed=False,
            baseline=0.85,
            delta=-0.0556,
            ci=[-0.0892, -0.0211],
            status="regressed",
        ),
        check(
            "latency/p90",
            "max-drop",
            50,
            2.2,
            passed=True,
            baseline=2.0,
            delta=0.2,
            ci=[-1.11e-16, 0.4],
            status="within-max-drop",
        ),
    ]
    failures = [
        "exact_match/mean = 0.798 against 0.85 from models:/support-bot/6: Δ -0.0556 (95% CI "
        "-0.0892 to -0.0211); worse by more than max-drop 0.02 allows"
    ]
    doc = results(checks, failures, errors=2)
    doc["thresholds"] = [
        {"metric": "exact_match/mean", "op": "max-drop", "value": 0.02, "better": "higher"},
        {"metric": "latency/p90", "op": "max-drop", "value": 50, "better": "lower"},
    ]
    doc["baseline"] = {
        "ref": "champion",
        "label": "models:/support-bot@champion (v6)",
        "kind": "model",
        "model_identity": {},
        "rows": 200,
        "error_rows": 0,
        "pairs": 200,
        "regressed_rows": 12,
        "metrics": {"exact_match/mean": 0.85, "latency/p90": 2.0, "token_f1/mean": 0.7},
        "comparisons": [
            {
                "metric": "exact_match/mean",
                "candidate": 0.798,
                "baseline": 0.85,
                "delta": -0.0556,
                "ci": [-0.0892, -0.0211],
                "pairs": 198,
            },
            {
                "metric": "latency/p90",
                "candidate": 2.2,
                "baseline": 2.0,
                "delta": 0.2,
                "ci": [-1.11e-16, 0.4],
                "pairs": 198,
            },
            {
                "metric": "token_f1/mean",
                "candidate": 0.702966,
                "baseline": 0.7,
                "delta": 0.002966,
                "ci": [-0.01, 0.016],
                "pairs": 198,
            },
        ],
        "cache": None,
    }
    changes = [
        RowChange(row(i, score=0.0), row(i, "the right answer", score=1.0), ("exact_match",))
        for i in range(3)
    ]
    changes.append(RowChange(row(5, error="boom"), row(5, "ok", score=1.0), ("model error",)))
    return render_summary(doc, [], regressions=changes, links=LINKS)


def truncated_source() -> str:
    """The failing report with 100 worst rows: far longer than the limit fit() is given."""
    return failing(worst=100)


def unplanned() -> str:
    reason = "the token was refused: trust repo:<owner>/<repo>:pull_request ~~~ " + EVIL
    return render_unplanned("bot", reason)


def _v(version: str) -> Entity:
    return entity_for("main.ml.bot", version, workload_size="Small", scale_to_zero=True)


def _state(*pairs: tuple[Entity, int], tags: dict[str, str] | None = None) -> EndpointState:
    return EndpointState(
        name="bot",
        config_version=4,
        update_state="NOT_UPDATING",
        entities=tuple(e for e, _ in pairs),
        routes={e.name: p for e, p in pairs},
        gateway={},
        tags=tags or {},
    )


def plan() -> str:
    state = _state((_v("12"), 100))
    rollout, notices = rollout_for_challenger(state, _v("13"), 10, "2026-11-28T12:00:00+00:00")
    return render_plan(plan_rollout("bot", state, rollout, notices=notices))


def deployed() -> str:
    state = _state((_v("12"), 100))
    rollout, notices = rollout_for_challenger(state, _v("13"), 10, "2026-11-28T12:00:00+00:00")
    p = plan_rollout("bot", state, rollout, notices=notices)
    return render_plan(p, applied="updated to config version 5", notices=["one", "two"])


def _canary(action: str) -> str:
    tags = {TAG_CHAMPION: "bot-12", "genai-gate.challenger": "bot-13", "genai-gate.step": "10"}
    state = _state((_v("12"), 90), (_v("13"), 10), tags=tags)
    champ = EntityTraffic("bot-12", 1000, 0, 0, 50.0, 100.0, 150.0)
    if action == "rollback":
        chall = EntityTraffic("bot-13", 200, 10, 1, 60.0, 130.0, 170.0)
    else:
        chall = EntityTraffic("bot-13", 200, 0, 0, 55.0, 105.0, 160.0)
    rules = Rules(min_requests=100)
    decision = decide(champ, chall, 10, rules)
    assert decision.action == action, decision
    rollout = Rollout(_v("12")) if action == "rollback" else Rollout(_v("12"), _v("13"), 50)
    p = plan_rollout("bot", state, rollout)
    after = _state(*((e, pct) for e, pct in zip(p.entities, p.routes.values(), strict=True)))
    return render_analysis(
        "bot",
        state,
        decision,
        {"bot-12": champ, "bot-13": chall},
        since="2026-11-28 12:00",
        applied=ApplyResult("updated", 4, after),
        plan=p,
        mode="analyze",
        rules=rules,
    )


def canary_advance() -> str:
    return _canary("advance")


def canary_rollback() -> str:
    return _canary("rollback")


def eval_then_plan() -> str:
    """What the action appends to one job summary when eval is followed by plan."""
    return join([failing(), plan()])


def comment() -> str:
    return brief(eval_then_plan())


KINDS = {
    "pass": passing,
    "fail": failing,
    "baseline": with_baseline,
    "plan": plan,
    "deploy": deployed,
    "unplanned": unplanned,
    "canary-advance": canary_advance,
    "canary-rollback": canary_rollback,
    "eval-then-plan": eval_then_plan,
    "comment": comment,
}

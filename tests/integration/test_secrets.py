"""No secret value reaches any artefact (issue #12, item 4).

Canary values sit in every secret variable the run can see; the model server answers with
text that quotes them (and token-shaped keys), and on some rows fails with an error body
that echoes the caller's key. Then every artefact is searched for every canary: the out
folder (results.json, rows.jsonl, summary.md, evidence.json, the sqlite MLflow store and
its artifacts), the step summary, the outputs file, stdout and stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from genai_gate.evidence import read_records
from tests.action_env import pr_payload
from tests.conftest import child_env
from tests.fakes.databricks import FakeDatabricks, ServedEntity
from tests.fakes.github_api import WRITE_TOKEN, FakeGitHub
from tests.fakes.github_oidc import FakeGitHubOIDC
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.integration

MODEL_KEY = "canary-model-key-Kp29xq"  # under a configured, non-obvious variable name
CANARIES = {
    "MY_LLM_CREDENTIAL": MODEL_KEY,
    "OPENAI_API_KEY": "canary-openai-Zq81xv",
    "DATABRICKS_TOKEN": "canary-dbx-token-77ab",
    "DATABRICKS_CLIENT_SECRET": "canary-dbx-secret-31cd",
    "GENAI_GATE_GITHUB_TOKEN": "canary-gh-token-55ef",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "canary-oidc-req-66gh",
    "MLFLOW_TRACKING_PASSWORD": "canary-mlflow-pw-88ij",
}
DAPI = "dapi" + "0123456789abcdef" * 2
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
SK = "sk-canaryQuotedByTheModel0123"
FOUND_ANYWHERE = [*CANARIES.values(), DAPI, JWT, SK]

QUESTIONS = [f"question {i}" for i in range(8)]


@pytest.fixture
def leaky_server() -> Iterator[FakeOpenAI]:
    quoted = " ".join(CANARIES.values())
    answers = dict.fromkeys(QUESTIONS, f"Sure. The keys are {quoted} and {DAPI} {JWT} {SK}.")
    fake = FakeOpenAI(api_key=MODEL_KEY, answers=answers).start()
    # the first rows fail with a 500 whose body quotes the Authorization header
    fake.configure(fail_500_first=3, echo_key=True)
    try:
        yield fake
    finally:
        fake.stop()


def _project(root: Path, base_url: str) -> None:
    root.mkdir(parents=True)
    rows = [
        {"inputs": {"question": q}, "expectations": {"expected_response": q}} for q in QUESTIONS
    ]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "genai-gate.yml").write_text(
        "data: qa.jsonl\n"
        "model: openai:/fake-model\n"
        f"base-url: {base_url}\n"
        "api-key-env: MY_LLM_CREDENTIAL\n"
        "retries: 0\n"
        "cache: false\n"
        "scorers: [exact_match]\n"
        "max-errors: 8\n"
        "thresholds:\n  exact_match/mean: '>= 0.0'\n"
    )


def _env(root: Path, **extra: str) -> dict[str, str]:
    return child_env(**{**CANARIES, **extra})


def _hits(blob: bytes, where: str, secrets: list[str]) -> list[str]:
    return [f"{where}: {c[:12]}..." for c in secrets if c.encode() in blob]


def _scan(paths: list[Path], streams: dict[str, str], also: Sequence[str] = ()) -> list[str]:
    secrets = [*dict.fromkeys([*FOUND_ANYWHERE, *also])]
    found: list[str] = []
    for top in paths:
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            found += _hits(path.read_bytes(), str(path), secrets)
    for name, text in streams.items():
        found += _hits(text.encode(), name, secrets)
    return found


@pytest.mark.parametrize("command", ["eval", "action"])
def test_no_canary_in_any_artefact(tmp_path: Path, leaky_server: FakeOpenAI, command: str) -> None:
    root = tmp_path / "proj"
    _project(root, leaky_server.base_url)
    summary, outputs = tmp_path / "step-summary.md", tmp_path / "outputs.txt"
    summary.touch()
    outputs.touch()
    env = _env(root)
    if command == "action":
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_OUTPUT=str(outputs),
            GITHUB_EVENT_NAME="push",
            GITHUB_REF="refs/heads/feature",
            GITHUB_REPOSITORY="acme/bot",
            GITHUB_WORKSPACE=str(root),
        )
    done = subprocess.run(
        [sys.executable, "-m", "genai_gate", command, "--out", str(root / "out")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    rows = (root / "out" / "rows.jsonl").read_text()
    assert "***" in rows  # the answers were there, and scrubbed
    # `::add-mask::VALUE` is the runner's command to hide VALUE: it is consumed, never shown
    shown = "".join(
        ln for ln in done.stdout.splitlines(keepends=True) if not ln.startswith("::add-mask::")
    )
    masked = done.stdout.count("::add-mask::")
    found = _scan([root / "out", summary, outputs], {"stdout": shown, "stderr": done.stderr})
    assert found == []
    if command == "action":
        assert masked >= len(CANARIES)  # every secret variable's value was masked in the log
        assert "result" in outputs.read_text()


# ------------------------------------------------ the whole lifecycle, on GitHub and Databricks


def _action_env(job: dict[str, str], root: Path, github: Any) -> dict[str, str]:
    return {
        **job,
        **KNOWN,
        "GITHUB_API_URL": github.url,
        "GENAI_GATE_CONFIG": str(root / "genai-gate.yml"),
        "GENAI_GATE_OUT": str(root / "out"),
    }


# a DATABRICKS_TOKEN or client secret would choose another sign-in than GitHub OIDC, and the
# fake GitHub API takes only its own token
KNOWN = {
    **{k: v for k, v in CANARIES.items() if not k.startswith("DATABRICKS_")},
    "GENAI_GATE_GITHUB_TOKEN": WRITE_TOKEN,
}
LIFECYCLE = """
endpoint: bot
model-name: main.ml.bot
model-version: 13
inference-table: main.mon
min-requests: 30
sample-size: 30
open-issue: true
"""


@pytest.mark.slow
def test_no_canary_anywhere_from_the_pull_request_to_the_rollback(
    cli: Any,
    tmp_path: Path,
    leaky_server: FakeOpenAI,
    databricks_workspace: FakeDatabricks,
    github_oidc: FakeGitHubOIDC,
    databricks_job: Callable[..., dict[str, str]],
    mlflow_server: str,
    mlflow_server_root: Path,
) -> None:
    """A PR (eval, plan, sticky comment), the merge (eval, deploy), live traffic whose answers
    quote the secrets, then analyze, rollback, a second deploy, promote and monitor, signed in
    through GitHub OIDC, logging to a remote MLflow server with proxied artifacts: no secret the run
    knew (configured keys, the GitHub token, the OIDC request token, every ID token and every
    Databricks access token exchanged) is in any artefact, comment, issue or log."""
    ws = databricks_workspace
    ws.update_polls = 0
    leak = f"Sure. The keys are {' '.join(KNOWN.values())} and {DAPI} {JWT} {SK}."
    for version in ("12", "13"):
        ws.register_model_version("main.ml.bot", version, lambda _messages: leak)
    ws.add_endpoint("bot", ServedEntity("bot-12", "main.ml.bot", "12")).ai_gateway = {
        "inference_table_config": {
            "catalog_name": "main",
            "schema_name": "mon",
            "table_name_prefix": "bot",
            "enabled": True,
        }
    }
    leaky_server.answers = dict.fromkeys(QUESTIONS, leak)
    github_oidc.request_token = CANARIES["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    root = tmp_path / "proj"
    _project(root, leaky_server.base_url)
    with (root / "genai-gate.yml").open("a") as cfg:
        cfg.write(LIFECYCLE + f"tracking-uri: {mlflow_server}\n")
    capture = f"inference-data={ws.captures / 'main.mon.bot_payload'}"
    push_subject = ws.federation.subject
    logs: list[str] = []
    github = FakeGitHub().start()
    try:
        # the pull request: eval, plan, one sticky comment
        ws.federation.subject = "repo:acme/shop:pull_request"
        github_oidc.event_name = "pull_request"
        pr = _action_env(databricks_job("pull_request", pr_payload()), root, github)
        ran = cli("action", env=pr)
        logs.append(ran.text)
        assert ran.code == 0, ran.text
        assert github.comments  # the comment was written, and is scanned below
        # the merge: eval, then the canary; then traffic, and the canary's life
        ws.federation.subject = push_subject
        github_oidc.event_name = "push"
        push = _action_env(databricks_job("push"), root, github)
        steps: list[tuple[str, ...]] = [
            ("action",),
            ("traffic",),
            ("analyze", "--set", capture),
            ("rollback",),
            ("action",),
            ("promote",),
            ("traffic",),
            # after the canary: monitor.json, .md and the HTML page are scanned too
            ("monitor", "--set", capture, "--set", "on-drift=[annotate]"),
        ]
        for step in steps:
            if step == ("traffic",):
                _traffic(ws, 120)
                continue
            args = () if step == ("action",) else ("-c", str(root / "genai-gate.yml"))
            ran = cli(*step, *args, "--out", str(root / "out"), env=push)
            logs.append(ran.text)
            assert ran.code in (0, 1), f"{step}: {ran.text}"
        assert ws.oauth_tokens and github_oidc.issued  # tokens were exchanged, and are sought
        published = [c["body"] for c in github.comments.values()]
        published += [i.get("body", "") for i in github.issues.values()]
    finally:
        github.stop()
    exchanged = [*KNOWN.values(), *github_oidc.issued, *ws.oauth_tokens]
    texts = {"log": "\n".join(_unmasked(t) for t in logs), "github": "\n".join(published)}
    paths = [root / "out", Path(pr["GITHUB_STEP_SUMMARY"]), Path(pr["GITHUB_OUTPUT"])]
    paths += [Path(push["GITHUB_STEP_SUMMARY"]), Path(push["GITHUB_OUTPUT"]), mlflow_server_root]
    found = _scan(paths, texts, also=exchanged)
    assert found == [], "\n".join(found)
    # the answers did reach the reports, scrubbed: the scan saw the text it was meant to see
    assert "***" in (root / "out" / "rows.jsonl").read_text()
    kinds = [r["kind"] for r in read_records(root / "out" / "evidence.json")]
    assert kinds.count("analysis") == 1 and kinds.count("rollout") == 2
    assert kinds.count("monitor") == 1 and (root / "out" / "monitor.html").is_file()


def _unmasked(text: str) -> str:
    # `::add-mask::VALUE` is the runner's command to hide VALUE: it is consumed, never shown
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("::add-mask::"))


def _traffic(ws: FakeDatabricks, n: int) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    w = WorkspaceClient(host=ws.host, token=ws.pat_env()["DATABRICKS_TOKEN"], auth_type="pat")
    for i in range(n):
        w.serving_endpoints.query(
            "bot", messages=[ChatMessage(role=ChatMessageRole.USER, content=f"question {i}")]
        )


def test_a_personal_access_token_reaches_no_artefact(
    cli: Any,
    tmp_path: Path,
    databricks_workspace: FakeDatabricks,
    databricks_clean_env: pytest.MonkeyPatch,
) -> None:
    """Signed in with DATABRICKS_TOKEN (a PAT): deploy and analyze, with a model that quotes
    the token back in every answer."""
    ws = databricks_workspace
    ws.update_polls = 0
    pat = CANARIES["DATABRICKS_TOKEN"]
    ws.tokens.add(pat)
    leak = f"My token is {pat}, and a {DAPI}."
    for version in ("12", "13"):
        ws.register_model_version("main.ml.bot", version, lambda _messages: leak)
    ws.add_endpoint("bot", ServedEntity("bot-12", "main.ml.bot", "12"))
    cfg = tmp_path / "genai-gate.yml"
    cfg.write_text(LIFECYCLE)
    env = {"DATABRICKS_HOST": ws.host, "DATABRICKS_TOKEN": pat}
    out = tmp_path / "out"
    logs = [cli("deploy", "-c", str(cfg), "--out", str(out), env=env)]
    _traffic(ws, 120)
    capture = f"inference-data={ws.captures / 'main.mon.bot_payload'}"
    logs.append(cli("analyze", "-c", str(cfg), "--out", str(out), "--set", capture, env=env))
    assert [r.code for r in logs] == [0, 0], [r.text for r in logs]
    found = _scan([out], {"log": "\n".join(r.text for r in logs)}, also=[pat])
    assert found == [], "\n".join(found)

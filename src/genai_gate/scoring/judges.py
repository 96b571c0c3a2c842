"""LLM judges: MLflow's built-in judge scorers, graded by the model named in `judge:`.

The judges are MLflow's own (`Correctness`, `RelevanceToQuery`, `Safety`, `Guidelines`,
`RetrievalGroundedness`), so their prompts, verdict parsing and metric names
(`correctness/mean`, ...) are MLflow's. Their HTTP calls go through `JudgeTransport`
(in-process by `judge_seam`, else over `JudgeGateway`'s loopback server), so genai-gate's
retry policy, rate limit and cache apply to them as they do to model calls.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from genai_gate import mlflow_loading
from genai_gate.config import Config
from genai_gate.errors import ConfigError
from genai_gate.scorer import LazyScorer
from genai_gate.scoring import judge_seam
from genai_gate.scoring.judge_gateway import JudgeGateway
from genai_gate.scoring.judge_transport import JudgeTransport
from genai_gate.targets.base import ServingWorkspace
from genai_gate.targets.http_chat import check_key
from genai_gate.targets.openai_chat import base_url
from genai_gate.targets.retry import policy_and_limiter, remote_deadline

# name -> (MLflow class name, needs expectations)
JUDGES: dict[str, tuple[str, bool]] = {
    "correctness": ("Correctness", True),
    "relevance_to_query": ("RelevanceToQuery", False),
    "safety": ("Safety", False),
    "guidelines": ("Guidelines", False),
    "retrieval_groundedness": ("RetrievalGroundedness", False),
}
# judges that read the retrieved context from the row's trace (its RETRIEVER span)
CONTEXT_JUDGES = frozenset({"retrieval_groundedness"})
# the seed's legacy LLM metric, and MLflow 3's judge that replaced it
JUDGE_ALIASES = {"answer_correctness": "correctness"}
JUDGE_PREFIX = "openai:/"
ENDPOINTS_PREFIX = "endpoints:/"  # Databricks serving endpoints speak the same chat protocol

JUDGE_FIX = """\
Name the judge model, and keep its key in a secret:
  judge: openai:/gpt-4o-mini
  judge-base-url: https://llm.internal.example/v1   # omit for OpenAI itself
  judge-api-key-env: OPENAI_API_KEY"""


def make_judge_scorer(
    name: str,
    aggregations: Sequence[Any],
    *,
    judge: str | None,
    guidelines: Sequence[str],
    instructions: str | None = None,
) -> LazyScorer:
    """One of MLflow's built-in judges, or a custom one from its instructions (make_judge).
    The settings are checked here; the MLflow object is built on first use (LazyScorer)."""
    if not judge:
        raise ConfigError(
            f"{name} is an LLM judge, and no judge model is configured", fix=JUDGE_FIX
        )
    model_name = judge_model_name(judge)
    if model_name is None:
        raise ConfigError(
            f"judge: {judge!r} is not a judge genai-gate can call",
            fix="judge: openai:/gpt-4o-mini   # any OpenAI-compatible server\n"
            "judge: endpoints:/my-judge      # a Databricks serving endpoint",
        )
    if instructions is None and name == "guidelines" and not guidelines:
        raise ConfigError(
            "the guidelines judge needs the rules it checks",
            fix="guidelines:\n  - Answer in English.\n  - Cite no URLs.",
        )
    # MLflow always talks OpenAI's protocol to the transport; the transport knows the server
    model = f"openai:/{model_name}"
    aggs = list(aggregations)
    rules = list(guidelines)

    def build() -> Any:
        mlflow_loading.ensure()
        if instructions is not None:
            from mlflow.genai.judges import make_judge

            custom = make_judge(
                name=name, instructions=instructions, model=model, feedback_value_type=bool
            )
            custom.aggregations = aggs
            custom.timeout = 0  # see below
            return custom
        import mlflow.genai.scorers as mlflow_scorers

        cls = getattr(mlflow_scorers, JUDGES[name][0])
        extra: dict[str, Any] = {"guidelines": rules} if name == "guidelines" else {}
        # timeout=0: MLflow's default per-call timeout starts a thread for every judge call
        # (about a third of the client's work per call, issue #14); the runner's scoring
        # deadline (evaluate.scoring_deadline) already bounds the call on a daemon thread
        return cls(model=model, aggregations=aggs, timeout=0, **extra)

    return LazyScorer(build)


def judge_model_name(judge: str) -> str | None:
    for prefix in (JUDGE_PREFIX, ENDPOINTS_PREFIX):
        if judge.startswith(prefix) and judge.removeprefix(prefix).strip("/"):
            return judge.removeprefix(prefix).strip("/")
    return None


_SESSION = threading.Lock()
# set while no judge session is being routed: the judges' calls wait on it (`wait_for_route`)
_ROUTED = threading.Event()
_ROUTED.set()
_ROUTE_FAILED: list[BaseException] = []  # why this session's route could not be set up


def wait_for_route() -> None:
    """Block until the open judge session knows how MLflow's judges reach the transport;
    raise if it found no way (each judge call then fails at once, with the reason)."""
    _ROUTED.wait()
    if _ROUTE_FAILED:
        raise RuntimeError(f"the judge could not be reached: {_ROUTE_FAILED[0]}")


@contextlib.contextmanager
def judge_session(
    cfg: Config,
    cache: Any,
    environ: Mapping[str, str],
    workspace: ServingWorkspace,
    *,
    in_process: bool = True,
) -> Iterator[JudgeTransport]:
    """Route MLflow's judges to the judge model for the duration of the scoring: in-process
    where MLflow's adapter has the seam (`judge_seam`), else through a loopback gateway
    (`in_process=False` asks for the gateway).

    The route is settled on a thread: putting the seam in imports MLflow's judge adapter
    (0.05-0.3 s, more while the tracking store opens), and a remote model's first calls need
    not wait for that; a judge call waits for it (`wait_for_route`), and none comes before a
    model's first answer."""

    policy, limiter = policy_and_limiter(cfg.retries, cfg.requests_per_minute)
    auth_headers = None
    if (cfg.judge or "").startswith(ENDPOINTS_PREFIX):
        upstream, auth_headers = workspace.chat_route()
    else:
        upstream = base_url(cfg.judge_base_url or cfg.base_url, environ)
    transport = JudgeTransport(
        upstream,
        api_key=check_key(cfg.judge_api_key_env, environ.get(cfg.judge_api_key_env, "")),
        auth_headers=auth_headers,
        timeout=cfg.timeout,
        policy=policy,
        limiter=limiter,
        cache=cache,
    )
    # what MLflow sends along; the real key never leaves genai-gate
    local_key = secrets.token_urlsafe(24)
    settings = {
        # until the route is settled, and for good if it cannot be: an address that
        # resolves nowhere, never the public provider
        "OPENAI_API_BASE": judge_seam.BASE_URL,
        "OPENAI_BASE_URL": judge_seam.BASE_URL,
        "OPENAI_API_KEY": local_key,
        # longer than the transport's own worst case, so MLflow never gives up (and retries)
        # while the transport is still trying
        "MLFLOW_GATEWAY_ROUTE_TIMEOUT_SECONDS": str(int(remote_deadline(cfg)) + 30),
    }
    # offline, MLflow's first judge call waits ~7 s on a model catalogue from GitHub
    if "MLFLOW_MODEL_CATALOG_URI" not in os.environ:
        settings["MLFLOW_MODEL_CATALOG_URI"] = ""
    gateways: list[JudgeGateway] = []

    def route() -> None:
        try:
            mlflow_loading.ensure()  # the seam is in MLflow: see mlflow_loading
            if in_process and judge_seam.install():
                transport.stats.route = "in-process"
                return
            transport.stats.route = "loopback"
            gateway = JudgeGateway(transport, local_key=local_key).start()
            gateways.append(gateway)
            os.environ.update(OPENAI_API_BASE=gateway.base_url, OPENAI_BASE_URL=gateway.base_url)
        except Exception as exc:  # no route: every judge call fails with this, closed
            _ROUTE_FAILED.append(exc)
        finally:
            _ROUTED.set()

    # the settings are process-wide: one judging run at a time, or a second run would point
    # MLflow at the first one's judge (or, after it, at the public provider)
    with _SESSION:
        before = {k: os.environ.get(k) for k in settings}
        os.environ.update(settings)
        judge_seam.activate(transport)
        _ROUTE_FAILED.clear()
        _ROUTED.clear()
        router = threading.Thread(target=route, name="genai-gate-judge-route", daemon=True)
        router.start()
        try:
            yield transport
        finally:
            router.join()
            judge_seam.activate(None)
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            for gateway in gateways:
                gateway.stop()

"""The KServe serving backend: what `plan`, `deploy`, the canary commands and `monitor` ask
of a serving platform, done on an InferenceService in serverless (Knative) mode.

The settings name what the predictor should serve (storage-uri, predictor-image, or a
predictor: fragment merged onto the current predictor); the rest is the same rollout core
as Databricks, behind `backends.base.ServingBackend`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from genai_gate.backends.base import PublishedDashboard
from genai_gate.backends.judged import write_parquet
from genai_gate.backends.kserve.apply import ApplyResult, Rollouts
from genai_gate.backends.kserve.cluster import Cluster, DeployError
from genai_gate.backends.kserve.logs import EXAMPLE as LOG_EXAMPLE
from genai_gate.backends.kserve.logs import LoggedEvents
from genai_gate.backends.kserve.plan import (
    NEW_REVISION,
    Plan,
    ServiceState,
    desired_predictor,
    logger_url,
    plan_create,
    plan_rollout,
    predictor_entity,
    serving_block,
)
from genai_gate.backends.kserve.session import ClusterSession
from genai_gate.config import LoadedConfig
from genai_gate.errors import ConfigError
from genai_gate.rollout.measures import JudgedScore
from genai_gate.rollout.plan import Entity, Rollout, rollout_for_challenger

SETTINGS_EXAMPLE = """backend: kserve
endpoint: support-bot            # the InferenceService
namespace: models
storage-uri: s3://models/support-bot/v4
canary-percent: 10
logger-url: http://event-sink.models.svc.cluster.local
inference-log: captures/models/support-bot"""


CREATE_EXAMPLE = """Give the whole predictor in the config, and deploy creates the InferenceService:
  backend: kserve
  endpoint: support-bot
  namespace: models
  predictor:
    model:
      modelFormat: {name: huggingface}
      resources: {limits: {cpu: "2", memory: 8Gi}}
  storage-uri: s3://models/support-bot/v4
  logger-url: http://event-sink.models.svc.cluster.local
Or create it yourself first (kubectl apply -f isvc.yaml), in serverless mode:
  metadata:
    annotations:
      serving.kserve.io/deploymentMode: Serverless"""


def check_settings(loaded: LoadedConfig) -> str:
    """Deploy's keys, checked together; returns the InferenceService's name."""
    cfg = loaded.config
    problems = []
    if cfg.endpoint is None:
        problems.append("endpoint: is required to plan or deploy (the InferenceService's name)")
    if not (cfg.storage_uri or cfg.predictor_image or cfg.predictor):
        problems.append(
            "storage-uri, predictor-image or predictor: is required to plan or deploy (what "
            "the challenger serves)"
        )
    if problems:
        raise ConfigError(
            f"{loaded.source}: the deploy settings are incomplete",
            problems=problems,
            fix=SETTINGS_EXAMPLE,
        )
    assert cfg.endpoint is not None
    return cfg.endpoint


def refuse_mode(state: ServiceState) -> None:
    """KServe's canary needs revisions: a RawDeployment (Standard) or ModelMesh service
    ignores canaryTrafficPercent silently, so it is refused here, before any write."""
    mode = state.service.mode_refusal()
    if mode is None:
        return
    raise ConfigError(
        f"InferenceService {state.name} runs in {mode} mode, where KServe has no revisions "
        "and ignores canaryTrafficPercent, so a canary cannot run; nothing was changed",
        fix="Serve it in serverless (Knative) mode, which KServe's canary needs: create it with\n"
        "  metadata:\n    annotations:\n      serving.kserve.io/deploymentMode: Serverless\n"
        "(KServe does not change the mode of an existing InferenceService: create a new one.)",
    )


class KServeBackend:
    """One run's InferenceService access (one signed-in client; see session.py)."""

    name = "kserve"
    label = "KServe"

    def __init__(
        self,
        loaded: LoadedConfig,
        session: ClusterSession,
        progress: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.loaded = loaded
        self.session = session
        self.progress = progress

    @property
    def available(self) -> bool:
        return self.session.available

    @property
    def unavailable_reason(self) -> str:
        return self.session.unavailable_reason

    @functools.cached_property
    def cluster(self) -> Cluster:
        # signing in waits until a call needs it: a PR without credentials plans nothing
        return Cluster(self.session)

    @functools.cached_property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.cluster, self.progress)

    def configured(self) -> tuple[bool, bool]:
        cfg = self.loaded.config
        has_model = bool(cfg.storage_uri or cfg.predictor_image or cfg.predictor)
        return cfg.endpoint is not None and has_model, cfg.endpoint is not None

    def connect(self) -> None:
        self.session.connection()

    def check_settings(self) -> str:
        return check_settings(self.loaded)

    def preflight(self, endpoint: str) -> None:
        """Before the eval of a deploy: sign in for real, and check every verb deploy needs
        (creating the InferenceService's too, when it does not exist yet)."""
        state = self.read(endpoint)
        self.cluster.preflight(endpoint, write=True, create=state is None)

    def read(self, endpoint: str) -> ServiceState | None:
        return self.rollouts.read(endpoint)

    def wait_for_others(self, endpoint: str, timeout: float) -> None:
        self.rollouts.wait_for_others(endpoint, timeout)

    def plan_deploy(self, endpoint: str, state: ServiceState | None, now: str) -> Plan:
        cfg = self.loaded.config
        if state is None:
            return self._plan_create(endpoint, now)
        if state.service.deleting:
            raise DeployError(
                f"InferenceService {endpoint} is being deleted (it has a deletionTimestamp), "
                "so nothing can be rolled out onto it; nothing was changed",
                fix="Run the deploy again once it is gone (kubectl get inferenceservice "
                f"{endpoint} -n {state.service.namespace}): it then creates a new one.",
            )
        refuse_mode(state)
        current = state.service.predictor
        desired, problems = desired_predictor(
            current, cfg.predictor, cfg.storage_uri, cfg.predictor_image, cfg.logger_url
        )
        if logger_url(desired) is None:
            problems.append(
                "logger-url: is required: the predictor logs no requests and responses, so "
                "the canary could not be watched"
            )
        if problems:
            raise ConfigError(
                f"the plan for InferenceService {endpoint} cannot be applied",
                problems=problems,
                fix=SETTINGS_EXAMPLE,
            )
        challenger = predictor_entity(NEW_REVISION, desired)
        rollout, notices = rollout_for_challenger(state, challenger, cfg.canary_percent, now)
        capture_first = None
        champion = state.champion()
        starts = rollout.challenger is not None and rollout.challenger.name == NEW_REVISION
        if starts and champion is not None and state.capture is None:
            if state.challenger() is None:
                # the champion must log too: the canary is judged against its traffic
                capture_first = {**current, "logger": desired["logger"]}
            else:
                notices.append(
                    f"the champion {champion.name} logs no traffic, so the canary's relative "
                    "rules cannot be checked until it is promoted or rolled back"
                )
        return plan_rollout(state, rollout, notices=notices, capture_first=capture_first)

    def _plan_create(self, endpoint: str, now: str) -> Plan:
        """The InferenceService does not exist: create it from the config alone (as the
        Databricks backend creates a missing endpoint), the challenger at 100%."""
        cfg = self.loaded.config
        # the config's, else the kubeconfig's (which the connection resolves)
        namespace = cfg.namespace or self.cluster.namespace
        desired, problems = desired_predictor(
            {}, cfg.predictor, cfg.storage_uri, cfg.predictor_image, cfg.logger_url
        )
        if serving_block(desired)[0] is None:
            # storage-uri and predictor-image have nowhere to go: one problem, not three
            problems = [
                "predictor: must say what serves, as there is no current predictor to change: "
                "a model: block with its modelFormat (storage-uri and predictor-image fill it "
                "in), or containers: for a custom predictor"
            ]
        if logger_url(desired) is None:
            problems.append(
                "logger-url: is required: the new predictor would log no requests and "
                "responses, so the canaries after it could not be watched"
            )
        if problems:
            raise ConfigError(
                f"InferenceService {endpoint} does not exist in namespace {namespace}, and the "
                "config does not say enough to create it",
                problems=problems,
                fix=CREATE_EXAMPLE,
            )
        challenger = predictor_entity(NEW_REVISION, desired)
        rollout, notices = rollout_for_challenger(None, challenger, cfg.canary_percent, now)
        notices.append(
            f"InferenceService {endpoint} does not exist in namespace {namespace}: deploy "
            "creates it (serverless mode), serving the challenger at 100%. There is no canary: "
            "nothing serves yet to compare it with."
        )
        return plan_create(endpoint, namespace, desired, rollout, notices=notices)

    def plan_rollout(self, endpoint: str, state: ServiceState, rollout: Rollout) -> Plan:
        refuse_mode(state)
        return plan_rollout(state, rollout)

    def apply(self, plan: Plan, timeout: float) -> ApplyResult:
        return self.rollouts.apply(plan, timeout)

    def traffic(self, state: ServiceState) -> LoggedEvents:
        cfg = self.loaded.config
        if not cfg.inference_log:
            raise ConfigError(
                "analyze needs inference-log: the files the logger's sink wrote",
                fix=LOG_EXAMPLE,
            )
        return LoggedEvents(cfg.inference_log, self.loaded.base_dir, state.service.namespace)

    # -------------------------------------------------------------- what `monitor` adds

    def set_tags(self, endpoint: str, tags: Mapping[str, str]) -> None:
        """Into the rollout-state ConfigMap, not the InferenceService's annotations: KServe
        copies those into a new revision (state.py)."""
        self.rollouts.set_tags(endpoint, tags)

    def served_entity(self, model: str, version: str) -> Entity | None:
        """A predictor this service served and the rollout state still holds (the retired
        champion's, or the champion's), as a new revision would serve it again; None when
        neither is that model and version (its predictor was never recorded)."""
        endpoint = self.loaded.config.endpoint
        if endpoint is None:
            return None
        state = self.cluster.read_state(endpoint)
        for spec in (state.previous_spec, state.champion_spec):
            if spec is None:
                continue
            entity = predictor_entity(NEW_REVISION, spec)
            if (entity.model, entity.version) == (model, version):
                return entity
        return None

    def run_job(self, job: str, parameters: Mapping[str, str], idempotency_key: str) -> str:
        raise ConfigError(
            "retrain-job-id starts a Databricks job, and backend is kserve: KServe has no "
            "jobs of its own",
            fix="Let a training workflow retrain, through repository_dispatch:\n"
            "  on-drift: [retrain]\n  retrain-event: retrain-support-bot",
        )

    def record_judged(self, state: ServiceState, scores: Sequence[JudgedScore]) -> str | None:
        """`judged-data`: Parquet parts in a local folder (judged-table is Databricks')."""
        cfg = self.loaded.config
        if not scores or not cfg.judged_data:
            return None
        return str(write_parquet(self.loaded.resolve(cfg.judged_data), scores))

    def publish_dashboard(
        self,
        state: ServiceState,
        *,
        name: str,
        folder: str,
        floors: Mapping[str, tuple[str, float]],
    ) -> PublishedDashboard:
        raise ConfigError(
            "dashboard publishes a Databricks AI/BI dashboard, and backend is kserve: "
            "dashboards are Databricks-only",
            fix="For KServe, read each monitor run's monitor.html (the self-contained report "
            "in the output folder), and point your own dashboards at judged-data:\n"
            "  judged-data: captures/judged",
        )

"""`genai-gate plan` and `deploy` with `backend: kserve`, end to end: the real `kubernetes`
client against the Kubernetes API emulator (tests/fakes/kubernetes.py) over a socket, signed
in with a kubeconfig or with the job's GitHub OIDC token. Every InferenceService write the
CLI sent is validated against the vendored KServe v0.20.0 CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.fakes.kserve.schema import validate_inferenceservice
from tests.fakes.kubernetes import ADMIN_TOKEN, FakeKubernetes, Rule

pytestmark = pytest.mark.integration

NS = "models"
SINK = "http://sink.models.svc.cluster.local"
V1 = "s3://models/bot/v1"
V2 = "s3://models/bot/v2"
R1, R2, R3 = "bot-predictor-00001", "bot-predictor-00002", "bot-predictor-00003"


def isvc(*, logger: bool = True, mode: str | None = None) -> dict[str, Any]:
    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "model": {"modelFormat": {"name": "huggingface"}, "storageUri": V1},
    }
    if logger:
        predictor["logger"] = {"mode": "all", "url": SINK}
    meta: dict[str, Any] = {"name": "bot", "namespace": NS}
    if mode:
        meta["annotations"] = {"serving.kserve.io/deploymentMode": mode}
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


class Cluster:
    """The CLI against the emulator, with a kubeconfig (admin) unless told otherwise."""

    def __init__(self, cli: Any, root: Path, kube: FakeKubernetes) -> None:
        self.cli, self.root, self.kube = cli, root, kube
        self.env = {"KUBECONFIG": str(kube.kubeconfig(root / "kubeconfig", token=ADMIN_TOKEN))}

    def config(self, extra: str = "") -> Path:
        path = self.root / "genai-gate.yml"
        path.write_text(
            "backend: kserve\nendpoint: bot\nnamespace: models\n"
            f"storage-uri: {V2}\ncanary-percent: 10\nwait-timeout: 60\n" + extra
        )
        return path

    def run(self, *argv: str, extra: str = "", env: dict[str, str] | None = None) -> CliResult:
        cfg = self.config(extra)
        result: CliResult = self.cli(
            argv[0],
            "-c",
            str(cfg),
            "--out",
            str(self.root / "out"),
            *argv[1:],
            env=env if env is not None else self.env,
        )
        return result

    def obj(self) -> dict[str, Any]:
        return self.kube.isvc("bot", NS)

    def predictor(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.obj()["spec"]["predictor"]
        return spec

    def state(self) -> dict[str, str]:
        cm = self.kube.configmap("genai-gate-rollout-bot", NS)
        return dict((cm or {}).get("data") or {})

    def writes(self) -> list[Any]:
        return [
            r
            for r in self.kube.requests
            if r.resource == "inferenceservices" and r.method in ("PATCH", "PUT", "POST")
        ]


@pytest.fixture
def cluster(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Cluster:
    kube_cluster.add_inferenceservice(isvc())
    return Cluster(cli, tmp_path, kube_cluster)


def validated(kube: FakeKubernetes) -> None:
    """Every InferenceService the emulator stored after our writes passes the CRD."""
    stored = kube.isvc("bot", NS)
    body = {k: v for k, v in stored.items() if k != "status"}
    assert validate_inferenceservice(body) == []


def test_plan_shows_the_predictor_diff_and_the_split_and_writes_nothing(cluster: Cluster) -> None:
    result = cluster.run("plan")
    assert result.code == 0, result.text
    assert "| predictor | `model.storageUri` | s3\\://models/bot/v1 | s3\\://models/bot/v2 |" in (
        result.out
    )
    assert "| canary | `canaryTrafficPercent` | — | 10 |" in result.out
    assert f"| route | `{R1}` | 100% | 90% |" in result.out
    assert cluster.writes() == []
    plan = json.loads((cluster.root / "out" / "plan.json").read_text())
    assert plan["kind"] == "deploy" and plan["canary_traffic_percent_after"] == 10
    assert plan["predictor_after"]["model"]["storageUri"] == V2
    assert plan["routes"] == {R1: 90, "(new revision)": 10}


def test_deploy_starts_a_canary_at_10_percent_on_a_new_revision(cluster: Cluster) -> None:
    result = cluster.run("deploy")
    assert result.code == 0, result.text
    assert cluster.kube.serving("bot", NS) == {R1: 90, R2: 10}
    predictor = cluster.predictor()
    assert predictor["model"]["storageUri"] == V2
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["logger"] == {"mode": "all", "url": SINK}
    validated(cluster.kube)
    state = cluster.state()
    assert state["genai-gate.champion"] == R1
    assert state["genai-gate.challenger"] == R2
    assert state["genai-gate.step"] == "10"
    assert json.loads(state["genai-gate.champion-spec"])["model"]["storageUri"] == V1
    cm = cluster.kube.configmap("genai-gate-rollout-bot", NS)
    assert cm is not None
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "InferenceService",
        "bot",
        cluster.obj()["metadata"]["uid"],
    )
    # every write carried the resourceVersion it was computed against
    assert all(w.method == "PATCH" for w in cluster.writes())
    assert "routes: " in result.out

    again = cluster.run("deploy")
    assert again.code == 0, again.text
    assert "already up to date" in again.out
    assert len(cluster.kube.revisions("bot", NS)) == 2


def test_a_champion_that_does_not_log_gets_the_logger_first(
    cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes
) -> None:
    kube_cluster.add_inferenceservice(isvc(logger=False))
    c = Cluster(cli, tmp_path, kube_cluster)
    result = c.run("deploy", extra=f"logger-url: {SINK}\n")
    assert result.code == 0, result.text
    # r2: the champion's model with the logger, at 100%; r3: the challenger at 10%
    assert kube_cluster.serving("bot", NS) == {R2: 90, R3: 10}
    state = c.state()
    assert state["genai-gate.champion"] == R2
    champion = json.loads(state["genai-gate.champion-spec"])
    assert champion["model"]["storageUri"] == V1 and champion["logger"]["url"] == SINK
    validated(kube_cluster)


def test_a_revision_that_fails_is_restored_and_exits_4(cluster: Cluster) -> None:
    cluster.kube.register_model(V2, fails="Back-off pulling image: model not found")
    result = cluster.run("deploy")
    assert result.code == 4, result.text
    assert f"revision {R2}" in result.err and "model not found" in result.err
    assert "Restored the predictor of generation 1" in result.err
    assert cluster.predictor()["model"]["storageUri"] == V1
    assert "canaryTrafficPercent" not in cluster.predictor()
    # the restored predictor is a new revision of the old model, serving everything
    assert cluster.kube.serving("bot", NS) == {R3: 100}
    validated(cluster.kube)
    evidence = json.loads((cluster.root / "out" / "deploy.json").read_text())
    assert evidence["action"] == "failed" and evidence["exit_code"] == 4


def test_a_conflict_is_read_again_and_retried(cluster: Cluster) -> None:
    cluster.kube.conflict_next = 2
    result = cluster.run("deploy")
    assert result.code == 0, result.text
    assert "409" in result.err
    assert cluster.kube.serving("bot", NS) == {R1: 90, R2: 10}


def test_conflicts_without_end_give_up_with_a_fix(cluster: Cluster) -> None:
    cluster.kube.conflict_next = 50
    result = cluster.run("deploy")
    assert result.code == 4, result.text
    assert "kept changing" in result.err and "concurrency" in result.err


def test_a_raw_deployment_is_refused_before_any_write(
    cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes
) -> None:
    kube_cluster.add_inferenceservice(isvc(mode="RawDeployment"))
    c = Cluster(cli, tmp_path, kube_cluster)
    before = kube_cluster.isvc("bot", NS)["metadata"]["resourceVersion"]
    result = c.run("deploy")
    assert result.code == 2, result.text
    assert "Standard mode" in result.err
    assert c.writes() == []
    assert kube_cluster.isvc("bot", NS)["metadata"]["resourceVersion"] == before
    assert c.state() == {}


def test_github_oidc_signs_in_without_a_stored_credential(
    cluster: Cluster, kube_oidc_env: dict[str, str]
) -> None:
    kube = cluster.kube
    user = "github:repo:acme/shop:ref:refs/heads/main"
    kube.grant(user, Rule(("get", "patch"), ("inferenceservices",)))
    kube.grant(user, Rule(("get", "create", "update"), ("configmaps",), api_groups=("",)))
    env = {
        **{k: v for k, v in kube_oidc_env.items() if k.startswith("ACTIONS_")},
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
    }
    extra = f"kube-server: {kube.host}\nkube-audience: {kube.audience}\n"
    result = cluster.run("deploy", extra=extra, env=env)
    assert result.code == 0, result.text
    assert kube.serving("bot", NS) == {R1: 90, R2: 10}
    assert {r.user for r in kube.requests if r.resource == "inferenceservices"} == {user}
    # the ID token was masked in the job log
    assert "::add-mask::" in result.out


def test_an_audience_the_cluster_does_not_trust_is_a_401_with_the_authenticator(
    cluster: Cluster, kube_oidc_env: dict[str, str]
) -> None:
    env = {k: v for k, v in kube_oidc_env.items() if k.startswith("ACTIONS_")}
    extra = f"kube-server: {cluster.kube.host}\nkube-audience: some-other-audience\n"
    result = cluster.run("deploy", extra=extra, env=env)
    assert result.code == 3, result.text
    assert "401" in result.err
    assert "AuthenticationConfiguration" in result.err
    assert "https://token.actions.githubusercontent.com" in result.err
    assert cluster.writes() == []


def test_missing_rbac_verbs_are_a_403_with_a_role(
    cluster: Cluster, kube_oidc_env: dict[str, str]
) -> None:
    kube = cluster.kube
    user = "github:repo:acme/shop:ref:refs/heads/main"
    kube.grant(user, Rule(("get",), ("inferenceservices",)))
    env = {k: v for k, v in kube_oidc_env.items() if k.startswith("ACTIONS_")}
    extra = f"kube-server: {kube.host}\nkube-audience: {kube.audience}\n"
    # a refused read names its verb, with the whole Role genai-gate needs
    result = cluster.run("plan", extra=extra, env=env)
    assert result.code == 3, result.text
    assert f'("{user}") get configmaps in namespace models' in result.err
    assert "kind: Role" in result.err and "kind: RoleBinding" in result.err
    assert f'name: "{user}"' in result.err
    # plan needs only get; deploy's access review names every verb still missing
    kube.grant(user, Rule(("get",), ("configmaps",), api_groups=("",)))
    planned = cluster.run("plan", extra=extra, env=env)
    assert planned.code == 0, planned.text
    result = cluster.run("deploy", extra=extra, env=env)
    assert result.code == 3, result.text
    assert (
        "patch inferenceservices.serving.kserve.io, create configmaps, update configmaps "
        "in namespace models"
    ) in result.err
    assert cluster.writes() == []
    assert any(r.resource == "selfsubjectaccessreviews" for r in kube.requests)


def test_a_deploy_waits_out_a_revision_someone_else_started(cluster: Cluster) -> None:
    from kubernetes import client, config

    kube = cluster.kube
    kube.ready_polls = 3
    api = client.CustomObjectsApi(
        config.new_client_from_config(config_file=cluster.env["KUBECONFIG"])
    )
    v15 = "s3://models/bot/v1.5"
    api.patch_namespaced_custom_object(
        "serving.kserve.io",
        "v1beta1",
        NS,
        "inferenceservices",
        "bot",
        {"spec": {"predictor": {"model": {"storageUri": v15}}}},
    )
    result = cluster.run("deploy")
    assert result.code == 0, result.text
    assert "another update is in progress" in result.err
    # the other change rolled out first (R2 at 100%), then the canary started beside it
    assert kube.serving("bot", NS) == {R2: 90, R3: 10}
    state = cluster.state()
    assert state["genai-gate.champion"] == R2
    assert json.loads(state["genai-gate.champion-spec"])["model"]["storageUri"] == v15


# -- an InferenceService that does not exist yet: deploy creates it ------------------------------

CREATE = (
    "predictor:\n  minReplicas: 1\n  model:\n    modelFormat: {name: huggingface}\n"
    f"logger-url: {SINK}\n"
)
ROLE_USER = "github:repo:acme/shop:ref:refs/heads/main"


@pytest.fixture
def empty(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Cluster:
    """The emulator with no InferenceService in the namespace."""
    return Cluster(cli, tmp_path, kube_cluster)


def gone(kube: FakeKubernetes) -> bool:
    try:
        kube.isvc("bot", NS)
    except KeyError:
        return True
    return False


def test_plan_of_a_missing_service_shows_a_create_and_writes_nothing(empty: Cluster) -> None:
    result = empty.run("plan", extra=CREATE)
    assert result.code == 0, result.text
    assert "creates the endpoint" in result.out
    assert "| service | `InferenceService` | — | models/bot |" in result.out
    assert "| predictor | `model.storageUri` | — | s3\\://models/bot/v2 |" in result.out
    assert "| route | `(new revision)` | — | 100% |" in result.out
    assert "no canary" in result.out
    assert empty.writes() == [] and gone(empty.kube)
    plan = json.loads((empty.root / "out" / "plan.json").read_text())
    assert plan["action"] == "create" and plan["routes"] == {"(new revision)": 100}
    assert validate_inferenceservice(plan["manifest"]) == []


def test_deploy_creates_a_missing_service_serving_the_challenger_at_100(empty: Cluster) -> None:
    kube = empty.kube
    result = empty.run("deploy", extra=CREATE)
    assert result.code == 0, result.text
    assert "Deploy `bot`: created" in result.out
    posts = [r for r in empty.writes() if r.method == "POST"]
    assert [(r.status, r.verb) for r in posts] == [(201, "create")]
    assert kube.serving("bot", NS) == {R1: 100}
    obj = empty.obj()
    # serverless mode, asked for by its older name: KServe's webhook writes today's
    assert obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert obj["status"]["deploymentMode"] == "Knative"
    predictor = empty.predictor()
    assert predictor["model"]["storageUri"] == V2 and predictor["minReplicas"] == 1
    assert predictor["logger"] == {"mode": "all", "url": SINK}
    assert "canaryTrafficPercent" not in predictor
    validated(kube)
    # the rollout state beside it, owned by it
    state = empty.state()
    assert (state["genai-gate.champion"], state["genai-gate.step"]) == (R1, "100")
    assert json.loads(state["genai-gate.champion-spec"])["model"]["storageUri"] == V2
    cm = kube.configmap("genai-gate-rollout-bot", NS)
    assert cm is not None
    owner = cm["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o["uid"]) for o in owner] == [
        ("InferenceService", "bot", obj["metadata"]["uid"])
    ]
    deployed = json.loads((empty.root / "out" / "deploy.json").read_text())
    assert deployed["action"] == "created" and deployed["routes_after"] == {R1: 100}
    # the same deploy again changes nothing
    again = empty.run("deploy", extra=CREATE)
    assert again.code == 0, again.text
    assert "already up to date" in again.out
    assert len(empty.writes()) == 1
    # and the next model rolls out onto it as a canary
    nxt = empty.run("deploy", extra=CREATE.replace("minReplicas: 1", "minReplicas: 2"))
    assert nxt.code == 0, nxt.text
    assert kube.serving("bot", NS) == {R1: 90, R2: 10}


def test_a_created_service_whose_first_revision_fails_is_deleted(empty: Cluster) -> None:
    kube = empty.kube
    kube.register_model(V2, fails="the bucket s3://models/bot/v2 is empty")
    result = empty.run("deploy", extra=CREATE)
    assert result.code == 4, result.text
    assert f"revision {R1} of InferenceService bot failed: RevisionFailed" in result.err
    assert "the bucket s3://models/bot/v2 is empty" in result.err  # not just RevisionMissing
    assert "The new InferenceService bot was deleted" in result.err
    assert gone(kube) and kube.configmap("genai-gate-rollout-bot", NS) is None
    deletes = [r for r in kube.requests if r.method == "DELETE"]
    assert [(r.status, r.resource) for r in deletes] == [(200, "inferenceservices")]
    record = json.loads((empty.root / "out" / "deploy.json").read_text())
    assert record["action"] == "failed" and record["exit_code"] == 4


def test_creating_needs_create_and_delete_and_the_role_grants_them(
    empty: Cluster, kube_oidc_env: dict[str, str]
) -> None:
    kube = empty.kube
    # what deploy needs on an existing service, not more
    kube.grant(ROLE_USER, Rule(("get", "patch"), ("inferenceservices",)))
    kube.grant(ROLE_USER, Rule(("get", "create", "update"), ("configmaps",), api_groups=("",)))
    env = {k: v for k, v in kube_oidc_env.items() if k.startswith("ACTIONS_")}
    extra = CREATE + f"kube-server: {kube.host}\nkube-audience: {kube.audience}\n"
    planned = empty.run("plan", extra=extra, env=env)
    assert planned.code == 0, planned.text
    result = empty.run("deploy", extra=extra, env=env)
    assert result.code == 3, result.text
    assert (
        "genai-gate create inferenceservices.serving.kserve.io, delete "
        "inferenceservices.serving.kserve.io in namespace models"
    ) in result.err
    assert "verbs: [get, patch, create, delete]" in result.err
    assert empty.writes() == [] and gone(kube)
    # the Role's verbs are enough
    kube.grant(ROLE_USER, Rule(("create", "delete"), ("inferenceservices",)))
    result = empty.run("deploy", extra=extra, env=env)
    assert result.code == 0, result.text
    assert kube.serving("bot", NS) == {R1: 100}


def test_a_service_someone_else_creates_meanwhile_is_left_alone(
    empty: Cluster, tmp_path: Path
) -> None:
    from genai_gate.backends.kserve.backend import KServeBackend
    from genai_gate.backends.kserve.session import ClusterSession
    from genai_gate.config import load_config
    from genai_gate.errors import ServiceError
    from genai_gate.github import read_context

    loaded = load_config(empty.config(CREATE), require_data=False)
    session = ClusterSession(empty.env, loaded.config, read_context({}), tmp_path)
    backend = KServeBackend(loaded, session)
    plan = backend.plan_deploy("bot", backend.read("bot"), "2026-12-01T00:00:00+00:00")
    assert plan.action == "create"
    empty.kube.add_inferenceservice(isvc())
    with pytest.raises(ServiceError) as err:
        backend.apply(plan, 60)
    assert err.value.exit_code == 4
    assert "created by someone else" in err.value.message and "409" in err.value.message
    assert "Run the deploy again" in err.value.fix
    assert empty.predictor()["model"]["storageUri"] == V1  # theirs, untouched
    assert empty.kube.configmap("genai-gate-rollout-bot", NS) is None

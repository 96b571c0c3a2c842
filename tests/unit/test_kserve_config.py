"""`backend: kserve` and its keys: validated once, refused for the other backend with a fix,
and each one an action input; sign-in chosen without a network call; refusals explained."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_gate.backends.kserve.auth import (
    cluster_auth,
    forbidden,
    jwt_authenticator,
    rbac_snippet,
    require,
    unauthorized,
)
from genai_gate.backends.kserve.backend import check_settings
from genai_gate.config import KSERVE_ONLY, json_schema, load_config
from genai_gate.errors import AuthError, ConfigError, ExitCode
from genai_gate.github import Context, read_context


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "genai-gate.yml"
    cfg.write_text(text)
    return load_config(cfg, environ=environ or {}, require_data=False)


def test_the_default_backend_is_databricks_and_kserve_keys_are_refused_there(
    tmp_path: Path,
) -> None:
    assert load(tmp_path, "endpoint: bot\n").config.backend == "databricks"
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "endpoint: bot\nstorage-uri: s3://m/v2\nnamespace: models\n")
    assert err.value.problems == [
        "genai-gate.yml: namespace: is a KServe setting, and backend is databricks",
        "genai-gate.yml: storage-uri: is a KServe setting, and backend is databricks",
    ]
    assert "backend: kserve" in err.value.fix


def test_databricks_keys_are_refused_for_kserve_under_the_name_typed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(
            tmp_path,
            "backend: kserve\nendpoint: bot\nmodel-name: main.ml.bot\n",
            {"GENAI_GATE_WAREHOUSE_ID": "abc"},
        )
    assert err.value.problems == [
        "genai-gate.yml: model-name: is a Databricks setting, and backend is kserve",
        "GENAI_GATE_WAREHOUSE_ID: is a Databricks setting, and backend is kserve",
    ]
    assert "storage-uri" in err.value.fix


def test_an_inference_service_name_must_be_a_dns_label(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "backend: kserve\nendpoint: Support_Bot\n")
    assert "is not an InferenceService name" in err.value.problems[0]


def test_a_predictor_fragment_comes_from_the_file_or_an_input(tmp_path: Path) -> None:
    text = "backend: kserve\nendpoint: bot\npredictor:\n  model:\n    runtime: vllm\n"
    assert load(tmp_path, text).config.predictor == {"model": {"runtime": "vllm"}}
    loaded = load(
        tmp_path,
        "backend: kserve\nendpoint: bot\n",
        {"GENAI_GATE_PREDICTOR": "{model: {storageUri: 's3://m/v4'}}"},
    )
    assert loaded.config.predictor == {"model": {"storageUri": "s3://m/v4"}}
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "backend: kserve\nendpoint: bot\npredictor: {canaryTrafficPercent: 5}\n")
    assert "canary-percent" in err.value.problems[0]


def test_deploy_needs_something_for_the_challenger_to_serve(tmp_path: Path) -> None:
    loaded = load(tmp_path, "backend: kserve\nendpoint: bot\n")
    with pytest.raises(ConfigError) as err:
        check_settings(loaded)
    assert "storage-uri, predictor-image or predictor" in err.value.problems[0]
    ok = load(tmp_path, "backend: kserve\nendpoint: bot\nstorage-uri: s3://m/v2\n")
    assert check_settings(ok) == "bot"


def test_every_kserve_key_is_in_the_schema() -> None:
    props = json_schema()["properties"]
    assert props["backend"]["enum"] == ["databricks", "kserve"]
    assert set(KSERVE_ONLY) <= set(props)


CTX = Context("push", "acme/shop", None, False, "https://api.github.com")
FORK = Context("pull_request", "acme/shop", 7, True, "https://api.github.com")
OIDC_ENV = {"ACTIONS_ID_TOKEN_REQUEST_URL": "http://x/?a=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}


def test_sign_in_is_chosen_without_a_network_call(tmp_path: Path) -> None:
    oidc = load(
        tmp_path,
        "backend: kserve\nendpoint: bot\nkube-server: https://k:6443\nkube-audience: kube\n",
    ).config
    auth = cluster_auth(OIDC_ENV, CTX, oidc)
    assert (auth.method, auth.available) == ("github-oidc", True)
    no_token = cluster_auth({}, CTX, oidc)
    assert not no_token.available and "id-token: write" in no_token.reason
    with pytest.raises(AuthError) as err:
        require(no_token, CTX)
    assert "id-token: write" in err.value.fix
    with pytest.raises(AuthError) as err:
        require(cluster_auth({}, FORK, oidc), FORK)
    assert "fork" in err.value.message
    no_server = load(tmp_path, "backend: kserve\nendpoint: bot\nkube-audience: kube\n").config
    assert cluster_auth(OIDC_ENV, CTX, no_server).reason == "kube-server is not set"

    plain = load(tmp_path, "backend: kserve\nendpoint: bot\n").config
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    found = cluster_auth({"KUBECONFIG": f"{tmp_path / 'missing'}:{kubeconfig}"}, CTX, plain)
    assert (found.method, found.kubeconfig) == ("kubeconfig", str(kubeconfig))
    nothing = cluster_auth({"KUBECONFIG": str(tmp_path / "missing")}, CTX, plain)
    assert not nothing.available
    with pytest.raises(AuthError) as err:
        require(nothing, read_context({}))
    assert err.value.exit_code == ExitCode.AUTH and "kube-audience" in err.value.fix


def test_a_401_names_the_jwt_authenticator_the_cluster_needs(tmp_path: Path) -> None:
    oidc = load(
        tmp_path,
        "backend: kserve\nendpoint: bot\nkube-server: https://k:6443\nkube-audience: kube\n",
    ).config
    error = unauthorized(cluster_auth(OIDC_ENV, CTX, oidc), "kube", {"sub": "repo:acme/shop:ref:x"})
    assert error.exit_code == ExitCode.AUTH
    assert "https://token.actions.githubusercontent.com" in error.fix
    assert "sub: repo:acme/shop:ref:x" in error.fix
    config = yaml.safe_load(jwt_authenticator("kube"))
    assert config["kind"] == "AuthenticationConfiguration"
    assert config["jwt"][0]["issuer"] == {
        "url": "https://token.actions.githubusercontent.com",
        "audiences": ["kube"],
    }
    assert config["jwt"][0]["claimMappings"]["username"] == {"claim": "sub", "prefix": "github:"}


def test_a_403_names_the_verb_and_grants_it_to_the_user_the_server_named() -> None:
    message = (
        'inferenceservices.serving.kserve.io "bot" is forbidden: User '
        '"github:repo:acme/shop:ref:refs/heads/main" cannot patch resource "inferenceservices" '
        'in API group "serving.kserve.io" in the namespace "models"'
    )
    error = forbidden([("patch", "serving.kserve.io", "inferenceservices")], "models", message)
    assert error.exit_code == ExitCode.AUTH
    assert "patch inferenceservices.serving.kserve.io in namespace models" in error.message
    role, binding = yaml.safe_load_all(error.fix.split("\nSee ")[0].split(":\n", 1)[1])
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "models"
    assert {
        "apiGroups": ["serving.kserve.io"],
        "resources": ["inferenceservices"],
        "verbs": ["get", "patch", "create", "delete"],
    } in role["rules"]
    assert binding["subjects"][0]["name"] == "github:repo:acme/shop:ref:refs/heads/main"
    assert yaml.safe_load_all(rbac_snippet("models", None))
    # create and delete are said to be needed only to create a missing InferenceService
    assert "verbs: [get, patch, create, delete]   # create, delete: only to create a missing" in (
        rbac_snippet("models", None)
    )


def test_a_403_from_kserve_s_webhook_is_not_rbac() -> None:
    message = (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: exactly one of [model, sklearn] must be specified"
    )
    error = forbidden([("patch", "serving.kserve.io", "inferenceservices")], "models", message)
    assert isinstance(error, ConfigError) and error.exit_code == ExitCode.BAD_INPUT

"""`analyze` on KServe reading the logged CloudEvents from an S3 bucket: a real S3 server on
loopback (moto's server mode), reached through s3fs with the standard AWS variables
(AWS_ENDPOINT_URL and test keys; never real credentials), registered on DuckDB's connection.
The bucket's numbers must be the runner's numbers, for Parquet and JSON lines behind a glob;
a missing bucket, a prefix with no file, refused keys and an unreachable endpoint each get
their exit code and fix."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kubernetes import FakeKubernetes
from tests.integration.test_kserve_canary import Canary, deployed_at_ten, good
from tests.integration.test_kserve_deploy import NS, R1, R2, V2

pytestmark = pytest.mark.integration

BUCKET = "inference-logs"
SECRET = "test-secret-never-echoed"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Bucket:
    """One empty bucket on the server, and the job's AWS environment pointing at it."""

    def __init__(self, endpoint: str, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        self.endpoint = endpoint
        self.monkeypatch = monkeypatch
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ENDPOINT_URL_S3",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ):
            monkeypatch.delenv(name, raising=False)
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            # no shared files and no instance metadata: nothing but these variables signs in
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        self._moto("reset", b"")
        self.fs().mkdir(f"s3://{BUCKET}")

    def _moto(self, what: str, body: bytes) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/{what}",
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

    def require_signatures(self, on: bool) -> None:
        """moto checks the keys (as S3 does) only when told to: from now on, or never."""
        self._moto("reset-auth", b"0" if on else b"inf")

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(skip_instance_cache=True)

    def upload(self, folder: Path, prefix: str) -> list[str]:
        """Every file under `folder` to s3://BUCKET/prefix/, keeping the sub-folders."""
        fs = self.fs()
        keys = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = f"{BUCKET}/{prefix}/{path.relative_to(folder).as_posix()}"
            fs.put_file(str(path), key)
            keys.append(key)
        assert keys, f"nothing to upload under {folder}"
        return keys


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Bucket]:
    b = Bucket(s3_server, monkeypatch, tmp_path)
    try:
        yield b
    finally:
        b.require_signatures(False)


@pytest.fixture
def canary(cli: Any, tmp_path: Path, kube_cluster: FakeKubernetes) -> Canary:
    c = deployed_at_ten(cli, tmp_path, kube_cluster)
    # the window starts at the step's start (second precision): traffic comes after it
    time.sleep(1.1)
    return c


def analysis(canary: Canary) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((canary.root / "out" / "analysis.json").read_text())
    return doc


def test_parquet_in_a_bucket_behind_a_glob_reads_as_on_the_runner(
    canary: Canary, bucket: Bucket
) -> None:
    canary.kube.register_model(V2, good, error_rate=0.3)
    folder = canary.root / "parquet-events"
    canary.kube.emit_traffic(
        "bot", 800, NS, parquet=True, part_rows=300, out_dir=folder, start=time.time()
    )
    keys = bucket.upload(folder, "models/bot/2026/12")
    assert len(keys) > 1 and all(k.endswith(".parquet") for k in keys)
    local = canary.run("analyze", "--set", f"inference-log={folder}")
    assert local.code == 1, local.text
    on_runner = analysis(canary)

    url = f"s3://{BUCKET}/models/bot/**/*.parquet"
    result = canary.run("analyze", "--set", f"inference-log={url}")
    assert result.code == 1, result.text
    assert "error rate" in result.out and "Not applied" in result.out
    doc = analysis(canary)
    assert doc["traffic"] == on_runner["traffic"]
    assert doc["traffic"][R2]["error_rate"] > 0.15
    assert doc["decision"] == on_runner["decision"] == "rollback"
    assert canary.serving() == {R1: 90, R2: 10}


def test_json_lines_in_a_bucket_behind_a_glob_drive_the_canary(
    canary: Canary, bucket: Bucket
) -> None:
    canary.traffic(400)
    events = canary.kube.event_dir("bot", NS)
    local = canary.run("analyze")
    assert local.code == 0, local.text
    on_runner = analysis(canary)
    # the sink's files under two dated prefixes, beside files the glob leaves out
    bucket.upload(events, "models/bot/day=1")
    bucket.upload(events, "models/bot/day=2/hour=13")
    fs = bucket.fs()
    fs.pipe_file(f"{BUCKET}/models/bot/day=1/_SUCCESS", b"")
    fs.pipe_file(f"{BUCKET}/models/bot/day=1/notes.txt", b"not an event")

    url = f"s3://{BUCKET}/models/bot/day=2/**/*.jsonl"
    result = canary.run("analyze", "--apply", "--set", f"inference-log={url}")
    assert result.code == 0, result.text
    assert "healthy, advance" in result.out
    assert analysis(canary)["traffic"] == on_runner["traffic"]
    assert canary.serving() == {R1: 50, R2: 50}


def test_a_missing_bucket_or_a_prefix_without_files_is_a_config_error(
    canary: Canary, bucket: Bucket
) -> None:
    result = canary.run("analyze", "--set", "inference-log=s3://no-such-bucket/bot/**/*.jsonl")
    assert result.code == 2, result.text
    assert "does not exist" in result.err and "Check the bucket's name" in result.err

    result = canary.run("analyze", "--set", f"inference-log=s3://{BUCKET}/models/bot/**/*.jsonl")
    assert result.code == 2, result.text
    assert "matches no file in the bucket" in result.err
    assert "s3://logs/models/support-bot/**/*.parquet" in result.err
    assert canary.serving() == {R1: 90, R2: 10}


def test_keys_the_store_refuses_exit_3_with_the_credential_chain(
    canary: Canary, bucket: Bucket
) -> None:
    canary.traffic(50)
    bucket.upload(canary.kube.event_dir("bot", NS), "models/bot")
    bucket.require_signatures(True)  # moto now knows no key: "testing" is refused
    result = canary.run("analyze", "--set", f"inference-log=s3://{BUCKET}/models/bot/")
    assert result.code == 3, result.text
    assert "S3 refused to list or read" in result.err
    assert "AWS_ACCESS_KEY_ID" in result.err and "s3:GetObject" in result.err
    assert SECRET not in result.text
    assert canary.serving() == {R1: 90, R2: 10}


def test_an_endpoint_that_does_not_answer_exits_4(
    canary: Canary, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries would only add time
    result = canary.run("analyze", "--set", f"inference-log=s3://{BUCKET}/models/bot/**/*.jsonl")
    assert result.code == 4, result.text
    assert "cannot reach S3" in result.err and "AWS_ENDPOINT_URL" in result.err

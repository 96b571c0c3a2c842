"""Bucket paths for captured traffic (backends/files.py), the parts that need no bucket: which
URLs are read and through which package, and how each failure of a store maps to an exit
code with its fix. Reading a real bucket is tests/integration/test_kserve_bucket_logs.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from genai_gate.backends.databricks.local_table import local_source
from genai_gate.backends.files import STORES, bucket_error, bucket_filesystem, suffix
from genai_gate.errors import AuthError, ConfigError, ExitCode, ServiceError

EXAMPLE = "inference-log: s3://logs/bot/**/*.parquet"
S3 = STORES["s3"]


def failure(name: str, base: type[Exception] = Exception) -> Exception:
    """An exception of a class named as botocore, google-auth or azure-core name theirs."""
    cls: type[Exception] = type(name, (base,), {})
    return cls("what the store said\nand a second line")


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (FileNotFoundError("The specified bucket does not exist"), ConfigError, 2),
        (failure("NoSuchBucket"), ConfigError, 2),
        (PermissionError("The AWS Access Key Id you provided does not exist"), AuthError, 3),
        (failure("NoCredentialsError"), AuthError, 3),
        (failure("DefaultCredentialsError"), AuthError, 3),
        (failure("ClientAuthenticationError"), AuthError, 3),
        (failure("EndpointConnectionError"), ServiceError, 4),
        (failure("ConnectTimeoutError"), ServiceError, 4),
        (OSError("500 Internal Server Error"), ServiceError, 4),
    ],
)
def test_each_failure_of_a_store_owns_its_exit_code(
    exc: Exception, kind: type[Exception], code: int
) -> None:
    error = bucket_error(exc, "s3://logs/bot/**/*.jsonl", "inference-log", S3)
    assert type(error) is kind and error.exit_code == ExitCode(code)
    assert "s3://logs/bot/**/*.jsonl" in error.message
    assert "second line" not in error.message  # the store's first line only
    assert error.fix


def test_refused_credentials_say_which_chain_and_what_the_role_needs() -> None:
    error = bucket_error(PermissionError("Access Denied"), "s3://logs/x", "inference-log", S3)
    assert "AWS_ACCESS_KEY_ID" in error.fix and "AWS_ENDPOINT_URL" in error.fix
    assert "aws-actions/configure-aws-credentials" in error.fix
    assert "s3:ListBucket" in error.fix and "s3:GetObject" in error.fix


def test_a_url_no_store_reads_is_refused_with_the_fix() -> None:
    for url in ("https://example.com/events.jsonl", "ftp://host/events.jsonl"):
        with pytest.raises(ConfigError, match=r"in a bucket \(s3://, gs://, az://\)") as err:
            bucket_filesystem(url, "inference-log", EXAMPLE)
        assert EXAMPLE in err.value.fix


@pytest.mark.skipif(
    importlib.util.find_spec("gcsfs") is not None, reason="the gcs extra is installed here"
)
def test_a_store_whose_package_is_missing_names_the_extra() -> None:
    with pytest.raises(ConfigError, match="needs the gcsfs package") as err:
        bucket_filesystem("gs://logs/bot/**/*.jsonl", "inference-log", EXAMPLE)
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert "extras: gcs" in err.value.fix


def test_s3_needs_no_extra() -> None:
    fs = bucket_filesystem("s3://logs/bot/", "inference-log", EXAMPLE)
    assert "s3" in fs.protocol  # built, not called: nothing is listed until asked


def test_suffixes_of_urls_and_paths() -> None:
    assert suffix("s3://logs/bot/part-00001.PARQUET") == ".parquet"
    assert suffix(Path("captures") / "part.jsonl") == ".jsonl"


def test_inference_data_names_the_warehouse_for_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reads copies of the inference table") as err:
        local_source("s3://logs/main.ml.bot_payload/", tmp_path, {})
    assert "warehouse-id" in err.value.fix

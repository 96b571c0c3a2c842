"""Captured traffic in files, for DuckDB: what every backend's file reader shares (the
Databricks inference table's local copies, KServe's logged CloudEvents).

A path is a file, a folder, a glob, or a bucket URL (`s3://`, `gs://`, `az://`); DuckDB reads
the files in place, streamed, never loaded whole into Python.

A bucket is read through fsspec (s3fs, gcsfs, adlfs), registered on the DuckDB connection,
and not through DuckDB's own httpfs extension: DuckDB downloads that extension at run time
from its extension host, which locked-down runners cannot reach, and PyPI's packaged copy
(duckdb-extension-httpfs) lags the DuckDB releases. fsspec's filesystems sign in with each
cloud's standard credential chain (AWS_* variables, a profile, a web identity, the instance's
role; Google's application default credentials; Azure's variables), and honour
AWS_ENDPOINT_URL for S3-compatible stores. The files are listed here first, so that a missing
package, a missing bucket, refused credentials and an unreachable endpoint each get their
own error and exit code before DuckDB reads anything.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from genai_gate.errors import AuthError, ConfigError, GateError, ServiceError

if TYPE_CHECKING:
    import duckdb

# a URL rather than a path on the runner: s3://, gs://, az://, https://...
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]+://", re.I)
_GLOB = "*?["


@dataclass(frozen=True)
class Store:
    """How one bucket protocol is read: the fsspec package, and where it comes from."""

    name: str
    package: str
    install: str  # how genai-gate gets the package
    credentials: str  # the chain the package signs in with, in a line or two


_AWS = (
    "the AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
    "AWS_PROFILE, a web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), or the "
    "machine's role; AWS_ENDPOINT_URL for an S3-compatible store (MinIO, Ceph...)"
)
STORES = {
    "s3": Store("S3", "s3fs", "installed with genai-gate", _AWS),
    "s3a": Store("S3", "s3fs", "installed with genai-gate", _AWS),
    "gs": Store(
        "Google Cloud Storage",
        "gcsfs",
        "the gcs extra (the action's `extras: gcs`, or pip install 'genai-gate[gcs]')",
        "Google's application default credentials: GOOGLE_APPLICATION_CREDENTIALS, "
        "google-github-actions/auth, or the machine's service account",
    ),
    "az": Store(
        "Azure Blob Storage",
        "adlfs",
        "the azure extra (the action's `extras: azure`, or pip install 'genai-gate[azure]')",
        "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or "
        "AZURE_STORAGE_CONNECTION_STRING, or Azure's default credential (azure/login)",
    ),
}
STORES["gcs"] = STORES["gs"]
STORES["abfs"] = STORES["abfss"] = STORES["az"]


def is_remote(spec: str) -> bool:
    return bool(_REMOTE.match(spec))


def expand(spec: str, base: Path) -> list[Path]:
    """The local files (or the one folder) a path or glob names, relative to `base`."""
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(ch in spec for ch in _GLOB):
        # Path.glob takes no absolute pattern
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True))  # noqa: PTH207
    return [path] if path.exists() else []


def _data_file(name: str) -> bool:
    # hidden files and `_`-prefixed ones (Spark's and Delta's markers) are not data
    return not name.startswith((".", "_"))


def files_in(folder: Path) -> list[Path]:
    """A folder's data files, hidden and `_`-prefixed ones (Spark's markers) left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and _data_file(p.name))


def suffix(file: Path | str) -> str:
    return PurePosixPath(str(file)).suffix.lower()


def sql_list(files: Sequence[Path | str]) -> str:
    # DuckDB strings have no backslash escapes: only the quote is doubled
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"


# ---------------------------------------------------------------- buckets


@dataclass(frozen=True)
class BucketFiles:
    """The data files a bucket URL names, and the filesystem DuckDB reads them through."""

    filesystem: Any  # an fsspec AbstractFileSystem (fsspec ships no type information)
    files: tuple[str, ...]  # full URLs, sorted


def _store(spec: str, key: str, example: str) -> tuple[str, Store]:
    protocol = spec.split("://", 1)[0].lower()
    store = STORES.get(protocol)
    if store is None:
        raise ConfigError(
            f"{key}: {spec!r} is a {protocol}:// URL; the files are read on the runner or in "
            "a bucket (s3://, gs://, az://)",
            fix="Copy the files to the runner in a step before, or name their bucket:\n"
            f"  {example}",
        )
    return protocol, store


def bucket_filesystem(spec: str, key: str, example: str) -> Any:
    """A new fsspec filesystem for the URL's protocol, signed in with its standard chain
    (nothing is called yet)."""
    import fsspec

    protocol, store = _store(spec, key, example)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError:
        raise ConfigError(
            f"{key}: reading {store.name} ({protocol}://) needs the {store.package} package, "
            "which is not installed",
            fix=f"Install it with {store.install}.",
        ) from None
    # a fresh instance: fsspec caches filesystems by argument, with the credentials they
    # found, and a long-lived process (tests, a notebook) may have changed them since
    return cls(skip_instance_cache=True)


def bucket_files(spec: str, key: str, example: str) -> BucketFiles:
    """List what `spec` names in its bucket: a glob (`s3://logs/bot/**/*.parquet`), a
    prefix (every data file under it) or one object; then read the first byte of the first
    file, so that a credential that may list but not read fails here too."""
    _, store = _store(spec, key, example)
    fs = bucket_filesystem(spec, key, example)
    try:
        if any(ch in spec.split("://", 1)[1] for ch in _GLOB):
            found = fs.glob(spec, detail=True)
        else:
            found = fs.find(spec, detail=True)
        kept = sorted(
            (fs.unstrip_protocol(path), int(info.get("size") or 0))
            for path, info in found.items()
            if info.get("type") == "file" and _data_file(PurePosixPath(path).name)
        )
        files = [path for path, _ in kept]
        # a range read of an empty object is refused (416), so the probe reads a non-empty one
        probe = next((path for path, size in kept if size > 0), None)
        if probe is not None:
            fs.cat_file(probe, start=0, end=1)
    except Exception as exc:
        raise bucket_error(exc, spec, key, store) from None
    if not files:
        raise ConfigError(
            f"{key}: {spec!r} matches no file in the bucket",
            fix="Check the bucket, the prefix and the files' suffix (a glob needs them all: "
            f"`**` matches any depth):\n  {example}",
        )
    return BucketFiles(fs, tuple(files))


def _kind(exc: BaseException) -> str:
    """The failure's kind from its class names (botocore, google-auth and azure-core name
    theirs plainly; none is imported here)."""
    names = " ".join(c.__name__ for c in type(exc).__mro__)
    if isinstance(exc, PermissionError) or re.search(r"Credential|Auth|Token|Signature", names):
        return "auth"
    if isinstance(exc, FileNotFoundError) or re.search(r"NotFound|NoSuch", names):
        return "missing"
    return "service"


def bucket_error(exc: BaseException, spec: str, key: str, store: Store) -> GateError:
    """A failure to list or read a bucket, as the error that owns its exit code: a missing
    bucket is the config's (2), a refused or absent credential is auth (3), the rest (an
    unreachable endpoint, a server error) the service's (4)."""
    why = _first_line(exc)
    kind = _kind(exc)
    if kind == "missing":
        return ConfigError(
            f"{key}: {spec!r}: {why}",
            fix=f"Check the bucket's name (and, for an S3-compatible store, AWS_ENDPOINT_URL): "
            f"{store.name} says it does not exist.",
        )
    if kind == "auth":
        return AuthError(
            f"{key}: {store.name} refused to list or read {spec!r}: {why}",
            fix=f"genai-gate signs in to {store.name} with {store.credentials}. Give the job "
            "credentials that may list the bucket and read the files, e.g. on GitHub Actions "
            "for S3:\n"
            "  - uses: aws-actions/configure-aws-credentials@v4\n"
            "    with:\n"
            "      role-to-assume: arn:aws:iam::123456789012:role/read-inference-logs\n"
            "      aws-region: eu-west-1\n"
            "(the role needs s3:ListBucket on the bucket and s3:GetObject on the prefix)",
        )
    return ServiceError(
        f"{key}: cannot reach {store.name} for {spec!r}: {why}",
        fix="Check that the runner can reach the store (and, for an S3-compatible store, "
        "AWS_ENDPOINT_URL), then run again.",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text.splitlines()[0][:400]}" if text else name


# ---------------------------------------------------------------- DuckDB


def connect(
    spill_to: Path | None = None, filesystem: Any | None = None
) -> duckdb.DuckDBPyConnection:
    """DuckDB in this process, set up for reading captures. With `spill_to`, a query that
    needs more than SPILL_LIMIT of working memory (an aggregation over millions of keys)
    spills to that folder instead of growing the process. With `filesystem` (an fsspec
    filesystem), DuckDB reads its protocol's URLs through it."""
    import duckdb

    # 2 threads: the runner's cores; more threads hold more row groups at once (see
    # benchmarks/README.md: the peak RSS grows with row-group size x threads)
    con = duckdb.connect(config={"threads": 2})
    # a stored time with a zone is compared as an instant: a cast would otherwise use the
    # machine's local zone, and rows in the hours after `since` vanished outside UTC
    con.execute("SET TimeZone = 'UTC'")
    if spill_to is not None:
        con.execute(f"SET memory_limit = '{SPILL_LIMIT}'")
        con.execute("SET temp_directory = ?", [str(spill_to)])
        con.execute("SET preserve_insertion_order = false")
    if filesystem is not None:
        con.register_filesystem(filesystem)
    return con


# DuckDB's own limit is 80% of the machine's memory: a runner has 7-16 GiB, and the analysis
# should leave the judges and the rest of the run room; past this it spills to disk
SPILL_LIMIT = "512MB"

"""Captured traffic in files, for DuckDB: what every backend's file reader shares (the
Databricks inference table's local copies, KServe's logged CloudEvents).

A path is a file, a folder, a glob, or (for DuckDB's httpfs) a bucket URL; DuckDB reads
the files in place, streamed, never loaded whole into Python.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# a URL DuckDB reads itself (httpfs): s3://, gs://, az://, https://...
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]+://", re.I)


def is_remote(spec: str) -> bool:
    return bool(_REMOTE.match(spec))


def expand(spec: str, base: Path) -> list[Path]:
    """The local files (or the one folder) a path or glob names, relative to `base`."""
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(ch in spec for ch in "*?["):
        # Path.glob takes no absolute pattern
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True))  # noqa: PTH207
    return [path] if path.exists() else []


def files_in(folder: Path) -> list[Path]:
    """A folder's data files, hidden and `_`-prefixed ones (Spark's markers) left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def sql_list(files: Sequence[Path | str]) -> str:
    # DuckDB strings have no backslash escapes: only the quote is doubled
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in files) + "]"


def connect(spill_to: Path | None = None) -> duckdb.DuckDBPyConnection:
    """DuckDB in this process, set up for reading captures. With `spill_to`, a query that
    needs more than SPILL_LIMIT of working memory (an aggregation over millions of keys)
    spills to that folder instead of growing the process."""
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
    return con


# DuckDB's own limit is 80% of the machine's memory: a runner has 7-16 GiB, and the analysis
# should leave the judges and the rest of the run room; past this it spills to disk
SPILL_LIMIT = "512MB"

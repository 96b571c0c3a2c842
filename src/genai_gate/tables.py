"""A Unity Catalog table as an eval set: `data: uc:catalog.schema.table[@version]`.

The data layer parses the reference and turns what a reader returns into rows; reading is a
platform's job (`backends/databricks/uc_table.py` reads through a SQL warehouse), so the
data layer sees only this module's `TableReader` protocol and imports no SDK.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PREFIX = "uc:"
# a part is what Unity Catalog accepts unquoted or back-quoted: no dot, space or back-quote
_PART = r"[^.\s`@]+"
_REF = re.compile(rf"^{PREFIX}({_PART})\.({_PART})\.({_PART})(?:@(\d+))?$")

FORMAT = "uc-table"
REF_HELP = (
    "data: uc:main.eval.qa_set      # the table's current version, recorded in the evidence\n"
    "data: uc:main.eval.qa_set@12   # Delta version 12 (VERSION AS OF 12): the same rows "
    "every run"
)


@dataclass(frozen=True)
class TableRef:
    catalog: str
    schema: str
    table: str
    version: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"

    def __str__(self) -> str:
        pinned = f"@{self.version}" if self.version is not None else ""
        return f"{PREFIX}{self.full_name}{pinned}"


def is_table(data: str) -> bool:
    return data.strip().startswith(PREFIX)


def parse(data: str) -> TableRef:
    """`uc:catalog.schema.table[@version]`; ValueError saying what is wrong otherwise."""
    m = _REF.match(data.strip())
    if m is None:
        raise ValueError(
            f"{data!r} is not a Unity Catalog table; write uc:<catalog>.<schema>.<table>, "
            "optionally with @<version> (a Delta version number)"
        )
    return TableRef(m[1], m[2], m[3], int(m[4]) if m[4] is not None else None)


@dataclass(frozen=True)
class TableRead:
    """One version of a table as read: its records, in a stable order, and its columns."""

    ref: TableRef  # with the version that was read (None: the table keeps no history)
    records: Sequence[dict[str, Any]]
    columns: Sequence[str]


class TableReader(Protocol):
    """Reads one version of a table (the current one when `ref.version` is None)."""

    def read(self, ref: TableRef) -> TableRead: ...

"""A Unity Catalog table as an eval set, read through a SQL warehouse.

The version is pinned before the rows are read: `@version` as given, else the table's
latest from `DESCRIBE HISTORY`, then `SELECT * ... VERSION AS OF <v>`, so the rows, the
digest and the version in the evidence all name one snapshot even while someone writes to
the table. A table without history (a view, a foreign table) is read as it is, and its
version is recorded as unknown.
"""

from __future__ import annotations

from typing import Any

from genai_gate.backends.databricks.warehouse import WarehouseEngine
from genai_gate.errors import DataError
from genai_gate.tables import TableRead, TableRef

# Delta's answer for a table (or view) that keeps no history
_NO_HISTORY = ("DELTA_", "NOT_A_DELTA", "UNSUPPORTED", "EXPECT_TABLE_NOT_VIEW")


def quoted(ref: TableRef) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in (ref.catalog, ref.schema, ref.table))


class UcTableReader:
    """`TableReader` (tables.py) on a warehouse: chunked Arrow results (EXTERNAL_LINKS)."""

    def __init__(self, engine: WarehouseEngine) -> None:
        self.engine = engine

    def latest_version(self, ref: TableRef) -> int | None:
        try:
            rows = self.engine.query(f"DESCRIBE HISTORY {quoted(ref)} LIMIT 1", {})
        except DataError as exc:
            if any(word in exc.message for word in _NO_HISTORY):
                return None
            raise
        return int(str(rows[0]["version"])) if rows else None

    def read(self, ref: TableRef) -> TableRead:
        version = ref.version if ref.version is not None else self.latest_version(ref)
        sql = f"SELECT * FROM {quoted(ref)}"
        if version is not None:
            sql += f" VERSION AS OF {int(version)}"
        table = self.engine.arrow(sql, {})
        records: list[dict[str, Any]] = table.to_pylist()
        return TableRead(
            TableRef(ref.catalog, ref.schema, ref.table, version),
            records,
            list(table.column_names),
        )

"""SQL on a Databricks SQL warehouse (the inference table, a uc: eval table): the Statement
Execution API through databricks-sdk, polled, with results fetched chunk by chunk."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from genai_gate.backends.databricks.inference_table import SERVED_ENTITIES, TrafficSource
from genai_gate.errors import DataError, ServiceError

if TYPE_CHECKING:
    import pyarrow as pa
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.sql import StatementResponse

STATEMENT_TIMEOUT = 600.0  # seconds a statement may run before we cancel it
# a statement that failed for the service's sake, not for the query's (exit 4, not 2)
_SERVICE_CODES = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "INTERNAL_ERROR",
        "RESOURCE_EXHAUSTED",
        "SERVICE_UNDER_MAINTENANCE",
        "DEADLINE_EXCEEDED",
        "IO_ERROR",
        "ABORTED",
        "UNKNOWN",
    }
)


class WarehouseEngine:
    """The Statement Execution API: submit, poll until terminal, fetch every chunk.

    `query` fetches JSON_ARRAY chunks inline (aggregates and samples: small); `arrow`
    fetches an eval table as Arrow IPC streams through EXTERNAL_LINKS, the API's form for
    large results (INLINE is JSON only and capped at 25 MiB), typed as the table is.
    """

    def __init__(
        self,
        client: WorkspaceClient,
        warehouse_id: str,
        errors: Callable[[str], Any],
        poll_seconds: float = 0.1,
        *,
        purpose: str = "the inference-table query",
        grant: str = f"the payload table and {SERVED_ENTITIES}",
    ) -> None:
        self.w = client
        self.warehouse_id = warehouse_id
        self.errors = errors  # a context-manager factory mapping SDK errors to ours
        self.poll = poll_seconds
        self.purpose = purpose
        self.grant = grant

    def columns(self, table: str) -> list[str]:
        rows = self.query(f"SELECT * FROM {table} LIMIT 0", {}, want_columns=True)
        return [str(r["name"]) for r in rows]

    def _execute(
        self, sql: str, params: Mapping[str, tuple[str, str]], *, arrow: bool
    ) -> StatementResponse:
        """Submit, then poll until the statement ends; raise unless it SUCCEEDED."""
        from databricks.sdk.service.sql import (
            Disposition,
            Format,
            StatementParameterListItem,
            StatementState,
        )

        resp = self.w.statement_execution.execute_statement(
            statement=sql,
            warehouse_id=self.warehouse_id,
            disposition=Disposition.EXTERNAL_LINKS if arrow else Disposition.INLINE,
            format=Format.ARROW_STREAM if arrow else Format.JSON_ARRAY,
            wait_timeout="10s",
            parameters=[
                StatementParameterListItem(name=n, value=v, type=t) for n, (v, t) in params.items()
            ],
        )
        deadline = time.monotonic() + STATEMENT_TIMEOUT
        pause = self.poll
        state = resp.status.state if resp.status else None
        while state in (StatementState.PENDING, StatementState.RUNNING):
            if time.monotonic() > deadline:
                self.w.statement_execution.cancel_execution(str(resp.statement_id))
                raise ServiceError(
                    f"the statement on warehouse {self.warehouse_id} ran over "
                    f"{STATEMENT_TIMEOUT:g} s and was cancelled"
                )
            time.sleep(pause)
            # short statements answer in well under a second; long ones are polled less
            pause = min(pause * 1.5, 5.0)
            resp = self.w.statement_execution.get_statement(str(resp.statement_id))
            state = resp.status.state if resp.status else None
        if state != StatementState.SUCCEEDED:
            error = resp.status.error if resp.status else None
            message = error.message if error and error.message else str(state)
            code = error.error_code.value if error and error.error_code else ""
            if code in _SERVICE_CODES:
                raise ServiceError(
                    f"warehouse {self.warehouse_id} could not run {self.purpose} "
                    f"({code}): {message}",
                    fix="Retry later; check the warehouse's state in the SQL UI.",
                )
            raise DataError(
                f"{self.purpose} failed on warehouse {self.warehouse_id}: {message}",
                fix=f"Check that the service principal can read {self.grant} (SELECT), and "
                "that warehouse-id is right.",
            )
        return resp

    def query(
        self,
        sql: str,
        params: Mapping[str, tuple[str, str]],
        *,
        want_columns: bool = False,
    ) -> list[dict[str, Any]]:
        with self.errors("running SQL on the warehouse"):
            resp = self._execute(sql, params, arrow=False)
            columns = [
                c.name or f"_{i}"
                for i, c in enumerate(
                    (
                        resp.manifest.schema.columns
                        if resp.manifest and resp.manifest.schema
                        else None
                    )
                    or []
                )
            ]
            if want_columns:
                return [{"name": c} for c in columns]
            rows: list[Sequence[str | None]] = []
            chunk = resp.result
            while chunk is not None:
                rows.extend(chunk.data_array or [])
                if chunk.next_chunk_index is None:
                    break
                chunk = self.w.statement_execution.get_statement_result_chunk_n(
                    str(resp.statement_id), chunk.next_chunk_index
                )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def arrow(self, sql: str, params: Mapping[str, tuple[str, str]]) -> pa.Table:
        """The result as one Arrow table, chunk by chunk from its external links.

        A link is a short-lived presigned URL to cloud storage: it is fetched without the
        workspace's Authorization header (the API's docs say so; storage refuses a second
        credential), with the headers the link names.
        """
        import pyarrow as pa
        import requests

        with self.errors("reading the result of SQL on the warehouse"):
            resp = self._execute(sql, params, arrow=True)
            batches: list[pa.RecordBatch] = []
            schema: pa.Schema | None = None
            links = list(resp.result.external_links or []) if resp.result else []
            while links:
                link = links.pop(0)
                got = requests.get(
                    str(link.external_link),
                    headers=dict(link.http_headers or {}),
                    timeout=STATEMENT_TIMEOUT,
                )
                if got.status_code != 200:
                    raise ServiceError(
                        f"warehouse {self.warehouse_id}: chunk {link.chunk_index} of the result "
                        f"could not be downloaded (HTTP {got.status_code})",
                        fix="Retry; a link is valid for 15 minutes, so a very slow download "
                        "can outlive it.",
                    )
                with pa.ipc.open_stream(got.content) as stream:
                    schema = stream.schema
                    batches.extend(stream)
                if link.next_chunk_index is not None and not links:
                    more = self.w.statement_execution.get_statement_result_chunk_n(
                        str(resp.statement_id), link.next_chunk_index
                    )
                    links = list(more.external_links or [])
        if schema is None:
            # no rows: no chunk holds a schema; the manifest names the columns
            names = [
                c.name or f"_{i}"
                for i, c in enumerate(
                    (resp.manifest.schema.columns if resp.manifest and resp.manifest.schema else [])
                    or []
                )
            ]
            return pa.table({n: pa.array([], pa.null()) for n in names})
        return pa.Table.from_batches(batches, schema)


def warehouse_source(
    engine: WarehouseEngine, payload_table: str, models: Mapping[tuple[str, str], str]
) -> TrafficSource:
    return TrafficSource(engine, payload_table, SERVED_ENTITIES, payload_table, models)

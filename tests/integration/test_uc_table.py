"""`data: uc:catalog.schema.table[@version]` read through the emulator's SQL warehouse.

The table is a real Delta table (deltalake) with history; the warehouse answers DESCRIBE
HISTORY and `VERSION AS OF` from it and sends the rows as Arrow chunks behind external links,
which genai-gate fetches without the workspace's credential.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import QA_ROWS, CliResult, Project
from tests.fakes.databricks import WAREHOUSE_ID, FakeDatabricks

pytestmark = pytest.mark.integration

TABLE = "main.eval.qa"


def _config(data: str, extra: str = "") -> str:
    return (
        f"data: {data}\nwarehouse-id: {WAREHOUSE_ID}\nmodel: python:qa_model:predict\n"
        "scorers: [exact_match]\nthresholds:\n  exact_match/mean: '>= 0.5'\n" + extra
    )


@pytest.fixture
def table(
    databricks_workspace: FakeDatabricks, databricks_pat_env: dict[str, str]
) -> FakeDatabricks:
    """Version 0: three rows; version 1: all four (an overwrite)."""
    assert databricks_workspace.write_table(TABLE, QA_ROWS[:3]) == 0
    assert databricks_workspace.write_table(TABLE, QA_ROWS) == 1
    return databricks_workspace


def _run(project: Project, cli: Any, data: str, extra: str = "") -> CliResult:
    project.config(_config(data, extra))
    result: CliResult = project.eval(cli)
    return result


def test_a_pinned_version_is_read_as_it_was(
    project: Project, cli: Any, table: FakeDatabricks
) -> None:
    result = _run(project, cli, f"uc:{TABLE}@0")
    assert result.code == 0, result.text
    doc = project.results()
    assert doc["rows"] == 3
    assert doc["dataset"]["format"] == "uc-table"
    assert doc["dataset"]["table"] == {"name": TABLE, "version": 0}
    assert doc["dataset"]["path"] == f"uc:{TABLE}@0"
    evidence = json.loads((project.out / "evidence.json").read_text())
    data = evidence["records"][-1]["data"]
    assert data["table"] == {"name": TABLE, "version": 0}
    assert data["digest"] == doc["dataset_digest"]


def test_the_latest_version_is_pinned_and_recorded(
    project: Project, cli: Any, table: FakeDatabricks
) -> None:
    result = _run(project, cli, f"uc:{TABLE}")
    assert result.code == 0, result.text
    doc = project.results()
    assert doc["rows"] == 4
    assert doc["dataset"]["table"] == {"name": TABLE, "version": 1}
    history = [r for r in table.requests if r.path == "/api/2.0/sql/statements"]
    assert len(history) == 2  # DESCRIBE HISTORY, then SELECT ... VERSION AS OF 1


def test_rows_come_as_arrow_chunks_behind_links_fetched_without_credentials(
    project: Project, cli: Any, table: FakeDatabricks
) -> None:
    table.sql_chunk_rows = 1  # four chunks, linked one to the next
    assert _run(project, cli, f"uc:{TABLE}@1").code == 0
    downloads = [r for r in table.requests if r.path.startswith("/_storage/")]
    assert len(downloads) == 4
    assert {r.auth for r in downloads} == {"none"}
    chunk_calls = [r for r in table.requests if "/result/chunks/" in r.path]
    assert len(chunk_calls) == 3


def test_the_digest_is_the_same_however_the_rows_arrive(
    project: Project, cli: Any, table: FakeDatabricks
) -> None:
    assert _run(project, cli, f"uc:{TABLE}@1").code == 0
    first = project.results()
    table.sql_chunk_rows = 3
    # the same rows appended in another order make a new version with the same content
    assert table.write_table(TABLE, list(reversed(QA_ROWS))) == 2
    assert _run(project, cli, f"uc:{TABLE}@2").code == 0
    second = project.results()
    assert second["dataset_digest"] == first["dataset_digest"]
    assert second["dataset"]["file_sha256"] == first["dataset"]["file_sha256"]
    assert _run(project, cli, f"uc:{TABLE}@0").code == 0
    assert project.results()["dataset_digest"] != first["dataset_digest"]


def test_the_columns_mapping_applies_to_a_table(
    project: Project, cli: Any, databricks_workspace: FakeDatabricks, databricks_pat_env: Any
) -> None:
    flat = [
        {"question": r["inputs"]["question"], "answer": r["expectations"]["expected_response"]}
        for r in QA_ROWS
    ]
    databricks_workspace.write_table("main.eval.flat", flat)
    result = _run(
        project,
        cli,
        "uc:main.eval.flat",
        "columns:\n  inputs: question\n  expectations: answer\n",
    )
    assert result.code == 0, result.text
    assert project.results()["metrics"]["exact_match/mean"] == 0.75


def test_a_version_the_table_never_had_is_bad_input(
    project: Project, cli: Any, table: FakeDatabricks
) -> None:
    result = _run(project, cli, f"uc:{TABLE}@9")
    assert result.code == 2, result.text
    assert "Cannot time travel Delta table to version 9" in result.err
    assert "Available versions: [0, 1]" in result.err


def test_an_unknown_table_is_bad_input(project: Project, cli: Any, table: FakeDatabricks) -> None:
    result = _run(project, cli, "uc:main.eval.nope")
    assert result.code == 2, result.text
    assert "TABLE_OR_VIEW_NOT_FOUND" in result.err


def test_a_table_needs_a_warehouse(project: Project, cli: Any, table: FakeDatabricks) -> None:
    project.config(_config(f"uc:{TABLE}").replace(f"warehouse-id: {WAREHOUSE_ID}\n", ""))
    result = project.eval(cli)
    assert result.code == 2, result.text
    assert "warehouse-id: " in result.err
    assert not [r for r in table.requests if r.path.startswith("/api/")]


def test_a_table_without_history_is_read_unpinned(
    project: Project, cli: Any, databricks_workspace: FakeDatabricks, databricks_pat_env: Any
) -> None:
    folder = databricks_workspace.table_path("main.eval.plain")
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in QA_ROWS))
    result = _run(project, cli, "uc:main.eval.plain")
    assert result.code == 0, result.text
    assert project.results()["dataset"]["table"] == {"name": "main.eval.plain", "version": None}

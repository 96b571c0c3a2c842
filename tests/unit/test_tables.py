"""The `uc:` reference (tables.py), its config check, and turning a table's records into rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from genai_gate.config import Columns, Config
from genai_gate.data import load_table
from genai_gate.errors import DataError
from genai_gate.tables import TableRead, TableRef, is_table, parse


def test_a_reference_names_catalog_schema_table_and_maybe_a_version() -> None:
    assert parse("uc:main.eval.qa") == TableRef("main", "eval", "qa", None)
    assert parse(" uc:main.eval.qa@12 ") == TableRef("main", "eval", "qa", 12)
    assert str(TableRef("main", "eval", "qa", 12)) == "uc:main.eval.qa@12"
    assert TableRef("main", "eval", "qa").full_name == "main.eval.qa"
    assert is_table("uc:a.b.c") and not is_table("eval/qa.jsonl")


@pytest.mark.parametrize(
    "bad", ["uc:main.qa", "uc:a.b.c.d", "uc:a.b.c@v1", "uc:a.b.c@", "uc:a b.c.d", "uc:"]
)
def test_a_malformed_reference_says_the_form(bad: str) -> None:
    with pytest.raises(ValueError, match=r"uc:<catalog>\.<schema>\.<table>"):
        parse(bad)


def test_the_config_checks_the_form() -> None:
    assert Config(data="uc:main.eval.qa@3").data == "uc:main.eval.qa@3"
    with pytest.raises(ValueError, match="not a Unity Catalog table"):
        Config(data="uc:main.qa")


class _Reader:
    def __init__(self, records: Sequence[dict[str, Any]], version: int | None = 4) -> None:
        self.records = records
        self.version = version
        self.asked: list[TableRef] = []

    def read(self, ref: TableRef) -> TableRead:
        self.asked.append(ref)
        pinned = TableRef(ref.catalog, ref.schema, ref.table, self.version)
        columns = list(dict.fromkeys(k for r in self.records for k in r))
        return TableRead(pinned, self.records, columns)


ROWS = [
    {"question": "b?", "answer": "2"},
    {"question": "a?", "answer": "1"},
    {"question": "c?", "answer": "3"},
]
MAPPING = Columns(inputs="question", expectations="answer")


def test_rows_are_ordered_by_content_so_the_digest_does_not_depend_on_the_read() -> None:
    one = load_table(parse("uc:m.e.t"), _Reader(ROWS), MAPPING)
    two = load_table(parse("uc:m.e.t"), _Reader(list(reversed(ROWS))), MAPPING)
    assert one.digest == two.digest and one.file_sha256 == two.file_sha256
    assert [r.inputs["question"] for r in one.rows] == ["a?", "b?", "c?"]
    assert one.rows[0].expectations == {"expected_response": "1"}
    assert one.table == TableRef("m", "e", "t", 4)
    assert str(one.path) == "uc:m.e.t@4"
    assert one.format == "uc-table"


def test_limit_takes_the_first_rows_of_that_order() -> None:
    limited = load_table(parse("uc:m.e.t"), _Reader(ROWS), MAPPING, limit=2)
    assert [r.inputs["question"] for r in limited.rows] == ["a?", "b?"]


def test_an_empty_table_and_a_missing_column_are_data_errors() -> None:
    with pytest.raises(DataError, match="has no rows"):
        load_table(parse("uc:m.e.t"), _Reader([]), MAPPING)
    with pytest.raises(DataError, match="does not have the configured columns"):
        load_table(
            parse("uc:m.e.t"), _Reader(ROWS), Columns(inputs="question", expectations="answr")
        )

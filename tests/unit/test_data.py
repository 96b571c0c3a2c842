"""load_dataset on real files: every format, both shapes, `columns:`, the digest, and errors."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genai_gate.config import Columns
from genai_gate.data import load_dataset
from genai_gate.errors import DataError
from genai_gate.results import Dataset

# ---------------------------------------------------------------- writers

Rows = list[dict[str, Any]]


def _cell(value: Any) -> Any:
    # CSV cannot hold a dict: MLflow-shaped CSVs carry JSON text in the cell
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value


def write_csv(path: Path, rows: Rows) -> Path:
    names = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(v) for k, v in r.items()})
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: Rows) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def write_json(path: Path, rows: Rows) -> Path:
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def write_json_data(path: Path, rows: Rows) -> Path:
    path.write_text(json.dumps({"data": rows}, ensure_ascii=False), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: Rows) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


Writer = Callable[[Path, Rows], Path]
WRITERS: dict[str, tuple[str, Writer]] = {
    "csv": ("qa.csv", write_csv),
    "jsonl": ("qa.jsonl", write_jsonl),
    "json-array": ("qa.json", write_json),
    "json-data": ("qa.json", write_json_data),
    "parquet": ("qa.parquet", write_parquet),
}
FORMAT_OF = {
    "csv": "csv",
    "jsonl": "jsonl",
    "json-array": "json",
    "json-data": "json",
    "parquet": "parquet",
}
# how a message points at the second record of each format
SECOND = {
    "csv": "row 2",
    "jsonl": "line 2",
    "json-array": "record 2",
    "json-data": "record 2",
    "parquet": "row 2",
}


def write(kind: str, tmp_path: Path, rows: Rows) -> Path:
    name, writer = WRITERS[kind]
    return writer(tmp_path / name, rows)


MLFLOW_ROWS: Rows = [
    {"inputs": {"question": "What is 2+2?"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "Capital of France?"}, "expectations": {"expected_response": "Paris"}},
    {"inputs": {"question": "Color of the sky?"}, "expectations": {"expected_response": "blue"}},
]
SEED_ROWS: Rows = [
    {"inputs": "What is 2+2?", "ground_truth": "4"},
    {"inputs": "Capital of France?", "ground_truth": "Paris"},
    {"inputs": "Color of the sky?", "ground_truth": "blue"},
]
PLAIN_ROWS: Rows = [
    {"question": "What is 2+2?", "context": "arithmetic", "answer": "4"},
    {"question": "Capital of France?", "context": "geography", "answer": "Paris"},
    {"question": "Color of the sky?", "context": "physics", "answer": "blue"},
]


def load(path: Path, columns: Columns | None = None, *, limit: int | None = None) -> Dataset:
    return load_dataset(path, columns or Columns(), limit=limit)


def data_error(path: Path, columns: Columns | None = None) -> str:
    """The rendered DataError (message and problems) that loading `path` raises.

    The file's folder is shown as DIR, so that words in pytest's temp folder names
    (test_empty_file0, ...) cannot satisfy an assertion.
    """
    with pytest.raises(DataError) as info:
        load(path, columns)
    return info.value.render().replace(str(path.parent), "DIR")


# ---------------------------------------------------------------- shapes in every format


@pytest.mark.parametrize("kind", list(WRITERS))
def test_mlflow_shape(kind: str, tmp_path: Path) -> None:
    path = write(kind, tmp_path, MLFLOW_ROWS)
    ds = load(path)
    assert ds.path == path
    assert ds.format == FORMAT_OF[kind]
    assert [r.inputs for r in ds.rows] == [r["inputs"] for r in MLFLOW_ROWS]
    assert [r.expectations for r in ds.rows] == [r["expectations"] for r in MLFLOW_ROWS]
    assert [r.outputs for r in ds.rows] == [None, None, None]
    assert [r.index for r in ds.rows] == [0, 1, 2]
    assert ds.rows[1].where == SECOND[kind]
    assert any(r.expectations for r in ds.rows)
    assert not ds.has_outputs
    assert set(ds.columns) == {"inputs", "expectations"}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_seed_shape(kind: str, tmp_path: Path) -> None:
    ds = load(write(kind, tmp_path, SEED_ROWS))
    assert [r.inputs for r in ds.rows] == [{"inputs": r["inputs"]} for r in SEED_ROWS]
    assert [r.expectations for r in ds.rows] == [
        {"expected_response": r["ground_truth"]} for r in SEED_ROWS
    ]
    assert not ds.has_outputs


@pytest.mark.parametrize("kind", list(WRITERS))
def test_outputs_column_means_precomputed_answers(kind: str, tmp_path: Path) -> None:
    rows = [{**r, "outputs": r["expectations"]["expected_response"]} for r in MLFLOW_ROWS]
    ds = load(write(kind, tmp_path, rows))
    assert ds.has_outputs
    assert [r.outputs for r in ds.rows] == ["4", "Paris", "blue"]


@pytest.mark.parametrize("kind", list(WRITERS))
def test_columns_one_input_column(kind: str, tmp_path: Path) -> None:
    path = write(kind, tmp_path, PLAIN_ROWS)
    ds = load(path, Columns(inputs="question", expectations="answer"))
    assert [r.inputs for r in ds.rows] == [{"question": r["question"]} for r in PLAIN_ROWS]
    assert [r.expectations for r in ds.rows] == [
        {"expected_response": r["answer"]} for r in PLAIN_ROWS
    ]


@pytest.mark.parametrize("kind", list(WRITERS))
def test_columns_several_input_columns(kind: str, tmp_path: Path) -> None:
    path = write(kind, tmp_path, PLAIN_ROWS)
    ds = load(path, Columns(inputs=["question", "context"], expectations="answer"))
    assert [r.inputs for r in ds.rows] == [
        {"question": r["question"], "context": r["context"]} for r in PLAIN_ROWS
    ]
    assert ds.rows[2].expectations == {"expected_response": "blue"}


def test_columns_outputs_mapping(tmp_path: Path) -> None:
    rows = [{**r, "prediction": r["answer"].upper()} for r in PLAIN_ROWS]
    ds = load(
        write_jsonl(tmp_path / "qa.jsonl", rows),
        Columns(inputs="question", expectations="answer", outputs="prediction"),
    )
    assert ds.has_outputs
    assert [r.outputs for r in ds.rows] == ["4", "PARIS", "BLUE"]


def test_ground_truth_found_without_mapping_next_to_a_mapped_input(tmp_path: Path) -> None:
    rows = [{"question": r["question"], "ground_truth": r["answer"]} for r in PLAIN_ROWS]
    ds = load(write_csv(tmp_path / "qa.csv", rows), Columns(inputs="question"))
    assert ds.rows[0].inputs == {"question": "What is 2+2?"}
    assert ds.rows[0].expectations == {"expected_response": "4"}


def test_csv_cells_carry_json_objects(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        "inputs,expectations\n"
        '"{""question"": ""What is 2+2?"", ""context"": ""maths, basic""}",'
        '"{""expected_response"": ""4"", ""facts"": [""2+2=4""]}"\n'
        '"{""question"": ""Capital of France?"", ""context"": """"}",'
        '"{""expected_response"": ""Paris""}"\n',
        encoding="utf-8",
    )
    ds = load(path)
    assert ds.rows[0].inputs == {"question": "What is 2+2?", "context": "maths, basic"}
    assert ds.rows[0].expectations == {"expected_response": "4", "facts": ["2+2=4"]}
    assert ds.rows[1].inputs == {"question": "Capital of France?", "context": ""}
    assert ds.rows[1].expectations == {"expected_response": "Paris"}


def test_csv_values_stay_text(tmp_path: Path) -> None:
    # "007" and "NA" are answers, not the number 7 and a missing value
    rows = [{"question": "Bond's number?", "answer": "007"}, {"question": "N/A?", "answer": "NA"}]
    ds = load(
        write_csv(tmp_path / "qa.csv", rows), Columns(inputs="question", expectations="answer")
    )
    assert [r.expectations for r in ds.rows] == [
        {"expected_response": "007"},
        {"expected_response": "NA"},
    ]


def test_a_row_without_expectations_is_kept(tmp_path: Path) -> None:
    rows = [MLFLOW_ROWS[0], {"inputs": {"question": "Capital of France?"}}]
    ds = load(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert ds.rows[0].expectations == {"expected_response": "4"}
    assert ds.rows[1].expectations is None
    assert any(r.expectations for r in ds.rows)


def test_jsonl_blank_lines_are_skipped_and_lines_still_counted(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        json.dumps(MLFLOW_ROWS[0]) + "\n\n   \n" + json.dumps(MLFLOW_ROWS[1]) + "\n",
        encoding="utf-8",
    )
    ds = load(path)
    assert [r.where for r in ds.rows] == ["line 1", "line 4"]


@pytest.mark.parametrize(("name", "fmt"), [("qa.ndjson", "jsonl"), ("QA.JSONL", "jsonl")])
def test_extension_aliases(name: str, fmt: str, tmp_path: Path) -> None:
    ds = load(write_jsonl(tmp_path / name, MLFLOW_ROWS))
    assert ds.format == fmt
    assert len(ds.rows) == 3


def test_pq_extension(tmp_path: Path) -> None:
    ds = load(write_parquet(tmp_path / "qa.pq", MLFLOW_ROWS))
    assert ds.format == "parquet"
    assert ds.rows[1].inputs == {"question": "Capital of France?"}


@pytest.mark.parametrize("kind", ["jsonl", "json-array", "csv"])
def test_utf8_bom_is_accepted(kind: str, tmp_path: Path) -> None:
    # Excel and Windows editors save UTF-8 with a byte-order mark; it is still UTF-8
    path = write(kind, tmp_path, MLFLOW_ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ds = load(path)
    assert [r.inputs for r in ds.rows] == [r["inputs"] for r in MLFLOW_ROWS]


def test_non_ascii_text_round_trips(tmp_path: Path) -> None:
    rows = [{"inputs": {"question": "Café? 東京?"}, "expectations": {"expected_response": "ja ✓"}}]
    for kind in ("csv", "jsonl", "parquet"):
        ds = load(write(kind, tmp_path, rows))
        assert ds.rows[0].inputs == {"question": "Café? 東京?"}
        assert ds.rows[0].expectations == {"expected_response": "ja ✓"}


# ---------------------------------------------------------------- digest and limit


def test_digest_is_the_same_for_the_same_rows_in_csv_jsonl_and_parquet(tmp_path: Path) -> None:
    digests = {
        kind: load(write(kind, tmp_path, MLFLOW_ROWS))
        for kind in ("csv", "jsonl", "parquet", "json-array", "json-data")
    }
    assert len({d.digest for d in digests.values()}) == 1, {k: d.digest for k, d in digests.items()}
    assert next(iter(digests.values())).digest.startswith("sha256:")
    # the file hashes differ, because the bytes do
    assert len({d.file_sha256 for d in digests.values()}) == len(digests)


def test_digest_is_the_same_for_the_seed_shape_across_formats(tmp_path: Path) -> None:
    digests = {
        load(write(kind, tmp_path, SEED_ROWS)).digest for kind in ("csv", "jsonl", "parquet")
    }
    assert len(digests) == 1


def test_digest_changes_when_one_answer_changes(tmp_path: Path) -> None:
    before = load(write_jsonl(tmp_path / "a.jsonl", MLFLOW_ROWS)).digest
    changed = [dict(r) for r in MLFLOW_ROWS]
    changed[2] = {**changed[2], "expectations": {"expected_response": "Blue"}}
    assert load(write_jsonl(tmp_path / "b.jsonl", changed)).digest != before
    assert load(write_csv(tmp_path / "b.csv", changed)).digest != before
    assert load(write_parquet(tmp_path / "b.parquet", changed)).digest != before


def test_digest_changes_when_one_input_changes_or_rows_are_reordered(tmp_path: Path) -> None:
    before = load(write_jsonl(tmp_path / "a.jsonl", MLFLOW_ROWS)).digest
    changed = [dict(r) for r in MLFLOW_ROWS]
    changed[0] = {**changed[0], "inputs": {"question": "What is 2+3?"}}
    assert load(write_jsonl(tmp_path / "b.jsonl", changed)).digest != before
    reordered = list(reversed(MLFLOW_ROWS))
    assert load(write_jsonl(tmp_path / "c.jsonl", reordered)).digest != before


def test_digest_ignores_formatting(tmp_path: Path) -> None:
    compact = write_jsonl(tmp_path / "a.jsonl", MLFLOW_ROWS)
    spaced = tmp_path / "b.jsonl"
    spaced.write_text(
        "".join(
            json.dumps(r, indent=None, separators=(" , ", " : ")) + "\n\n" for r in MLFLOW_ROWS
        ),
        encoding="utf-8",
    )
    assert load(compact).digest == load(spaced).digest
    assert load(compact).file_sha256 != load(spaced).file_sha256


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json-array", "parquet"])
def test_limit_keeps_the_first_rows(kind: str, tmp_path: Path) -> None:
    full = load(write(kind, tmp_path, MLFLOW_ROWS))
    ds = load(full.path, limit=2)
    assert [r.inputs for r in ds.rows] == [r["inputs"] for r in MLFLOW_ROWS[:2]]
    assert ds.digest != full.digest
    # the digest covers exactly the rows evaluated: the same as a file holding only those
    only_two = load(write_jsonl(tmp_path / "two.jsonl", MLFLOW_ROWS[:2]))
    assert ds.digest == only_two.digest


def test_limit_larger_than_the_file(tmp_path: Path) -> None:
    ds = load(write_jsonl(tmp_path / "qa.jsonl", MLFLOW_ROWS), limit=100)
    assert len(ds.rows) == 3


# ---------------------------------------------------------------- malformed files


def test_missing_file(tmp_path: Path) -> None:
    text = data_error(tmp_path / "eval" / "nope.jsonl")
    assert "nope.jsonl" in text
    assert "does not exist" in text


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "qa.txt"
    path.write_text("What is 2+2?\n", encoding="utf-8")
    text = data_error(path)
    assert "qa.txt" in text
    assert ".txt" in text
    assert ".jsonl" in text  # the fix lists what is supported


def test_path_is_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "qa.jsonl"
    folder.mkdir()
    write_jsonl(folder / "part-0.jsonl", MLFLOW_ROWS)
    text = data_error(folder)
    assert "qa.jsonl" in text
    assert "directory" in text


@pytest.mark.parametrize("name", ["qa.jsonl", "qa.csv", "qa.json", "qa.parquet"])
@pytest.mark.parametrize("content", [b"", b"\n  \n"], ids=["empty", "blank"])
def test_empty_file(name: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    text = data_error(path)
    assert name in text
    assert "empty" in text


def test_csv_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\n", encoding="utf-8")
    text = data_error(path, Columns(inputs="question", expectations="answer"))
    assert "qa.csv" in text
    assert "no rows" in text


@pytest.mark.parametrize("doc", ["[]", '{"data": []}'])
def test_json_without_records(doc: str, tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(doc, encoding="utf-8")
    text = data_error(path)
    assert "qa.json" in text
    assert "no rows" in text


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "qa.parquet"
    schema = pa.schema([("inputs", pa.string()), ("ground_truth", pa.string())])
    pq.write_table(pa.Table.from_pylist([], schema=schema), path)
    text = data_error(path)
    assert "qa.parquet" in text
    assert "no rows" in text


def test_bad_jsonl_line_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    lines = [json.dumps(r) for r in MLFLOW_ROWS]
    lines[1] = lines[1][:-1]  # drop the closing brace of line 2
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = data_error(path)
    assert "DIR/qa.jsonl, line 2" in text
    assert "not valid JSON" in text
    assert re.search(r"column \d+", text), text


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(MLFLOW_ROWS[0]) + '\n"What is 2+2?"\n', encoding="utf-8")
    text = data_error(path)
    assert "DIR/qa.jsonl, line 2" in text
    assert "str" in text


def test_jsonl_with_a_json_array_on_one_line(tmp_path: Path) -> None:
    # a JSON array saved with the .jsonl extension: one line, and it is not an object
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps(MLFLOW_ROWS) + "\n", encoding="utf-8")
    text = data_error(path)
    assert "DIR/qa.jsonl, line 1" in text
    assert "list" in text


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(
        '[\n  {"inputs": {"question": "What is 2+2?"}},\n  {"inputs": {"question": "x"}\n]\n',
        encoding="utf-8",
    )
    text = data_error(path)
    assert "qa.json" in text
    assert "line 4" in text
    assert "column 1" in text


@pytest.mark.parametrize(
    "doc",
    [{"question": "What is 2+2?"}, {"data": [], "records": []}, "What is 2+2?", 42],
    ids=["object", "two-lists", "string", "number"],
)
def test_json_that_is_not_an_array(doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    text = data_error(path)
    assert "qa.json" in text
    assert "array" in text


def test_json_record_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(
        json.dumps([MLFLOW_ROWS[0], MLFLOW_ROWS[1], ["What is 2+2?"]]), encoding="utf-8"
    )
    text = data_error(path)
    assert "qa.json" in text
    assert "record 3" in text
    assert "list" in text


def test_malformed_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        "question,answer\nWhat is 2+2?,4\nCapital of France?,Paris,extra\n", encoding="utf-8"
    )
    text = data_error(path, Columns(inputs="question", expectations="answer"))
    assert "qa.csv" in text
    assert "line 3" in text


def test_csv_with_an_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text(
        'question,answer\n"What is 2+2?,4\nCapital of France?,Paris\n', encoding="utf-8"
    )
    text = data_error(path, Columns(inputs="question", expectations="answer"))
    assert "qa.csv" in text
    assert "line 2" in text or "row 1" in text, text


def _latin1_third_row(kind: str, tmp_path: Path) -> Path:
    rows = [*MLFLOW_ROWS[:2], {"inputs": {"question": "Café?"}, "expectations": {"x": "y"}}]
    path = write(kind, tmp_path, rows)
    # re-encode as Latin-1: the é of the third record is no longer UTF-8
    text = path.read_text(encoding="utf-8")
    assert "é" in text
    path.write_bytes(text.encode("latin-1"))
    return path


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    path = _latin1_third_row("jsonl", tmp_path)
    text = data_error(path)
    assert "qa.jsonl" in text
    assert "UTF-8" in text
    assert "line 3" in text


def test_non_utf8_csv_names_the_row(tmp_path: Path) -> None:
    path = _latin1_third_row("csv", tmp_path)
    text = data_error(path)
    assert "qa.csv" in text
    assert "UTF-8" in text
    # the third record is row 3, line 4 of the file; either way of pointing at it will do
    assert re.search(r"\brow 3\b|\bline 4\b", text), text


def test_non_utf8_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_bytes(
        b'[\n{"inputs": {"question": "What is 2+2?"}},\n{"inputs": {"question": "Caf\xe9?"}}\n]\n'
    )
    text = data_error(path)
    assert "qa.json" in text
    assert "UTF-8" in text
    assert "line 3" in text


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "qa.parquet"
    path.write_bytes(b"PAR1 not really parquet at all \x00\x01\x02")
    text = data_error(path)
    assert "qa.parquet" in text
    assert "Parquet" in text


def test_truncated_parquet(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "qa.parquet", MLFLOW_ROWS)
    path.write_bytes(path.read_bytes()[:-40])
    text = data_error(path)
    assert "qa.parquet" in text
    assert "Parquet" in text


# ---------------------------------------------------------------- rows that cannot be evaluated


@pytest.mark.parametrize("kind", list(WRITERS))
def test_no_inputs_column_suggests_a_mapping(kind: str, tmp_path: Path) -> None:
    path = write(kind, tmp_path, PLAIN_ROWS)
    text = data_error(path)
    assert path.name in text
    assert "'inputs'" in text
    assert "question, context, answer" in text
    assert "inputs: question" in text


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_mapped_columns_that_do_not_exist(kind: str, tmp_path: Path) -> None:
    path = write(kind, tmp_path, PLAIN_ROWS)
    text = data_error(
        path, Columns(inputs=["question", "passage"], expectations="reference", outputs="pred")
    )
    assert path.name in text
    assert "columns.inputs: 'passage' is not a column" in text
    assert "columns.expectations: 'reference' is not a column" in text
    assert "columns.outputs: 'pred' is not a column" in text
    assert "question" in text


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json-array", "parquet"])
def test_empty_inputs_names_the_row(kind: str, tmp_path: Path) -> None:
    rows = [dict(r) for r in PLAIN_ROWS]
    rows[1]["question"] = ""
    path = write(kind, tmp_path, rows)
    text = data_error(path, Columns(inputs="question", expectations="answer"))
    assert path.name in text
    assert SECOND[kind] in text
    assert "question" in text


def test_null_inputs_names_the_line(tmp_path: Path) -> None:
    rows = [MLFLOW_ROWS[0], {"inputs": None, "expectations": {"expected_response": "x"}}]
    text = data_error(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert "qa.jsonl" in text
    assert "line 2" in text
    assert "inputs" in text


def test_input_keys_must_be_python_names(tmp_path: Path) -> None:
    rows = [MLFLOW_ROWS[0], {"inputs": {"user question": "Hi?"}}]
    text = data_error(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert "qa.jsonl" in text
    assert "line 2" in text
    assert "'user question'" in text


def test_empty_precomputed_output_names_the_row(tmp_path: Path) -> None:
    rows = [{**r, "outputs": r["expectations"]["expected_response"]} for r in MLFLOW_ROWS]
    rows[2]["outputs"] = ""
    text = data_error(write_csv(tmp_path / "qa.csv", rows))
    assert "qa.csv" in text
    assert "row 3" in text
    assert "'outputs'" in text


def test_every_bad_row_is_listed(tmp_path: Path) -> None:
    rows = [dict(r) for r in PLAIN_ROWS] * 2
    rows = [{**r, "question": "" if i % 2 else r["question"]} for i, r in enumerate(rows)]
    text = data_error(
        write_csv(tmp_path / "qa.csv", rows), Columns(inputs="question", expectations="answer")
    )
    assert all(f"row {n}" in text for n in (2, 4, 6)), text
    assert "row 1:" not in text


@pytest.mark.parametrize("role", ["inputs", "expectations"])
def test_csv_cell_with_broken_json_names_row_and_column(role: str, tmp_path: Path) -> None:
    # a cell that starts like a JSON object but is not one: silently using the text
    # would call the model with the wrong arguments or compare against garbage
    cells = {
        "inputs": ['"{""question"": ""What is 2+2?""}"', '"{""question"": ""Capital?"",}"'],
        "expectations": [
            '"{""expected_response"": ""4""}"',
            '"{""expected_response"": ""Paris"""',
        ],
    }
    other = "expectations" if role == "inputs" else "inputs"
    good = {
        "inputs": '"{""question"": ""Capital?""}"',
        "expectations": '"{""expected_response"": ""Paris""}"',
    }
    first = {"inputs": cells["inputs"][0], "expectations": cells["expectations"][0]}
    second = {role: cells[role][1], other: good[other]}
    path = tmp_path / "qa.csv"
    path.write_text(
        "inputs,expectations\n"
        f"{first['inputs']},{first['expectations']}\n"
        f"{second['inputs']},{second['expectations']}\n",
        encoding="utf-8",
    )
    text = data_error(path)
    assert "qa.csv" in text
    assert "row 2" in text
    assert role in text
    assert "JSON" in text


# ---------------------------------------------------------------- retrieved context

CONTEXT_ROWS: Rows = [
    {"inputs": {"question": "Capital of France?"}, "retrieved_context": "Paris is the capital."},
    {
        "inputs": {"question": "Color of the sky?"},
        "retrieved_context": ["The sky is blue.", "Rayleigh scattering."],
    },
    {
        "inputs": {"question": "Largest planet?"},
        "retrieved_context": [
            {"page_content": "Jupiter is the largest.", "metadata": {"doc_uri": "p.md"}},
            {"content": "Saturn is second.", "doc_uri": "s.md"},
        ],
    },
]
CONTEXT_DOCS = [
    ({"page_content": "Paris is the capital.", "metadata": {}},),
    (
        {"page_content": "The sky is blue.", "metadata": {}},
        {"page_content": "Rayleigh scattering.", "metadata": {}},
    ),
    (
        {"page_content": "Jupiter is the largest.", "metadata": {"doc_uri": "p.md"}},
        {"page_content": "Saturn is second.", "metadata": {"doc_uri": "s.md"}},
    ),
]


@pytest.mark.parametrize("kind", ["jsonl", "json-array", "parquet"])
def test_context_column_text_passages_or_documents(kind: str, tmp_path: Path) -> None:
    rows = CONTEXT_ROWS if kind != "parquet" else CONTEXT_ROWS[1:2]  # one type per column
    ds = load(write(kind, tmp_path, rows))
    assert ds.context_column == "retrieved_context"
    expected = CONTEXT_DOCS if kind != "parquet" else CONTEXT_DOCS[1:2]
    assert [r.context for r in ds.rows] == expected


def test_csv_context_cells_hold_json_lists_or_text(tmp_path: Path) -> None:
    rows = [
        {"question": "a?", "passages": json.dumps(["one", "two"])},
        {"question": "b?", "passages": "[1] is a footnote, not JSON"},
    ]
    ds = load(write_csv(tmp_path / "qa.csv", rows), Columns(inputs="question", context="passages"))
    assert ds.context_column == "passages"
    assert [len(r.context or ()) for r in ds.rows] == [2, 1]
    assert ds.rows[1].context == ({"page_content": "[1] is a footnote, not JSON", "metadata": {}},)


def test_no_context_column(tmp_path: Path) -> None:
    ds = load(write_jsonl(tmp_path / "qa.jsonl", MLFLOW_ROWS))
    assert ds.context_column is None
    assert all(r.context is None for r in ds.rows)


def test_context_is_part_of_the_digest_only_when_there_is_some(tmp_path: Path) -> None:
    plain = load(write_jsonl(tmp_path / "a.jsonl", MLFLOW_ROWS)).digest
    with_empty = [{**r, "context": None} for r in MLFLOW_ROWS]
    assert load(write_jsonl(tmp_path / "b.jsonl", with_empty)).digest == plain
    with_context = [{**r, "context": "x"} for r in MLFLOW_ROWS]
    assert load(write_jsonl(tmp_path / "c.jsonl", with_context)).digest != plain


def test_a_context_dict_without_text_is_kept_as_json(tmp_path: Path) -> None:
    # an auto-detected `context` column may hold anything; only the groundedness judge reads it
    rows = [{"inputs": {"q": "a"}, "context": {"topic": "geography", "level": 2}}]
    ds = load(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert ds.rows[0].context == (
        {"page_content": '{"topic": "geography", "level": 2}', "metadata": {}},
    )


def test_mapped_context_column_must_exist(tmp_path: Path) -> None:
    text = data_error(write_jsonl(tmp_path / "qa.jsonl", MLFLOW_ROWS), Columns(context="docs"))
    assert "columns.context: 'docs' is not a column of qa.jsonl" in text

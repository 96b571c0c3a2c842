"""Eval sets: CSV, JSONL, JSON, Parquet and Unity Catalog tables into typed rows, with a
content digest.

Two shapes are understood without configuration: MLflow's (`inputs` dict, `expectations`
dict, optional `outputs`) and the seed pipeline's (`inputs` text + `ground_truth`). Any other
naming goes through `columns:`. Every problem names the file, the row or line, and the column.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from genai_gate.config import Columns
from genai_gate.errors import DataError
from genai_gate.results import Dataset, EvalRow
from genai_gate.scorer import EXPECTED_KEY, not_an_answer
from genai_gate.tables import FORMAT as TABLE_FORMAT
from genai_gate.tables import TableReader, TableRef

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_EXPECTATION_FALLBACKS = ("expectations", "ground_truth", "expected_response", "targets")
# columns that hold the retrieved context, when `columns: {context: ...}` does not say
CONTEXT_COLUMNS = ("retrieved_context", "context", "contexts")
_DOCUMENT_TEXT_KEYS = ("page_content", "content", "text")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


class CellError(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys in silence: a second "expectations" would
    # replace the reference the author meant
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _strict_json(text: str) -> Any:
    """json.loads that refuses duplicate keys; raises json.JSONDecodeError, _DuplicateKey,
    RecursionError (nesting) or ValueError (an integer over Python's 4300-digit limit)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, _DuplicateKey):
        return f"the key {str(exc)!r} is given twice in one object; JSON would keep only the last"
    if isinstance(exc, RecursionError):
        return "nested too deeply to be an eval row"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    return f"not usable JSON ({str(exc).split(';')[0]})"


def _maybe_json_object(value: Any) -> Any:
    # CSV cannot hold a dict, so MLflow-shaped CSVs carry JSON text in the cell. A cell that
    # starts like an object but does not parse is an error: used as text, it would call the
    # model with the wrong arguments or compare answers with garbage.
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise CellError(
                f"starts like a JSON object but is not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
    return value


def _decode(path: Path, raw: bytes) -> str:
    """UTF-8 (a byte-order mark, as Excel and Notepad write, is fine), or where it is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column})",
            fix="Save the file as UTF-8. From Latin-1, for example:\n"
            f"  iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}",
        ) from None


def _read_records(
    path: Path, fmt: str, raw: bytes
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """Records with their locations, and the column names in file order."""
    if fmt == "parquet":
        return _read_parquet(path)
    text = _decode(path, raw)
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    if fmt == "json":
        return _read_json(path, text)
    import csv
    import io

    import pandas as pd

    header = next(csv.reader(io.StringIO(text)), [])
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        # pandas would rename the second to "name.1", and the first would be read in silence
        raise DataError(
            f"{path}: the header names column(s) {', '.join(map(repr, twice))} more than once",
            fix="Give every column its own name, then map the one you mean:\n"
            "  columns:\n    expectations: answer",
        )
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=object, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return [], []
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path} is not valid CSV: {exc}".strip(),
            fix="Quote fields that contain commas or newlines.",
        ) from exc
    records = frame.to_dict("records")
    return [(f"row {i + 1}", {str(k): v for k, v in r.items()}) for i, r in enumerate(records)], [
        str(c) for c in frame.columns
    ]


def _read_parquet(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # a folder works too: Spark and Databricks write x.parquet/ as a folder of parts
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file: {exc}") from exc
    rows = table.to_pylist()
    return [(f"row {i + 1}", r) for i, r in enumerate(rows)], list(table.column_names)


def _read_jsonl(path: Path, text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    records: list[tuple[str, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = _strict_json(line)
        except (ValueError, RecursionError) as exc:
            raise DataError(
                f"{path}, line {n}: {_json_problem(exc)}",
                fix="Each line of a JSONL file is one JSON object, for example:\n"
                '  {"inputs": {"question": "What is MLflow?"}, '
                '"expectations": {"expected_response": "..."}}',
            ) from exc
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {n}: expected a JSON object, found {type(obj).__name__}")
        columns.update(dict.fromkeys(obj))
        records.append((f"line {n}", obj))
    return records, list(columns)


def _key_lines(text: str, key: str) -> str:
    """The two lines of `key` given twice in one object.

    json reports no position for a valid key, and no well-kept library gives them, so this
    walks the (already parsed, hence valid) text: strings, and a stack of each open
    object's keys with their lines.
    """
    objects: list[dict[str, int] | None] = []  # None for an array
    line, i, n = 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c in "{[":
            objects.append({} if c == "{" else None)
        elif c in "}]":
            objects.pop()
        elif c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            current = objects[-1] if objects else None
            if k < n and text[k] == ":" and current is not None:
                name = json.loads(text[i : j + 1])
                if name in current and name == key:
                    return f" (lines {current[name]} and {line})"
                current[name] = line
            i = j
        i += 1
    return ""


def _read_json(path: Path, text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    try:
        doc = _strict_json(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    except _DuplicateKey as exc:
        raise DataError(f"{path}: {_json_problem(exc)}{_key_lines(text, str(exc))}") from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: {_json_problem(exc)}") from None
    if isinstance(doc, dict):
        lists = [
            v for k, v in doc.items() if k in ("data", "records", "rows") and isinstance(v, list)
        ]
        if len(lists) != 1:
            raise DataError(
                f'{path}: a JSON eval set is an array of objects (or {{"data": [...]}})',
                fix='[\n  {"inputs": {"question": "..."},\n'
                '   "expectations": {"expected_response": "..."}}\n]',
            )
        doc = lists[0]
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected an array of objects, found {type(doc).__name__}")
    records: list[tuple[str, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    for i, obj in enumerate(doc, start=1):
        if not isinstance(obj, dict):
            raise DataError(f"{path}, record {i}: expected an object, found {type(obj).__name__}")
        columns.update(dict.fromkeys(obj))
        records.append((f"record {i}", obj))
    return records, list(columns)


def _as_list(spec: str | list[str] | None) -> list[str] | None:
    if spec is None:
        return None
    return [spec] if isinstance(spec, str) else list(spec)


def _resolve_roles(
    path: Path, columns: Sequence[str], mapping: Columns
) -> tuple[list[str], list[str] | None, str | None, str | None]:
    present = set(columns)
    problems: list[str] = []

    inputs = _as_list(mapping.inputs)
    if inputs is None:
        inputs = ["inputs"] if "inputs" in present else None
        if inputs is None:
            guess = next(
                (c for c in ("question", "prompt", "input", "query", "request") if c in present),
                None,
            )
            hint = guess or (columns[0] if columns else "question")
            raise DataError(
                f"{path} has no 'inputs' column (columns: {', '.join(columns) or 'none'})",
                fix="Tell genai-gate which column holds the inputs:\n"
                f"  columns:\n    inputs: {hint}",
            )
    expectations = _as_list(mapping.expectations)
    if expectations is None:
        found = next((c for c in _EXPECTATION_FALLBACKS if c in present), None)
        expectations = [found] if found else None
    outputs = mapping.outputs or ("outputs" if "outputs" in present else None)
    context = mapping.context or next((c for c in CONTEXT_COLUMNS if c in present), None)

    fixes: list[str] = []
    for role, names in (
        ("inputs", inputs),
        ("expectations", expectations or []),
        ("outputs", [outputs] if outputs else []),
        ("context", [context] if context else []),
    ):
        for name in names:
            if name not in present:
                close = difflib.get_close_matches(name, columns, n=1)
                problems.append(
                    f"columns.{role}: {name!r} is not a column of {path.name}"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                )
                fixes.append(f"    {role}: {close[0] if close else '<one of its columns>'}")
    if problems:
        raise DataError(
            f"{path} does not have the configured columns (it has: {', '.join(columns) or 'none'})",
            problems=problems,
            fix="Map genai-gate's roles to your file's columns:\n  columns:\n" + "\n".join(fixes),
        )
    # one column in two roles grades each answer against itself, or hands the model the
    # reference answer: the score would mean nothing
    roles = {
        "inputs": set(inputs),
        "expectations": set(expectations or []),
        "outputs": {outputs} if outputs else set(),
    }
    for a, b in (("inputs", "expectations"), ("outputs", "expectations"), ("inputs", "outputs")):
        for name in sorted(roles[a] & roles[b]):
            problems.append(f"column {name!r} is both the {a} and the {b}")
    if problems:
        raise DataError(
            f"{path}: one column cannot play two roles",
            problems=problems,
            fix="Give each role its own column:\n  columns:\n    inputs: question\n"
            "    expectations: answer",
        )
    return inputs, expectations, outputs, context


def _role_value(
    record: dict[str, Any], names: list[str], scalar_key: str | None
) -> dict[str, Any] | None:
    """One column of dicts is used as is; scalars become {key: value}; several columns merge."""
    if len(names) == 1:
        try:
            value = _maybe_json_object(record.get(names[0]))
        except CellError as exc:
            raise CellError(f"column {names[0]!r} {exc}") from None
        if _missing(value):
            return None
        if isinstance(value, dict):
            return value
        return {scalar_key or names[0]: value}
    merged = {}
    for n in names:
        try:
            merged[n] = _maybe_json_object(record.get(n))
        except CellError as exc:
            raise CellError(f"column {n!r} {exc}") from None
    return None if all(_missing(v) for v in merged.values()) else merged


def _unusable_expectation(expectations: dict[str, Any] | None) -> str | None:
    """NaN, an infinity or an empty list is no reference: scored, it would pass or fail
    every answer the same way in silence."""
    for key, value in (expectations or {}).items():
        items = value if isinstance(value, list | tuple) else [value]
        if isinstance(value, list | tuple) and not value:
            return f"expectations.{key} is an empty list; give at least one reference"
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                return f"expectations.{key} is {item!r}, which is no reference answer"
    return None


def _document(item: Any) -> dict[str, Any]:
    """One passage as MLflow Document fields. A dict with none of page_content/content/text is
    kept whole as JSON text, as MLflow's judges take any JSON: an auto-detected `context`
    column of other dicts must not stop an eval that never reads it."""
    if isinstance(item, dict):
        key = next((k for k in _DOCUMENT_TEXT_KEYS if k in item), None)
        if key is None:
            return {
                "page_content": json.dumps(item, default=str, ensure_ascii=False),
                "metadata": {},
            }
        metadata = item.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        for extra in ("doc_uri", "id", "source"):
            if extra in item and extra not in metadata:
                metadata[extra] = item[extra]
        return {"page_content": str(item[key]), "metadata": metadata}
    return {"page_content": str(item), "metadata": {}}


def _context_value(value: Any) -> tuple[dict[str, Any], ...] | None:
    """Text, a list of passages, or documents (dicts with page_content/content/text).

    CSV holds a list as JSON text; text that merely starts with a bracket stays text.
    """
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if _missing(value):
        return None
    items = list(value) if isinstance(value, list | tuple) else [value]
    docs = tuple(_document(i) for i in items if not _missing(i))
    return docs or None


def _canonical(rows: Iterable[EvalRow]) -> bytes:
    return json.dumps(
        [
            {"inputs": r.inputs, "expectations": r.expectations, "outputs": r.outputs}
            # the key only where there is context, so digests of data without it are unchanged
            | ({"context": list(r.context)} if r.context is not None else {})
            for r in rows
        ],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def load_dataset(
    path: Path, columns: Columns, *, limit: int | None = None, use_outputs: bool = True
) -> Dataset:
    """Read and check the eval set. With `use_outputs=False` (a model will answer), an
    outputs column is left alone."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'}",
            fix="Use one of: " + ", ".join(sorted(FORMATS)),
        )
    if path.is_dir():
        if (path / "_delta_log").is_dir():
            # its folder holds files that later versions removed; reading them all as
            # Parquet would bring back deleted rows without a word
            raise DataError(
                f"{path} is a Delta table, which genai-gate does not read yet",
                fix="Export the version you want to Parquet or JSONL, for example:\n"
                "  spark.read.format('delta').load(path).toPandas().to_parquet('eval.parquet')",
            )
        if fmt != "parquet":
            raise DataError(
                f"the eval data {path} is a directory, not a {fmt.upper()} file",
                fix="Name the file itself. Folders are read only for Parquet "
                "(as Spark writes them: data: eval/qa.parquet/).",
            )
        parts = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".crc")
        raw = b"".join(hashlib.sha256(p.read_bytes()).digest() for p in parts)
    elif not path.is_file():
        raise DataError(
            f"the eval data {path} does not exist",
            fix="Paths in genai-gate.yml are relative to the config file's folder:\n"
            "  data: eval/qa.jsonl",
        )
    else:
        raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path} is empty", fix="Add at least one row to the eval set.")
    records, names = _read_records(path, fmt, raw)
    return _dataset(
        path,
        fmt,
        records,
        names,
        columns,
        limit=limit,
        use_outputs=use_outputs,
        content_sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_table(
    ref: TableRef,
    reader: TableReader,
    columns: Columns,
    *,
    limit: int | None = None,
    use_outputs: bool = True,
) -> Dataset:
    """A Unity Catalog table, read by the platform's reader, checked as a file is.

    A table has no row order, so the records are sorted by their content: the same version
    gives the same rows, the same `limit` rows and the same digest on every read.
    """
    read = reader.read(ref)
    label = Path(str(read.ref))
    if not read.records:
        raise DataError(f"{read.ref} has no rows", fix="Add at least one row to the eval set.")
    keyed = sorted(
        (
            json.dumps(r, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":")),
            r,
        )
        for r in read.records
    )
    content = hashlib.sha256("\n".join(k for k, _ in keyed).encode()).hexdigest()
    records = [(f"row {i + 1}", r) for i, (_, r) in enumerate(keyed)]
    return _dataset(
        label,
        TABLE_FORMAT,
        records,
        list(read.columns),
        columns,
        limit=limit,
        use_outputs=use_outputs,
        content_sha256=content,
        table=read.ref,
    )


def _dataset(
    path: Path,
    fmt: str,
    records: list[tuple[str, dict[str, Any]]],
    names: list[str],
    columns: Columns,
    *,
    limit: int | None,
    use_outputs: bool,
    content_sha256: str,
    table: TableRef | None = None,
) -> Dataset:
    if not records:
        raise DataError(f"{path} has no rows", fix="Add at least one row to the eval set.")
    if limit is not None:
        records = records[:limit]
    in_cols, exp_cols, out_col, ctx_col = _resolve_roles(path, names, columns)
    if not use_outputs:
        out_col = None

    rows: list[EvalRow] = []
    problems: list[str] = []
    for i, (where, record) in enumerate(records):
        try:
            inputs = _role_value(record, in_cols, None)
            expectations = _role_value(record, exp_cols, EXPECTED_KEY) if exp_cols else None
        except CellError as exc:
            problems.append(f"{where}: {exc}")
            continue
        context = _context_value(record.get(ctx_col)) if ctx_col else None
        if not inputs:
            problems.append(f"{where}: no inputs (column {', '.join(in_cols)} is empty)")
            continue
        bad_reference = _unusable_expectation(expectations)
        if bad_reference:
            problems.append(f"{where}: {bad_reference}")
            continue
        if not all(isinstance(k, str) and k.isidentifier() for k in inputs):
            bad = [k for k in inputs if not (isinstance(k, str) and k.isidentifier())]
            problems.append(f"{where}: input keys must be Python names, found {bad}")
            continue
        outputs = record.get(out_col) if out_col else None
        if out_col and _missing(outputs):
            problems.append(
                f"{where}: column {out_col!r} is empty, and no model is called "
                "for data that carries outputs"
            )
            continue
        if out_col and (why := not_an_answer(outputs)):
            problems.append(f"{where}: column {out_col!r}: {why.replace('the model', 'it')}")
            continue
        if rows and set(inputs) != set(rows[0].inputs):
            # the model is called the same way for every row; a missing key would be a
            # TypeError counted against the model, an extra one a silent change of prompt
            problems.append(
                f"{where}: input keys {sorted(inputs)} differ from {rows[0].where}'s "
                f"{sorted(rows[0].inputs)}"
            )
            continue
        rows.append(EvalRow(i, where, inputs, expectations, outputs, context))
        if len(problems) >= 20:
            break
    if problems:
        raise DataError(f"{path} has rows that cannot be evaluated", problems=problems[:20])
    return Dataset(
        path=path,
        format=fmt,
        rows=tuple(rows),
        digest="sha256:" + hashlib.sha256(_canonical(rows)).hexdigest(),
        file_sha256=content_sha256,
        columns=tuple(names),
        has_outputs=out_col is not None,
        context_column=ctx_col,
        table=table,
    )

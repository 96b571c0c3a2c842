"""evidence.json: an append-only, hash-chained audit trail of every gate, deploy and rollout.

Each record carries the sha256 of the record before it, so an edited or deleted record
shows as a broken chain (`verify_chain`). The file is rewritten atomically; a file that no
longer parses is never overwritten, because it is the audit trail.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from genai_gate.artefacts import dump_json, plain, write_json, write_raw, write_text
from genai_gate.errors import DataError

SCHEMA = "genai-gate.evidence/v1"


def _digest(record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def write_json_atomic(path: Path, doc: Any) -> None:
    """Scrubbed of secrets, atomic and 0644 (artefacts.py)."""
    write_json(path, doc)


def write_text_atomic(path: Path, text: str) -> None:
    """Scrubbed of secrets, atomic and 0644 (artefacts.py)."""
    write_text(path, text)


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path} is not valid JSON, and genai-gate will not overwrite an audit record",
            fix="Restore it from the MLflow run's artifacts or from version control, or move "
            "it aside to start a new trail.",
        ) from exc
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != SCHEMA
        or not isinstance(doc.get("records"), list)
    ):
        raise DataError(f"{path} is not a genai-gate evidence file ({SCHEMA})")
    return list(doc["records"])


def append(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    records = read_records(path)
    # the new record is scrubbed before it is chained; the earlier ones are kept byte for
    # byte, since rewriting them would break the chain they are part of
    chained = {**plain(record), "prev_sha256": _digest(records[-1]) if records else None}
    write_raw(path, dump_json({"schema": SCHEMA, "records": [*records, chained]}))
    return chained


def verify_chain(records: list[dict[str, Any]]) -> list[str]:
    """Return the breaks in the chain; an empty list means intact."""
    problems = []
    for i, rec in enumerate(records):
        expected = _digest(records[i - 1]) if i else None
        if rec.get("prev_sha256") != expected:
            problems.append(f"record {i + 1} does not follow record {i}")
    return problems


def check_trail(path: Path) -> None:
    """Refuse, before any work, to extend an evidence file that is unreadable or whose
    chain is already broken: the run would add a record to a trail nobody can trust, and
    (unreadable) find out only after the whole evaluation."""
    records = read_records(path)
    breaks = verify_chain(records)
    if breaks:
        raise DataError(
            f"{path}: the hash chain is broken, and genai-gate will not extend it",
            problems=breaks,
            fix="Restore the file from the MLflow run's artifacts or from version control, "
            "or move it aside to start a new trail.",
        )

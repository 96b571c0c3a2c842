from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_gate.errors import DataError
from genai_gate.evidence import append, read_records, verify_chain


def test_append_only_hash_chain(tmp_path: Path) -> None:
    path = tmp_path / "evidence.json"
    first = append(path, {"kind": "eval", "verdict": "passed"})
    second = append(path, {"kind": "deploy", "verdict": "done"})
    assert first["prev_sha256"] is None
    assert str(second["prev_sha256"]).startswith("sha256:")
    records = read_records(path)
    assert [r["kind"] for r in records] == ["eval", "deploy"]
    assert verify_chain(records) == []
    records[0]["verdict"] = "failed"  # tampering with history breaks the chain
    assert verify_chain(records) == ["record 2 does not follow record 1"]


def test_corrupt_evidence_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "evidence.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="will not overwrite"):
        append(path, {"kind": "eval"})
    assert path.read_text() == "{not json"
    path.write_text(json.dumps({"schema": "other", "records": []}))
    with pytest.raises(DataError):
        append(path, {"kind": "eval"})

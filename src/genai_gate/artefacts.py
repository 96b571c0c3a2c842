"""The one way an output file is written: scrubbed of secrets, atomically, readable by all.

Atomic (a temporary file in the same folder, then a rename) so a cancelled run never
leaves a half-written results.json that a later step could read as a verdict. Mode 0644
whatever the umask or `mkstemp`'s 0600: in the container flavour the files are written as
root and read by later steps that run as the runner's user.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from genai_gate.secrets import scrub, scrub_doc

MODE = 0o644


def write_raw(path: Path, text: str) -> None:
    """Atomic and 0644, without scrubbing (for a file whose parts were scrubbed already)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        Path(tmp).chmod(MODE)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_raw(path, scrub(text))


def dump_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"


def plain(doc: Any) -> Any:
    """The document as JSON values (what `default=str` would print), scrubbed."""
    return scrub_doc(json.loads(json.dumps(doc, default=str, allow_nan=False)))


def write_json(path: Path, doc: Any) -> None:
    write_raw(path, dump_json(plain(doc)))

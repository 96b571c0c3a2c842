"""A content-addressed response cache on disk, so a re-run on unchanged data is free.

The key is a sha256 over everything that decides the answer: the target's identity (model,
URL, prompt template, system prompt, parameters) and the row's inputs. One small JSON file
per answer under `dir/ab/<key>.json`, written atomically, so the folder can be kept between
runs by `actions/cache` and shared by concurrent workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = "genai-gate.cache/v1"


@dataclass(frozen=True)
class CacheEntry:
    output: Any
    latency_ms: float


class ResponseCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0
        self.write_errors = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(identity: Any, inputs: Any) -> str:
        blob = json.dumps(
            {"schema": SCHEMA, "target": identity, "inputs": inputs},
            sort_keys=True,
            default=str,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str, *, count_miss: bool = True) -> CacheEntry | None:
        """The entry, or None; `count_miss=False` for a look-up whose miss is counted by the
        layer behind it (the judge transport, behind the verdict cache)."""
        path = self._path(key)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            entry = CacheEntry(doc["output"], float(doc["latency_ms"]))
        except (OSError, ValueError, KeyError, TypeError):
            entry = None  # a missing or damaged entry is a miss, never an error
        with self._lock:
            if entry is None:
                self.misses += count_miss
            else:
                self.hits += 1
        return entry

    def put(self, key: str, output: Any, latency_ms: float) -> None:
        """Store an answer; a cache that cannot be written only costs the next run calls."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"output": output, "latency_ms": latency_ms}, fh, default=str)
            # mkstemp's 0600 would keep a root-written cache (the container) from the
            # runner's user; the same mode as every output (artefacts.MODE)
            Path(tmp).chmod(0o644)
            Path(tmp).replace(path)
        except OSError:
            with self._lock:
                self.write_errors += 1

    def stats(self) -> dict[str, Any]:
        return {"enabled": True, "dir": str(self.folder), "hits": self.hits, "misses": self.misses}

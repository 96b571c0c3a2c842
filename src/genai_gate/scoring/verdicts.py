"""Judge verdicts cached whole, so a re-run on unchanged answers makes no judge work at all.

The judge transport already caches the judge model's HTTP answers, but a cached answer still
costs MLflow's judge path (the prompt, the request schema, the parsing: about 1.5 ms of
client work a call, issue #14). This cache sits in front of that path: the key is a
sha256 over everything that decides the verdict (the scorer as MLflow serialises it, with its
prompt settings and MLflow's version; the judge's server and model; the row's inputs,
answer, expectations and context; which ask of a `repeat:` it is; and, as in the transport, the
n-th identical question of the run), and the value is the verdict and its rationale.

Only a readable verdict is kept (a single Feedback, no error, a bool, number or yes/no
string); anything else is asked again. Only `openai:/` judges are cached this way: their
server is known from the config, while an `endpoints:/` judge's workspace is not part of
its name, so its answers stay in the transport's cache alone.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from genai_gate.config import Config
from genai_gate.scoring.judges import JUDGE_PREFIX
from genai_gate.targets.cache import ResponseCache
from genai_gate.targets.openai_chat import base_url

SCHEMA = "genai-gate.verdict/v1"


def scorer_identity(scorer: Any) -> Any:
    """The scorer as MLflow serialises it, the same in every process.

    MLflow dumps a set-typed field (a built-in judge's `required_columns`) as a list in the
    set's iteration order, and that order follows the process's string-hash seed: taken as
    it comes, a re-run missed every cached verdict about half the time and sent each one
    through MLflow's judge path again. Such lists are sorted; every other list keeps its
    order (a guideline's position is part of the prompt).
    """
    if not hasattr(scorer, "model_dump"):
        return repr(scorer)
    unordered = {
        name
        for name in getattr(type(scorer), "model_fields", {})
        if isinstance(getattr(scorer, name, None), set | frozenset)
    }
    return _sorted_sets(scorer.model_dump(), unordered)


def _sorted_sets(doc: Any, unordered: set[str]) -> Any:
    if isinstance(doc, dict):
        return {
            k: sorted(v, key=repr)
            if k in unordered and isinstance(v, list | set | frozenset)
            else _sorted_sets(v, unordered)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_sorted_sets(v, unordered) for v in doc]
    return doc


class VerdictCache:
    def __init__(self, cache: ResponseCache, judge: Mapping[str, str]) -> None:
        self.cache = cache
        self.judge = dict(judge)
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(
        cls, cfg: Config, cache: ResponseCache | None, environ: Mapping[str, str]
    ) -> VerdictCache | None:
        if cache is None or not (cfg.judge or "").startswith(JUDGE_PREFIX):
            return None
        server = base_url(cfg.judge_base_url or cfg.base_url, environ)
        return cls(cache, {"judge": cfg.judge or "", "server": server.rstrip("/")})

    def key(self, scorer: Any, question: Mapping[str, Any], ask: int) -> str:
        identity = {"schema": SCHEMA, **self.judge, "scorer": scorer_identity(scorer), "ask": ask}
        digest = self.cache.key(identity, question)
        with self._lock:
            nth = self._seen.get(digest, 0)
            self._seen[digest] = nth + 1
        return self.cache.key({**identity, "occurrence": nth}, question)

    def get(self, key: str) -> Any:
        from mlflow.entities import Feedback

        entry = self.cache.get(key, count_miss=False)
        if entry is None or not isinstance(entry.output, dict):
            return None
        doc = entry.output
        if "value" not in doc or not isinstance(doc.get("name"), str):
            return None  # damaged: ask again
        return Feedback(name=doc["name"], value=doc["value"], rationale=doc.get("rationale"))

    def put(self, key: str, feedback: Any) -> None:
        from mlflow.entities import Feedback

        if not isinstance(feedback, Feedback) or feedback.error is not None:
            return
        value = feedback.value
        if isinstance(value, str):
            value = str(value.value) if hasattr(value, "value") else value  # a str enum
        if isinstance(value, float) and not math.isfinite(value):
            return
        if not isinstance(value, str | bool | int | float):
            return
        doc = {"name": feedback.name, "value": value, "rationale": feedback.rationale}
        self.cache.put(key, doc, 0.0)

"""Every secret value the run knows, and the one scrubber that every artefact goes through.

The runner's `::add-mask::` covers the job log only; results.json, rows.jsonl, summary.md,
evidence.json, the plan and analysis files, the MLflow run, the step summary, the outputs,
the annotations and the PR comment are written by us, so each writer passes its text
through `scrub` (see artefacts.py, tracking.py, github.py and cli.py).

What counts as secret:
- the values of the variables that hold keys: the configured `api-key-env` and
  `judge-api-key-env`, the Databricks, GitHub, OIDC-request and MLflow ones, and any
  variable whose name says TOKEN, SECRET, PASSWORD or API_KEY;
- the password in a tracking URI, and a token exchanged at run time (`remember`);
- anything shaped like a token, wherever it came from (a model's answer that quotes a key,
  a gateway that echoes one back): `dapi...`, `sk-...`, GitHub tokens, JWTs.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

SECRET_ENV = (
    "GENAI_GATE_GITHUB_TOKEN",
    "GITHUB_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "OPENAI_API_KEY",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
)
# a variable named like this holds a secret, whoever set it
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY)$", re.IGNORECASE)
# token shapes, scrubbed wherever they appear: Databricks PATs, OpenAI-style keys, GitHub
# tokens, JWTs (OIDC tokens among them)
TOKEN_SHAPES = re.compile(
    r"dapi[0-9a-f]{32}(?:-\d+)?"
    r"|sk-[A-Za-z0-9_-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
# shorter values are too likely to be ordinary words ("true", a port) to blank out
_MIN_LENGTH = 6

_lock = threading.Lock()
_known: set[str] = set()


def remember(*values: str | None) -> None:
    """Add secret values (an exchanged token, a key read from a file) to the run's set."""
    with _lock:
        for value in values:
            if value and len(value.strip()) >= _MIN_LENGTH:
                _known.add(value.strip())
                # as it reads inside a JSON string (a quote or backslash is escaped there)
                _known.add(json.dumps(value.strip())[1:-1])


def tracking_password(uri: str | None) -> str | None:
    return urlsplit(uri).password if uri else None


def remember_environ(environ: Mapping[str, str], key_env: Iterable[str | None] = ()) -> None:
    """Every secret the environment holds, the configured key variables included."""
    names = {*SECRET_ENV, *(n for n in key_env if n)}
    names |= {n for n in environ if _SECRET_NAME.search(n)}
    remember(*(environ.get(n) for n in names))
    for name in ("GENAI_GATE_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        remember(tracking_password(environ.get(name)))


def known() -> list[str]:
    """The run's secret values, longest first (the ones to mask in the job log)."""
    with _lock:
        return sorted(_known, key=len, reverse=True)


def scrub_credentials(text: str) -> str:
    """Blank `user:password@` out of every URL in a message (MLflow quotes the full URI)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def scrub(text: str) -> str:
    """The one scrubber: known values, then token shapes, then URL credentials."""
    for secret in known():
        if secret in text:
            text = text.replace(secret, MASK)
    return scrub_credentials(TOKEN_SHAPES.sub(MASK, text))


def scrub_doc(doc: Any) -> Any:
    """`scrub` applied to every string (keys included) of a JSON-like document."""
    if isinstance(doc, str):
        return scrub(doc)
    if isinstance(doc, Mapping):
        return {scrub(k) if isinstance(k, str) else k: scrub_doc(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [scrub_doc(v) for v in doc]
    return doc


def looks_like_token(value: str) -> bool:
    """A value that is a token, written where a variable's name belongs."""
    text = value.strip()
    if TOKEN_SHAPES.fullmatch(text) or re.fullmatch(r"dapi[0-9a-f]{8,}(-\d+)?", text):
        return True
    # a long mixed-case-and-digit run with no underscore is a key, not an UPPER_SNAKE name
    return (
        len(text) >= 20
        and "_" not in text
        and any(c.isdigit() for c in text)
        and any(c.islower() for c in text)
    )

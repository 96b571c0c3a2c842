"""Build the environment the Actions runner gives a step, and read back what the step wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def github_env(
    tmp: Path,
    *,
    event: str,
    payload: dict[str, Any],
    api_url: str = "",
    ref: str = "refs/pull/7/merge",
) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    event_path = tmp / "event.json"
    event_path.write_text(json.dumps(payload))
    for name in ("output", "summary"):
        (tmp / name).write_text("")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_OUTPUT": str(tmp / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary"),
        "GITHUB_REPOSITORY": "acme/bot",
        "GITHUB_REF": ref,
        "GITHUB_SHA": "f" * 40,
        "GITHUB_RUN_ID": "99",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.test",
        **({"GITHUB_API_URL": api_url} if api_url else {}),
    }


def pr_payload(number: int = 7, *, fork: bool = False) -> dict[str, Any]:
    head = "someone/bot" if fork else "acme/bot"
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"repo": {"full_name": head, "fork": fork}, "ref": "feature"},
            "base": {"repo": {"full_name": "acme/bot"}, "ref": "main"},
        },
        "repository": {"full_name": "acme/bot", "default_branch": "main"},
    }


def read_outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT as the runner does: `name<<DELIM` blocks or `name=value` lines."""
    text = path.read_bytes().decode()  # not read_text(): keep a value's \r as written
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := re.fullmatch(r"([^=<]+)<<(.+)", line):
            name, delim = m.groups()
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : j])
            i = j + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out

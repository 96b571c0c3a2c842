"""Every Mermaid block in every report parses with the real Mermaid parser (the `mermaid`
npm package, run by node with jsdom for its DOM). `.ci/run` installs it with
`npm ci --prefix tests`; pytest never runs npm, and skips when node or the package is absent."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import report_cases as cases

pytestmark = pytest.mark.integration

TOOLS = Path(__file__).resolve().parents[1]
SCRIPT = TOOLS / "mermaid_parse.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Mermaid parser runs on node")
    if not (TOOLS / "node_modules" / "mermaid").is_dir():
        pytest.skip("tests/node_modules has no mermaid: run `npm ci --prefix tests` (.ci/run does)")
    return node


def test_every_mermaid_block_parses() -> None:
    node = _node()
    blocks: list[tuple[str, str]] = []
    for kind, make in sorted(cases.KINDS.items()):
        for block in re.findall(r"```mermaid\n(.*?)```", make(), re.S):
            blocks.append((kind, block))
    assert len(blocks) >= 4  # the canary reports' charts, at least
    proc = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps([b for _, b in blocks]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TOOLS,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    bad = [
        (kind, block, r.get("error"))
        for (kind, block), r in zip(blocks, results, strict=True)
        if not r["ok"]
    ]
    assert not bad, bad


def test_the_parser_rejects_a_broken_chart() -> None:
    # the check has teeth: an unclosed axis is an error, not a pass
    node = _node()
    proc = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(["xychart-beta\n    x-axis [a b\n"]),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TOOLS,
        check=False,
    )
    (result,) = json.loads(proc.stdout)
    assert result["ok"] is False and "Parse error" in result["error"]

"""The bad-input corpus: every folder under tests/corpus/bad is one broken project.

Each folder holds a `genai-gate.yml`, its data and python modules, and an `expect.yml`:

    exit_code: 2                 # 0 passed, 1 gate failed, 2 bad config or input
    message:                     # substrings that must ALL appear in stdout + stderr
      - "qa.jsonl, line 3"
    env:                         # optional environment for the run
      GENAI_GATE_TRESHOLDS: "..."
    shared: [qa.jsonl, known_model.py]   # optional: files the case takes from _shared/
    args: [--data, qa.csv]       # optional: more flags; {case} is the case's (copied) folder

A case runs on a copy of its folder, with the files that `shared:` names copied in from
`_shared/`: the three-question eval set and the model that knows their answers, which most
cases need unchanged. What a case owns is what it is about.

A case fails when the exit code differs, a substring is missing, or a Python traceback
leaks out: every problem a user can cause must come back as a GateError with a fix.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CliResult, Project

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "bad"
SHARED = CORPUS / "_shared"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "expect.yml").is_file())
TRACEBACK = "Traceback (most recent call last)"


def _expect(case: Path) -> dict[str, Any]:
    doc = yaml.safe_load((case / "expect.yml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{case.name}/expect.yml is not a mapping"
    assert set(doc) <= {"exit_code", "message", "env", "shared", "args"}, (
        f"{case.name}/expect.yml: {sorted(doc)}"
    )
    for name in doc.get("shared") or []:
        assert (SHARED / name).is_file(), f"{case.name}: _shared/{name} does not exist"
        assert not (case / name).exists(), f"{case.name}: {name} both owned and shared"
    assert isinstance(doc["exit_code"], int)
    assert isinstance(doc["message"], list)
    assert doc["message"], f"{case.name}/expect.yml names no message"
    assert all(isinstance(m, str) and m for m in doc["message"])
    return doc


def _call(cli: Any, *argv: str, env: dict[str, str] | None = None) -> CliResult:
    """Run the CLI; an exception escaping main() is a bug, reported as a test failure."""
    try:
        result: CliResult = cli(*argv, env=env)
    except (Exception, SystemExit) as exc:
        pytest.fail(
            f"genai-gate eval raised {type(exc).__name__} out of main() instead of exiting "
            f"with a GateError: {exc}"
        )
    return result


def _copy(case: Path, where: Path) -> Path:
    """The case's folder with its shared files, in a folder of the test's own."""
    folder = where / case.name
    shutil.copytree(case, folder)
    for name in _expect(case).get("shared") or []:
        shutil.copy2(SHARED / name, folder / name)
    return folder


def _run(
    cli: Any,
    case: Path,
    out: Path,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> CliResult:
    folder = _copy(case, out.parent / "cases")
    extra = [a.replace("{case}", str(folder)) for a in args or []]
    config = str(folder / "genai-gate.yml")
    return _call(cli, "eval", "-c", config, "-q", "--out", str(out), *extra, env=env)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 24, [c.name for c in CASES]


def test_corpus_python_modules_have_unique_names() -> None:
    # every case imports its modules into the same process: a shared name would clash
    names = [p.name for p in CORPUS.glob("*/**/*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Path, cli: Any, tmp_path: Path) -> None:
    expect = _expect(case)
    env = {str(k): str(v) for k, v in (expect.get("env") or {}).items()}
    args = [str(a) for a in expect.get("args") or []]
    result = _run(cli, case, tmp_path / "out", env=env or None, args=args)
    text = result.text
    assert TRACEBACK not in text, f"{case.name}: a traceback leaked out:\n{text}"
    assert result.code == expect["exit_code"], (
        f"{case.name}: exit {result.code}, expected {expect['exit_code']}:\n{text}"
    )
    missing = [m for m in expect["message"] if m not in text]
    assert not missing, f"{case.name}: the output lacks {missing}:\n{text}"


def test_model_error_on_one_row_loses_no_row(cli: Any, tmp_path: Path) -> None:
    case = CORPUS / "model-raises-on-one-row"
    data = case / "qa.jsonl" if (case / "qa.jsonl").is_file() else SHARED / "qa.jsonl"
    data_lines = data.read_text(encoding="utf-8").splitlines()
    out = tmp_path / "out"
    result = _run(cli, case, out)
    assert result.code == 1, result.text

    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert doc["passed"] is False
    assert doc["rows"] == len(data_lines) == 3
    assert doc["dataset"]["rows"] == 3
    assert doc["errors"]["rows"] == 1
    assert [(e["where"], e["stage"]) for e in doc["errors"]["details"]] == [("line 2", "model")]
    assert "ValueError: upstream returned HTTP 500" in doc["errors"]["details"][0]["message"]
    # the gate still scored the other two rows, and says why it failed
    assert doc["metrics"]["exact_match/mean"] == 1.0
    assert any("max-errors allows 0" in f for f in doc["failures"])

    records = [
        json.loads(line)
        for line in (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(records) == len(data_lines)
    assert [r["row"] for r in records] == ["line 1", "line 2", "line 3"]
    by_row = {r["row"]: r for r in records}
    failed = by_row["line 2"]
    assert failed["inputs"] == {"question": "Capital of France?"}
    assert failed["expectations"] == {"expected_response": "Paris"}
    assert failed["outputs"] is None
    assert "ValueError: upstream returned HTTP 500" in failed["error"]
    for where, answer in (("line 1", "4"), ("line 3", "blue")):
        assert by_row[where]["error"] is None
        assert by_row[where]["outputs"] == answer
        assert by_row[where]["exact_match/value"] == 1.0


# ---------------------------------------------------------------- bad flags on a good project

GOOD_CONFIG = (
    "data: qa.jsonl\nmodel: python:qa_model:predict\nscorers: [exact_match]\n"
    'thresholds:\n  exact_match/mean: ">= 0.5"\n'
)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--scorers", "[exact_match"], ["--scorers"]),
        (["--set", "scorers=[exact_match"], ["--set", "scorers"]),
        (["--threshold", "{exact_match/mean"], ["--threshold"]),
        (["--threshold", "exact_match/mean"], ["--threshold", "exact_match/mean"]),
        (["--set", "max-errors"], ["--set 'max-errors' is not KEY=VALUE"]),
        (["--set", "treshold=1"], ["--set treshold", "did you mean 'thresholds'?"]),
        (["--max-errors", "lots"], ["--max-errors", "'lots' is neither a count"]),
        (["--limit", "all"], ["--limit", "'all'"]),
    ],
    ids=[
        "scorers-bad-yaml",
        "set-bad-yaml",
        "threshold-bad-yaml",
        "threshold-no-operator",
        "set-without-value",
        "set-unknown-key",
        "max-errors-word",
        "limit-word",
    ],
)
def test_bad_flag(cli: Any, project: Project, flags: list[str], message: list[str]) -> None:
    config = project.config(GOOD_CONFIG)
    result = _call(cli, "eval", "-c", str(config), "-q", "--out", str(project.out), *flags)
    text = result.text
    assert TRACEBACK not in text, text
    assert result.code == 2, f"exit {result.code}:\n{text}"
    missing = [m for m in message if m not in text]
    assert not missing, f"the output lacks {missing}:\n{text}"


# ---------------------------------------------------------------- an --out that cannot be written


def test_a_read_only_out_is_refused_before_any_model_call(cli: Any, project: Project) -> None:
    project.jsonl("qa.jsonl", [{"inputs": {"q": "x"}, "expectations": {"expected_response": "x"}}])
    project.write("m_readonly_out.py", "def predict(q):\n    raise SystemExit('called')\n")
    config = project.config("data: qa.jsonl\nmodel: python:m_readonly_out:predict\n")
    if os.geteuid() == 0:
        # root writes through permission bits; /proc takes no new folder, even from root
        result = cli("eval", "-c", str(config), "-q", "--out", "/proc/genai-gate-out")
    else:
        locked = project.root / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            result = cli("eval", "-c", str(config), "-q", "--out", str(locked / "out"))
        finally:
            locked.chmod(0o700)
    assert result.code == 2, result.text
    assert "--out" in result.text and "cannot write the results there" in result.text

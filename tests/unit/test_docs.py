"""The README and docs/ are part of the product: their reference tables must match the code.

Pure checks on files: no subprocess, no server. docs/configuration.md is generated from the
JSON Schema by scripts/gen-config-docs; the other tables are written by hand and checked here
against what they describe (action.yml, the scorer registries, the exit codes).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_gate.config import json_schema
from genai_gate.errors import ExitCode


def _repo() -> Path:
    here = Path(__file__).resolve()
    return next(p for p in here.parents if (p / "pyproject.toml").is_file())


REPO = _repo()
DOCS = REPO / "docs"
README = (REPO / "README.md").read_text()


def _doc(name: str) -> str:
    return (DOCS / name).read_text()


def _rows(text: str) -> list[str]:
    """The first cell of every table row, without its backticks."""
    return re.findall(r"^\| `([^`|]+)` \|", text, flags=re.M)


def _section(text: str, heading: str) -> str:
    """A `## heading` section of a markdown file, up to the next heading of that level."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end != -1 else len(text)]


# --- docs/configuration.md: generated from the JSON Schema ---------------------------------


def test_configuration_reference_is_up_to_date() -> None:
    generator: dict[str, Any] = runpy.run_path(str(REPO / "scripts" / "gen-config-docs"))
    expected: str = generator["render"](json_schema())
    assert _doc("configuration.md") == expected, (
        "docs/configuration.md is stale: run `uv run python scripts/gen-config-docs`"
    )


def test_every_schema_property_is_documented() -> None:
    schema = json_schema()
    documented = set(_rows(_doc("configuration.md")))
    missing = [key for key in schema["properties"] if key not in documented]
    for name, definition in schema.get("$defs", {}).items():
        missing += [f"{name}.{key}" for key in definition["properties"] if key not in documented]
    assert not missing, f"docs/configuration.md lacks {missing}"


# --- docs/action.md: read against action.yml at test time -----------------------------------


def _action(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / path).read_text())
    return loaded


@pytest.mark.parametrize("path", ["action.yml", "container/action.yml"])
def test_every_action_input_and_output_is_documented(path: str) -> None:
    action = _action(path)
    text = _doc("action.md")
    # config keys are inputs of the same name, documented once in configuration.md
    inputs = set(_rows(_section(text, "## Inputs"))) | set(json_schema()["properties"])
    outputs = set(_rows(_section(text, "## Outputs")))
    missing_inputs = [name for name in action["inputs"] if name not in inputs]
    missing_outputs = [name for name in action["outputs"] if name not in outputs]
    assert not missing_inputs, f"docs/action.md's Inputs table lacks {missing_inputs}"
    assert not missing_outputs, f"docs/action.md's Outputs table lacks {missing_outputs}"


def test_action_docs_name_no_input_or_output_that_does_not_exist() -> None:
    action = _action("action.yml")
    text = _doc("action.md")
    inputs = _rows(_section(text, "## Inputs"))
    outputs = _rows(_section(text, "## Outputs"))
    assert not [n for n in inputs if n not in action["inputs"]]
    assert not [n for n in outputs if n not in action["outputs"]]


# --- scorers, exit codes ----------------------------------------------------------------------


def test_every_scorer_is_in_a_scorer_table() -> None:
    from genai_gate.scoring.builtin import BUILTINS
    from genai_gate.scoring.judges import JUDGES

    documented = set(_rows(_doc("scorers.md")))
    missing = [name for name in [*BUILTINS, *JUDGES] if name not in documented]
    assert not missing, f"docs/scorers.md's scorer tables lack {missing}"


def test_exit_code_table() -> None:
    text = _section(_doc("troubleshooting.md"), "## Exit codes")
    for code in ExitCode:
        assert f"\n| {int(code)} |" in text, f"docs/troubleshooting.md lacks exit code {int(code)}"


# --- the README ---------------------------------------------------------------------------------


def test_first_two_commands() -> None:
    """The README's first two commands set everything up: the quickstart, offline, with the
    runtime only; then the tests."""
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block == [
        "pip install uv && uv run --frozen --no-dev genai-gate eval "
        "-c examples/quickstart/genai-gate.yml",
        "uv run --frozen pytest",
    ]


def test_readme_is_short_and_shows_the_report() -> None:
    assert len(README.encode()) < 15_000
    assert "uses: <owner>/genai-gate@v1" in README
    assert "](docs/img/summary.png)" in README
    assert (DOCS / "img" / "summary.png").stat().st_size < 300_000


# pip install genai-gate, 'genai-gate[semantic]', ... but not "genai-gate @ git+https://..."
_FROM_AN_INDEX = re.compile(
    r"""pip install\s+(?:-\S+\s+)*['"]?genai-gate(?:\[[^\]]*\])?(?!\s*@)(?:['"`\s]|$)"""
)


def _user_facing_files() -> list[Path]:
    files = [REPO / "README.md", *DOCS.rglob("*.md")]
    files += [p for p in (REPO / "examples").rglob("*") if p.suffix in (".md", ".yml", ".py")]
    return files


def test_no_install_from_a_package_index() -> None:
    """genai-gate is on no package index: `pip install genai-gate` would fail."""
    found = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for path in _user_facing_files()
        for match in _FROM_AN_INDEX.finditer(path.read_text())
    ]
    assert not found, found


def test_the_install_pattern_tells_index_from_repository() -> None:
    assert _FROM_AN_INDEX.search("pip install genai-gate")
    assert _FROM_AN_INDEX.search("pip install 'genai-gate[semantic]'")
    assert _FROM_AN_INDEX.search("`pip install genai-gate tokenizers`")
    assert not _FROM_AN_INDEX.search('pip install "genai-gate @ git+https://github.com/o/r@v1"')
    assert not _FROM_AN_INDEX.search('pip install "genai-gate[semantic] @ git+https://x/r@v1"')


# --- links ----------------------------------------------------------------------------------


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {
        "".join(c for c in h.strip().lower() if c.isalnum() or c in " -_").replace(" ", "-")
        for h in headings
    }


def test_relative_links_resolve() -> None:
    broken = []
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken

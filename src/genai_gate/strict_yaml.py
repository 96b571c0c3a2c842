"""YAML that cannot weaken a config in silence or exhaust memory.

PyYAML's `safe_load` keeps the last of two equal keys without a word (a strict threshold
followed by a loose one passes), and expands anchors into shared objects whose expanded
size is exponential in the number of aliases (a "billion laughs" under `model-params`
validates, then blows up when it is serialised). PyYAML offers no option for either, so
this is a `SafeLoader` subclass: it records every duplicate key with both lines, and
checks the composed node graph's expanded size before anything is constructed.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# A config is a few hundred lines; a megabyte of YAML is not a config.
MAX_BYTES = 1_000_000
# Nodes after expanding every alias; a big config has a few thousand.
MAX_NODES = 100_000


class YamlProblem(ValueError):
    """The text parses, but must not be used; `problems` are one line each, with lines."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems

    def __str__(self) -> str:
        # one line where only one fits (a GENAI_GATE_* value, a --set value)
        return "; ".join([self.message, *self.problems])


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then an explicit key is an override by design
            if not isinstance(key_node, ScalarNode):
                continue  # an unhashable key: the constructor reports it
            key = self.construct_object(key_node, deep=False)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append(
                    (
                        line,
                        f"line {line}: {key!r} is given twice (first at line {seen[key]}); "
                        "YAML would keep only the last one",
                    )
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            # Python refuses to read an integer of more than 4300 digits (CVE-2020-10735)
            raise yaml.constructor.ConstructorError(
                None, None, "an integer too long to be a setting", node.start_mark
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _expanded_size(node: Node, memo: dict[int, int], limit: int) -> int:
    """Nodes in the document once every alias is expanded, without expanding it."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    total = 1
    if isinstance(node, SequenceNode):
        children: list[Node] = list(node.value)
    elif isinstance(node, MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        total += _expanded_size(child, memo, limit)
        if total > limit:
            break
    memo[id(node)] = total
    return total


def load(text: str) -> Any:
    """Parse one YAML document. Raises yaml.YAMLError for bad syntax and YamlProblem for
    duplicate keys or a document over the size budget."""
    if len(text) > MAX_BYTES:
        raise YamlProblem(
            f"is {len(text):,} characters; a config is at most {MAX_BYTES:,}", problems=[]
        )
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            # PyYAML composes recursively: [[[[...]]]] thousands deep ends Python's stack
            raise YamlProblem("is nested too deeply to be a config", problems=[]) from None
        if node is None:
            return None
        size = _expanded_size(node, {}, MAX_NODES)
        if size > MAX_NODES:
            raise YamlProblem(
                f"expands to more than {MAX_NODES:,} values through its anchors and aliases "
                "(&name / *name)",
                problems=[],
            )
        doc = loader.construct_document(node)
        if loader.duplicates:
            # outer mappings are built before nested ones: report in file order
            problems = [text for _, text in sorted(loader.duplicates)]
            raise YamlProblem("has keys given twice", problems=problems)
        return doc
    finally:
        loader.dispose()


def describe_syntax_error(exc: yaml.YAMLError) -> str:
    """`line 3, column 1: a tab ...` for the user, from PyYAML's marked error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
    if "'\\t'" in problem:
        problem = "a tab character; YAML indents with spaces only"
    return where + problem

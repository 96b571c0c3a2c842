"""Resolve the `model:` setting into a Target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from genai_gate.errors import ConfigError
from genai_gate.pyimport import PREFIX
from genai_gate.targets.base import Target, TargetIdentity

__all__ = ["Target", "TargetIdentity", "resolve_target"]

MODEL_FORMS = """\
  model: python:app.model:predict     # a function next to the config file
  model: models:/my-model/3           # or models:/my-model@champion, runs:/<id>/model"""


def resolve_target(
    ref: str, base_dir: Path, *, call_style: str, input_keys: Sequence[str]
) -> Target:
    if ref.startswith(PREFIX):
        from genai_gate.targets.python_callable import PythonCallableTarget

        return PythonCallableTarget(ref, base_dir, call_style, input_keys)
    from genai_gate.targets.mlflow_model import PREFIXES, MlflowModelTarget

    if ref.startswith(PREFIXES):
        return MlflowModelTarget(ref)
    scheme = ref.split(":", 1)[0] if ":" in ref else ref
    raise ConfigError(
        f"model: {ref!r} is not a model genai-gate can call (unknown scheme {scheme!r})",
        fix=MODEL_FORMS,
    )

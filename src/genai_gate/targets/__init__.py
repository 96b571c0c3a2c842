"""Resolve the `model:` setting into a Target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genai_gate.config import LoadedConfig
from genai_gate.config.model import template_fields
from genai_gate.errors import ConfigError
from genai_gate.pyimport import PREFIX
from genai_gate.results import TargetIdentity
from genai_gate.targets.base import ServingWorkspace, Target
from genai_gate.targets.mlflow_model import PREFIXES, MlflowModelTarget
from genai_gate.targets.openai_chat import OpenAIChatTarget, base_url
from genai_gate.targets.python_callable import PythonCallableTarget
from genai_gate.targets.retry import policy_and_limiter

__all__ = ["Target", "TargetIdentity", "resolve_target"]

OPENAI_PREFIX = "openai:/"
ENDPOINTS_PREFIX = "endpoints:/"

MODEL_FORMS = """\
  model: python:app.model:predict     # a function next to the config file
  model: models:/my-model/3           # or models:/my-model@champion, runs:/<id>/model
  model: openai:/gpt-4o-mini          # any OpenAI-compatible server (base-url)
  model: endpoints:/my-genai          # a Databricks serving endpoint"""


def remote_settings(loaded: LoadedConfig) -> dict[str, Any]:
    """What every remote target takes from the config: prompt, parameters and call policy."""

    cfg = loaded.config
    policy, limiter = policy_and_limiter(cfg.retries, cfg.requests_per_minute)
    return {
        "prompt": cfg.prompt,
        "system_prompt": cfg.system_prompt,
        "params": cfg.model_params,
        "timeout": cfg.timeout,
        "policy": policy,
        "limiter": limiter,
    }


def check_prompt(loaded: LoadedConfig, input_keys: Sequence[str]) -> None:
    """Every `{name}` of the prompt is an input key: known before the first call, not
    found as a KeyError on every row."""
    import difflib

    template = loaded.config.prompt
    if template is None:
        return
    missing = [f for f in template_fields(template) if f not in input_keys]
    if missing:
        hints = [
            f"{{{m}}}"
            + (
                f" (did you mean {{{c[0]}}}?)"
                if (c := difflib.get_close_matches(m, input_keys, n=1))
                else ""
            )
            for m in missing
        ]
        raise ConfigError(
            f"{loaded.label('prompt')}: the template names {', '.join(hints)}, and the rows' "
            f"inputs are {', '.join(input_keys)}",
            fix='Name input keys in the template, e.g.\n  prompt: "Answer briefly: '
            f'{{{input_keys[0] if input_keys else "question"}}}"',
        )


def resolve_target(
    ref: str, loaded: LoadedConfig, *, input_keys: Sequence[str], workspace: ServingWorkspace
) -> Target:
    base_dir, cfg = loaded.base_dir, loaded.config
    if ref.startswith((OPENAI_PREFIX, ENDPOINTS_PREFIX)):
        check_prompt(loaded, input_keys)
    if ref.startswith(OPENAI_PREFIX):
        import os

        return OpenAIChatTarget(
            ref,
            base=base_url(cfg.base_url, os.environ),
            api_key_env=cfg.api_key_env,
            **remote_settings(loaded),
        )
    if ref.startswith(ENDPOINTS_PREFIX):
        name = ref.removeprefix(ENDPOINTS_PREFIX).strip("/")
        if not name:
            raise ConfigError(f"model: {ref!r} names no endpoint", fix="model: endpoints:/my-genai")
        return workspace.endpoint_target(name, pin=None, settings=remote_settings(loaded))
    if ref.startswith(PREFIX):
        return PythonCallableTarget(
            ref, base_dir, cfg.call_style, input_keys, import_deadline=cfg.timeout
        )

    if ref.startswith(PREFIXES):
        return MlflowModelTarget(ref)
    scheme = ref.split(":", 1)[0] if ":" in ref else ref
    raise ConfigError(
        f"model: {ref!r} is not a model genai-gate can call (unknown scheme {scheme!r})",
        fix=MODEL_FORMS,
    )

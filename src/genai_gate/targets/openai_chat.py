"""`openai:/<model>`: any OpenAI-compatible chat-completions server, called over HTTP.

Plain HTTP (`http_chat.ChatClient`, on urllib3) rather than the `openai` SDK: the SDK retries
on its own (two retries by default, without our `Retry-After` handling and bound), and every
remote call must go through one retry policy so that concurrency, rate limits and attempt
counts mean one thing. MLflow's own judge adapter makes the same choice (plain HTTP).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from genai_gate.errors import ConfigError
from genai_gate.results import EvalRow, TargetIdentity
from genai_gate.targets.http_chat import ChatClient, check_key
from genai_gate.targets.retry import RateLimiter, RetryPolicy, call_with_retries
from genai_gate.tracking import redact

PREFIX = "openai:/"
DEFAULT_BASE = "https://api.openai.com/v1"


class PromptError(ValueError):
    pass


def render_prompt(template: str | None, inputs: Mapping[str, Any]) -> str:
    """The user message: the template filled from the inputs, or the lone input itself."""
    if template is None:
        if len(inputs) == 1:
            return str(next(iter(inputs.values())))
        return json.dumps(inputs, ensure_ascii=False, default=str)
    try:
        return template.format_map(dict(inputs))
    except KeyError as exc:
        raise PromptError(
            f"the prompt template names {{{exc.args[0]}}}, and this row's inputs are "
            f"{sorted(inputs)}"
        ) from None


def base_url(configured: str | None, environ: Mapping[str, str]) -> str:
    chosen = configured or environ.get("OPENAI_BASE_URL") or environ.get("OPENAI_API_BASE")
    return (chosen or DEFAULT_BASE).rstrip("/")


class OpenAIChatTarget:
    """One chat completion per row; 429, 5xx and dropped connections are retried."""

    batched = False
    remote = True

    def __init__(
        self,
        ref: str,
        *,
        base: str,
        api_key_env: str,
        prompt: str | None,
        system_prompt: str | None,
        params: Mapping[str, Any],
        timeout: float,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.model = ref.removeprefix(PREFIX).strip("/")
        if not self.model:
            raise ConfigError(f"model: {ref!r} names no model", fix="model: openai:/gpt-4o-mini")
        self.url = f"{base}/chat/completions"
        if not environ.get(api_key_env) and base == DEFAULT_BASE:
            raise ConfigError(
                f"the model {ref} needs an API key, and {api_key_env} is not set",
                fix="Pass it from a secret:\n  env:\n"
                f"    {api_key_env}: ${{{{ secrets.{api_key_env} }}}}",
            )
        self.prompt = prompt
        self.system_prompt = system_prompt
        self.params = dict(params)
        self.policy = policy
        key = check_key(api_key_env, environ.get(api_key_env, ""))
        self.client = ChatClient(
            self.url,
            timeout=timeout,
            limiter=limiter,
            auth_headers=lambda: {"Authorization": f"Bearer {key}"} if key else {},
            secret=key,
        )
        self.identity = TargetIdentity(
            uri=ref,
            kind="openai",
            details={
                "base_url": redact(base),
                **({"prompt": prompt} if prompt else {}),
                **({"system_prompt": system_prompt} if system_prompt else {}),
            },
        )

    def cache_identity(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "url": self.url,
            "prompt": self.prompt,
            "system_prompt": self.system_prompt,
            "params": self.params,
        }

    def messages(self, row: EvalRow) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*out, {"role": "user", "content": render_prompt(self.prompt, row.inputs)}]

    def _once(self, payload: bytes) -> Any:
        answer = self.client.post(payload)
        try:
            return answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise RuntimeError(
                f"not a chat completion: {self.client.scrub(json.dumps(answer))[:300]}"
            ) from None

    def predict(self, row: EvalRow) -> Any:
        body = {"model": self.model, "messages": self.messages(row), **self.params}
        payload = json.dumps(body, ensure_ascii=False).encode()
        return call_with_retries(lambda: self._once(payload), self.policy)

    def predict_batch(self, rows: Sequence[EvalRow]) -> list[Any]:
        return [self.predict(r) for r in rows]

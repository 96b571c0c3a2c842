"""`endpoints:/<name>`: a Databricks Model Serving endpoint, queried through databricks-sdk.

It queries through the run's one workspace client (session.py: one sign-in per run), so no
credential is handled here. The query uses the OpenAI-compatible chat format,
and the `served-model-name` of each answer is counted, so the record says which served entity
answered. 429 and 503 are retried by the SDK itself, which honours `Retry-After`; its retry
budget for one call is `timeout` (auth.make_client). Other transient failures (5xx, timeouts)
go through genai-gate's retry policy.

Pinned to one served entity (a baseline, issue #5), the target calls
`/serving-endpoints/<name>/served-models/<entity>/invocations`, the documented route that
bypasses the traffic split ("Query individual models behind an endpoint"), so every row is
answered by that entity and not by whatever the routes pick. The SDK has no method for that
route, so the call goes through its `api_client` with the same auth, retries and headers as
`query()`. The answer's `served-model-name` is checked against the entity.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from genai_gate.backends.databricks.endpoints import state_from_sdk
from genai_gate.errors import AuthError, ConfigError, ServiceError
from genai_gate.results import EvalRow, TargetIdentity
from genai_gate.rollout.plan import Entity
from genai_gate.targets import limits
from genai_gate.targets.base import CHAMPION
from genai_gate.targets.openai_chat import render_prompt
from genai_gate.targets.retry import RateLimiter, Retryable, RetryPolicy, call_with_retries

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import QueryEndpointResponse, ServingEndpointDetailed


PREFIX = "endpoints:/"
# Every call carries a client_request_id with this prefix. The inference table records it,
# so canary analysis leaves evaluation traffic (a gate, a baseline) out of production's.
EVAL_REQUEST_PREFIX = "genai-gate-eval:"
# what ServingEndpointsAPI.query() accepts next to messages
_QUERY_PARAMS = frozenset({"max_tokens", "temperature", "n", "stop", "extra_params"})

AUTH_FIX = """\
In GitHub Actions, use OIDC (no stored token):
  permissions:
    id-token: write
  env:
    DATABRICKS_HOST: https://<workspace>.cloud.databricks.com
    DATABRICKS_CLIENT_ID: ${{ vars.DATABRICKS_CLIENT_ID }}
    DATABRICKS_AUTH_TYPE: github-oidc
On a laptop: `databricks auth login`, or DATABRICKS_HOST and DATABRICKS_TOKEN."""


class DatabricksEndpointTarget:
    batched = False
    remote = True

    def __init__(
        self,
        name: str,
        *,
        prompt: str | None,
        system_prompt: str | None,
        params: Mapping[str, Any],
        timeout: float,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        client: Callable[[], WorkspaceClient],
        pin: str | None = None,
    ) -> None:
        """`client`: the run's workspace client (built on first use, so a refused sign-in
        is this target's error); `pin`: a served entity's name, or CHAMPION."""
        from databricks.sdk.errors import NotFound, PermissionDenied
        from databricks.sdk.errors.base import DatabricksError

        self.name = name
        ref = f"{PREFIX}{name}"
        self.prompt, self.system_prompt, self.params = prompt, system_prompt, dict(params)
        unknown = sorted(set(self.params) - _QUERY_PARAMS)
        if unknown:
            raise ConfigError(
                f"model-params: {unknown} cannot be sent to a Databricks endpoint "
                "(databricks-sdk's query() takes " + ", ".join(sorted(_QUERY_PARAMS)) + ")",
                fix="model-params: {temperature: 0, max_tokens: 256}",
            )
        self.policy, self.limiter = policy, limiter
        try:
            # the client's own retries end within `timeout` (auth.make_client), so they and
            # genai-gate's policy never multiply into hours
            self.client = client()
            endpoint = self.client.serving_endpoints.get(self.name)
        except ValueError as exc:  # the SDK's "cannot configure default credentials"
            raise AuthError(f"no Databricks credentials for {ref}: {exc}", fix=AUTH_FIX) from exc
        except NotFound as exc:
            raise ConfigError(
                f"the serving endpoint {self.name!r} does not exist in this workspace",
                fix="Check the name (Serving in the workspace UI), or DATABRICKS_HOST.",
            ) from exc
        except PermissionDenied as exc:
            raise AuthError(
                f"no access to the endpoint {self.name!r}: {exc}",
                fix="Grant the identity CAN_QUERY on the endpoint.",
            ) from exc
        except DatabricksError as exc:
            if getattr(exc, "error_code", "") == "UNAUTHENTICATED" or "401" in str(exc):
                raise AuthError(f"Databricks refused the credentials: {exc}", fix=AUTH_FIX) from exc
            raise ServiceError(f"reading the endpoint {self.name!r} failed: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise ServiceError(f"cannot reach the Databricks workspace: {exc}") from exc
        self.served: Counter[str] = Counter()
        self._lock = threading.Lock()
        version = endpoint.config.config_version if endpoint.config else None
        details = {"host": self.client.config.host or ""}
        self.entity: Entity | None = None
        if pin is not None:
            self.entity, share = self._pinned(endpoint, pin)
            details.update(
                served_entity=self.entity.name,
                entity=f"{self.entity.model} v{self.entity.version}",
                traffic_percent=str(share),
            )
        self.identity = TargetIdentity(
            uri=ref,
            kind="databricks-endpoint",
            resolved=f"{ref}@config-{version}" if version is not None else None,
            details=details,
        )

    def _pinned(self, endpoint: ServingEndpointDetailed, pin: str) -> tuple[Entity, int]:

        state = state_from_sdk(endpoint, str(self.client.config.host or ""))
        entity = state.champion() if pin == CHAMPION else state.entity(pin)
        if entity is None:
            served = ", ".join(e.name for e in state.entities) or "none"
            raise ConfigError(
                f"the endpoint {self.name!r} serves no entity "
                + ("yet" if pin == CHAMPION else f"named {pin!r}")
                + f" (served entities: {served})",
                fix="Compare with an entity it serves, or with a registered model:\n"
                f"  baseline: endpoints:/{self.name}\n  baseline: models:/my-model@champion",
            )
        return entity, state.routes.get(entity.name, 0)

    def cache_identity(self) -> dict[str, Any]:
        if self.entity is not None:
            # the entity's model and version decide its answers; a traffic change (which bumps
            # the config version) must not throw its cached answers away
            config: Any = {"entity": self.entity.name, "model": self.entity.model}
            config["version"] = self.entity.version
        else:
            config = self.identity.resolved
        return {
            "endpoint": self.name,
            "host": self.client.config.host,
            "config": config,
            "prompt": self.prompt,
            "system_prompt": self.system_prompt,
            "params": self.params,
        }

    def _query(self, messages: list[Any]) -> QueryEndpointResponse:
        request_id = f"{EVAL_REQUEST_PREFIX}{uuid.uuid4().hex}"
        if self.entity is None:
            return self.client.serving_endpoints.query(
                self.name, messages=messages, client_request_id=request_id, **self.params
            )
        from databricks.sdk.service.serving import QueryEndpointResponse

        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.client.config.workspace_id:
            headers["X-Databricks-Workspace-Id"] = self.client.config.workspace_id
        body = {
            "messages": [m.as_dict() for m in messages],
            "client_request_id": request_id,
            **self.params,
        }
        answer = self.client.api_client.do(
            "POST",
            f"/serving-endpoints/{self.name}/served-models/{self.entity.name}/invocations",
            body=body,
            headers=headers,
            response_headers=["served-model-name"],
        )
        resp = QueryEndpointResponse.from_dict(answer)
        if resp.served_model_name and resp.served_model_name != self.entity.name:
            raise RuntimeError(
                f"asked {self.entity.name!r}, and {resp.served_model_name!r} answered"
            )
        return resp

    def _once(self, messages: list[Any]) -> Any:
        from databricks.sdk.errors import (
            DeadlineExceeded,
            InternalError,
            TemporarilyUnavailable,
            TooManyRequests,
        )
        from databricks.sdk.errors.base import DatabricksError

        if self.limiter is not None:
            self.limiter.acquire()
        service = "serving endpoint"
        limits.check(service)
        try:
            resp = self._query(messages)
        except (DeadlineExceeded, TimeoutError, ConnectionError) as exc:
            limits.unreachable(service, type(exc).__name__)
            raise Retryable(f"{type(exc).__name__}: {str(exc)[:300]}") from None
        except (InternalError, TemporarilyUnavailable, TooManyRequests) as exc:
            limits.reachable(service)
            raise Retryable(f"{type(exc).__name__}: {str(exc)[:300]}") from None
        except DatabricksError as exc:
            raise RuntimeError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
        if resp.served_model_name:
            with self._lock:
                self.served[resp.served_model_name] += 1
        if not resp.choices or resp.choices[0].message is None:
            raise RuntimeError("the endpoint's answer is not a chat completion")
        return resp.choices[0].message.content

    def predict(self, row: EvalRow) -> Any:
        from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

        messages = []
        if self.system_prompt:
            messages.append(ChatMessage(role=ChatMessageRole.SYSTEM, content=self.system_prompt))
        messages.append(
            ChatMessage(role=ChatMessageRole.USER, content=render_prompt(self.prompt, row.inputs))
        )
        return call_with_retries(lambda: self._once(messages), self.policy)

    def predict_batch(self, rows: Sequence[EvalRow]) -> list[Any]:
        return [self.predict(r) for r in rows]

    def served_models(self) -> dict[str, int]:
        with self._lock:
            return dict(self.served)

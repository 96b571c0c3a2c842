"""Applying a plan to a Databricks serving endpoint: update, wait, capture, tag, restore.

Order matters. The served entities and routes go first (`update_config`), then the wait
until the endpoint is NOT_UPDATING, then the AI Gateway inference table, then the rollout
tags, so the tags never describe a rollout that is not serving. When the update fails or
times out, the previous served entities and routes are put back and the run exits 4: no
config is left half-applied. A 409 (another update in flight) is waited out and retried a
bounded number of times. Waiting uses the SDK's own waiter, whose back-off matches what
the service expects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from genai_gate.backends.databricks.plan import EndpointState, Plan, TableConfig, served_entity
from genai_gate.errors import AuthError, GateError, ServiceError
from genai_gate.rollout.plan import Entity

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ServingEndpointDetailed

CONFLICT_RETRIES = 3
# Putting the old config back is what stands between a broken update and users, so it may
# wait longer than `wait-timeout` asked of the deploy itself.
RESTORE_WAIT = 600.0


class DeployError(ServiceError):
    title = "Deploy failed"


@dataclass(frozen=True)
class ApplyResult:
    action: str  # created | updated | unchanged
    before_version: int | None
    after: EndpointState
    restored: bool = False

    @property
    def url(self) -> str | None:
        return self.after.url


Progress = Callable[[str], None]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


@contextlib.contextmanager
def service_errors(
    what: str,
    on_auth: Callable[[BaseException], AuthError],
    *,
    grant: str = "CAN_MANAGE on the endpoint (CAN_VIEW is enough for plan) and USE/EXECUTE "
    "on the Unity Catalog model",
) -> Iterator[None]:
    """Databricks' failures as ours: refused credentials exit 3, the rest exit 4. `grant`
    says which permission the service principal needs."""
    import requests
    from databricks.sdk.errors import PermissionDenied, Unauthenticated
    from databricks.sdk.errors.base import DatabricksError

    try:
        yield
    except GateError:
        raise
    except (Unauthenticated, PermissionDenied) as exc:
        raise AuthError(
            f"Databricks refused {what}: {_first_line(exc)}",
            fix=f"Give the service principal {grant}.",
        ) from None
    except ValueError as exc:
        # the SDK raises ValueError from the token exchange itself, before any API error;
        # any other ValueError is ours or the SDK's, not a refused credential
        if not _AUTH_WORDS.search(str(exc)):
            raise DeployError(f"{what} failed: {_first_line(exc)}") from None
        raise on_auth(exc) from None
    except DatabricksError as exc:
        raise DeployError(f"{what} failed: {_first_line(exc)}") from None
    except (requests.RequestException, TimeoutError) as exc:
        raise DeployError(
            f"{what} failed: cannot reach Databricks ({_first_line(exc)})",
            fix="Check DATABRICKS_HOST, and that the runner can reach the workspace.",
        ) from None


_AUTH_WORDS = re.compile(r"token|auth|oidc|invalid_request|invalid_client|credential", re.I)


def _input_fields() -> frozenset[str]:
    from databricks.sdk.service.serving import ServedEntityInput

    return frozenset(f.name for f in dataclasses.fields(ServedEntityInput))


def state_from_sdk(ep: ServingEndpointDetailed, host: str) -> EndpointState:
    keep = _input_fields()
    config = ep.config
    entities: list[Entity] = []
    routes: dict[str, int] = {}
    legacy = None
    version = None
    if config is not None:
        version = config.config_version
        for served in config.served_entities or []:
            spec = {k: v for k, v in served.as_dict().items() if k in keep}
            entities.append(served_entity(str(served.name), spec))
        for route in (config.traffic_config.routes if config.traffic_config else None) or []:
            name = route.served_entity_name or route.served_model_name
            if name:
                routes[name] = int(route.traffic_percentage or 0)
        if config.auto_capture_config is not None:
            legacy = TableConfig.from_json(config.auto_capture_config.as_dict())
    update = ep.state.config_update.value if ep.state and ep.state.config_update else "UNKNOWN"
    return EndpointState(
        name=str(ep.name),
        config_version=version,
        update_state=update,
        entities=tuple(entities),
        routes=routes,
        gateway=ep.ai_gateway.as_dict() if ep.ai_gateway else {},
        legacy_capture=legacy,
        tags={t.key: t.value or "" for t in ep.tags or []},
        pending_version=ep.pending_config.config_version if ep.pending_config else None,
        url=f"{host.rstrip('/')}/serving-endpoints/{ep.name}/invocations",
    )


def _pending_messages(ep: ServingEndpointDetailed) -> list[str]:
    pending = ep.pending_config
    messages = []
    for served in (pending.served_entities if pending else None) or []:
        state = served.state
        if state and state.deployment_state_message:
            kind = state.deployment.value if state.deployment else "?"
            messages.append(f"{served.name}: {kind}: {state.deployment_state_message}")
    return messages


class Endpoints:
    """The serving-endpoint calls of plan and deploy."""

    def __init__(
        self,
        client: WorkspaceClient,
        progress: Progress,
        on_auth: Callable[[BaseException], AuthError],
    ) -> None:
        self.w = client
        self.progress = progress
        self.on_auth = on_auth
        self.host = str(client.config.host or "")

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return service_errors(what, self.on_auth)

    def read(self, name: str) -> EndpointState | None:
        from databricks.sdk.errors import NotFound

        with self._errors(f"reading endpoint {name}"):
            try:
                ep = self.w.serving_endpoints.get(name)
            except NotFound:
                return None
        return state_from_sdk(ep, self.host)

    def model_version_exists(self, full_name: str, version: str) -> bool:
        from databricks.sdk.errors import NotFound

        with self._errors(f"looking up {full_name} version {version} in Unity Catalog"):
            try:
                self.w.model_versions.get(full_name, int(version))
            except NotFound:
                return False
        return True

    # ------------------------------------------------------------ waiting

    def wait(self, name: str, timeout: float, *, ours: bool = True) -> None:
        """Until NOT_UPDATING; raises DeployError on UPDATE_FAILED or after `timeout`.

        Someone else's update (`ours=False`) that fails has still ended, and the old config
        serves and takes updates again, so that is not our failure to report."""
        from databricks.sdk.errors import OperationFailed

        def report(ep: ServingEndpointDetailed) -> None:
            state = ep.state.config_update.value if ep.state and ep.state.config_update else "?"
            target = ep.pending_config.config_version if ep.pending_config else None
            now = ep.config.config_version if ep.config else None
            moving = f" (config {now} -> {target})" if target else ""
            self.progress(f"endpoint {name}: {state}{moving}")

        with self._errors(f"waiting for endpoint {name}"):
            try:
                self.w.serving_endpoints.wait_get_serving_endpoint_not_updating(
                    name, timeout=timedelta(seconds=timeout), callback=report
                )
            except OperationFailed as exc:
                if not ours:
                    self.progress(f"endpoint {name}: the other update ended without applying")
                    return
                detail = _pending_messages(self.w.serving_endpoints.get(name))
                raise DeployError(
                    f"endpoint {name} did not take the new config: {_first_line(exc)}",
                    problems=detail,
                ) from None
            except TimeoutError:
                raise DeployError(
                    f"endpoint {name} was still updating after {timeout:g} s (wait-timeout)",
                    fix="Raise the limit if the model needs longer to load:\n  wait-timeout: 30m",
                ) from None

    def _update_config(
        self, name: str, entities: tuple[Entity, ...], routes: Mapping[str, int], timeout: float
    ) -> None:
        from databricks.sdk.errors import ResourceConflict
        from databricks.sdk.service.serving import Route, ServedEntityInput, TrafficConfig

        served = [ServedEntityInput.from_dict({**e.spec, "name": e.name}) for e in entities]
        traffic = TrafficConfig(
            routes=[
                Route(traffic_percentage=pct, served_entity_name=n, served_model_name=n)
                for n, pct in routes.items()
            ]
        )
        for attempt in range(CONFLICT_RETRIES + 1):
            with self._errors(f"updating endpoint {name}"):
                try:
                    self.w.serving_endpoints.update_config(
                        name, served_entities=served, traffic_config=traffic
                    )
                    return
                except ResourceConflict:
                    if attempt == CONFLICT_RETRIES:
                        raise DeployError(
                            f"endpoint {name} kept refusing the update: another update was in "
                            f"flight {CONFLICT_RETRIES + 1} times in a row",
                            fix="Something else keeps updating this endpoint (another workflow, "
                            "a person in the UI). Serialise deploys with a concurrency group:\n"
                            "  concurrency:\n    group: deploy-my-endpoint\n"
                            "    cancel-in-progress: false",
                        ) from None
            self.progress(
                f"endpoint {name}: another update is in flight (409); waiting, then retrying"
            )
            self.wait(name, timeout, ours=False)

    # ------------------------------------------------------------ apply

    def apply(self, plan: Plan, timeout: float) -> ApplyResult:
        name = plan.endpoint
        before = plan.before
        if plan.action == "noop":
            assert before is not None
            return ApplyResult("unchanged", before.config_version, before)
        if plan.action == "create":
            self._create(plan, timeout)
            return ApplyResult("created", None, self._final(name))
        assert before is not None
        if plan.config_changed:
            self.progress(f"endpoint {name}: updating served entities and routes")
            self._update_config(name, plan.entities, plan.routes, timeout)
        try:
            if plan.config_changed:
                self.wait(name, timeout)
            if plan.gateway_changed and plan.gateway is not None:
                self.progress(f"endpoint {name}: enabling the AI Gateway inference table")
                self._put_gateway(name, plan.gateway)
            if plan.tags_changed:
                self._tag(plan)
        except GateError as exc:
            # once the new config was accepted, any failure puts the old one back: a canary
            # live without capture or tags could be neither watched nor rolled back
            if plan.config_changed:
                raise self._restore(before, exc, timeout) from None
            raise
        return ApplyResult("updated", before.config_version, self._final(name))

    def _final(self, name: str) -> EndpointState:
        after = self.read(name)
        if after is None:
            raise DeployError(f"endpoint {name} disappeared while deploying")
        return after

    def _create(self, plan: Plan, timeout: float) -> None:
        from databricks.sdk.service.serving import (
            AiGatewayConfig,
            EndpointCoreConfigInput,
            EndpointTag,
            Route,
            ServedEntityInput,
            TrafficConfig,
        )

        name = plan.endpoint
        config = EndpointCoreConfigInput(
            name=name,
            served_entities=[ServedEntityInput.from_dict(dict(e.spec)) for e in plan.entities],
            traffic_config=TrafficConfig(
                routes=[
                    Route(traffic_percentage=p, served_entity_name=n, served_model_name=n)
                    for n, p in plan.routes.items()
                ]
            ),
        )
        self.progress(f"endpoint {name}: creating")
        with self._errors(f"creating endpoint {name}"):
            self.w.serving_endpoints.create(
                name,
                config=config,
                ai_gateway=AiGatewayConfig.from_dict(dict(plan.gateway)) if plan.gateway else None,
                tags=[EndpointTag(key=k, value=v) for k, v in plan.tags.items()],
            )
        try:
            self.wait(name, timeout)
        except GateError as exc:
            # a new endpoint that never served anything is removed rather than left broken
            with self._errors(f"deleting the failed endpoint {name}"):
                self.w.serving_endpoints.delete(name)
            raise type(exc)(
                f"{exc.message}; the new endpoint was deleted, so nothing was left half-created",
                problems=exc.problems,
                fix=exc.fix,
            ) from None

    def _put_gateway(self, name: str, gateway: Mapping[str, Any]) -> None:
        from databricks.sdk.service.serving import AiGatewayConfig

        cfg = AiGatewayConfig.from_dict(dict(gateway))
        table = TableConfig.from_json(gateway.get("inference_table_config"))
        where = f"{table.catalog}.{table.schema}" if table else "the capture schema"
        try:
            self._call_gateway(name, cfg)
        except AuthError as exc:
            raise AuthError(
                exc.message,
                fix=f"Let the service principal create the inference table: USE CATALOG, "
                f"USE SCHEMA and CREATE TABLE on {where}.",
            ) from None

    def _call_gateway(self, name: str, cfg: Any) -> None:
        with self._errors(f"configuring AI Gateway on {name}"):
            self.w.serving_endpoints.put_ai_gateway(
                name,
                fallback_config=cfg.fallback_config,
                guardrails=cfg.guardrails,
                inference_table_config=cfg.inference_table_config,
                rate_limits=cfg.rate_limits,
                usage_tracking_config=cfg.usage_tracking_config,
            )

    def _tag(self, plan: Plan) -> None:
        from databricks.sdk.service.serving import EndpointTag

        with self._errors(f"tagging endpoint {plan.endpoint}"):
            self.w.serving_endpoints.patch(
                plan.endpoint,
                add_tags=[EndpointTag(key=k, value=v) for k, v in plan.tags.items()],
                delete_tags=list(plan.delete_tags) or None,
            )

    def tag(self, name: str, tags: Mapping[str, str]) -> None:
        from databricks.sdk.service.serving import EndpointTag

        with self._errors(f"tagging endpoint {name}"):
            self.w.serving_endpoints.patch(
                name, add_tags=[EndpointTag(key=k, value=v) for k, v in tags.items()]
            )

    def _restore(self, before: EndpointState, cause: GateError, timeout: float) -> GateError:
        """Put the served entities and routes of `before` back. The error to raise says what
        failed and what was restored, and keeps the cause's exit code."""
        name = before.name
        kind = type(cause)
        if not before.entities:
            return kind(
                f"{cause.message}; the endpoint served nothing before this deploy, so there "
                "was nothing to restore",
                problems=cause.problems,
                fix=cause.fix,
            )
        timeout = max(timeout, RESTORE_WAIT)
        routes = ", ".join(f"{n} {p}%" for n, p in before.routes.items())
        self.progress(f"endpoint {name}: restoring config {before.config_version} ({routes})")
        # a timed-out update is still running, and the endpoint takes no other until it
        # ends; a failed one has ended already. Either way restoring comes next.
        with contextlib.suppress(GateError):
            self.wait(name, timeout, ours=False)
        try:
            self._update_config(name, before.entities, before.routes, timeout)
            self.wait(name, timeout)
        except GateError as again:
            return kind(
                f"{cause.message}; restoring the previous config also failed: {again.message}",
                problems=cause.problems,
                fix="Restore by hand: set the routes back to "
                f"{routes} (config {before.config_version}) in the Serving UI, or re-run "
                "`genai-gate rollback` once the endpoint is idle.",
            )
        return kind(
            f"{cause.message.rstrip('.')}. The previous served entities and routes were "
            f"restored ({routes}).",
            problems=cause.problems,
            fix=cause.fix
            or "Read the served entity's build and server logs in the Serving UI, fix what "
            "failed, and deploy again.",
        )

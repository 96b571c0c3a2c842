"""What answers an input. A target is resolved once, then called per row by the runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from genai_gate.results import EvalRow, TargetIdentity

# a pin on a served endpoint: the entity tagged champion, else the one with the most traffic
CHAMPION = "@champion"


class Target(Protocol):
    identity: TargetIdentity

    @property
    def batched(self) -> bool:
        """True when predict_batch takes many rows in one call (DataFrame-style models)."""
        ...

    @property
    def remote(self) -> bool:
        """True for network targets: they bound each call themselves (timeout, retries),
        and their answers may be cached."""
        ...

    def predict(self, row: EvalRow) -> Any:
        """Answer one row; raise to record the row as an error."""
        ...

    def predict_batch(self, rows: Sequence[EvalRow]) -> list[Any]:
        """One answer per row, in order; raise to fail the whole batch."""
        ...


class ServingWorkspace(Protocol):
    """A serving platform's workspace, as eval sees it: endpoints that answer as the model,
    the baseline or the judge. The backend builds it once per run (one sign-in)."""

    @property
    def available(self) -> bool:
        """Whether credentials can exist at all (checked without a network call)."""
        ...

    @property
    def unavailable_reason(self) -> str: ...

    def endpoint_target(self, name: str, *, pin: str | None, settings: Mapping[str, Any]) -> Target:
        """The serving endpoint `name` as a target; `pin` names one served entity (or
        "@champion"), else the endpoint's traffic split answers."""
        ...

    def chat_route(self) -> tuple[str, Callable[[], dict[str, str]]]:
        """The OpenAI-compatible base URL and a function giving fresh auth headers."""
        ...

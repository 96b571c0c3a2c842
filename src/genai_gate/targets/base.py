"""What answers an input. A target is resolved once, then called per row by the runner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from genai_gate.data import EvalRow


@dataclass(frozen=True)
class TargetIdentity:
    """Enough to say later exactly which model answered: the evidence records this."""

    uri: str
    kind: str
    resolved: str | None = None  # e.g. models:/name/7 for models:/name@champion
    digest: str | None = None  # e.g. sha256 of a python model's source file
    details: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri, "kind": self.kind}
        if self.resolved:
            out["resolved"] = self.resolved
        if self.digest:
            out["digest"] = self.digest
        out.update(self.details)
        return out


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

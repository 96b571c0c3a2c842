"""What answers an input. A target is resolved once, then called per row by the runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from genai_gate.results import EvalRow, TargetIdentity


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

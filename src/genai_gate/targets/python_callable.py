"""`python:module:function` targets, in the two styles users write.

- kwargs: `def predict(question: str) -> str`, called as predict(**row.inputs), like
  MLflow's `predict_fn`;
- dataframe: the seed's `def my_model(data) -> list[str]`, called with a one-row DataFrame
  so that each row gets its own latency and its own error.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from genai_gate.errors import ModelLoadError
from genai_gate.pyimport import IMPORT_DEADLINE, load_object
from genai_gate.results import EvalRow, TargetIdentity

# "value": one input key and a one-parameter function, which gets the value whatever the
# names (`columns: {inputs: question}` with `def predict(inputs)`); chosen by auto only
Style = Literal["kwargs", "dataframe", "value"]

# parameter names that say "a batch of rows" when the function has no DataFrame annotation
_FRAME_NAMES = frozenset(
    {"data", "df", "frame", "dataframe", "batch", "model_input", "inputs_df", "x", "X"}
)


def _settle(result: Any) -> Any:
    # MLflow's predict_fn may be async; each call gets its own loop in its worker thread
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _source_digest(fn: Any) -> str | None:
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        return None
    if not source or not Path(source).is_file():
        return None
    return "sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()


def detect_style(fn: Callable[..., Any], input_keys: Sequence[str], ref: str) -> Style:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "kwargs"
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return "kwargs"
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    required = [p.name for p in named if p.default is p.empty]
    keys = set(input_keys)
    if required and set(required) <= keys:
        extra = keys - {p.name for p in named}
        if extra:
            raise ModelLoadError(
                f"{ref}{sig} would be called with the input keys {sorted(keys)}, and it takes "
                f"no {', '.join(sorted(extra))}",
                fix="Accept every input key (or **kwargs), or map only the columns it takes:\n"
                f"  columns:\n    inputs: [{', '.join(required)}]",
            )
        return "kwargs"
    if len(required) == 1 and not keys & {p.name for p in named}:
        param = next(p for p in named if p.name == required[0])
        annotation = param.annotation
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        if "DataFrame" in str(text) or param.name in _FRAME_NAMES:
            return "dataframe"
        if len(keys) == 1 and len(named) == 1:
            return "value"
    raise ModelLoadError(
        f"cannot tell how to call {ref}{sig}: the rows' inputs are {sorted(keys)}",
        fix="Either name the function's parameters after the input keys (per-row style):\n"
        f"  def predict({', '.join(sorted(keys))}): ...\n"
        "or take one DataFrame and return one answer per row, and say so:\n"
        "  call-style: dataframe",
    )


def answers(result: Any, expected: int) -> list[Any]:
    """A batch model's return value as one answer per input row, or ValueError."""
    import pandas as pd

    if isinstance(result, str) and expected == 1:
        return [result]
    if isinstance(result, pd.DataFrame):
        items: list[Any] = [
            row.iloc[0] if len(row) == 1 else row.to_dict() for _, row in result.iterrows()
        ]
    elif isinstance(result, pd.Series):
        items = result.tolist()
    elif hasattr(result, "tolist"):  # numpy arrays
        items = list(result.tolist())
    elif isinstance(result, list | tuple):
        items = list(result)
    elif expected == 1:
        items = [result]
    else:
        raise ValueError(f"the model returned a {type(result).__name__}, not one answer per row")
    if len(items) != expected:
        hint = (
            "; if it always answers the whole set at once, set batch-size: 0"
            if expected == 1
            else ""
        )
        raise ValueError(
            f"the model returned {len(items)} answers for {expected} input row(s){hint}"
        )
    return items


class PythonCallableTarget:
    def __init__(
        self,
        ref: str,
        base_dir: Path,
        style: str,
        input_keys: Sequence[str],
        import_deadline: float | None = IMPORT_DEADLINE,
    ) -> None:
        fn = load_object(ref, base_dir, what="model", deadline=import_deadline)
        if not callable(fn):
            raise ModelLoadError(f"{ref!r} is a {type(fn).__name__}, not a function")
        self.fn: Callable[..., Any] = fn
        self.style: Style = detect_style(fn, input_keys, ref) if style == "auto" else style  # type: ignore[assignment]
        self.identity = TargetIdentity(
            uri=ref, kind="python", digest=_source_digest(fn), details={"call_style": self.style}
        )

    remote = False

    @property
    def batched(self) -> bool:
        return self.style == "dataframe"

    def predict(self, row: EvalRow) -> Any:
        if self.style == "kwargs":
            return _settle(self.fn(**row.inputs))
        if self.style == "value":
            (value,) = row.inputs.values()
            return _settle(self.fn(value))
        return self.predict_batch([row])[0]

    def predict_batch(self, rows: Sequence[EvalRow]) -> list[Any]:
        import pandas as pd

        return answers(_settle(self.fn(pd.DataFrame([r.inputs for r in rows]))), len(rows))

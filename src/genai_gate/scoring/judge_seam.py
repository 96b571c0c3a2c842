"""MLflow's judges hand their HTTP calls to `JudgeTransport` in-process.

MLflow's judge adapter (`GatewayAdapter`) builds the request, runs the tool-calling loop,
falls back without `response_format` on a 400 and parses the verdict; between those it calls
one function, `send_chat_request(endpoint, headers, payload, num_retries) -> dict`, that does
the POST with `requests` (a new session and connection per call). MLflow offers no hook for
another transport, so that one name in `gateway_adapter` is rebound to `_send`, which hands
calls for `ENDPOINT` to the transport of the open judge session and passes every other call
on to MLflow's own function unchanged.

Why not leave it to HTTP: at 800 calls, MLflow's `requests` post and a loopback server in
front of the transport cost about 3 ms of CPU a judge call, more than everything else a row
does, and on 2 cores that alone kept the pipeline from its concurrency (issue #14). Measured
with `benchmarks/pipeline.py`.

The rebinding is checked before it is made: the function must be MLflow's own, with the
parameters above, and `ChatCompletionError` must take `(status_code, message,
is_context_window_error)`. Where an MLflow release changes that, `install()` says no and
the judges go through `judge_gateway`'s loopback server instead: slower, never wrong.
"""

from __future__ import annotations

import inspect
import threading
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from genai_gate.scoring.judge_transport import GAVE_UP, JudgeCallFailed, JudgeTransport

# MLflow's judges are pointed here (OPENAI_API_BASE). `.invalid` never resolves (RFC 2606):
# a call that slipped past the seam could reach no server at all
HOST = "judge.genai-gate.invalid"
BASE_URL = f"http://{HOST}/v1"
ENDPOINT = f"{BASE_URL}/chat/completions"

_SEND_PARAMETERS = ["endpoint", "headers", "payload", "num_retries"]
_ERROR_PARAMETERS = ["self", "status_code", "message", "is_context_window_error"]

_lock = threading.Lock()
_installed: dict[str, Any] = {}  # "original", "utils" once the seam is in place
_active: JudgeTransport | None = None


def _parameters(fn: Any) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def _modules() -> tuple[ModuleType, ModuleType] | None:
    try:
        from mlflow.genai.judges.adapters import gateway_adapter, utils
    except Exception:  # ImportError, or an MLflow whose adapter fails to import: no seam
        return None
    original = getattr(utils, "send_chat_request", None)
    error = getattr(utils, "ChatCompletionError", None)
    if (
        original is None
        or getattr(gateway_adapter, "send_chat_request", None) is not original
        or _parameters(original) != _SEND_PARAMETERS
        or not isinstance(error, type)
        or _parameters(vars(error).get("__init__")) != _ERROR_PARAMETERS
        or not callable(getattr(utils, "is_context_window_error", None))
    ):
        return None
    return gateway_adapter, utils


def install() -> bool:
    """Put `_send` in MLflow's judge adapter (once per process); False where it cannot be."""
    with _lock:
        if _installed:
            return True
        found = _modules()
        if found is None:
            return False
        gateway_adapter, utils = found
        _installed.update(original=utils.send_chat_request, utils=utils)
        gateway_adapter.send_chat_request = _send  # type: ignore[attr-defined]
        return True


def activate(transport: JudgeTransport | None) -> None:
    """Route the judges' calls to `transport` (None: the session ended)."""
    global _active
    _active = transport


def _send(
    endpoint: str, headers: dict[str, str], payload: dict[str, Any], num_retries: int
) -> dict[str, Any]:
    if urlsplit(endpoint).hostname != HOST:
        # another provider, or a judge this run did not configure: MLflow's call, untouched
        answer: dict[str, Any] = _installed["original"](endpoint, headers, payload, num_retries)
        return answer
    utils = _installed["utils"]
    transport = _active
    if transport is None:
        # a call abandoned at the scoring deadline, answered after its session: no server
        raise utils.ChatCompletionError(GAVE_UP, "the judge session has ended")
    try:
        return transport.complete(payload)
    except JudgeCallFailed as exc:
        too_long = exc.status == 400 and utils.is_context_window_error(exc.message)
        raise utils.ChatCompletionError(
            exc.status, exc.message, is_context_window_error=too_long
        ) from None
    except Exception as exc:  # MLflow would quote the message in the row: keep keys out
        raise utils.ChatCompletionError(
            GAVE_UP, f"{type(exc).__name__}: {transport.scrub(str(exc))[:300]}"
        ) from None

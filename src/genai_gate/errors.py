"""Every failure genai-gate reports on purpose, each owning its exit code and its fix.

The shape follows cibuildwheel's `FatalError`: `cli.main` catches only `GateError`,
prints `message` and `fix`, and exits with `exit_code`. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0
    GATE_FAILED = 1
    BAD_INPUT = 2
    AUTH = 3
    SERVICE = 4


class GateError(Exception):
    """Base class: a problem we can explain. `fix` is a short tutorial, YAML welcome."""

    exit_code: ExitCode = ExitCode.SERVICE
    title: str = "genai-gate failed"

    def __init__(self, message: str, *, fix: str = "", problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.problems = problems or []

    def render(self) -> str:
        lines = [f"{self.title}: {self.message}"]
        lines += [f"  - {p}" for p in self.problems]
        if self.fix:
            lines += ["", "How to fix:", *("  " + ln for ln in self.fix.strip("\n").splitlines())]
        return "\n".join(lines)


class ConfigError(GateError):
    exit_code = ExitCode.BAD_INPUT
    title = "Configuration error"


class DataError(GateError):
    exit_code = ExitCode.BAD_INPUT
    title = "Data error"


class ModelLoadError(GateError):
    """The model could not be imported or loaded at all: the config points at nothing usable."""

    exit_code = ExitCode.BAD_INPUT
    title = "Model error"


class AuthError(GateError):
    exit_code = ExitCode.AUTH
    title = "Authentication error"


class ServiceError(GateError):
    exit_code = ExitCode.SERVICE
    title = "Service error"


class DeadlineError(ServiceError):
    """User code or a dependency did not finish in time: a hung import, max-duration, a
    remote model or judge that stopped answering (the circuit breaker)."""

    title = "Out of time"


class TrackingError(ServiceError):
    title = "MLflow tracking error"

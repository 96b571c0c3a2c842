"""The one mapper from a run's reports to the `result`/`passed` outputs and the exit code."""

from __future__ import annotations

import pytest

from genai_gate.commands.run import Result
from genai_gate.errors import ExitCode


@pytest.mark.parametrize(
    ("results", "overall"),
    [
        ((), Result.SKIPPED),
        ((Result.SKIPPED,), Result.SKIPPED),
        ((Result.PASSED, Result.SKIPPED), Result.PASSED),
        ((Result.PASSED, Result.ERROR), Result.ERROR),
        # a gate that said no reads `failed` even when logging failed too
        ((Result.ERROR, Result.FAILED), Result.FAILED),
        ((Result.FAILED, Result.PASSED, Result.SKIPPED), Result.FAILED),
    ],
)
def test_a_run_reports_its_worst_result(results: tuple[Result, ...], overall: Result) -> None:
    assert Result.overall(results) is overall


def test_outputs_and_exit_codes() -> None:
    assert Result.PASSED.outputs() == {"result": "passed", "passed": "true"}
    for result in (Result.FAILED, Result.ERROR, Result.SKIPPED):
        assert result.outputs() == {"result": result.value, "passed": "false"}
    assert Result.FAILED.exit_code is ExitCode.GATE_FAILED
    assert Result.PASSED.exit_code is ExitCode.PASSED
    assert Result.SKIPPED.exit_code is ExitCode.PASSED
    assert Result.ERROR.exit_code is ExitCode.SERVICE

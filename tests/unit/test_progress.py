from __future__ import annotations

import io

from genai_gate.progress import Progress


def test_ci_log_gets_plain_lines_with_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = Progress(stream, interval=0.0)
    for done in range(1, 101):
        progress("model", done, 100)
    lines = stream.getvalue().splitlines()
    assert lines, "no progress line was printed"
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("model calls: 100/100 rows (100%), ")
    assert "rows/s, ETA" in lines[-1]


def test_lines_are_rate_limited() -> None:
    stream = io.StringIO()
    progress = Progress(stream, interval=3600.0)
    for done in range(1, 1000):
        progress("score", done, 1000)
    assert stream.getvalue() == ""  # nothing until the interval passes or the phase ends
    progress("score", 1000, 1000)
    assert stream.getvalue().count("\n") == 1


def test_quiet() -> None:
    stream = io.StringIO()
    Progress(stream, interval=0.0, enabled=False)("model", 1, 1)
    assert stream.getvalue() == ""

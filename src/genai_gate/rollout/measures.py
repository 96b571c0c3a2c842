"""What a backend measured of live traffic, per served entity: the canary's evidence.

Every backend's reader (the Databricks inference table, KServe's logged events) returns
these, so the decision and the report never see where the traffic was logged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EntityTraffic:
    entity: str
    requests: int
    errors: int  # status code other than 200
    logging_errors: int  # rows whose request or response could not be logged
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Exchange:
    """One logged request and its response, as the raw JSON text the table holds."""

    entity: str
    request: str
    response: str
    duration_ms: float | None = None  # how long the endpoint took, where the log says


@dataclass(frozen=True)
class JudgedScore:
    """One judged request's score, as analyze and monitor write it back for dashboards. Only
    the score leaves the inference table: no request or response text is copied."""

    endpoint: str
    entity: str
    model: str
    version: str
    source: str  # analyze | monitor
    run: str  # the run that judged it (monitor's id)
    judged_at: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    scorer: str
    score: float

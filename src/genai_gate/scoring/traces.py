"""The trace a row is scored with: MLflow `Trace` objects built in memory, never logged.

MLflow's `RetrievalGroundedness` reads everything from the trace: the question from the root
span's inputs, the answer from its outputs, and the passages from the last top-level span of
type RETRIEVER (mlflow 3.17, `genai/utils/trace_utils.py`). genai-gate does not trace the
model, so for a row with retrieved context it builds that trace itself: a root span and one
RETRIEVER span whose outputs are MLflow `Document`s.

Why not `mlflow.start_span`, as `mlflow.genai.evaluate` does for static data
(`create_minimal_trace`): its exporter writes every trace to the tracking store, synchronously
inside an evaluation, which is the per-row store traffic that made `mlflow.genai.evaluate`
slow and lossy on sqlite (`../shared/reference/mlflow.md`). Here the spans come from a private
OpenTelemetry tracer provider with no processor, so nothing is exported, and MLflow's own
`LiveSpan` setters serialise the inputs, outputs and span type exactly as traced spans carry
them. Building one row's trace takes well under a millisecond.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

ROOT_SPAN = "genai_gate_row"
RETRIEVER_SPAN = "retrieved_context"


@functools.cache
def _tracer() -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # not the global provider: spans from it reach no exporter; an empty resource skips
    # Resource.create()'s environment probing
    return TracerProvider(resource=Resource.get_empty()).get_tracer("genai-gate")


def row_trace(
    trace_id: str,
    *,
    inputs: Any,
    outputs: Any,
    context: Sequence[dict[str, Any]] | None,
    latency_ms: float | None,
    metadata: dict[str, str],
) -> Any:
    """A finished `mlflow.entities.Trace`; with `context`, a root span and a RETRIEVER span."""
    from mlflow.entities import (
        Document,
        LiveSpan,
        Span,
        SpanType,
        Trace,
        TraceData,
        TraceInfo,
        TraceLocation,
        TraceState,
    )

    spans: list[Any] = []
    if context is not None:
        from opentelemetry import trace as otel

        tracer = _tracer()
        root_otel = tracer.start_span(ROOT_SPAN)
        root = LiveSpan(root_otel, trace_id, SpanType.CHAIN)
        root.set_inputs(inputs)
        root.set_outputs(outputs)
        retriever_otel = tracer.start_span(
            RETRIEVER_SPAN, context=otel.set_span_in_context(root_otel)
        )
        retriever = LiveSpan(retriever_otel, trace_id, SpanType.RETRIEVER)
        retriever.set_inputs(inputs)
        retriever.set_outputs(
            [Document(page_content=d["page_content"], metadata=d["metadata"]) for d in context]
        )
        retriever_otel.end()
        root_otel.end()
        # finished OpenTelemetry spans are readable spans: MLflow's immutable Span wraps them
        spans = [Span(root_otel), Span(retriever_otel)]

    info = TraceInfo(
        trace_id=trace_id,
        trace_location=TraceLocation.from_experiment_id("0"),
        request_time=int(time.time() * 1000),
        state=TraceState.OK,
        request_preview=str(inputs)[:200],
        response_preview=str(outputs)[:200],
        execution_duration=None if latency_ms is None else round(latency_ms),
        trace_metadata=metadata,
    )
    return Trace(info=info, data=TraceData(spans=spans))

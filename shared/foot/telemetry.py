"""OpenTelemetry set-up and trace-context propagation through NATS headers.

Configuration comes from the standard OTEL_* variables: OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_ENDPOINT /
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over HTTP/protobuf). Without an
endpoint no exporter runs, but spans still exist so logs carry trace ids.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "foot"


def configure_tracing(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the process-wide tracer provider (once; later calls return the installed one)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    attributes = {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None and _otlp_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()
        provider.shutdown()


def _otlp_configured() -> bool:
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


_tracers: dict[int, trace.Tracer] = {}


def tracer() -> trace.Tracer:
    """FOOT's tracer from the installed provider (cached: asking the SDK for a tracer
    builds a new one each time, which costs more than the span itself)."""
    provider = trace.get_tracer_provider()
    found = _tracers.get(id(provider))
    if found is None:
        found = _tracers[id(provider)] = trace.get_tracer(TRACER_NAME)
    return found


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`) of the current span to outgoing headers."""
    propagate.inject(headers)
    return headers


_TRACE_CONTEXT = TraceContextTextMapPropagator()


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    """The publisher's trace context from message headers.

    Only W3C trace context travels on the bus, so the W3C propagator is used directly
    (the global composite one would also parse baggage: twice the cost per message).
    """
    if not headers or "traceparent" not in headers:
        return context.Context()
    return _TRACE_CONTEXT.extract(headers)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def current_trace_ids() -> tuple[str, str] | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"

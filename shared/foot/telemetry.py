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


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`) of the current span to outgoing headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> context.Context:
    return propagate.extract(dict(headers or {}))


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def current_trace_ids() -> tuple[str, str] | None:
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"

"""OpenTelemetry set-up and trace-context propagation through NATS headers.

Configuration comes from the standard OTEL_* variables: OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_ENDPOINT /
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over HTTP/protobuf). Without an
endpoint no exporter runs, but spans still exist so logs carry trace ids: while
nothing receives spans, `tracer()` makes spans that carry ids and nothing else
(`IdsOnlyTracer`), because building, timing and ending SDK spans that nobody
receives cost the dispatcher about a tenth of its CPU per member apply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

TRACER_NAME = "foot"


class FootTracerProvider(TracerProvider):
    """The SDK provider, knowing whether anything receives its spans."""

    receiving = False
    """True once a span processor (an exporter's, a test's) is added."""

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.receiving = True


class IdsOnlyTracer(trace.Tracer):
    """Spans with trace and span ids and nothing else, for when no span is received.

    A span continues its parent's trace (id, sampled flag, trace state) or starts one as the
    provider's sampler decides, so traceparents and the ids in log lines stay joined up
    exactly as with recording spans; names, attributes and timings are dropped.
    """

    def __init__(self, sampler: Sampler, ids: IdGenerator) -> None:
        self._sampler = sampler
        self._ids = ids

    def start_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: trace._Links = None,
        start_time: int | None = None,  # noqa: ARG002 - nothing is timed
        record_exception: bool = True,  # noqa: ARG002 - nothing is recorded
        set_status_on_exception: bool = True,  # noqa: ARG002
    ) -> trace.Span:
        parent: trace.SpanContext | None = trace.get_current_span(context).get_span_context()
        state: trace.TraceState | None
        if parent is not None and parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            parent = None
            trace_id = self._ids.generate_trace_id()
            decision = self._sampler.should_sample(context, trace_id, name, kind, attributes, links)
            flags = trace.TraceFlags(
                trace.TraceFlags.SAMPLED if decision.decision is Decision.RECORD_AND_SAMPLE else 0
            )
            state = decision.trace_state
        span_context = trace.SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False, trace_flags=flags,
            trace_state=state,
        )  # fmt: skip
        return IdsOnlySpan(span_context, parent)

    def start_as_current_span(  # type: ignore[override]  # noqa: PLR0917
        self,
        name: str,
        context: context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: trace._Links = None,
        start_time: int | None = None,  # noqa: ARG002 - nothing is timed
        record_exception: bool = True,  # noqa: ARG002 - nothing is recorded
        set_status_on_exception: bool = True,  # noqa: ARG002
        end_on_exit: bool = True,  # noqa: ARG002 - nothing to end
    ) -> _CurrentSpan:
        # A class, not the API's generator-based context manager: cheaper per span.
        return _CurrentSpan(self.start_span(name, context, kind, attributes, links))


class IdsOnlySpan(trace.NonRecordingSpan):
    """A span that records nothing but knows its parent, as SDK spans do (`parent`)."""

    def __init__(self, context: trace.SpanContext, parent: trace.SpanContext | None) -> None:
        super().__init__(context)
        self.parent = parent


class _CurrentSpan:
    """Makes a span the current one for the length of a `with` block."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        context.detach(self._token)  # type: ignore[arg-type]


def configure_tracing(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the process-wide tracer provider (once; later calls return the installed one)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    attributes = {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)}
    provider = FootTracerProvider(resource=Resource.create(attributes))
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


_tracers: dict[tuple[int, bool], trace.Tracer] = {}


def tracer() -> trace.Tracer:
    """FOOT's tracer from the installed provider (cached: asking the SDK for a tracer
    builds a new one each time, which costs more than the span itself); an
    `IdsOnlyTracer` while FOOT's provider has nothing receiving spans."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, FootTracerProvider) and not provider.receiving:
        found = _tracers.get((id(provider), False))
        if found is None:
            found = _tracers[id(provider), False] = IdsOnlyTracer(
                provider.sampler, provider.id_generator
            )
        return found
    found = _tracers.get((id(provider), True))
    if found is None:
        found = _tracers[id(provider), True] = trace.get_tracer(TRACER_NAME)
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

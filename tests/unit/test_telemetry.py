"""Spans while nothing receives them: ids only, joined up as recording spans would be."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import foot.telemetry
from foot.telemetry import (
    FootTracerProvider,
    IdsOnlyTracer,
    current_trace_ids,
    current_traceparent,
    extract_context,
    tracer,
)

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> FootTracerProvider:
    """A provider of this test's own, installed as the process's for its length."""
    own = FootTracerProvider(shutdown_on_exit=False)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: own)
    monkeypatch.setattr(foot.telemetry, "_tracers", {})
    return own


def test_a_span_continues_its_parents_trace_and_flags(provider: FootTracerProvider) -> None:
    assert isinstance(tracer(), IdsOnlyTracer)
    for flags in ("01", "00"):
        parent = extract_context({"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-{flags}"})
        with tracer().start_as_current_span("apply east", context=parent) as span:
            assert not span.is_recording()
            assert getattr(span, "parent", None) is not None
            assert f"{span.parent.span_id:016x}" == PARENT_SPAN  # type: ignore[attr-defined]
            assert trace.get_current_span() is span
            ids = current_trace_ids()
            traceparent = current_traceparent()
        assert ids is not None
        trace_id, span_id = ids
        assert trace_id == PARENT_TRACE
        assert span_id not in {PARENT_SPAN, "0" * 16}
        assert traceparent == f"00-{PARENT_TRACE}-{span_id}-{flags}"
        assert current_trace_ids() is None  # the block's span is current no more


def test_nested_spans_share_the_trace_and_each_has_its_own_id(
    provider: FootTracerProvider,
) -> None:
    with tracer().start_as_current_span("dispatch") as root:
        assert root.parent is None  # type: ignore[attr-defined]
        outer = current_trace_ids()
        with tracer().start_as_current_span("apply west"):
            inner = current_trace_ids()
    assert outer is not None
    assert inner is not None
    assert outer[0] == inner[0]
    assert outer[1] != inner[1]
    assert int(outer[0], 16) != 0


def test_a_new_trace_is_sampled_as_the_providers_sampler_says(
    provider: FootTracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tracer().start_as_current_span("root"):
        sampled = current_traceparent()
    monkeypatch.setattr(provider, "sampler", ALWAYS_OFF)
    monkeypatch.setattr(foot.telemetry, "_tracers", {})
    with tracer().start_as_current_span("root"):
        dropped = current_traceparent()
    assert sampled is not None
    assert sampled.endswith("-01")
    assert dropped is not None
    assert dropped.endswith("-00")


def test_spans_are_recorded_once_something_receives_them(provider: FootTracerProvider) -> None:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert not isinstance(tracer(), IdsOnlyTracer)
    parent = extract_context({"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"})
    with tracer().start_as_current_span("apply east", context=parent) as span:
        assert span.is_recording()
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "apply east"
    assert finished.context is not None
    assert f"{finished.context.trace_id:032x}" == PARENT_TRACE

"""One trace across processes (Foundation acceptance 4).

A message published here inside a span is handled by a service in another process;
the handler's span must belong to the same trace with the publisher's span as its
parent. Checked once with an in-memory exporter on the publishing side, and once
with a real OTLP/HTTP receiver that both processes export to.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from integration.workers.trace_worker import SEEN, WORK
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foot.bus import Bus
from foot.telemetry import configure_tracing, tracer
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import free_port, spawn, stop
from support import eventually

WORKER = Path(__file__).parent / "workers" / "trace_worker.py"


@pytest.fixture(scope="session")
def session_spans() -> InMemorySpanExporter:
    """Spans finished in this test process (the provider is process-wide, set once)."""
    provider: TracerProvider = configure_tracing("foot-tests")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(session_spans: InMemorySpanExporter) -> InMemorySpanExporter:
    session_spans.clear()
    return session_spans


class OtlpReceiver:
    """An OTLP/HTTP trace receiver: what a collector or Tempo would be given."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(
                    {
                        "service": service,
                        "name": span.name,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex() or None,
                    }
                    for span in scope_spans.spans
                )
        return web.Response(status=200)


@pytest.fixture
async def otlp_receiver() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


def start_worker(nats: EmbeddedNats, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv: list[str | Path] = [sys.executable, WORKER, "--nats-url", nats.url, "--admin-port", "0"]
    return spawn(argv, log_path=log, env={**os.environ, **env})


@pytest.fixture
def worker_env() -> dict[str, str]:
    return {"OTEL_TRACES_EXPORTER": "none"}


@pytest.fixture
def trace_worker(
    nats_server: EmbeddedNats, tmp_path: Path, worker_env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(nats_server, tmp_path / "trace-worker.log", worker_env)
    yield process
    stop(process, grace_seconds=5)


async def publish_in_span(bus: Bus, key: str) -> None:
    """Publish one message inside a 'rollout' span."""
    await bus.declare_stream(WORK)
    with tracer().start_as_current_span("rollout"):
        await bus.publish(f"trace.work.{key}", key.encode(), msg_id=key)


async def seen_by_worker(bus: Bus, key: str) -> dict[str, str]:
    """What the worker recorded for `key` (polled: the effect is in its bucket)."""
    store = await bus.declare_bucket(SEEN)
    async with asyncio.timeout(20):
        while (entry := await store.get(key)) is None or entry.value is None:  # noqa: ASYNC110 - state in another process
            await asyncio.sleep(0.05)
    record: dict[str, str] = orjson.loads(entry.value)
    return record


def finished(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [s for s in spans.get_finished_spans() if s.name == name]
    assert len(matching) == 1, [s.name for s in spans.get_finished_spans()]
    return matching[0]


async def test_handler_in_another_process_continues_the_publishers_trace(
    bus: Bus, spans: InMemorySpanExporter, trace_worker: subprocess.Popen[bytes]
) -> None:
    key = uuid.uuid4().hex
    await publish_in_span(bus, key)
    handled = await seen_by_worker(bus, key)

    rollout = finished(spans, "rollout")
    publish = finished(spans, f"publish trace.work.{key}")
    assert publish.context is not None
    assert rollout.context is not None
    assert publish.parent is not None
    assert publish.parent.span_id == rollout.context.span_id
    assert handled["trace_id"] == f"{rollout.context.trace_id:032x}"
    assert handled["parent_span_id"] == f"{publish.context.span_id:016x}"
    assert trace_worker.poll() is None


async def test_both_processes_export_one_trace_to_an_otlp_receiver(
    bus: Bus,
    spans: InMemorySpanExporter,
    otlp_receiver: OtlpReceiver,
    nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:
    env = {
        "OTEL_SERVICE_NAME": "foot-trace-worker",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
    }
    worker = start_worker(nats_server, tmp_path / "otlp-worker.log", env)
    try:
        key = uuid.uuid4().hex
        await publish_in_span(bus, key)
        await seen_by_worker(bus, key)
        # This process exports its finished spans over OTLP/HTTP like a service would.
        exporter = OTLPSpanExporter(endpoint=f"{otlp_receiver.endpoint}/v1/traces")
        result = await asyncio.to_thread(exporter.export, spans.get_finished_spans())
        exporter.shutdown()  # type: ignore[no-untyped-call]
        assert result is SpanExportResult.SUCCESS

        def handler_exported() -> bool:
            return any(s["name"] == "handle trace" for s in otlp_receiver.spans)

        await eventually(handler_exported, within=20)
    finally:
        stop(worker, grace_seconds=5)

    handler = next(s for s in otlp_receiver.spans if s["name"] == "handle trace")
    one_trace = [s for s in otlp_receiver.spans if s["trace_id"] == handler["trace_id"]]
    by_name = {s["name"]: s for s in one_trace}
    assert set(by_name) >= {"rollout", f"publish trace.work.{key}", "handle trace"}
    assert by_name["handle trace"]["service"] == "foot-trace-worker"
    assert by_name["rollout"]["service"] == "foot-tests"
    publish = by_name[f"publish trace.work.{key}"]
    assert by_name["handle trace"]["parent_span_id"] == publish["span_id"]
    assert publish["parent_span_id"] == by_name["rollout"]["span_id"]

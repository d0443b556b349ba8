"""A service that records the trace context of every message it handles.

Each handled message's effect is a key in the `trace_seen` bucket whose value is
the handler span's trace id, span id and parent span id, so a test in another
process can check that the handler continued the publisher's trace.
"""

from __future__ import annotations

import orjson
from opentelemetry import trace

from foot.bus import ConsumerSpec, Delivery, StreamSpec
from foot.catalog import BucketSpec
from foot.runtime.main import run_service
from foot.runtime.service import Service

WORK = StreamSpec(name="TRACE_WORK", subjects=("trace.work.>",), description="traced test work")
SEEN = BucketSpec(name="trace_seen", owner="trace-worker", description="trace ids seen")


class TraceWorker(Service):
    name = "trace-worker"

    async def setup(self) -> None:
        await self.bus.declare_stream(WORK)
        self.seen = await self.bus.declare_bucket(SEEN)
        spec = ConsumerSpec(
            stream=WORK.name, durable="trace", filter_subject="trace.work.>", concurrency=2
        )
        self.consume(spec, self.handle)

    async def handle(self, delivery: Delivery) -> None:
        span = trace.get_current_span()
        context = span.get_span_context()
        parent = getattr(span, "parent", None)
        record = {
            "trace_id": f"{context.trace_id:032x}",
            "span_id": f"{context.span_id:016x}",
            "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
        }
        await self.seen.put(delivery.data.decode(), orjson.dumps(record))


if __name__ == "__main__":
    run_service(TraceWorker)

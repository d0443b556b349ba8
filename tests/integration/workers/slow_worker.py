"""A service whose handler takes a while: the subject of the shutdown and crash tests.

Each message's effect is a key in the `slow_done` bucket (value: the attempt
that produced it), written before the message is acknowledged.
"""

from __future__ import annotations

import asyncio

from pydantic import Field

from foot.bus import ConsumerSpec, Delivery, StreamSpec
from foot.catalog import BucketSpec
from foot.runtime.main import run_service
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings

WORK = StreamSpec(name="SLOW_WORK", subjects=("slow.work.>",), description="test work")
DONE = BucketSpec(name="slow_done", owner="slow-worker", description="effects of handled work")


class SlowWorkerSettings(ServiceSettings):
    handler_seconds: float = Field(default=0.2, ge=0)
    """How long handling one message takes."""
    ack_wait_seconds: float = Field(default=2.0, gt=0)
    """Redelivery delay for messages a dead worker never acknowledged."""


class SlowWorker(Service):
    name = "slow-worker"
    settings_model = SlowWorkerSettings

    async def setup(self) -> None:
        assert isinstance(self.settings, SlowWorkerSettings)
        await self.bus.declare_stream(WORK)
        self.done = await self.bus.declare_bucket(DONE)
        spec = ConsumerSpec(
            stream=WORK.name,
            durable="slow",
            filter_subject="slow.work.>",
            concurrency=4,
            ack_wait_seconds=self.settings.ack_wait_seconds,
            fetch_timeout_seconds=0.2,
        )
        self.consume(spec, self.handle)

    async def handle(self, delivery: Delivery) -> None:
        assert isinstance(self.settings, SlowWorkerSettings)
        await asyncio.sleep(self.settings.handler_seconds)
        await self.done.put(delivery.data.decode(), str(delivery.attempt).encode())


if __name__ == "__main__":
    run_service(SlowWorker)

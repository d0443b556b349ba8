"""The service runtime on a real nats-server: readiness, supervision, idempotent stop."""

from __future__ import annotations

import asyncio

import aiohttp

from foot.catalog import BucketSpec
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot_cli.natsserver import EmbeddedNats
from support import eventually

WATCHED = BucketSpec(name="runtime_watched", owner="runtime-test", description="test")


class Flaky(Service):
    """Watches a bucket and runs a task that crashes twice before settling."""

    name = "runtime-test"

    async def setup(self) -> None:
        await self.bus.declare_bucket(WATCHED)
        self.informer = await self.watch(WATCHED.name)
        self.seen: list[str] = []
        self.queue = self.reconcile("watched", self.on_change)
        self.informer.notify(self.queue)
        self.crashes = 0
        self.supervisor.spawn("flaky", self.flaky_task)

    async def on_change(self, key: str) -> None:
        self.seen.append(key)

    async def flaky_task(self) -> None:
        if self.crashes < 2:
            self.crashes += 1
            raise RuntimeError("transient trouble")
        await asyncio.Event().wait()


def settings(nats: EmbeddedNats) -> ServiceSettings:
    return ServiceSettings(nats_url=nats.url, admin_port=0, shutdown_deadline_seconds=1)


async def test_ready_only_when_connected_and_synced(nats_server: EmbeddedNats) -> None:
    service = Flaky(settings(nats_server))
    assert service.readiness_problems() == ["not running"]
    async with service:
        await asyncio.wait_for(service.informer.synced.wait(), 5)
        assert service.readiness_problems() == []
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{service.admin.url}/readyz") as ready,
        ):
            assert ready.status == 200
        store = await service.bus.kv(WATCHED.name)
        await store.put("thing", b"1")
        await eventually(lambda: service.seen == ["thing"])
    assert service.readiness_problems() == ["not running"]


async def test_crashed_tasks_are_restarted_and_counted(nats_server: EmbeddedNats) -> None:
    async with Flaky(settings(nats_server)) as service:
        await eventually(lambda: service.crashes == 2, within=5)
        await eventually(
            lambda: b'foot_task_restarts_total{task="flaky"} 2.0' in service.metrics.render(),
            within=5,
        )
        assert not service.supervisor.tasks["flaky"].done()


async def test_stop_is_idempotent_and_safe_before_start(nats_server: EmbeddedNats) -> None:
    never_started = Flaky(settings(nats_server))
    await never_started.stop()
    service = Flaky(settings(nats_server))
    await service.start()
    await asyncio.gather(service.stop(), service.stop())
    await service.stop()
    assert service.bus.client.is_closed


async def test_a_fatal_task_failure_makes_the_service_unready(nats_server: EmbeddedNats) -> None:
    async def broken() -> None:
        raise RuntimeError("cannot continue")

    async with Flaky(settings(nats_server)) as service:
        service.supervisor.spawn("essential", broken, restart=False)
        await asyncio.wait_for(service.supervisor.fatal.wait(), 5)
        assert "task essential failed: cannot continue" in service.readiness_problems()

"""gateway-sync's loops end on stop even when Python 3.11 swallows their cancellation.

Two awaits in the loops can lose a cancel on 3.11: nats-py's `Client.request` (every KV
get and update) waits with `asyncio.wait_for(future, timeout)`, which returns the reply
when it landed in the same loop turn as the cancel; and a TaskGroup whose child failed
raises the child's error instead of the CancelledError. Before the fix either made
stop() hang for good (the integration test of refused concurrent writes hung in about
one run of three). These tests put each race in place deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import Any, cast

import aiohttp

from foot.bus import Entry, KvStore
from foot_gateway_sync.apisix import ApisixClient, ApisixUnavailableError
from foot_gateway_sync.core import UPSTREAMS, DesiredState
from foot_gateway_sync.service import GatewaySyncService, GatewaySyncSettings, Instance
from foot_testenv.gateway_objects import route

ROUTE_KEY = "shop.shop"


@contextlib.asynccontextmanager
async def ended_at_exit(task: asyncio.Task[None]) -> AsyncIterator[asyncio.Task[None]]:
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)


async def ends_cancelled(task: asyncio.Task[None]) -> None:
    done, _ = await asyncio.wait([task], timeout=5)
    assert task in done, "the loop carried on after stop() and its cancel"
    assert task.cancelled()


class RepliesLikeNatsPy:
    """The routes bucket: each get and update waits for its reply the way nats-py's
    `Client.request` does, `asyncio.wait_for` on a future the test resolves."""

    def __init__(self) -> None:
        self.waiting: asyncio.Queue[asyncio.Future[Any]] = asyncio.Queue()
        self.calls: list[tuple[str, str]] = []

    async def _reply(self) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.put_nowait(future)
        return await asyncio.wait_for(future, 30)

    async def get(self, key: str) -> Entry | None:
        self.calls.append(("get", key))
        return cast(Entry | None, await self._reply())

    async def update(self, key: str, value: bytes, revision: int) -> int:
        self.calls.append(("update", f"{key}@{revision} ({len(value)} bytes)"))
        return cast(int, await self._reply())


async def test_the_status_loop_ends_when_a_kv_reply_lands_with_the_cancel() -> None:
    service = GatewaySyncService(GatewaySyncSettings())
    shop = route()
    service.routes[ROUTE_KEY] = shop
    bucket = RepliesLikeNatsPy()
    service._routes_store = cast(KvStore, bucket)  # set by setup() on a bus
    async with ended_at_exit(asyncio.create_task(service._status_loop())) as loop:
        service._status_due.set()  # what a finished sync pass does
        reply = await asyncio.wait_for(bucket.waiting.get(), 5)  # its status write began
        await service.stop()  # not started: only says stop
        reply.set_result(Entry(ROUTE_KEY, shop.to_json(), 7))
        loop.cancel()  # in the same turn as the reply: wait_for returns it on 3.11
        await ends_cancelled(loop)
        assert bucket.calls == [("get", ROUTE_KEY)]  # and no update was sent after the stop


class OneRefusedOneHanging(ApisixClient):
    """An empty instance; the PUT of upstream `b` is refused just as the service is stopped
    and its loop cancelled, while the PUT of `a` is still in flight."""

    def __init__(self, session: aiohttp.ClientSession, service: GatewaySyncService) -> None:
        super().__init__("http://apisix.invalid:9180", "unused-key-0000", session)
        self.service = service
        self.loop: asyncio.Task[None] | None = None
        self.calls: list[str] = []
        self.a_in_flight = asyncio.Event()
        self.refusals = 0

    async def list(self, resource: str) -> dict[str, dict[str, Any]]:
        self.calls.append(f"GET {resource}")
        return {}

    async def put(self, resource: str, object_id: str, body: Any) -> dict[str, Any]:
        self.calls.append(f"PUT {resource}/{object_id} {sorted(body)}")
        if object_id == "a":
            self.a_in_flight.set()
            await asyncio.Event().wait()  # still in flight when the stop lands
        await self.a_in_flight.wait()
        self.refusals += 1
        await self.service.stop()
        assert self.loop is not None
        self.loop.cancel()
        raise ApisixUnavailableError("APISIX http://apisix.invalid:9180: connection refused")


async def test_the_sync_loop_ends_when_a_write_fails_as_the_cancel_lands() -> None:
    service = GatewaySyncService(GatewaySyncSettings(write_concurrency=4))
    body: Mapping[str, Any] = {"nodes": [{"host": "192.0.2.1", "port": 30000, "weight": 1}]}
    service._desired = DesiredState(  # what desired() would compute
        objects=MappingProxyType({(UPSTREAMS, "a"): body, (UPSTREAMS, "b"): body})
    )
    async with aiohttp.ClientSession() as session:
        client = OneRefusedOneHanging(session, service)
        instance = Instance(client)
        task = asyncio.create_task(service._sync_loop(instance))
        client.loop = task
        async with ended_at_exit(task) as loop:
            await ends_cancelled(loop)
        assert client.refusals == 1  # stopped, not retried
        assert client.calls == [
            "GET upstreams",
            "GET routes",
            "PUT upstreams/a ['nodes']",
            "PUT upstreams/b ['nodes']",
        ]
        assert instance.failures == 0

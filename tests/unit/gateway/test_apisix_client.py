"""gateway-sync's Admin API client against the strict fake (and a server that is not APISIX)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from foot_gateway_sync.apisix import ApisixClient, ApisixRejectedError, ApisixUnavailableError
from foot_testenv.apisix_fake import ApisixFake

KEY = "client-test-admin-key-000"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def test_put_get_list_delete_through_envelopes(session: aiohttp.ClientSession) -> None:
    async with ApisixFake(admin_key=KEY) as fake:
        client = ApisixClient(fake.url, KEY, session)
        stored = await client.put("upstreams", "u1", {"nodes": {"10.0.0.1:80": 1}})
        assert stored["id"] == "u1"
        assert stored["type"] == "roundrobin"  # the value out of the {"key","value"} envelope
        got = await client.get("upstreams", "u1")
        assert got is not None
        assert got["nodes"] == {"10.0.0.1:80": 1}
        assert await client.get("upstreams", "missing") is None  # {"message":"Key not found"}
        for index in range(23):
            await client.put("routes", f"r{index}", {"uri": f"/{index}", "upstream_id": "u1"})
        listed = await client.list("routes")
        assert len(listed) == 23
        assert await client.delete("routes", "r0") is True
        assert await client.delete("routes", "r0") is False
        assert {r.path.split("?")[0] for r in fake.requests if r.method == "GET"} >= {
            "/apisix/admin/routes"
        }


async def test_refusals_carry_the_error_message_and_are_not_retried(
    session: aiohttp.ClientSession,
) -> None:
    async with ApisixFake(admin_key=KEY) as fake:
        client = ApisixClient(fake.url, KEY, session)
        with pytest.raises(ApisixRejectedError) as caught:
            await client.put("routes", "r1", {"uri": "/", "upstream_id": "ghost"})
        assert caught.value.status == 400
        assert "failed to fetch upstream info by upstream id [ghost]" in str(caught.value)
        assert len(fake.writes()) == 1
        wrong = ApisixClient(fake.url, "not-the-key", session)
        with pytest.raises(ApisixRejectedError) as caught:
            await wrong.list("upstreams")
        assert caught.value.status == 401
        assert "not-the-key" not in str(caught.value)
        assert "not-the-key" not in repr(wrong)


async def test_unreachable_is_retried_with_backoff_then_unavailable(
    session: aiohttp.ClientSession,
) -> None:
    async with ApisixFake(admin_key=KEY) as fake:
        await fake.pause()
        client = ApisixClient(fake.url, KEY, session, attempts=3, backoff_seconds=0.01)
        with pytest.raises(ApisixUnavailableError) as caught:
            await client.list("upstreams")
        assert caught.value.retryable
        assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_5xx_is_retried_and_a_later_success_returned(session: aiohttp.ClientSession) -> None:
    calls = []

    async def flaky(request: web.Request) -> web.Response:
        calls.append(request.path)
        if len(calls) < 3:
            return web.json_response({"error_msg": "etcd down"}, status=503)
        return web.json_response({"list": [], "total": 0}, headers={"X-API-VERSION": "v3"})

    async def not_apisix(_request: web.Request) -> web.Response:
        return web.json_response({"list": [], "total": 0})

    app = web.Application()
    app.router.add_get("/apisix/admin/upstreams", flaky)
    app.router.add_get("/apisix/admin/routes", not_apisix)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = ApisixClient(f"http://127.0.0.1:{port}", KEY, session, backoff_seconds=0.01)
        assert await client.list("upstreams") == {}
        assert len(calls) == 3
        with pytest.raises(ApisixRejectedError, match="not an APISIX Admin API v3"):
            await client.list("routes")
    finally:
        await runner.cleanup()

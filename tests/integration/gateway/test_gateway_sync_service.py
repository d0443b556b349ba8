"""gateway-sync on a real nats-server with the strict fake APISIX.

Clusters and works are written straight into their buckets and health events
published on `foot.events.health.<cluster>`, standing in for the registry and
the dispatcher (which write the same models). GatewayRoutes go through the API
front door like a user's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, CLUSTERS, WORKS, health_subject
from foot.health import ReadyStatus
from foot.kinds import KINDS
from foot.kinds.gateway import BACKENDS_READY, PROGRAMMED, GatewayRoute, GatewayRouteStatus
from foot.kinds.works import Work
from foot_cli.natsserver import EmbeddedNats
from foot_gateway_sync.core import object_id
from foot_gateway_sync.service import GatewaySyncService, GatewaySyncSettings
from foot_testenv.apisix_fake import ApisixFake
from foot_testenv.gateway_objects import canary, cluster, health_event, route_document, work
from support import eventually

KEY = "gateway-sync-test-admin-key"
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
ROUTE_KEY = "shop.shop"
STABLE = object_id(ROUTE_KEY, "stable")
CANARY = object_id(ROUTE_KEY, "canary")
ROUTE = object_id(ROUTE_KEY)
ADDRESSES = {"east": "192.0.2.1", "west": "192.0.2.2", "north": "192.0.2.3"}


class World:
    """Stands in for the registry and the dispatcher, and talks to the API as a user."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.sequence: dict[str, int] = {}

    async def put_cluster(self, name: str, ready: str = "True") -> None:
        store = await self.bus.kv(CLUSTERS.name)
        body = cluster(name, ready=ready, gateway_address=ADDRESSES[name])
        await store.put(CLUSTER_KIND.key(None, name), body.to_json())

    async def put_work(self, item: Work) -> None:
        store = await self.bus.kv(WORKS.name)
        await store.put(f"{item.spec.cluster}.shop.{item.metadata.name}", item.to_json())

    async def health(self, name: str, ready: ReadyStatus) -> None:
        sequence = self.sequence.get(name, 0) + 1
        self.sequence[name] = sequence
        event = health_event(name, ready, sequence)
        await self.bus.publish(
            health_subject(name), event.model_dump_json().encode(), msg_id=event.message_id()
        )

    async def api(self, subject: str, *documents: dict[str, Any]) -> ApiReply:
        body = orjson.dumps(
            ApiRequest(objects=list(documents)).model_dump(mode="json", by_alias=True)
        )
        reply = ApiReply.model_validate_json((await self.bus.request(subject, body)).data)
        assert reply.error is None, reply.error
        return reply

    async def apply(self, *documents: dict[str, Any]) -> ApiReply:
        reply = await self.api(API_APPLY, *documents)
        assert all(r.outcome != "rejected" for r in reply.results), reply.results
        return reply

    async def three_clusters(self) -> None:
        for index, name in enumerate(("east", "west", "north")):
            await self.put_cluster(name)
            await self.put_work(work(name, "shop", ready=3 - index, node_port=30080 + index))


def settings(nats: EmbeddedNats, *fakes: ApisixFake, **extra: Any) -> GatewaySyncSettings:
    return GatewaySyncSettings(
        nats_url=nats.url,
        apisix_urls=[fake.url for fake in fakes],
        apisix_admin_key=SecretStr(KEY),
        **extra,
    )


@contextlib.asynccontextmanager
async def running(config: GatewaySyncSettings) -> AsyncIterator[GatewaySyncService]:
    async with GatewaySyncService(config) as service:
        await service.bus.flush()  # its API subscriptions have reached the server
        yield service


@pytest.fixture
async def fake() -> AsyncIterator[ApisixFake]:
    async with ApisixFake(admin_key=KEY) as started:
        yield started


@pytest.fixture
def world(bus: Bus) -> World:
    return World(bus)


def nodes(fake: ApisixFake, upstream_id: str = STABLE) -> dict[str, int]:
    upstream = fake.objects("upstreams").get(upstream_id)
    if upstream is None:
        return {}
    return {f"{n['host']}:{n['port']}": n["weight"] for n in upstream["nodes"]}


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    await eventually(check, within=within)


ROUTE_KIND = KINDS.lookup("gateway.foot.dev/v1alpha1", "GatewayRoute")


async def stored_route(bus: Bus) -> GatewayRoute | None:
    store = await bus.kv(ROUTE_KIND.bucket)
    entry = await store.get(ROUTE_KIND.key("shop", "shop"))
    if entry is None or entry.value is None:
        return None
    return GatewayRoute.from_json(entry.value)


async def status_until(
    bus: Bus, check: Callable[[GatewayRouteStatus], bool], within: float = 10.0
) -> GatewayRouteStatus:
    """The stored route's status once `check` holds (polled: the status is state gateway-sync
    owns, with no event of its own)."""
    last: GatewayRouteStatus | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                stored = await stored_route(bus)
                last = stored.status if stored is not None else None
                if last is not None and check(last):
                    return last
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"route status never matched; last {last}")


def node_weights(status: GatewayRouteStatus, role: str = "stable") -> dict[str, int]:
    for upstream in status.upstreams:
        if upstream.role == role:
            return {node.address: node.weight for node in upstream.nodes}
    return {}


def split(fake: ApisixFake) -> list[Any]:
    route = fake.objects("routes").get(ROUTE, {})
    return list(route.get("plugins", {}).get("traffic-split", {}).get("rules", []))


async def test_three_clusters_give_one_upstream_with_weighted_nodes_and_a_route(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    await world.three_clusters()
    async with running(settings(nats_server, fake)):
        await world.apply(route_document())
        await until(lambda: len(nodes(fake)) == 3 and ROUTE in fake.objects("routes"))
        assert nodes(fake) == {"192.0.2.1:30080": 3, "192.0.2.2:30081": 2, "192.0.2.3:30082": 1}
        route = fake.objects("routes")[ROUTE]
        assert route["hosts"] == ["shop.example.com"]
        assert route["uris"] == ["/", "/api/*"]
        assert route["upstream_id"] == STABLE
        assert route["labels"] == {"managed-by": "foot", "foot-route": ROUTE_KEY}
        # The route's status says where it is served from, per APISIX instance.
        route_kind = KINDS.lookup("gateway.foot.dev/v1alpha1", "GatewayRoute")
        routes_store = await world.bus.kv(route_kind.bucket)
        stored: list[GatewayRoute] = []

        async def read_status() -> None:
            entry = await routes_store.get(route_kind.key("shop", "shop"))
            assert entry is not None
            assert entry.value is not None
            stored.append(GatewayRoute.from_json(entry.value))

        async def status_written() -> bool:
            await read_status()
            status = stored[-1].status
            return len(status.nodes.get("stable", [])) == 3 and status.instances[0].synced

        async with asyncio.timeout(10):
            while not await status_written():  # noqa: ASYNC110 - state in the bucket
                await asyncio.sleep(0.02)
        status = stored[-1].status
        assert status.observed_generation == 1
        assert sorted(status.nodes["stable"]) == [
            "192.0.2.1:30080",
            "192.0.2.2:30081",
            "192.0.2.3:30082",
        ]
        assert status.instances[0].url == fake.url
        assert not status.answering_fast
        # Readiness moving in a member moves the weight.
        await world.put_work(work("west", "shop", ready=5, node_port=30081))
        await until(lambda: nodes(fake).get("192.0.2.2:30081") == 5)
        # Deleting the route removes the route first, then its upstream.
        fake.requests.clear()
        await world.api(API_DELETE, route_document())
        await until(lambda: not fake.objects("upstreams"))
        assert [(r.method, r.path.split("?")[0]) for r in fake.writes()] == [
            ("DELETE", f"/apisix/admin/routes/{ROUTE}"),
            ("DELETE", f"/apisix/admin/upstreams/{STABLE}"),
        ]
        assert fake.objects("routes") == {}


async def test_health_event_drains_a_cluster_at_once_and_no_ready_cluster_answers_503(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    await world.three_clusters()
    # A long resync period: only the health event can make this happen.
    async with running(settings(nats_server, fake, resync_seconds=600)):
        await world.apply(route_document())
        await until(lambda: len(nodes(fake)) == 3 and ROUTE in fake.objects("routes"))
        await world.health("east", "False")
        await until(lambda: "192.0.2.1:30080" not in nodes(fake))
        assert set(nodes(fake)) == {"192.0.2.2:30081", "192.0.2.3:30082"}
        await world.health("west", "Unknown")
        await world.health("north", "False")
        await until(lambda: nodes(fake) == {})
        route = fake.objects("routes")[ROUTE]
        assert route["plugins"]["fault-injection"]["abort"]["http_status"] == 503
        await world.health("east", "True")
        await until(lambda: set(nodes(fake)) == {"192.0.2.1:30080"})
        assert "plugins" not in fake.objects("routes")[ROUTE]


async def test_a_cluster_joined_again_is_drained_by_its_new_health_events(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    """Health sequences start again at 1 for a cluster that left and joined again under the
    same name: what was heard of the one that left must not hide the new events."""
    await world.three_clusters()
    async with running(settings(nats_server, fake, resync_seconds=600)):
        await world.apply(route_document())
        await until(lambda: len(nodes(fake)) == 3)
        for ready in ("False", "True", "False", "True"):  # east's sequence reaches 4
            await world.health("east", ready)
        await until(lambda: "192.0.2.1:30080" in nodes(fake))
        store = await world.bus.kv(CLUSTERS.name)
        await store.delete(CLUSTER_KIND.key(None, "east"))
        await until(lambda: "192.0.2.1:30080" not in nodes(fake))
        await world.put_cluster("east")  # joined again: Ready, its events count from 1
        await until(lambda: "192.0.2.1:30080" in nodes(fake))
        world.sequence["east"] = 0
        await world.health("east", "False")  # sequence 1
        await until(lambda: "192.0.2.1:30080" not in nodes(fake))
        assert set(nodes(fake)) == {"192.0.2.2:30081", "192.0.2.3:30082"}


async def test_independent_writes_go_at_once_and_an_upstream_before_its_route(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    """With a slow APISIX, a drain rewrites many upstreams at once (at most
    write_concurrency), and an upstream is written before the route that uses it."""
    names = [f"app{i}" for i in range(12)]
    for index, name in enumerate(("east", "west", "north")):
        await world.put_cluster(name)
        for app_index, app in enumerate(names):
            await world.put_work(work(name, app, ready=1 + index, node_port=30000 + app_index))
    fake.write_latency = 0.02
    async with running(settings(nats_server, fake, resync_seconds=600, write_concurrency=4)):
        await world.apply(
            *[route_document(app, backend={"service": app, "port": 80}) for app in names]
        )
        await until(lambda: len(fake.objects("routes")) == len(names))
        # The routes reach gateway-sync one by one (so over one or several passes); in each,
        # an upstream is written before the route that uses it.
        paths = [r.path for r in fake.writes() if r.method == "PUT"]
        for app in names:
            upstream = f"/apisix/admin/upstreams/{object_id(f'shop.{app}', 'stable')}"
            route = f"/apisix/admin/routes/{object_id(f'shop.{app}')}"
            assert paths.index(upstream) < paths.index(route)
        fake.max_writes_in_flight = 0
        await world.health("west", "False")
        await until(
            lambda: all(
                not any(n["host"] == "192.0.2.2" for n in u["nodes"])
                for u in fake.objects("upstreams").values()
            )
        )
        assert fake.max_writes_in_flight == 4  # twelve upstreams, four at a time


async def test_a_failed_write_among_concurrent_ones_fails_the_pass_which_is_retried(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    names = [f"app{i}" for i in range(6)]
    for index, name in enumerate(("east", "west", "north")):
        await world.put_cluster(name)
        for app_index, app in enumerate(names):
            await world.put_work(work(name, app, ready=1 + index, node_port=30000 + app_index))
    config = settings(nats_server, fake, resync_seconds=600, write_concurrency=4)
    async with running(config) as service:
        await world.apply(
            *[route_document(app, backend={"service": app, "port": 80}) for app in names]
        )
        await until(lambda: len(fake.objects("routes")) == len(names))
        await fake.pause()
        await world.health("east", "False")  # six upstream PUTs at once, all refused
        await until(lambda: service.instances[0].failures >= 2)
        assert not service.instances[0].synced
        assert "connect" in service.instances[0].last_error.lower()
        await fake.resume()
        await until(
            lambda: all(
                len(u["nodes"]) == 2 and not any(n["host"] == "192.0.2.1" for n in u["nodes"])
                for u in fake.objects("upstreams").values()
            )
        )
        await until(lambda: service.instances[0].synced)


async def test_canary_promotion_and_blue_green(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    await world.three_clusters()
    await world.put_work(work("east", "shop-v2", ready=1, node_port=30090))
    async with running(settings(nats_server, fake)):
        await world.apply(route_document(release=canary(10)))
        await until(lambda: len(split(fake)) == 1)
        (rule,) = split(fake)
        assert rule["weighted_upstreams"] == [
            {"upstream_id": STABLE, "weight": 90},
            {"upstream_id": CANARY, "weight": 10},
        ]
        assert {STABLE, CANARY} <= set(fake.objects("upstreams"))  # referenced ones exist
        assert nodes(fake, CANARY) == {"192.0.2.1:30090": 1}

        # Promotion: 100/0 first ...
        await world.apply(route_document(release=canary(0)))
        await until(lambda: split(fake)[0]["weighted_upstreams"][1]["weight"] == 0)
        assert split(fake)[0]["weighted_upstreams"][0] == {"upstream_id": STABLE, "weight": 100}
        # ... then the new version becomes the backend and the canary goes, route first.
        fake.requests.clear()
        await world.apply(route_document(backend={"service": "shop-v2", "port": 80}))
        await until(lambda: CANARY not in fake.objects("upstreams"))
        assert [(r.method, r.path.split("?")[0]) for r in fake.writes()] == [
            ("PUT", f"/apisix/admin/upstreams/{STABLE}"),
            ("PUT", f"/apisix/admin/routes/{ROUTE}"),
            ("DELETE", f"/apisix/admin/upstreams/{CANARY}"),
        ]
        assert nodes(fake) == {"192.0.2.1:30090": 1}
        assert split(fake) == []

        # Blue-green: both colours live; switching is one write.
        def blue_green(active: str) -> dict[str, Any]:
            green = {"green": {"service": "shop-v2", "port": 80}, "active": active}
            return route_document(release={"strategy": "blueGreen", "blueGreen": green})

        blue_id, green_id = object_id(ROUTE_KEY, "blue"), object_id(ROUTE_KEY, "green")
        await world.apply(blue_green("blue"))
        await until(lambda: fake.objects("routes")[ROUTE]["upstream_id"] == blue_id)
        await until(lambda: STABLE not in fake.objects("upstreams"))
        assert len(nodes(fake, blue_id)) == 3
        assert nodes(fake, green_id) == {"192.0.2.1:30090": 1}
        fake.requests.clear()
        await world.apply(blue_green("green"))
        await until(lambda: fake.objects("routes")[ROUTE]["upstream_id"] == green_id)
        await asyncio.sleep(0.3)  # anything else would have been written by now
        assert [(r.method, r.path) for r in fake.writes()] == [
            ("PUT", f"/apisix/admin/routes/{ROUTE}")
        ]


async def test_manual_edits_are_reverted_and_unmanaged_objects_never_touched(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    await world.three_clusters()
    mine = {"nodes": {"198.51.100.1:80": 1}, "labels": {"team": "web"}}
    async with running(settings(nats_server, fake, resync_seconds=0.5)) as service:
        await world.apply(route_document())
        await until(lambda: len(nodes(fake)) == 3 and ROUTE in fake.objects("routes"))
        # Someone edits FOOT's upstream by hand (and adds their own objects).
        async with aiohttp.ClientSession(headers={"X-API-KEY": KEY}) as session:
            base = f"{fake.url}/apisix/admin"
            async with session.patch(
                f"{base}/upstreams/{STABLE}",
                json={"nodes": [{"host": "203.0.113.66", "port": 80, "weight": 100}], "retries": 9},
            ) as response:
                assert response.status == 200
            async with session.put(f"{base}/upstreams/hand-made", json=mine) as response:
                assert response.status == 201
            async with session.put(
                f"{base}/routes/hand-made", json={"uri": "/mine", "upstream_id": "hand-made"}
            ) as response:
                assert response.status == 201
        hand_made = fake.objects("upstreams")["hand-made"]
        await until(
            lambda: len(nodes(fake)) == 3 and "retries" not in fake.objects("upstreams")[STABLE]
        )
        passes = service.instances[0].passes
        await until(lambda: service.instances[0].passes >= passes + 2)  # more full resyncs
        assert fake.objects("upstreams")["hand-made"] == hand_made
        assert "hand-made" in fake.objects("routes")
        assert not [r for r in fake.writes() if "hand-made" in r.path and r.body is None]


@pytest.mark.slow
async def test_apisix_down_for_30_seconds_is_retried_then_converges(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    await world.three_clusters()
    async with running(settings(nats_server, fake, resync_seconds=600)) as service:
        await world.apply(route_document())
        await until(lambda: len(nodes(fake)) == 3 and ROUTE in fake.objects("routes"))
        await fake.pause()
        await world.health("east", "False")
        await world.put_work(work("west", "shop", ready=4, node_port=30081))
        await until(lambda: service.instances[0].failures >= 2)
        await asyncio.sleep(30)
        failures = service.instances[0].failures
        assert failures >= 5  # kept trying while it was down
        assert not service.instances[0].synced
        assert "192.0.2.1:30080" in nodes(fake)  # nothing reached it meanwhile
        await fake.resume()
        await until(lambda: nodes(fake) == {"192.0.2.2:30081": 4, "192.0.2.3:30082": 1})
        await until(lambda: service.instances[0].synced)


async def test_several_instances_are_kept_identical(
    nats_server: EmbeddedNats, world: World
) -> None:
    await world.three_clusters()
    await world.put_work(work("east", "shop-v2", ready=1, node_port=30090))
    async with (
        ApisixFake(admin_key=KEY) as one,
        ApisixFake(admin_key=KEY) as two,
        running(settings(nats_server, one, two)),
    ):
        await world.apply(route_document(release=canary(25)))
        await until(lambda: len(split(one)) == 1 and len(split(two)) == 1)
        await world.health("north", "False")
        await until(lambda: len(nodes(one)) == 2 and len(nodes(two)) == 2)

        def managed(fake: ApisixFake) -> dict[str, Any]:
            return {
                f"{resource}/{object_id}": {
                    k: v for k, v in body.items() if k not in {"create_time", "update_time"}
                }
                for resource in ("upstreams", "routes")
                for object_id, body in fake.objects(resource).items()
            }

        assert managed(one) == managed(two)
        assert len(managed(one)) == 3


async def test_invalid_gateway_routes_are_rejected_with_field_paths(
    nats_server: EmbeddedNats, world: World, fake: ApisixFake
) -> None:
    async with running(settings(nats_server, fake)):
        bad = route_document(
            loadBalancer={"type": "chash"},
            release={
                "strategy": "canary",
                "canary": {"backend": {"service": "v2", "port": 80}, "weight": 150},
            },
        )
        bad["spec"].pop("backend")
        reply = await world.api(
            API_APPLY, bad, route_document("fine", loadBalancer={"type": "sticky"})
        )
        first, second = reply.results
        assert first.outcome == "rejected"
        assert second.outcome == "rejected"
        assert first.error is not None
        assert second.error is not None
        paths = {p.path for p in first.error.fields}
        assert {"spec.loadBalancer.key", "spec.backend", "spec.release.canary.weight"} <= paths
        assert {p.path for p in second.error.fields} == {"spec.loadBalancer.type"}
        await asyncio.sleep(0.2)
        assert fake.writes() == []


async def test_without_apisix_the_route_status_shows_the_computed_upstream_and_no_gateway(
    nats_server: EmbeddedNats, world: World
) -> None:
    await world.three_clusters()
    config = GatewaySyncSettings(nats_url=nats_server.url)  # as a bare `foot up` runs it
    async with running(config) as service:
        await world.apply(route_document())
        weights = {"192.0.2.1:30080": 3, "192.0.2.2:30081": 2, "192.0.2.3:30082": 1}
        status = await status_until(world.bus, lambda s: node_weights(s) == weights)
        (upstream,) = status.upstreams
        assert (upstream.role, upstream.id, upstream.type) == ("stable", STABLE, "roundrobin")
        assert upstream.traffic_percent == 100
        assert {n.address: n.cluster for n in upstream.nodes} == {
            "192.0.2.1:30080": "east",
            "192.0.2.2:30081": "west",
            "192.0.2.3:30082": "north",
        }
        assert status.route_id == ROUTE
        assert status.instances == []
        assert status.observed_generation == 1
        programmed = status.condition(PROGRAMMED)
        assert programmed is not None
        assert (programmed.status, programmed.reason) == ("False", "NoGatewayConfigured")
        assert "no APISIX instance is configured" in programmed.message
        backends = status.condition(BACKENDS_READY)
        assert backends is not None
        assert (backends.status, backends.reason) == ("True", "BackendsFound")
        # Readiness moving in a member and a cluster going NotReady move the status.
        await world.put_work(work("west", "shop", ready=5, node_port=30081))
        await status_until(world.bus, lambda s: node_weights(s).get("192.0.2.2:30081") == 5)
        await world.health("east", "False")
        status = await status_until(world.bus, lambda s: "192.0.2.1:30080" not in node_weights(s))
        assert node_weights(status) == {"192.0.2.2:30081": 5, "192.0.2.3:30082": 1}
        assert not service.readiness_problems()  # no gateway is a configuration, not a fault
        # Deleted and made again, the same route gets the same status again.
        await world.api(API_DELETE, route_document())
        await until(lambda: not service.routes)
        await world.apply(route_document())
        again = await status_until(world.bus, lambda s: s.condition(PROGRAMMED) is not None)
        assert node_weights(again) == node_weights(status)

    # A route stored with an empty status (by an older gateway-sync) gets its status at start.
    store = await world.bus.kv(ROUTE_KIND.bucket)
    stored = await stored_route(world.bus)
    assert stored is not None
    await store.put(
        ROUTE_KIND.key("shop", "shop"),
        stored.model_copy(update={"status": GatewayRouteStatus()}).to_json(),
    )
    async with running(config):
        status = await status_until(world.bus, lambda s: s.condition(PROGRAMMED) is not None)
        assert set(node_weights(status)) == {
            "192.0.2.1:30080",
            "192.0.2.2:30081",
            "192.0.2.3:30082",
        }


async def test_with_apisix_the_route_status_says_what_each_instance_holds(
    nats_server: EmbeddedNats, world: World
) -> None:
    await world.three_clusters()
    async with (
        ApisixFake(admin_key=KEY) as one,
        ApisixFake(admin_key=KEY) as two,
        running(settings(nats_server, one, two, resync_seconds=600)),
    ):
        await world.apply(route_document())

        def programmed_everywhere(status: GatewayRouteStatus) -> bool:
            condition = status.condition(PROGRAMMED)
            return condition is not None and condition.status == "True"

        status = await status_until(world.bus, programmed_everywhere)
        assert [(i.url, i.programmed, i.message) for i in status.instances] == [
            (one.url, True, ""),
            (two.url, True, ""),
        ]
        programmed = status.condition(PROGRAMMED)
        assert programmed is not None
        assert (programmed.reason, programmed.message) == (
            "Programmed",
            "written to 2 APISIX instance(s)",
        )
        assert node_weights(status) == nodes(one) == nodes(two)
        since = programmed.last_transition_time

        # One instance goes away; a change cannot reach it, and the status says so.
        await two.pause()
        await world.put_work(work("west", "shop", ready=7, node_port=30081))
        status = await status_until(
            world.bus,
            lambda s: (
                node_weights(s).get("192.0.2.2:30081") == 7
                and "connect" in s.instances[1].message.lower()
            ),
        )
        assert nodes(one)["192.0.2.2:30081"] == 7
        assert status.instances[0].programmed
        assert not status.instances[1].programmed
        assert not status.instances[1].synced
        programmed = status.condition(PROGRAMMED)
        assert programmed is not None
        assert (programmed.status, programmed.reason) == ("False", "GatewayError")
        assert programmed.message.startswith(f"written to 1 of 2 APISIX instance(s); {two.url}: ")
        assert since is not None
        assert programmed.last_transition_time is not None
        assert programmed.last_transition_time > since

        await two.resume()
        status = await status_until(world.bus, programmed_everywhere)
        assert nodes(two)["192.0.2.2:30081"] == 7
        assert all(i.programmed for i in status.instances)

"""A GatewayRoute's status (pure): computed upstreams, nodes, weights and traffic shares,
what each APISIX instance holds of the route, and the Programmed / BackendsReady conditions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from foot.kinds.gateway import BACKENDS_READY, PROGRAMMED, GatewayRouteStatus
from foot.kinds.works import Work
from foot_gateway_sync.core import (
    ROUTES,
    UPSTREAMS,
    ClusterView,
    InstanceView,
    object_id,
    plan_route,
    programmed_on,
    route_status,
    traffic_shares,
)
from foot_testenv.gateway_objects import canary, route, work

KEY = "shop.shop"
STABLE = object_id(KEY, "stable")
CANARY = object_id(KEY, "canary")
ROUTE = object_id(KEY)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def views(*names: str) -> dict[str, ClusterView]:
    return {n: ClusterView(n, True, f"10.0.0.{i + 1}") for i, n in enumerate(names)}


def works(**extra: list[Work]) -> dict[str, list[Work]]:
    found = {
        "east": [work("east", "shop", ready=3, node_port=30001)],
        "west": [work("west", "shop", ready=2, node_port=30002)],
    }
    for name, items in extra.items():
        found[name] = found.get(name, []) + items
    return found


def written(plan: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """What an instance holds once every object of `plan` was PUT (APISIX adds its times)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {
        (UPSTREAMS, i): dict(body) | {"create_time": 1, "update_time": 1}
        for i, body in plan.upstreams.items()
    }
    objects[(ROUTES, plan.route_id)] = dict(plan.route) | {"create_time": 1, "update_time": 1}
    return objects


def test_without_apisix_the_status_shows_the_computed_upstream_and_no_gateway() -> None:
    shop = route()
    plan = plan_route(shop, views("east", "west"), works())
    status = route_status(shop, plan, [], previous=None, now=NOW)
    assert status.route_id == ROUTE
    (upstream,) = status.upstreams
    assert (upstream.role, upstream.id, upstream.type, upstream.traffic_percent) == (
        "stable",
        STABLE,
        "roundrobin",
        100,
    )
    assert [(n.address, n.weight, n.cluster) for n in upstream.nodes] == [
        ("10.0.0.1:30001", 3, "east"),
        ("10.0.0.2:30002", 2, "west"),
    ]
    assert status.instances == []
    programmed = status.condition(PROGRAMMED)
    assert programmed is not None
    assert (programmed.status, programmed.reason) == ("False", "NoGatewayConfigured")
    assert "apisix_urls" in programmed.message
    assert programmed.last_transition_time == NOW
    backends = status.condition(BACKENDS_READY)
    assert backends is not None
    assert (backends.status, backends.reason) == ("True", "BackendsFound")
    assert backends.message == "2 node(s) in 2 cluster(s): east, west"


def test_traffic_shares_follow_the_canary_weight_and_readiness() -> None:
    clusters = views("east", "west")
    with_canary = works(east=[work("east", "shop-v2", ready=1, node_port=30009)])
    plan = plan_route(route(release=canary(10)), clusters, with_canary)
    assert traffic_shares(plan) == {"stable": 90, "canary": 10}
    # No canary replica ready: everything stays on stable.
    assert traffic_shares(plan_route(route(release=canary(10)), clusters, works())) == {
        "stable": 100,
        "canary": 0,
    }
    green = {"green": {"service": "shop-v2", "port": 80}, "active": "green"}
    blue_green = route(release={"strategy": "blueGreen", "blueGreen": green})
    assert traffic_shares(plan_route(blue_green, clusters, with_canary)) == {
        "blue": 0,
        "green": 100,
    }


def test_no_ready_backend_sends_nothing_anywhere_and_says_so() -> None:
    shop = route()
    plan = plan_route(shop, views("east"), {"east": [work("east", "shop", ready=0)]})
    status = route_status(shop, plan, [], previous=None, now=NOW)
    assert status.answering_fast
    assert [(u.traffic_percent, u.nodes) for u in status.upstreams] == [(0, [])]
    backends = status.condition(BACKENDS_READY)
    assert backends is not None
    assert (backends.status, backends.reason) == ("False", "NoReadyBackend")
    assert "Deployment/shop" in backends.message


def test_programmed_per_instance_says_what_is_missing_or_in_the_way() -> None:
    plan = plan_route(route(), views("east", "west"), works())
    everything = written(plan)
    assert programmed_on(plan, InstanceView("http://a", True, everything)) == (True, "")
    unknown = InstanceView("http://a", False, None, "APISIX http://a: GET upstreams: refused")
    assert programmed_on(plan, unknown) == (False, "APISIX http://a: GET upstreams: refused")
    missing = {k: v for k, v in everything.items() if k[0] != ROUTES}
    assert programmed_on(plan, InstanceView("http://a", False, missing)) == (
        False,
        f"routes/{ROUTE} not written yet",
    )
    edited = copy.deepcopy(everything)
    edited[(UPSTREAMS, STABLE)]["nodes"] = []
    assert programmed_on(plan, InstanceView("http://a", False, edited)) == (
        False,
        f"upstreams/{STABLE} not up to date yet",
    )
    taken = copy.deepcopy(everything)
    taken[(UPSTREAMS, STABLE)]["labels"] = {"team": "web"}
    ok, message = programmed_on(plan, InstanceView("http://a", True, taken))
    assert not ok
    assert "without the managed-by: foot label" in message


def test_programmed_condition_over_several_instances() -> None:
    shop = route()
    plan = plan_route(shop, views("east", "west"), works())
    both = [
        InstanceView("http://a", True, written(plan)),
        InstanceView("http://b", True, written(plan)),
    ]
    status = route_status(shop, plan, both, previous=None, now=NOW)
    assert [(i.url, i.programmed, i.message) for i in status.instances] == [
        ("http://a", True, ""),
        ("http://b", True, ""),
    ]
    programmed = status.condition(PROGRAMMED)
    assert programmed is not None
    assert (programmed.status, programmed.reason, programmed.message) == (
        "True",
        "Programmed",
        "written to 2 APISIX instance(s)",
    )
    one_down = [both[0], InstanceView("http://b", False, None, "APISIX http://b: refused")]
    later = NOW + timedelta(minutes=1)
    degraded = route_status(shop, plan, one_down, previous=status, now=later)
    programmed = degraded.condition(PROGRAMMED)
    assert programmed is not None
    assert (programmed.status, programmed.reason) == ("False", "GatewayError")
    assert programmed.message == (
        "written to 1 of 2 APISIX instance(s); http://b: APISIX http://b: refused"
    )
    assert programmed.last_transition_time == later
    pending = [both[0], InstanceView("http://b", False, None)]
    programmed = route_status(shop, plan, pending, previous=None, now=NOW).condition(PROGRAMMED)
    assert programmed is not None
    assert (programmed.reason, programmed.message) == (
        "Pending",
        "written to 1 of 2 APISIX instance(s); http://b: not listed yet",
    )


def test_transition_times_stay_while_a_condition_keeps_its_status() -> None:
    shop = route()
    plan = plan_route(shop, views("east", "west"), works())
    first = route_status(shop, plan, [], previous=None, now=NOW)
    # A replica more in west: the nodes change, the conditions do not.
    moved = plan_route(
        shop, views("east", "west"), works() | {"west": [work("west", "shop", ready=4)]}
    )
    second = route_status(shop, moved, [], previous=first, now=NOW + timedelta(hours=1))
    assert second != first
    assert second.conditions == first.conditions
    # Stored and read back, the status is the same (no write when nothing changed).
    again = GatewayRouteStatus.model_validate_json(second.model_dump_json(by_alias=True))
    assert route_status(shop, moved, [], previous=again, now=NOW + timedelta(hours=2)) == again

"""gateway-sync's pure core: nodes from works, desired upstreams/routes, and the ordered diff."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from foot.kinds.works import Work
from foot_gateway_sync.core import (
    ROUTES,
    UPSTREAMS,
    ClusterView,
    HeardHealth,
    Operation,
    cluster_view,
    desired_state,
    drifted,
    object_id,
    phases,
    plan,
    plan_route,
)
from foot_testenv.apisix_schema import check_resource
from foot_testenv.gateway_objects import canary, cluster, route, work

KEY = "shop.shop"
STABLE = object_id(KEY, "stable")
CANARY = object_id(KEY, "canary")
ROUTE = object_id(KEY)


def views(*names: str, not_ready: tuple[str, ...] = ()) -> dict[str, ClusterView]:
    return {n: ClusterView(n, n not in not_ready, f"10.0.0.{i + 1}") for i, n in enumerate(names)}


def three_clusters() -> dict[str, list[Work]]:
    return {
        "east": [work("east", "shop", ready=3, node_port=30001)],
        "west": [work("west", "shop", ready=2, node_port=30002)],
        "north": [work("north", "shop", ready=1, node_port=30003)],
    }


def nodes_of(body: Any) -> dict[str, int]:
    return {f"{n['host']}:{n['port']}": n["weight"] for n in body["nodes"]}


def split_of(body: Any) -> list[Any]:
    return list(body.get("plugins", {}).get("traffic-split", {}).get("rules", []))


# ---- where backends run ------------------------------------------------------------------------


def test_three_clusters_give_one_upstream_with_nodes_weighted_by_ready_replicas() -> None:
    clusters = views("east", "west", "north")
    result = plan_route(route(), clusters, three_clusters())
    assert list(result.upstreams) == [STABLE]
    assert nodes_of(result.upstreams[STABLE]) == {
        "10.0.0.1:30001": 3,
        "10.0.0.2:30002": 2,
        "10.0.0.3:30003": 1,
    }
    body = result.route
    assert body["uris"] == ["/", "/api/*"]
    assert body["hosts"] == ["shop.example.com"]
    assert body["upstream_id"] == STABLE
    assert "plugins" not in body
    assert not result.answering_fast


def test_not_ready_cluster_and_zero_ready_replicas_give_no_node() -> None:
    works = three_clusters()
    works["north"] = [work("north", "shop", ready=0, node_port=30003)]
    result = plan_route(route(), views("east", "west", "north", not_ready=("west",)), works)
    assert nodes_of(result.upstreams[STABLE]) == {"10.0.0.1:30001": 3}


def test_load_balancer_ingress_wins_over_node_port_and_cluster_ip_is_unreachable() -> None:
    works = {
        "east": [
            work(
                "east",
                "shop",
                ready=2,
                service_type="LoadBalancer",
                ingress=["203.0.113.7", "2001:db8::1"],
            )
        ],
        "west": [work("west", "shop", ready=2, service_type="ClusterIP", node_port=None)],
        "north": [work("north", "shop", ready=2, service_type="LoadBalancer", node_port=31000)],
    }
    result = plan_route(route(), views("east", "west", "north"), works)
    assert nodes_of(result.upstreams[STABLE]) == {
        "203.0.113.7:80": 2,
        "[2001:db8::1]:80": 2,
        "10.0.0.3:31000": 2,  # LoadBalancer still pending: its NodePort works
    }


def test_port_by_name_other_namespace_and_deleting_works_are_ignored() -> None:
    deleting = work("west", "shop", ready=5, node_port=30002)
    deleting = deleting.model_copy(
        update={"spec": deleting.spec.model_copy(update={"deleting": True})}
    )
    works = {
        "east": [work("east", "shop", ready=1, node_port=30001)],
        "west": [deleting],
        "north": [work("north", "shop", ready=4, namespace="other")],
    }
    named = route(backend={"service": "shop", "port": "http"})
    result = plan_route(named, views("east", "west", "north"), works)
    assert nodes_of(result.upstreams[STABLE]) == {"10.0.0.1:30001": 1}
    wrong_port = route(backend={"service": "shop", "port": 8080})
    assert nodes_of(plan_route(wrong_port, views("east"), works).upstreams[STABLE]) == {}


def test_gateway_address_defaults_to_the_api_host_and_health_events_win_when_newer() -> None:
    east = cluster("east")
    assert cluster_view(east).address == "east.example"
    assert cluster_view(cluster("east", gateway_address="192.0.2.1")).address == "192.0.2.1"
    assert cluster_view(east).ready
    later = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=5)
    assert not cluster_view(east, HeardHealth(3, ready=False, observed_at=later)).ready
    earlier = datetime(2024, 12, 31, tzinfo=UTC)
    assert cluster_view(east, HeardHealth(2, ready=False, observed_at=earlier)).ready
    down = cluster("east", ready="False")
    assert not cluster_view(down).ready
    assert cluster_view(down, HeardHealth(4, ready=True, observed_at=later)).ready


# ---- what the route becomes -------------------------------------------------------------------


def test_no_ready_cluster_answers_fast_with_503() -> None:
    result = plan_route(
        route(), views("east", "west", not_ready=("east", "west")), three_clusters()
    )
    assert result.answering_fast
    assert result.upstreams[STABLE]["nodes"] == []
    abort = result.route["plugins"]["fault-injection"]["abort"]
    assert abort["http_status"] == 503


def test_load_balancer_health_check_retries_timeouts_and_plugins() -> None:
    spec: dict[str, Any] = {
        "loadBalancer": {"type": "chash", "hashOn": "header", "key": "x-user"},
        "healthCheck": {"active": {"httpPath": "/healthz"}},
        "retries": 2,
        "retryTimeout": 4,
        "timeout": {"connect": 1, "send": 2, "read": 3},
        "methods": ["GET"],
        "plugins": {"key-auth": {}, "limit-count": {"count": 5, "time_window": 60}},
    }
    result = plan_route(route(**spec), views("east"), three_clusters())
    upstream = result.upstreams[STABLE]
    assert (upstream["type"], upstream["hash_on"], upstream["key"]) == ("chash", "header", "x-user")
    assert upstream["retries"] == 2
    assert upstream["retry_timeout"] == 4
    assert upstream["timeout"] == {"connect": 1, "send": 2, "read": 3}
    assert upstream["checks"]["active"]["http_path"] == "/healthz"
    assert upstream["checks"]["active"]["unhealthy"]["http_failures"] == 5
    assert result.route["methods"] == ["GET"]
    assert result.route["plugins"] == spec["plugins"]
    for kind in ("ewma", "least_conn", "roundrobin"):
        other = plan_route(route(loadBalancer={"type": kind}), views("east"), three_clusters())
        assert other.upstreams[STABLE]["type"] == kind
        assert "key" not in other.upstreams[STABLE]


def canary_works() -> dict[str, list[Work]]:
    return {
        "east": [
            work("east", "shop", ready=3, node_port=30001),
            work("east", "shop-v2", ready=1, node_port=30101),
        ],
        "west": [work("west", "shop", ready=2, node_port=30002)],
    }


def test_canary_at_ten_percent_is_a_90_10_split_over_existing_upstreams() -> None:
    result = plan_route(route(release=canary(10)), views("east", "west"), canary_works())
    assert set(result.upstreams) == {STABLE, CANARY}
    assert nodes_of(result.upstreams[CANARY]) == {"10.0.0.1:30101": 1}
    (rule,) = split_of(result.route)
    assert rule["weighted_upstreams"] == [
        {"upstream_id": STABLE, "weight": 90},
        {"upstream_id": CANARY, "weight": 10},
    ]
    assert result.route["upstream_id"] == STABLE


def test_canary_by_header_or_cookie_comes_first() -> None:
    header = canary(0, match={"header": {"name": "X-Canary", "value": "always"}})
    rules = split_of(plan_route(route(release=header), views("east"), canary_works()).route)
    assert rules[0] == {
        "match": [{"vars": [["http_x_canary", "==", "always"]]}],
        "weighted_upstreams": [{"upstream_id": CANARY, "weight": 1}],
    }
    assert rules[1]["weighted_upstreams"][0] == {"upstream_id": STABLE, "weight": 100}
    cookie = canary(5, match={"cookie": {"name": "beta", "value": "1"}})
    rules = split_of(plan_route(route(release=cookie), views("east"), canary_works()).route)
    assert rules[0]["match"] == [{"vars": [["cookie_beta", "==", "1"]]}]


def test_canary_without_ready_nodes_gets_no_traffic_and_stable_down_sends_all_to_canary() -> None:
    works = canary_works()
    works["east"] = [works["east"][0]]  # the canary is nowhere
    rules = split_of(plan_route(route(release=canary(10)), views("east", "west"), works).route)
    assert [w["weight"] for w in rules[-1]["weighted_upstreams"]] == [100, 0]
    only_canary = {"east": [work("east", "shop-v2", ready=1, node_port=30101)]}
    result = plan_route(route(release=canary(10)), views("east"), only_canary)
    assert [w["weight"] for w in split_of(result.route)[-1]["weighted_upstreams"]] == [0, 100]
    assert not result.answering_fast


def blue_green(active: str, preview: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"green": {"service": "shop-v2", "port": 80}, "active": active}
    if preview:
        spec["previewHeader"] = preview
    return {"strategy": "blueGreen", "blueGreen": spec}


def test_blue_green_keeps_both_colours_and_points_the_route_at_the_active_one() -> None:
    blue = plan_route(route(release=blue_green("blue", "x-preview")), views("east"), canary_works())
    green = plan_route(
        route(release=blue_green("green", "x-preview")), views("east"), canary_works()
    )
    blue_id, green_id = object_id(KEY, "blue"), object_id(KEY, "green")
    assert set(blue.upstreams) == set(green.upstreams) == {blue_id, green_id}
    assert blue.upstreams == green.upstreams
    assert (blue.route["upstream_id"], green.route["upstream_id"]) == (blue_id, green_id)
    assert split_of(blue.route)[0]["weighted_upstreams"] == [{"upstream_id": green_id, "weight": 1}]
    # The switch is exactly one write: the route.
    actual = {
        key: dict(body)
        for key, body in desired_state(
            [route(release=blue_green("blue"))], views("east"), canary_works()
        ).objects.items()
    }
    switch = plan(
        desired_state([route(release=blue_green("green"))], views("east"), canary_works()).objects,
        actual,
    )
    assert [(op.method, op.resource) for op in switch.operations] == [("PUT", ROUTES)]


def test_desired_objects_pass_apisix_schema_and_count_as_in_sync_once_stored() -> None:
    routes = [
        route(),
        route(
            "checked",
            healthCheck={"active": {}},
            timeout={"connect": 1, "send": 1, "read": 1},
            loadBalancer={"type": "chash", "key": "remote_addr"},
        ),
        route("canary", release=canary(10, match={"header": {"name": "x-c", "value": "1"}})),
        route("blue-green", release=blue_green("green", "x-preview"), plugins={"key-auth": {}}),
        route("nowhere", backend={"service": "absent", "port": 80}),
    ]
    state = desired_state(routes, views("east", "west"), canary_works())
    for (resource, _), body in state.objects.items():
        stored = copy.deepcopy(dict(body))
        check_resource(resource, stored)  # the fake's schema, defaults filled in as APISIX does
        stored |= {"create_time": 1, "update_time": 2}
        assert not drifted(resource, body, stored), (resource, body, stored)


# ---- the diff ----------------------------------------------------------------------------------


def stored(state_objects: Any) -> dict[Any, dict[str, Any]]:
    return {
        key: dict(body) | {"create_time": 1, "update_time": 1}
        for key, body in state_objects.items()
    }


def test_first_sync_puts_upstreams_before_routes_and_nothing_when_in_sync() -> None:
    state = desired_state([route(release=canary(10))], views("east", "west"), canary_works())
    first = plan(state.objects, {})
    assert [(op.method, op.resource, op.id) for op in first.operations] == [
        ("PUT", UPSTREAMS, CANARY),
        ("PUT", UPSTREAMS, STABLE),
        ("PUT", ROUTES, ROUTE),
    ]
    assert plan(state.objects, stored(state.objects)).operations == ()


def test_promotion_goes_to_100_0_then_removes_the_canary_route_first() -> None:
    ten = desired_state([route(release=canary(10))], views("east"), canary_works())
    hundred = desired_state([route(release=canary(0))], views("east"), canary_works())
    step = plan(hundred.objects, stored(ten.objects))
    assert [(op.method, op.resource) for op in step.operations] == [("PUT", ROUTES)]
    assert split_of(step.operations[0].body)[-1]["weighted_upstreams"][1]["weight"] == 0
    done = desired_state([route()], views("east"), canary_works())
    final = plan(done.objects, stored(hundred.objects))
    assert [(op.method, op.resource, op.id) for op in final.operations] == [
        ("PUT", ROUTES, ROUTE),
        ("DELETE", UPSTREAMS, CANARY),
    ]
    assert "traffic-split" not in final.operations[0].body.get("plugins", {})  # type: ignore[union-attr]


def test_deleted_route_goes_before_its_upstreams_and_unmanaged_objects_are_never_touched() -> None:
    state = desired_state([route(release=canary(10))], views("east"), canary_works())
    actual = stored(state.objects)
    actual[(UPSTREAMS, "hand-made")] = {"id": "hand-made", "nodes": {"1.1.1.1:80": 1}}
    actual[(ROUTES, "hand-made")] = {
        "id": "hand-made",
        "uri": "/x",
        "upstream_id": "hand-made",
        "labels": {"team": "x"},
    }
    result = plan({}, actual)
    assert [(op.method, op.resource, op.id) for op in result.operations] == [
        ("DELETE", ROUTES, ROUTE),
        ("DELETE", UPSTREAMS, CANARY),
        ("DELETE", UPSTREAMS, STABLE),
    ]


def test_manual_edits_are_drift_but_server_defaults_are_not() -> None:
    state = desired_state(
        [route(plugins={"key-auth": {}})], views("east", "west"), three_clusters()
    )
    actual = stored(state.objects)
    assert plan(state.objects, actual).operations == ()
    edits: list[tuple[str, Any]] = [
        (
            "nodes",
            lambda u: u["nodes"].append(
                {"host": "6.6.6.6", "port": 80, "weight": 1, "priority": 0}
            ),
        ),
        ("nodes", lambda u: u["nodes"][0].update(weight=99)),
        ("retries", lambda u: u.update(retries=7)),
        ("type", lambda u: u.update(type="ewma")),
        ("labels", lambda u: u["labels"].update(managed_by_hand="yes")),
    ]
    for what, edit in edits:
        changed = copy.deepcopy(actual)
        edit(changed[(UPSTREAMS, STABLE)])
        ops = plan(state.objects, changed).operations
        assert ops == (
            Operation("PUT", UPSTREAMS, STABLE, state.objects[(UPSTREAMS, STABLE)], "changed"),
        ), what
    changed = copy.deepcopy(actual)
    changed[(ROUTES, ROUTE)]["plugins"]["ip-restriction"] = {"whitelist": ["1.2.3.4"]}
    assert [op.resource for op in plan(state.objects, changed).operations] == [ROUTES]
    changed = copy.deepcopy(actual)
    changed[(ROUTES, ROUTE)]["plugins"]["key-auth"]["hide_credentials"] = False  # a plugin default
    assert plan(state.objects, changed).operations == ()


def test_unmanaged_object_with_our_id_is_left_alone_and_dangling_split_is_refused() -> None:
    state = desired_state([route(release=canary(10))], views("east"), canary_works())
    actual = {(UPSTREAMS, CANARY): {"id": CANARY, "nodes": {}, "labels": {"team": "x"}}}
    result = plan(state.objects, actual)
    assert (UPSTREAMS, CANARY) not in {(op.resource, op.id) for op in result.operations}
    assert any("without the managed-by: foot label" in p for p in result.problems)
    bad_route = dict(state.objects[(ROUTES, ROUTE)])
    bad_route["plugins"] = {
        "traffic-split": {
            "rules": [{"weighted_upstreams": [{"upstream_id": "ghost", "weight": 1}]}]
        }
    }
    result = plan(
        {(ROUTES, ROUTE): bad_route, (UPSTREAMS, STABLE): state.objects[(UPSTREAMS, STABLE)]}, {}
    )
    assert [(op.resource, op.id) for op in result.operations] == [(UPSTREAMS, STABLE)]
    assert any("ghost" in p for p in result.problems)


def test_a_drained_cluster_rewrites_only_the_upstreams_that_had_its_nodes() -> None:
    routes = [route(), route("blog", backend={"service": "blog", "port": 80})]
    works = three_clusters()
    works["north"].append(work("north", "blog", ready=2, node_port=30500))
    before = desired_state(routes, views("east", "west", "north"), works)
    after = desired_state(routes, views("east", "west", "north", not_ready=("east",)), works)
    ops = plan(after.objects, stored(before.objects)).operations
    assert [(op.method, op.id) for op in ops] == [("PUT", STABLE)]
    assert "10.0.0.1" not in str(ops[0].body)


def test_phases_cut_a_plan_into_ordered_runs_of_independent_writes() -> None:
    def op(method: str, resource: str, object_id: str) -> Operation:
        return Operation(method, resource, object_id, {} if method == "PUT" else None)  # type: ignore[arg-type]

    operations = (
        op("PUT", UPSTREAMS, "a"),
        op("PUT", UPSTREAMS, "b"),
        op("PUT", ROUTES, "r"),
        op("DELETE", ROUTES, "old"),
        op("DELETE", UPSTREAMS, "c"),
        op("DELETE", UPSTREAMS, "d"),
    )
    assert phases(operations) == [
        operations[0:2],
        operations[2:3],
        operations[3:4],
        operations[4:6],
    ]
    assert phases(()) == []
    # What plan() gives for three new routes: all upstreams, then all routes.
    routes = [route(name, backend={"service": name, "port": 80}) for name in ("a", "b", "c")]
    by_cluster = {
        "east": [work("east", name, ready=1, node_port=30000 + i) for i, name in enumerate("abc")]
    }
    desired = desired_state(routes, views("east"), by_cluster).objects
    steps = phases(plan(desired, {}).operations)
    assert [(s[0].method, s[0].resource, len(s)) for s in steps] == [
        ("PUT", UPSTREAMS, 3),
        ("PUT", ROUTES, 3),
    ]

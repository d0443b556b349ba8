"""GatewayRoute validation (acceptance 5): invalid routes refused with their field paths."""

from __future__ import annotations

from typing import Any

import pytest

from foot.catalog import BUCKETS, GATEWAY_ROUTES
from foot.kinds import KINDS
from foot.kinds.gateway import GatewayRoute
from foot_testenv.gateway_objects import route_document
from support import problems


def test_kind_is_registered_owned_by_gateway_sync_in_its_bucket() -> None:
    info = KINDS.lookup("gateway.foot.dev/v1alpha1", "GatewayRoute")
    assert (info.owner, info.bucket, info.namespaced) == (
        "gateway-sync",
        GATEWAY_ROUTES.name,
        True,
    )
    assert KINDS.resolve("gatewayroutes") is info
    assert any(b.name == GATEWAY_ROUTES.name and b.owner == "gateway-sync" for b in BUCKETS)


def test_a_valid_route_gets_defaults() -> None:
    parsed = KINDS.parse(route_document())
    assert isinstance(parsed, GatewayRoute)
    spec = parsed.spec
    assert spec.load_balancer.type == "roundrobin"
    assert spec.release.strategy == "none"
    assert spec.backend.workload_name == "shop"
    assert spec.backend.workload_kind == "Deployment"
    assert spec.backends() == {"stable": spec.backend}


def test_every_option_accepted() -> None:
    parsed = KINDS.parse(
        route_document(
            methods=["GET", "POST"],
            loadBalancer={"type": "chash", "hashOn": "cookie", "key": "session"},
            healthCheck={"active": {"httpPath": "/healthz", "healthy": {"successes": 3}}},
            retries=2,
            retryTimeout=5,
            timeout={"connect": 1, "send": 5, "read": 5},
            plugins={"key-auth": {}, "limit-count": {"count": 10, "time_window": 60}},
            release={
                "strategy": "canary",
                "canary": {
                    "backend": {"service": "shop-v2", "port": "http", "workload": "shop-v2"},
                    "weight": 10,
                    "match": {"header": {"name": "x-canary", "value": "always"}},
                },
            },
        )
    )
    assert isinstance(parsed, GatewayRoute)
    assert set(parsed.spec.backends()) == {"stable", "canary"}
    assert KINDS.parse(route_document(loadBalancer={"type": "chash", "hashOn": "consumer"}))
    for kind in ("ewma", "least_conn"):
        assert KINDS.parse(route_document(loadBalancer={"type": kind}))
    blue_green = KINDS.parse(
        route_document(
            release={
                "strategy": "blueGreen",
                "blueGreen": {"green": {"service": "shop-green", "port": 80}, "active": "green"},
            }
        )
    )
    assert isinstance(blue_green, GatewayRoute)
    assert set(blue_green.spec.backends()) == {"blue", "green"}


@pytest.mark.parametrize(
    ("spec", "path", "reason"),
    [
        ({"loadBalancer": {"type": "random"}}, "spec.loadBalancer.type", "roundrobin"),
        (
            {"loadBalancer": {"type": "chash"}},
            "spec.loadBalancer.key",
            "required when type is chash",
        ),
        (
            {"loadBalancer": {"type": "chash", "hashOn": "header"}},
            "spec.loadBalancer.key",
            "required",
        ),
        ({"loadBalancer": {"type": "ewma", "key": "x"}}, "spec.loadBalancer.key", "only applies"),
        (
            {"loadBalancer": {"type": "chash", "hashOn": "body", "key": "x"}},
            "spec.loadBalancer.hashOn",
            "",
        ),
        ({"backend": {"port": 80}}, "spec.backend.service", "is required"),
        ({"backend": {"service": "shop"}}, "spec.backend.port", "is required"),
        ({"backend": {"service": "shop", "port": 70000}}, "spec.backend.port", "1..65535"),
        ({"backend": {"service": "Shop_", "port": 80}}, "spec.backend.service", "RFC 1123"),
        ({"paths": []}, "spec.paths", "at least 1"),
        ({"paths": ["api"]}, "spec.paths", "start with '/'"),
        ({"hosts": ["bad host"]}, "spec.hosts", "host name"),
        ({"methods": ["FETCH"]}, "spec.methods.0", ""),
        ({"retries": -1}, "spec.retries", "greater than or equal to 0"),
        (
            {"timeout": {"connect": 0, "send": 1, "read": 1}},
            "spec.timeout.connect",
            "greater than 0",
        ),
        ({"plugins": {"traffic-split": {}}}, "spec.plugins", "managed by FOOT"),
        (
            {"release": {"strategy": "canary"}},
            "spec.release.canary",
            "required when strategy is canary",
        ),
        (
            {
                "release": {
                    "strategy": "canary",
                    "canary": {"backend": {"service": "v2", "port": 80}, "weight": 101},
                }
            },
            "spec.release.canary.weight",
            "less than or equal to 100",
        ),
        (
            {
                "release": {
                    "strategy": "canary",
                    "canary": {"backend": {"service": "v2", "port": 80}, "weight": -5},
                }
            },
            "spec.release.canary.weight",
            "greater than or equal to 0",
        ),
        (
            {"release": {"strategy": "canary", "canary": {"weight": 10}}},
            "spec.release.canary.backend",
            "is required",
        ),
        (
            {
                "release": {
                    "strategy": "canary",
                    "canary": {"backend": {"service": "v2", "port": 80}, "match": {}},
                }
            },
            "spec.release.canary.match",
            "exactly one of header or cookie",
        ),
        ({"release": {"strategy": "blueGreen"}}, "spec.release.blueGreen", "required"),
        ({"release": {"strategy": "rolling"}}, "spec.release.strategy", ""),
        (
            {"release": {"canary": {"backend": {"service": "v2", "port": 80}}}},
            "spec.release.canary",
            "only applies to strategy canary",
        ),
        ({"surprise": 1}, "spec.surprise", "unknown field"),
    ],
)
def test_invalid_routes_name_the_field(spec: dict[str, Any], path: str, reason: str) -> None:
    found = problems(route_document(**spec))
    assert path in found, found
    assert reason in found[path]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        route_document(
            loadBalancer={"type": "chash"},
            backend={"port": 80},
            release={
                "strategy": "canary",
                "canary": {"backend": {"service": "v2", "port": 80}, "weight": 200},
            },
        )
    )
    assert {"spec.loadBalancer.key", "spec.backend.service", "spec.release.canary.weight"} <= set(
        found
    )

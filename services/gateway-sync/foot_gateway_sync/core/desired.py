"""GatewayRoutes + where their backends run -> the APISIX upstreams and routes FOOT wants.

Every object carries the labels `managed-by: foot` and `foot-route: <namespace>.<name>`
(plus `foot-role` on upstreams); ids are a hash of the route's key and the role, so the
same route always maps to the same ids on every APISIX instance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from foot.kinds.gateway import Canary, GatewayRoute, GatewayRouteSpec
from foot.kinds.works import Work
from foot_gateway_sync.core.topology import ClusterView, Node, nodes_for

MANAGED_BY = "managed-by"
MANAGED_BY_FOOT = "foot"
ROUTE_LABEL = "foot-route"
ROLE_LABEL = "foot-role"
NO_BACKEND_STATUS = 503
PREVIEW_VALUE = "true"

UPSTREAMS = "upstreams"
ROUTES = "routes"

ObjectKey = tuple[str, str]
"""(resource, id): ("upstreams", "foot-...-stable")."""


def route_key(route: GatewayRoute) -> str:
    return f"{route.namespace or 'default'}.{route.name}"


def object_id(key: str, role: str | None = None) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"foot-{digest}" if role is None else f"foot-{digest}-{role}"


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What one GatewayRoute becomes in APISIX."""

    key: str
    upstreams: Mapping[str, Mapping[str, Any]]
    """id -> upstream body."""
    route_id: str
    route: Mapping[str, Any]
    nodes: Mapping[str, tuple[Node, ...]]
    """role -> its nodes (for status and tests)."""
    answering_fast: bool = False
    """No backend is ready anywhere: the route answers 503 at once."""


@dataclass(frozen=True, slots=True)
class DesiredState:
    objects: Mapping[ObjectKey, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    plans: Mapping[str, RoutePlan] = field(default_factory=lambda: MappingProxyType({}))


def _labels(key: str, role: str | None = None) -> dict[str, str]:
    labels = {MANAGED_BY: MANAGED_BY_FOOT, ROUTE_LABEL: key}
    if role is not None:
        labels[ROLE_LABEL] = role
    return labels


def _checks(spec: GatewayRouteSpec) -> dict[str, Any] | None:
    if spec.health_check is None:
        return None
    return {"active": spec.health_check.active.model_dump(mode="json", by_alias=False)}


def upstream_body(
    key: str, role: str, spec: GatewayRouteSpec, nodes: Iterable[Node]
) -> dict[str, Any]:
    lb = spec.load_balancer
    body: dict[str, Any] = {
        "id": object_id(key, role),
        "name": f"{key}.{role}",
        "desc": "managed by FOOT gateway-sync",
        "labels": _labels(key, role),
        "type": lb.type,
        "hash_on": lb.hash_on,
        "scheme": "http",
        "pass_host": "pass",
        "nodes": [
            {"host": node.host, "port": node.port, "weight": node.weight, "priority": 0}
            for node in nodes
        ],
    }
    if lb.type == "chash" and lb.key is not None:
        body["key"] = lb.key
    if spec.retries is not None:
        body["retries"] = spec.retries
    if spec.retry_timeout is not None:
        body["retry_timeout"] = spec.retry_timeout
    if spec.timeout is not None:
        body["timeout"] = spec.timeout.model_dump(mode="json")
    checks = _checks(spec)
    if checks is not None:
        body["checks"] = checks
    return body


def _match_var(canary: Canary) -> list[list[str]]:
    match = canary.match
    assert match is not None  # noqa: S101 - callers check
    if match.header is not None:
        return [["http_" + match.header.name.lower().replace("-", "_"), "==", match.header.value]]
    assert match.cookie is not None  # noqa: S101 - CanaryMatch holds exactly one
    return [["cookie_" + match.cookie.name, "==", match.cookie.value]]


def _split_rules(
    spec: GatewayRouteSpec, key: str, live: Mapping[str, bool]
) -> tuple[str, list[dict[str, Any]]]:
    """(the route's own upstream role, traffic-split rules); roles without nodes get none."""
    release = spec.release
    if release.canary is not None:
        canary = release.canary
        stable_id, canary_id = object_id(key, "stable"), object_id(key, "canary")
        rules: list[dict[str, Any]] = []
        if canary.match is not None and live["canary"]:
            rules.append(
                {
                    "match": [{"vars": _match_var(canary)}],
                    "weighted_upstreams": [{"upstream_id": canary_id, "weight": 1}],
                }
            )
        weight = canary.weight
        if not live["canary"]:
            weight = 0
        elif not live["stable"]:
            weight = 100
        rules.append(
            {
                "weighted_upstreams": [
                    {"upstream_id": stable_id, "weight": 100 - weight},
                    {"upstream_id": canary_id, "weight": weight},
                ]
            }
        )
        return "stable", rules
    if release.blue_green is not None:
        blue_green = release.blue_green
        active = blue_green.active
        inactive = "green" if active == "blue" else "blue"
        rules = []
        if blue_green.preview_header and live[inactive]:
            header = "http_" + blue_green.preview_header.lower().replace("-", "_")
            rules.append(
                {
                    "match": [{"vars": [[header, "==", PREVIEW_VALUE]]}],
                    "weighted_upstreams": [{"upstream_id": object_id(key, inactive), "weight": 1}],
                }
            )
        return active, rules
    return "stable", []


def plan_route(
    route: GatewayRoute,
    clusters: Mapping[str, ClusterView],
    works_by_cluster: Mapping[str, Iterable[Work]],
) -> RoutePlan:
    spec = route.spec
    key = route_key(route)
    namespace = route.namespace or "default"
    nodes = {
        role: tuple(nodes_for(backend, namespace, clusters, works_by_cluster))
        for role, backend in spec.backends().items()
    }
    live = {role: bool(found) for role, found in nodes.items()}
    upstreams = {
        object_id(key, role): upstream_body(key, role, spec, found) for role, found in nodes.items()
    }
    own_role, rules = _split_rules(spec, key, live)
    plugins: dict[str, Any] = {name: dict(conf) for name, conf in spec.plugins.items()}
    if rules:
        plugins["traffic-split"] = {"rules": rules}
    # Nowhere to send a request (the route's own upstream has no node and the split sends
    # nothing elsewhere): answer at once instead of letting clients hang on an empty upstream.
    answering_fast = not live[own_role] and not (
        spec.release.canary is not None and any(live.values())
    )
    if answering_fast:
        plugins.pop("traffic-split", None)
        plugins["fault-injection"] = {
            "abort": {
                "http_status": NO_BACKEND_STATUS,
                "body": f"no ready backend for {namespace}/{route.name}\n",
            }
        }
    route_id = object_id(key)
    body: dict[str, Any] = {
        "id": route_id,
        "name": key,
        "desc": "managed by FOOT gateway-sync",
        "labels": _labels(key),
        "uris": list(spec.paths),
        "priority": spec.priority,
        "status": 1,
        "upstream_id": object_id(key, own_role),
    }
    if spec.hosts:
        body["hosts"] = list(spec.hosts)
    if spec.methods:
        body["methods"] = list(spec.methods)
    if plugins:
        body["plugins"] = plugins
    return RoutePlan(
        key=key,
        upstreams=upstreams,
        route_id=route_id,
        route=body,
        nodes=nodes,
        answering_fast=answering_fast,
    )


def desired_state(
    routes: Iterable[GatewayRoute],
    clusters: Mapping[str, ClusterView],
    works_by_cluster: Mapping[str, Iterable[Work]],
) -> DesiredState:
    objects: dict[ObjectKey, Mapping[str, Any]] = {}
    plans: dict[str, RoutePlan] = {}
    for route in routes:
        plan = plan_route(route, clusters, works_by_cluster)
        plans[plan.key] = plan
        for upstream_id, upstream in plan.upstreams.items():
            objects[(UPSTREAMS, upstream_id)] = upstream
        objects[(ROUTES, plan.route_id)] = plan.route
    return DesiredState(MappingProxyType(objects), MappingProxyType(plans))


def referenced_upstreams(route: Mapping[str, Any]) -> set[str]:
    """Every upstream id a route needs: its own and those inside traffic-split."""
    found = set()
    if "upstream_id" in route:
        found.add(str(route["upstream_id"]))
    split = route.get("plugins", {}).get("traffic-split", {})
    for rule in split.get("rules", []):
        for weighted in rule.get("weighted_upstreams", []):
            if "upstream_id" in weighted:
                found.add(str(weighted["upstream_id"]))
    return found


def is_managed(body: Mapping[str, Any]) -> bool:
    labels = body.get("labels")
    return isinstance(labels, Mapping) and labels.get(MANAGED_BY) == MANAGED_BY_FOOT

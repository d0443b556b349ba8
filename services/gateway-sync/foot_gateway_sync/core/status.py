"""A GatewayRoute's status from its computed plan and what each APISIX instance holds.

Pure: the shell passes what it knows of each instance (`InstanceView`) and the previous
status (to keep the conditions' transition times), and writes what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from foot.kinds.gateway import (
    BACKENDS_READY,
    PROGRAMMED,
    ConditionStatus,
    GatewayInstanceStatus,
    GatewayNodeStatus,
    GatewayRoute,
    GatewayRouteCondition,
    GatewayRouteStatus,
    GatewayUpstreamStatus,
)
from foot_gateway_sync.core.desired import (
    ROLE_LABEL,
    ROUTES,
    UPSTREAMS,
    ObjectKey,
    RoutePlan,
    is_managed,
)
from foot_gateway_sync.core.diff import drifted

NO_GATEWAY_MESSAGE = (
    "no APISIX instance is configured (apisix_urls, FOOT_APISIX_URLS): the upstreams in this "
    "status are computed but written nowhere"
)


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What gateway-sync knows of one APISIX instance."""

    url: str
    synced: bool
    actual: Mapping[ObjectKey, Mapping[str, Any]] | None
    """Its objects as last listed and written (None: not known, e.g. after an error)."""
    last_error: str = ""


def traffic_shares(plan: RoutePlan) -> dict[str, int]:
    """Percent of the route's requests each role's upstream receives (requests no match
    rule catches): the route's default traffic-split rule, else all on its own upstream."""
    roles = {
        upstream_id: body["labels"][ROLE_LABEL] for upstream_id, body in plan.upstreams.items()
    }
    shares = dict.fromkeys(roles.values(), 0)
    plugins = plan.route.get("plugins", {})
    if "fault-injection" in plugins:
        return shares
    own = str(plan.route.get("upstream_id", ""))
    rules = plugins.get("traffic-split", {}).get("rules", [])
    default = next((rule for rule in rules if not rule.get("match")), None)
    if default is None:
        if own in roles:
            shares[roles[own]] = 100
        return shares
    weights: dict[str, int] = {}
    for weighted in default.get("weighted_upstreams", []):
        role = roles.get(str(weighted.get("upstream_id", own)))
        if role is not None:
            weights[role] = weights.get(role, 0) + int(weighted.get("weight", 0))
    total = sum(weights.values())
    if total <= 0:
        return shares
    for role, weight in weights.items():
        shares[role] = round(100 * weight / total)
    return shares


def programmed_on(plan: RoutePlan, instance: InstanceView) -> tuple[bool, str]:
    """Whether the route and its upstreams are in `instance` as computed; if not, why."""
    if instance.actual is None:
        return False, instance.last_error or "not listed yet"
    wanted: list[tuple[ObjectKey, Mapping[str, Any]]] = [
        ((UPSTREAMS, upstream_id), body) for upstream_id, body in plan.upstreams.items()
    ]
    wanted.append(((ROUTES, plan.route_id), plan.route))
    for (resource, object_id), body in wanted:
        found = instance.actual.get((resource, object_id))
        if found is None:
            return False, instance.last_error or f"{resource}/{object_id} not written yet"
        if not is_managed(found):
            return False, (
                f"{resource}/{object_id} exists without the managed-by: foot label; "
                "FOOT leaves it alone"
            )
        if drifted(resource, body, found):
            return False, instance.last_error or f"{resource}/{object_id} not up to date yet"
    return True, ""


def _programmed(
    instances: Sequence[GatewayInstanceStatus], views: Sequence[InstanceView]
) -> tuple[ConditionStatus, str, str]:
    if not instances:
        return "False", "NoGatewayConfigured", NO_GATEWAY_MESSAGE
    done = sum(1 for i in instances if i.programmed)
    if done == len(instances):
        return "True", "Programmed", f"written to {done} APISIX instance(s)"
    missing = "; ".join(f"{i.url}: {i.message}" for i in instances if not i.programmed)
    reason = "GatewayError" if any(v.last_error for v in views) else "Pending"
    return "False", reason, f"written to {done} of {len(instances)} APISIX instance(s); {missing}"


def _backends(route: GatewayRoute, plan: RoutePlan) -> tuple[ConditionStatus, str, str]:
    found = [node for nodes in plan.nodes.values() for node in nodes]
    if plan.answering_fast or not found:
        backend = route.spec.backend
        return (
            "False",
            "NoReadyBackend",
            (
                f"no ready replica of {backend.workload_kind}/{backend.workload_name} is "
                "reachable in a Ready cluster (a NodePort or LoadBalancer Service with an "
                "address): APISIX answers 503 at once"
            ),
        )
    clusters = sorted({node.cluster for node in found})
    return (
        "True",
        "BackendsFound",
        f"{len(found)} node(s) in {len(clusters)} cluster(s): {', '.join(clusters)}",
    )


def _condition(
    condition_type: str, status: ConditionStatus, reason: str, message: str
) -> GatewayRouteCondition:
    return GatewayRouteCondition(type=condition_type, status=status, reason=reason, message=message)


def merge_conditions(
    previous: Sequence[GatewayRouteCondition],
    current: Sequence[GatewayRouteCondition],
    now: datetime,
) -> list[GatewayRouteCondition]:
    """`current` with each condition's transition time kept from `previous` while its status
    stays the same (now when it changed or is new)."""
    before = {c.type: c for c in previous}
    merged = []
    for condition in current:
        old = before.get(condition.type)
        when = (
            old.last_transition_time if old is not None and old.status == condition.status else None
        )
        merged.append(condition.model_copy(update={"last_transition_time": when or now}))
    return merged


def route_status(
    route: GatewayRoute,
    plan: RoutePlan,
    instances: Sequence[InstanceView],
    *,
    previous: GatewayRouteStatus | None,
    now: datetime,
) -> GatewayRouteStatus:
    shares = traffic_shares(plan)
    upstreams = []
    for upstream_id, body in plan.upstreams.items():
        role = body["labels"][ROLE_LABEL]
        upstreams.append(
            GatewayUpstreamStatus(
                role=role,
                id=upstream_id,
                type=body["type"],
                traffic_percent=shares.get(role, 0),
                nodes=[
                    GatewayNodeStatus(
                        address=node.address, weight=node.weight, cluster=node.cluster
                    )
                    for node in plan.nodes.get(role, ())
                ],
            )
        )
    per_instance = []
    for instance in instances:
        programmed, message = programmed_on(plan, instance)
        per_instance.append(
            GatewayInstanceStatus(
                url=instance.url, synced=instance.synced, programmed=programmed, message=message
            )
        )
    conditions = [
        _condition(PROGRAMMED, *_programmed(per_instance, instances)),
        _condition(BACKENDS_READY, *_backends(route, plan)),
    ]
    return GatewayRouteStatus(
        observed_generation=route.metadata.generation,
        route_id=plan.route_id,
        upstreams=upstreams,
        nodes={role: [node.address for node in found] for role, found in plan.nodes.items()},
        answering_fast=plan.answering_fast,
        instances=per_instance,
        conditions=merge_conditions(
            previous.conditions if previous is not None else (), conditions, now
        ),
    )

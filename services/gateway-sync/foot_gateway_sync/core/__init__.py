"""gateway-sync's pure core: where backends run -> desired APISIX objects -> ordered writes."""

from foot_gateway_sync.core.desired import (
    MANAGED_BY,
    MANAGED_BY_FOOT,
    ROUTE_LABEL,
    ROUTES,
    UPSTREAMS,
    DesiredState,
    RoutePlan,
    desired_state,
    is_managed,
    object_id,
    plan_route,
    referenced_upstreams,
    route_key,
)
from foot_gateway_sync.core.diff import Operation, Plan, covers, drifted, phases, plan
from foot_gateway_sync.core.topology import (
    ClusterView,
    HeardHealth,
    Node,
    backend_nodes,
    cluster_view,
    nodes_for,
)

__all__ = [
    "MANAGED_BY",
    "MANAGED_BY_FOOT",
    "ROUTES",
    "ROUTE_LABEL",
    "UPSTREAMS",
    "ClusterView",
    "DesiredState",
    "HeardHealth",
    "Node",
    "Operation",
    "Plan",
    "RoutePlan",
    "backend_nodes",
    "cluster_view",
    "covers",
    "desired_state",
    "drifted",
    "is_managed",
    "nodes_for",
    "object_id",
    "phases",
    "plan",
    "plan_route",
    "referenced_upstreams",
    "route_key",
]

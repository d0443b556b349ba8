"""What one collection of a member cluster's status found, and the pure folding of the API
server's answers into it (Karmada's shape): `kubernetesVersion`, `apiEnablements`,
`nodeSummary` and `resourceSummary` (allocatable from nodes, allocated from the requests of
running pods, allocating from pending ones).

A contract (the registry's wire API and the agent's heartbeat carry `CollectedStatus`) kept
apart from the I/O that asks the API server (`foot.kube.collect`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from foot.kinds.clusters import APIEnablement, APIResource, NodeSummary, ResourceSummary
from foot.objects import FrozenModel
from foot.quantity import QuantityError, format_milli, milli_value


class CollectedStatus(FrozenModel):
    """What one collection found (the status fields the registry stores)."""

    kubernetes_version: str | None = None
    """gitVersion of the API server."""
    api_enablements: list[APIEnablement]
    """Served group versions and their kinds (subresources left out)."""
    node_summary: NodeSummary
    """Node counts."""
    resource_summary: ResourceSummary
    """Allocatable, allocated and allocating resources."""


def _node_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def summarize_nodes(nodes: Iterable[Mapping[str, Any]]) -> NodeSummary:
    listed = list(nodes)
    return NodeSummary(total_num=len(listed), ready_num=sum(_node_ready(n) for n in listed))


def _add(totals: dict[str, int], resources: Mapping[str, Any] | None) -> None:
    for name, value in (resources or {}).items():
        try:
            totals[name] = totals.get(name, 0) + milli_value(str(value))
        except QuantityError:
            continue  # a malformed figure from the member is left out, not fatal


def _pod_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests as the scheduler counts them: max(sum(containers), max(init))."""
    spec = pod.get("spec") or {}
    total: dict[str, int] = {"pods": 1000}
    for container in spec.get("containers") or []:
        _add(total, (container.get("resources") or {}).get("requests"))
    for container in spec.get("initContainers") or []:
        init: dict[str, int] = {}
        _add(init, (container.get("resources") or {}).get("requests"))
        for name, value in init.items():
            total[name] = max(total.get(name, 0), value)
    _add(total, spec.get("overhead"))
    return total


def _formatted(totals: Mapping[str, int]) -> dict[str, str]:
    return {name: format_milli(value, name) for name, value in sorted(totals.items())}


def summarize_resources(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> ResourceSummary:
    """Allocatable of ready, schedulable nodes; requests of running (allocated) and pending
    (allocating) pods. Finished pods hold nothing."""
    allocatable: dict[str, int] = {}
    for node in nodes:
        if _node_ready(node) and not (node.get("spec") or {}).get("unschedulable"):
            _add(allocatable, (node.get("status") or {}).get("allocatable"))
    allocated: dict[str, int] = {}
    allocating: dict[str, int] = {}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in {"Succeeded", "Failed"}:
            continue
        bound = bool((pod.get("spec") or {}).get("nodeName"))
        target = allocated if bound else allocating
        for name, value in _pod_requests(pod).items():
            target[name] = target.get(name, 0) + value
    return ResourceSummary(
        allocatable=_formatted(allocatable),
        allocated=_formatted(allocated),
        allocating=_formatted(allocating),
    )


def enablements_from(resource_lists: Iterable[Mapping[str, Any]]) -> list[APIEnablement]:
    """APIResourceList documents -> sorted enablements (subresources such as pods/status
    are not kinds of their own and are left out)."""
    found: list[APIEnablement] = []
    for listing in resource_lists:
        group_version = listing.get("groupVersion")
        if not isinstance(group_version, str):
            continue
        resources = sorted(
            (
                APIResource(name=r["name"], kind=r["kind"])
                for r in listing.get("resources") or []
                if isinstance(r, dict) and "/" not in str(r.get("name", "/")) and r.get("kind")
            ),
            key=lambda r: r.name,
        )
        found.append(APIEnablement(group_version=group_version, resources=resources))
    return sorted(found, key=lambda e: e.group_version)

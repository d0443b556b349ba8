"""A member cluster's status as the registry (push) and the agent (pull) both collect it.

`collect_status` asks the API server for its version, the group versions and
kinds it serves, its nodes and its pods, and folds them into the Cluster status
fields (Karmada's shape): `kubernetesVersion`, `apiEnablements`, `nodeSummary`
and `resourceSummary` (allocatable from nodes, allocated from the requests of
running pods, allocating from pending ones). The folding is pure
(`summarize_nodes`, `summarize_resources`, `enablements_from`) and tested
without a server; only `collect_status` does I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from foot.kinds.clusters import APIEnablement, APIResource, NodeSummary, ResourceSummary
from foot.kube.client import KubeClient
from foot.kube.errors import KubeApiError, KubeNotFoundError
from foot.objects import FrozenModel
from foot.quantity import QuantityError, format_milli, milli_value

DISCOVERY_CONCURRENCY = 8
"""Group-version discovery requests one collection sends at once."""
POD_PAGE_SIZE = "500"


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


async def _group_versions(kube: KubeClient) -> list[str]:
    core = await kube.get("/api")
    versions = [str(v) for v in (core or {}).get("versions") or []]
    groups = await kube.get("/apis")
    for group in (groups or {}).get("groups") or []:
        versions += [str(v["groupVersion"]) for v in group.get("versions") or []]
    return versions


async def discover(kube: KubeClient) -> list[APIEnablement]:
    versions = await _group_versions(kube)
    gate = asyncio.Semaphore(DISCOVERY_CONCURRENCY)

    async def one(group_version: str) -> Any:
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        async with gate:
            try:
                return await kube.get(path)
            except KubeApiError:
                return None  # an aggregated API that is down leaves its group out

    listings = await asyncio.gather(*(one(v) for v in versions))
    return enablements_from(listing for listing in listings if isinstance(listing, dict))


async def _list_all(kube: KubeClient, path: str) -> list[dict[str, Any]]:
    """Every item of a list, page by page; a resource the server does not serve is empty."""
    items: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": POD_PAGE_SIZE}
    while True:
        try:
            page = await kube.get(path, **params)
        except KubeNotFoundError:
            return items
        items += list((page or {}).get("items") or [])
        token = ((page or {}).get("metadata") or {}).get("continue")
        if not token:
            return items
        params = {"limit": POD_PAGE_SIZE, "continue": str(token)}


async def collect_status(kube: KubeClient) -> CollectedStatus:
    """One collection; raises KubeUnavailableError / KubeApiError as the client does."""
    version, enablements, nodes, pods = await asyncio.gather(
        kube.version(),
        discover(kube),
        _list_all(kube, "/api/v1/nodes"),
        _list_all(kube, "/api/v1/pods"),
    )
    return CollectedStatus(
        kubernetes_version=str(version.get("gitVersion")) if version.get("gitVersion") else None,
        api_enablements=enablements,
        node_summary=summarize_nodes(nodes),
        resource_summary=summarize_resources(nodes, pods),
    )

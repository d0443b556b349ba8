"""A member cluster's status as the registry (push) and the agent (pull) both collect it.

`collect_status` asks the API server for its version, the group versions and
kinds it serves, its nodes and its pods, and folds them into the Cluster status
fields (Karmada's shape): `kubernetesVersion`, `apiEnablements`, `nodeSummary`
and `resourceSummary` (allocatable from nodes, allocated from the requests of
running pods, allocating from pending ones). The folding is pure and lives in
`foot.cluster_status` (`summarize_nodes`, `summarize_resources`, `enablements_from`,
tested without a server); this module does the I/O.
"""

from __future__ import annotations

import asyncio
from typing import Any

from foot.cluster_status import (
    CollectedStatus,
    enablements_from,
    summarize_nodes,
    summarize_resources,
)
from foot.kinds.clusters import APIEnablement
from foot.kube.client import KubeClient
from foot.kube.errors import KubeApiError, KubeNotFoundError

DISCOVERY_CONCURRENCY = 8
"""Group-version discovery requests one collection sends at once."""
POD_PAGE_SIZE = "500"


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

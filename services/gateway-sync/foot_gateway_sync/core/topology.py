"""Where a backend really runs: clusters' readiness and address, works' status -> nodes.

Pure functions over immutable snapshots (no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from foot.kinds.clusters import Cluster
from foot.kinds.gateway import Backend
from foot.kinds.works import ManifestStatus, ServiceEndpoints, ServicePort, Work


@dataclass(frozen=True, slots=True)
class HeardHealth:
    """The last health event gateway-sync heard for a cluster."""

    sequence: int
    ready: bool
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the computation needs of a member cluster."""

    name: str
    ready: bool
    address: str | None
    """Where the gateway reaches the cluster's NodePorts (gatewayAddress, else the API host)."""


@dataclass(frozen=True, slots=True, order=True)
class Node:
    host: str
    port: int
    weight: int
    cluster: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def cluster_address(cluster: Cluster) -> str | None:
    if cluster.spec.gateway_address:
        return cluster.spec.gateway_address
    if cluster.spec.api_endpoint:
        return urlsplit(cluster.spec.api_endpoint).hostname
    return None


def cluster_view(cluster: Cluster, heard: HeardHealth | None = None) -> ClusterView:
    """Readiness from the Ready condition, or from a health event that is at least as new
    (the registry publishes the event the moment it decides; the object may lag)."""
    condition = cluster.status.condition("Ready")
    ready = condition is not None and condition.status == "True"
    if heard is not None:
        changed = condition.last_transition_time if condition is not None else None
        if changed is None or heard.observed_at >= changed:
            ready = heard.ready
    return ClusterView(cluster.name, ready, cluster_address(cluster))


def _find(
    manifests: Iterable[ManifestStatus], kind: str, namespace: str, name: str
) -> ManifestStatus | None:
    for manifest in manifests:
        if (
            manifest.kind == kind
            and manifest.name == name
            and (manifest.namespace or "default") == namespace
        ):
            return manifest
    return None


def _port(endpoints: ServiceEndpoints, wanted: int | str) -> ServicePort | None:
    for port in endpoints.ports:
        if (isinstance(wanted, int) and port.port == wanted) or port.name == wanted:
            return port
    return None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def backend_nodes(
    backend: Backend, namespace: str, cluster: ClusterView, works: Iterable[Work]
) -> list[Node]:
    """The nodes through which the gateway reaches `backend` in one cluster (none when the
    cluster is not Ready, nothing is ready there, or the Service is not reachable from
    outside: ClusterIP/ExternalName, or NodePort without an address)."""
    if not cluster.ready:
        return []
    statuses = [m for work in works if not work.spec.deleting for m in work.status.manifests]
    service = _find(statuses, "Service", namespace, backend.service)
    workload = _find(statuses, backend.workload_kind, namespace, backend.workload_name)
    ready = (workload.ready_replicas or 0) if workload is not None else 0
    endpoints = service.service if service is not None else None
    port = _port(endpoints, backend.port) if endpoints is not None else None
    if endpoints is None or port is None or ready <= 0:
        return []
    if endpoints.type == "LoadBalancer" and endpoints.load_balancer_ingress:
        return [
            Node(_bracket(ingress), port.port, ready, cluster.name)
            for ingress in endpoints.load_balancer_ingress
        ]
    if endpoints.type in {"NodePort", "LoadBalancer"} and port.node_port and cluster.address:
        return [Node(_bracket(cluster.address), port.node_port, ready, cluster.name)]
    return []


def nodes_for(
    backend: Backend,
    namespace: str,
    clusters: Mapping[str, ClusterView],
    works_by_cluster: Mapping[str, Iterable[Work]],
) -> list[Node]:
    """Every cluster's nodes for `backend`, sorted (a stable order: no needless writes)."""
    found: dict[tuple[str, int], Node] = {}
    for name in sorted(clusters):
        for node in backend_nodes(
            backend, namespace, clusters[name], works_by_cluster.get(name, ())
        ):
            key = (node.host, node.port)
            previous = found.get(key)
            if previous is not None:  # two clusters behind one address: their weights add up
                found[key] = Node(
                    node.host, node.port, previous.weight + node.weight, previous.cluster
                )
            else:
                found[key] = node
    return sorted(found.values())

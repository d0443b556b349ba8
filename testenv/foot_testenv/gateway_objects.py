"""Builders of clusters, health events, works and GatewayRoutes for gateway-sync tests and
benchmarks (shaped as the registry and the dispatcher write them), standing in for those
services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foot.health import ClusterHealthEvent, ReadyStatus
from foot.kinds.clusters import Cluster
from foot.kinds.gateway import GatewayRoute
from foot.kinds.works import Work

NAMESPACE = "shop"


def cluster(
    name: str,
    *,
    ready: str = "True",
    gateway_address: str | None = None,
    changed: datetime | None = None,
) -> Cluster:
    spec: dict[str, Any] = {"syncMode": "Push", "apiEndpoint": f"https://{name}.example:6443"}
    if gateway_address is not None:
        spec["gatewayAddress"] = gateway_address
    return Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": spec,
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": ready,
                        "lastTransitionTime": (changed or datetime(2025, 1, 1, tzinfo=UTC)),
                    }
                ]
            },
        }
    )


def health_event(name: str, ready: ReadyStatus, sequence: int) -> ClusterHealthEvent:
    """The registry's verdict on `name` after a probe: succeeded when `ready` is "True"."""
    return ClusterHealthEvent(
        cluster=name,
        ready=ready,
        reason="ProbeFailed" if ready != "True" else "ProbeSucceeded",
        observed_at=datetime.now(UTC),
        sequence=sequence,
    )


def work(
    cluster_name: str,
    app: str,
    *,
    ready: int,
    node_port: int | None = 30080,
    service_type: str = "NodePort",
    ingress: list[str] | None = None,
    port: int = 80,
    namespace: str = NAMESPACE,
) -> Work:
    """One work holding a Deployment `app` (ready replicas) and its Service `app`."""
    service_port: dict[str, Any] = {"name": "http", "port": port}
    if node_port is not None:
        service_port["nodePort"] = node_port
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": f"{app}.{cluster_name}", "namespace": namespace},
            "spec": {
                "cluster": cluster_name,
                "binding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            },
            "status": {
                "manifests": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "namespace": namespace,
                        "name": app,
                        "applied": True,
                        "replicas": max(ready, 1),
                        "readyReplicas": ready,
                    },
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "namespace": namespace,
                        "name": app,
                        "applied": True,
                        "service": {
                            "type": service_type,
                            "ports": [service_port],
                            "loadBalancerIngress": ingress or [],
                        },
                    },
                ]
            },
        }
    )


def route_document(name: str = "shop", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hosts": ["shop.example.com"],
        "paths": ["/", "/api/*"],
        "backend": {"service": "shop", "port": 80},
    }
    return {
        "apiVersion": "gateway.foot.dev/v1alpha1",
        "kind": "GatewayRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": base | spec,
    }


def route(name: str = "shop", **spec: Any) -> GatewayRoute:
    return GatewayRoute.model_validate(route_document(name, **spec), by_alias=True)


def canary(weight: int, **extra: Any) -> dict[str, Any]:
    return {
        "strategy": "canary",
        "canary": {"backend": {"service": "shop-v2", "port": 80}, "weight": weight, **extra},
    }

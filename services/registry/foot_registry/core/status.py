"""Status collection, pure: which clusters are due, and a cluster after a collection."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Protocol

from foot.kinds.clusters import APIEnablement, Cluster, ClusterStatus, NodeSummary, ResourceSummary
from foot_registry.core.health import Health, taints_in_line, with_taints


class CollectedFacts(Protocol):
    """What one collection found (`foot.kube.collect.CollectedStatus`, as pushed by the
    registry or sent by an agent); read-only here."""

    @property
    def kubernetes_version(self) -> str | None: ...
    @property
    def api_enablements(self) -> list[APIEnablement]: ...
    @property
    def node_summary(self) -> NodeSummary: ...
    @property
    def resource_summary(self) -> ResourceSummary: ...


def with_collected(cluster: Cluster, collected: CollectedFacts, now: datetime) -> Cluster:
    status: ClusterStatus = cluster.status.model_copy(
        update={
            "kubernetes_version": collected.kubernetes_version,
            "api_enablements": collected.api_enablements,
            "node_summary": collected.node_summary,
            "resource_summary": collected.resource_summary,
            "last_heartbeat_time": now,
        }
    )
    return cluster.model_copy(update={"status": status})


def with_pushed_status(cluster: Cluster, collected: CollectedFacts, now: datetime) -> Cluster:
    """A push cluster after the registry collected its status: the status, and its system
    taints put back in line with Ready (a user's apply of the spec may have dropped them)."""
    updated = with_collected(cluster, collected, now)
    if taints_in_line(updated):
        return updated
    ready = updated.status.condition("Ready")
    taints = with_taints(updated.spec.taints, ready.status if ready else None, now)
    return updated.model_copy(update={"spec": updated.spec.model_copy(update={"taints": taints})})


def due_for_status(
    clusters: Mapping[str, Cluster], health: Mapping[str, Health], in_flight: Collection[str]
) -> list[str]:
    """Push clusters that are Ready and have no collection under way, in the clusters' order
    (pull clusters' agents send their status in heartbeats)."""
    due = []
    for name, cluster in clusters.items():
        known = health.get(name)
        if (
            cluster.spec.sync_mode == "Push"
            and known is not None
            and known.ready == "True"
            and name not in in_flight
        ):
            due.append(name)
    return due

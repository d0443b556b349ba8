"""Status, pure: the summaries a collection makes, which clusters are due, and a
cluster after a collection."""

from __future__ import annotations

from datetime import UTC, datetime

from foot.cluster_status import (
    CollectedStatus,
    enablements_from,
    summarize_nodes,
    summarize_resources,
)
from foot.kinds.clusters import TAINT_NOT_READY, Cluster, ClusterCondition
from foot_registry.core.health import Health
from foot_registry.core.onboarding import new_cluster
from foot_registry.core.status import due_for_status, with_collected, with_pushed_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def node(ready: bool, cpu: str, memory: str, *, unschedulable: bool = False) -> dict[str, object]:
    return {
        "spec": {"unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(
    node_name: str | None, phase: str, cpu: str, init_cpu: str | None = None
) -> dict[str, object]:
    spec: dict[str, object] = {
        "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]
    }
    if node_name:
        spec["nodeName"] = node_name
    if init_cpu:
        spec["initContainers"] = [{"resources": {"requests": {"cpu": init_cpu}}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_resource_summary_from_nodes_and_pod_requests() -> None:
    nodes = [node(True, "4", "8Gi"), node(True, "2", "4Gi"), node(False, "8", "8Gi"),
             node(True, "16", "1Gi", unschedulable=True)]  # fmt: skip
    pods = [pod("n1", "Running", "500m"), pod("n1", "Running", "250m", init_cpu="1"),
            pod(None, "Pending", "2"), pod("n2", "Succeeded", "3")]  # fmt: skip
    assert summarize_nodes(nodes).model_dump() == {"total_num": 4, "ready_num": 3}
    summary = summarize_resources(nodes, pods)
    assert summary.allocatable == {"cpu": "6", "memory": "12Gi", "pods": "220"}
    assert summary.allocated == {"cpu": "1500m", "memory": "128Mi", "pods": "2"}
    assert summary.allocating == {"cpu": "2", "memory": "64Mi", "pods": "1"}


def test_enablements_leave_subresources_out() -> None:
    listing = {
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "kind": "Pod"},
            {"name": "pods/status", "kind": "Pod"},
            {"name": "configmaps", "kind": "ConfigMap"},
        ],
    }
    (enabled,) = enablements_from([listing])
    assert [r.name for r in enabled.resources] == ["configmaps", "pods"]


def cluster(name: str, mode: str = "Push") -> Cluster:
    return new_cluster(
        name, mode=mode, endpoint=None, provider=None, region=None, zone=None,
        labels={}, annotations={},
    )  # fmt: skip


def test_only_ready_push_clusters_without_a_collection_under_way_are_due() -> None:
    clusters = {n: cluster(n) for n in ("a", "b", "c", "d")} | {"p": cluster("p", "Pull")}
    health = {
        "a": Health(cluster="a", ready="True"),
        "b": Health(cluster="b", ready="False"),
        "c": Health(cluster="c", ready="True"),
        "p": Health(cluster="p", ready="True"),
    }  # d: never decided
    assert due_for_status(clusters, health, in_flight=set()) == ["a", "c"]
    assert due_for_status(clusters, health, in_flight={"a"}) == ["c"]


def test_a_collection_puts_dropped_system_taints_back() -> None:
    collected = CollectedStatus(
        kubernetes_version="v1.31.0",
        api_enablements=[],
        node_summary=summarize_nodes([node(True, "4", "8Gi")]),
        resource_summary=summarize_resources([], []),
    )
    plain = with_collected(cluster("a"), collected, T0)
    assert plain.status.kubernetes_version == "v1.31.0"
    assert plain.status.last_heartbeat_time == T0
    condition = ClusterCondition(type="Ready", status="False")
    not_ready = plain.model_copy(
        update={"status": plain.status.model_copy(update={"conditions": [condition]})}
    )
    pushed = with_pushed_status(not_ready, collected, T0)
    assert [(t.key, t.time_added) for t in pushed.spec.taints] == [(TAINT_NOT_READY, T0)]
    assert with_pushed_status(pushed, collected, T0).spec.taints == pushed.spec.taints

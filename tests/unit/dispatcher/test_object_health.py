"""Health of what a member reports (`foot.object_health.interpret`), per kind."""

from __future__ import annotations

from typing import Any

import pytest

from dispatcher_support import reported_deployment
from foot.object_health import interpret


@pytest.mark.parametrize(
    ("obj", "health", "ready"),
    [
        (
            reported_deployment(generation=2, observed=2, ready=2),
            "Healthy",
            2,
        ),
        (
            reported_deployment(generation=3, observed=2, ready=2),
            "Progressing",
            2,
        ),
        (
            {
                "kind": "Deployment",
                "metadata": {"generation": 1},
                "spec": {"replicas": 2},
                "status": {"conditions": [{"type": "Progressing", "status": "False"}]},
            },
            "Unhealthy",
            0,
        ),
        (
            {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2}},
            "Progressing",
            0,
        ),
        (
            {
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 1,
                    "readyReplicas": 1,
                    "updatedReplicas": 1,
                    "currentRevision": "a",
                    "updateRevision": "a",
                },
            },
            "Healthy",
            1,
        ),
        (
            {
                "kind": "DaemonSet",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 3,
                    "numberReady": 2,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                },
            },
            "Progressing",
            2,
        ),
        (
            {"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            "Healthy",
            0,
        ),
        (
            {"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
            "Unhealthy",
            0,
        ),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, "Healthy", None),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}}, "Unhealthy", None),
        ({"kind": "ConfigMap"}, "Healthy", None),
    ],
)
def test_health_per_kind(obj: dict[str, Any], health: str, ready: int | None) -> None:
    observed = interpret(obj)
    assert observed.health == health
    assert observed.ready_replicas == ready


def test_service_endpoints_for_the_gateway() -> None:
    node_port = interpret(
        {
            "kind": "Service",
            "spec": {
                "type": "NodePort",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
            },
        }
    )
    assert node_port.health == "Healthy"
    assert node_port.service is not None
    assert node_port.service.ports[0].node_port == 30080
    waiting = interpret({"kind": "Service", "spec": {"type": "LoadBalancer", "ports": []}})
    assert waiting.health == "Progressing"
    ready = interpret(
        {
            "kind": "Service",
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.x"}]}},
        }
    )
    assert ready.health == "Healthy"
    assert ready.service is not None
    assert ready.service.load_balancer_ingress == ["10.0.0.1", "lb.x"]

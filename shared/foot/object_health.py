"""What a member's object says about itself: health per kind (pure).

- Deployment: Healthy when its status caught up with the generation and updated, available
  and ready replicas reach the desired count; Unhealthy when the Progressing condition is
  False (ProgressDeadlineExceeded); Progressing otherwise.
- StatefulSet: Healthy when caught up, ready and updated reach desired and the current
  revision is the update revision; Progressing otherwise.
- DaemonSet: Healthy when caught up and ready, updated and available reach the desired number
  scheduled; Progressing otherwise.
- Job: Healthy when Complete is True, Unhealthy when Failed is True, Progressing otherwise.
- Service: Healthy (ClusterIP, NodePort, ExternalName, LoadBalancer with an ingress);
  Progressing for a LoadBalancer still waiting for an ingress.
- PersistentVolumeClaim: Bound Healthy, Pending Progressing, Lost Unhealthy.
- anything else: Healthy once it exists.

"Caught up" means `status.observedGeneration >= metadata.generation`; a workload whose status
never came (nothing runs its pods) stays Progressing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from foot.kinds.works import ServiceEndpoints, ServicePort, WorkHealth

WATCHED_KINDS = frozenset(
    {
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
    }
)
"""(apiVersion, kind) whose status changes after an apply and is worth watching; everything
else is healthy once applied."""

HEALTH_ORDER: dict[str, int] = {"Healthy": 0, "Unknown": 1, "Progressing": 2, "Unhealthy": 3}
"""Worse is bigger: a set of objects is as healthy as its worst member."""


def worst(healths: list[WorkHealth]) -> WorkHealth:
    if not healths:
        return "Unknown"
    return max(healths, key=lambda h: HEALTH_ORDER[h])


@dataclass(frozen=True, slots=True)
class Observed:
    health: WorkHealth
    replicas: int | None = None
    ready_replicas: int | None = None
    service: ServiceEndpoints | None = None
    observed_generation: int | None = None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _caught_up(obj: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is None:
        return True
    return isinstance(observed, int) and observed >= generation


def _replicated(
    obj: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
) -> Observed:
    kind = obj.get("kind")
    desired = spec.get("replicas")
    desired = 1 if desired is None else _int(desired)
    ready = _int(status.get("readyReplicas"))
    caught_up = _caught_up(obj, status)
    health: WorkHealth = "Progressing"
    if kind == "Deployment":
        progressing = _condition(status, "Progressing")
        if progressing is not None and progressing.get("status") == "False":
            health = "Unhealthy"
        elif (
            caught_up
            and min(
                _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")), ready
            )
            >= desired
            and _int(status.get("replicas")) <= desired
        ):
            health = "Healthy"
    elif kind == "StatefulSet":
        if (
            caught_up
            and ready >= desired
            and _int(status.get("updatedReplicas", desired)) >= desired
            and status.get("currentRevision", "") == status.get("updateRevision", "")
        ):
            health = "Healthy"
    elif caught_up and ready >= desired:
        health = "Healthy"
    if desired == 0 and caught_up and health != "Unhealthy":
        health = "Healthy"
    return Observed(health, desired, ready)


def _daemon_set(
    obj: Mapping[str, Any], _spec: Mapping[str, Any], status: Mapping[str, Any]
) -> Observed:
    desired = _int(status.get("desiredNumberScheduled"))
    ready = _int(status.get("numberReady"))
    healthy = (
        bool(status)
        and _caught_up(obj, status)
        and min(
            ready, _int(status.get("updatedNumberScheduled")), _int(status.get("numberAvailable"))
        )
        >= desired
    )
    return Observed("Healthy" if healthy else "Progressing", desired, ready)


def _job(_obj: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]) -> Observed:
    parallelism = spec.get("parallelism")
    desired = 1 if parallelism is None else _int(parallelism)
    ready = _int(status.get("ready", status.get("active")))
    failed = _condition(status, "Failed")
    complete = _condition(status, "Complete")
    health: WorkHealth = "Progressing"
    if failed is not None and failed.get("status") == "True":
        health = "Unhealthy"
    elif complete is not None and complete.get("status") == "True":
        health = "Healthy"
    return Observed(health, desired, ready)


def _service(
    _obj: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
) -> Observed:
    service_type = str(spec.get("type") or "ClusterIP")
    ports = [
        ServicePort(
            name=p.get("name"),
            port=_int(p.get("port")),
            protocol=str(p.get("protocol") or "TCP"),
            node_port=p.get("nodePort") if isinstance(p.get("nodePort"), int) else None,
        )
        for p in spec.get("ports") or []
        if isinstance(p, Mapping)
    ]
    ingress = [
        str(entry.get("ip") or entry.get("hostname"))
        for entry in ((status.get("loadBalancer") or {}).get("ingress") or [])
        if isinstance(entry, Mapping) and (entry.get("ip") or entry.get("hostname"))
    ]
    endpoints = ServiceEndpoints(type=service_type, ports=ports, load_balancer_ingress=ingress)
    waiting = service_type == "LoadBalancer" and not ingress
    return Observed("Progressing" if waiting else "Healthy", service=endpoints)


def _claim(
    _obj: Mapping[str, Any], _spec: Mapping[str, Any], status: Mapping[str, Any]
) -> Observed:
    phase = status.get("phase")
    health: WorkHealth = "Progressing"
    if phase == "Bound":
        health = "Healthy"
    elif phase == "Lost":
        health = "Unhealthy"
    return Observed(health)


_BY_KIND: dict[
    str, Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Observed]
] = {
    "Deployment": _replicated,
    "StatefulSet": _replicated,
    "ReplicaSet": _replicated,
    "DaemonSet": _daemon_set,
    "Job": _job,
    "Service": _service,
    "PersistentVolumeClaim": _claim,
}


def interpret(obj: Mapping[str, Any]) -> Observed:
    """Health (and replicas, Service endpoints) of one object as a member reports it."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    observed_generation = status.get("observedGeneration")
    if not isinstance(observed_generation, int):
        observed_generation = None
    handler = _BY_KIND.get(str(obj.get("kind")))
    observed = handler(obj, spec, status) if handler is not None else Observed("Healthy")
    return replace(observed, observed_generation=observed_generation)

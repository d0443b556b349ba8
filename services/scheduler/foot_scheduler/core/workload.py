"""What the scheduler needs from a resource template: identity, replicas, per-replica requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from foot.objects import KubeObject
from foot.quantity import MILLI, milli_value

PODS = "pods"
# Kinds whose replicas FOOT divides, and where their replica count lives.
_REPLICA_FIELDS = {
    ("apps/v1", "Deployment"): "replicas",
    ("apps/v1", "StatefulSet"): "replicas",
    ("apps/v1", "ReplicaSet"): "replicas",
    ("batch/v1", "Job"): "parallelism",
}


@dataclass(frozen=True, slots=True)
class Workload:
    """A template as the scheduler sees it."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    replicas: int | None = None
    """Replicas to place; None for objects without replicas (ConfigMap, Service, DaemonSet...),
    which every selected cluster gets whole."""
    requests: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({PODS: MILLI}))
    """What one replica needs, in milli-units; always includes one pod."""
    priority: int = 0
    """Scheduling priority (from the policy's schedulePriority); higher is scheduled first."""

    @property
    def group_version_kind(self) -> tuple[str, str]:
        return (self.api_version, self.kind)

    @property
    def key(self) -> str:
        return f"{self.api_version}/{self.kind}/{self.namespace or '_'}/{self.name}"


def _container_requests(container: Mapping[str, Any]) -> dict[str, int]:
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    return {str(name): milli_value(value) for name, value in requests.items()}


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """Kubernetes' effective pod request: the sum over containers, or the largest init
    container when that is bigger, per resource; plus one pod."""
    total: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        for name, value in _container_requests(container).items():
            total[name] = total.get(name, 0) + value
    for container in pod_spec.get("initContainers") or []:
        for name, value in _container_requests(container).items():
            total[name] = max(total.get(name, 0), value)
    total[PODS] = MILLI
    return total


def workload_from_template(
    template: KubeObject, priority: int = 0, document: Mapping[str, Any] | None = None
) -> Workload:
    """`document`: `template.to_dict()`, when the caller has it already."""
    if document is None:
        document = template.to_dict()
    spec = document.get("spec") or {}
    replica_field = _REPLICA_FIELDS.get((template.api_version, template.kind))
    replicas: int | None = None
    requests: dict[str, int] = {PODS: MILLI}
    if replica_field is not None:
        value = spec.get(replica_field)
        replicas = 1 if value is None else int(value)  # Kubernetes' default is one
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        requests = pod_requests(pod_spec)
    return Workload(
        api_version=template.api_version,
        kind=template.kind,
        namespace=template.namespace,
        name=template.name,
        labels=MappingProxyType(dict(template.metadata.labels)),
        replicas=replicas,
        requests=MappingProxyType(requests),
        priority=priority,
    )

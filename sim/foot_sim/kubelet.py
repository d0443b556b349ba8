"""Simulated nodes and the kubelet/controllers that make workloads ready within capacity.

No pods exist: each workload's replicas are placed first-fit on the nodes by
their summed container requests (and one pod slot each), in creation order.
Placed replicas become ready `ready_delay` seconds after the workload's last
spec change; replicas that do not fit stay unready. Status is written through
the store's status path, so clients see ordinary MODIFIED events.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from foot_sim.resources import NODES, RESOURCES_BY_PATH, ResourceType
from foot_sim.store import ClusterStore, WatchEvent, now_rfc3339

JSON = dict[str, Any]

DEPLOYMENTS = RESOURCES_BY_PATH[("apps", "v1", "deployments")]
STATEFULSETS = RESOURCES_BY_PATH[("apps", "v1", "statefulsets")]
DAEMONSETS = RESOURCES_BY_PATH[("apps", "v1", "daemonsets")]
JOBS = RESOURCES_BY_PATH[("batch", "v1", "jobs")]
PVCS = RESOURCES_BY_PATH[("", "v1", "persistentvolumeclaims")]
_WORKLOADS = (DEPLOYMENTS, STATEFULSETS, DAEMONSETS, JOBS)
_WATCHED = frozenset({*_WORKLOADS, PVCS, NODES})

# The real status writers: kube-controller-manager's workload controllers and the PV binder.
STATUS_MANAGER = "kube-controller-manager"

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)$")
_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(quantity: str | int | float) -> float:
    """A Kubernetes resource quantity ("500m", "2", "128Mi", "1e3") as a number."""
    if isinstance(quantity, int | float):
        return float(quantity)
    match = _QUANTITY.match(quantity.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity: {quantity!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


@dataclass(frozen=True, slots=True)
class NodeShape:
    """What each simulated node offers."""

    cpu: str = "8"
    memory: str = "32Gi"
    pods: int = 110


def node_object(cluster: str, index: int, shape: NodeShape) -> JSON:
    name = f"{cluster}-node-{index}"
    resources = {
        "cpu": shape.cpu,
        "memory": shape.memory,
        "pods": str(shape.pods),
        "ephemeral-storage": "100Gi",
    }
    timestamp = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "foot-sim",
                "topology.kubernetes.io/zone": f"{cluster}-zone-{index % 3}",
            },
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24"},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status (simulated)",
                    "lastHeartbeatTime": timestamp,
                    "lastTransitionTime": timestamp,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 1}"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-foot-sim",
                "containerRuntimeVersion": "foot-sim://1.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "foot-sim",
                "kernelVersion": "0.0.0",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kubeProxyVersion": "",
            },
        },
    }


@dataclass(slots=True)
class _Node:
    name: str
    labels: dict[str, str]
    cpu: float
    memory: float
    pods: int


@dataclass(frozen=True, slots=True)
class PodRequest:
    cpu: float
    memory: float


def pod_request(template: JSON | None) -> PodRequest:
    """Summed container requests of a pod template (limits stand in for missing requests)."""
    cpu = memory = 0.0
    for container in ((template or {}).get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        cpu += parse_quantity(wanted.get("cpu", 0))
        memory += parse_quantity(wanted.get("memory", 0))
    return PodRequest(cpu, memory)


def _fits(node: _Node, request: PodRequest) -> bool:
    return node.pods >= 1 and node.cpu >= request.cpu and node.memory >= request.memory


def _take(node: _Node, request: PodRequest) -> None:
    node.pods -= 1
    node.cpu -= request.cpu
    node.memory -= request.memory


def _node_selected(node: _Node, template: JSON | None) -> bool:
    selector = ((template or {}).get("spec") or {}).get("nodeSelector") or {}
    return all(node.labels.get(k) == v for k, v in selector.items())


@dataclass(slots=True)
class _Rollout:
    generation: int
    started: float
    ready: int = 0


@dataclass
class SimulatedKubelet:
    """Keeps workload, Job and PVC status of one cluster in line with its simulated nodes."""

    store: ClusterStore
    ready_delay: float = 1.0
    _rollouts: dict[tuple[str, str, str], _Rollout] = field(default_factory=dict)
    _claims_pending_since: dict[tuple[str, str], float] = field(default_factory=dict)
    _scheduled: asyncio.TimerHandle | asyncio.Handle | None = None
    _unsubscribe: Any = None

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._schedule(0.0)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource not in _WATCHED:
            return
        status_write = (
            event.resource is not NODES
            and event.previous is not None
            and event.obj.get("spec") == event.previous.get("spec")
        )
        if status_write:
            return  # most likely our own
        self._schedule(0.0)

    def _schedule(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if self._scheduled is not None:
            if isinstance(self._scheduled, asyncio.TimerHandle) and self._scheduled.when() <= when:
                return
            self._scheduled.cancel()
        if delay <= 0:
            self._scheduled = loop.call_soon(self._run)
        else:
            self._scheduled = loop.call_at(when, self._run)

    def _run(self) -> None:
        self._scheduled = None
        next_wake = self.reconcile(asyncio.get_running_loop().time())
        if next_wake is not None:
            self._schedule(max(next_wake - asyncio.get_running_loop().time(), 0.01))

    def _nodes(self) -> list[_Node]:
        nodes = []
        for obj in self.store.iter_objects(NODES):
            allocatable = (obj.get("status") or {}).get("allocatable") or {}
            if (obj.get("spec") or {}).get("unschedulable"):
                continue
            nodes.append(
                _Node(
                    obj["metadata"]["name"],
                    dict(obj["metadata"].get("labels") or {}),
                    parse_quantity(allocatable.get("cpu", 0)),
                    parse_quantity(allocatable.get("memory", 0)),
                    int(parse_quantity(allocatable.get("pods", 0))),
                )
            )
        return nodes

    def reconcile(self, now: float) -> float | None:
        """Bring every status up to date; returns when the next replica becomes ready, if any."""
        nodes = self._nodes()
        # Older workloads get capacity first. Timestamps have one-second resolution, so ties
        # fall back to creation order within a kind (then a fixed order of kinds).
        ranked = [
            (obj["metadata"]["creationTimestamp"], kind_rank, created, resource, obj)
            for kind_rank, resource in enumerate(_WORKLOADS)
            for created, obj in enumerate(self.store.iter_created(resource))
        ]
        ranked.sort(key=lambda entry: entry[:3])
        workloads = [(resource, obj) for *_, resource, obj in ranked]
        live_keys: set[tuple[str, str, str]] = set()
        next_wake: float | None = None
        for resource, obj in workloads:
            key = (resource.plural, obj["metadata"]["namespace"], obj["metadata"]["name"])
            live_keys.add(key)
            wake = self._reconcile_workload(resource, obj, key, nodes, now)
            if wake is not None:
                next_wake = wake if next_wake is None else min(next_wake, wake)
        for stale in set(self._rollouts) - live_keys:
            del self._rollouts[stale]
        wake = self._bind_claims(now)
        if wake is not None:
            next_wake = wake if next_wake is None else min(next_wake, wake)
        return next_wake

    def _place(self, resource: ResourceType, obj: JSON, nodes: list[_Node]) -> tuple[int, int]:
        """(desired replicas, replicas that fit), reserving capacity for the ones that fit."""
        spec = obj.get("spec") or {}
        template = spec.get("template")
        request = pod_request(template)
        if resource is DAEMONSETS:
            eligible = [n for n in nodes if _node_selected(n, template)]
            placed = 0
            for node in eligible:
                if _fits(node, request):
                    _take(node, request)
                    placed += 1
            return len(eligible), placed
        if resource is JOBS:
            succeeded = (obj.get("status") or {}).get("succeeded", 0)
            remaining = max(int(spec.get("completions") or 1) - succeeded, 0)
            desired = min(int(spec.get("parallelism", 1)), remaining)
        else:
            desired = int(spec.get("replicas", 1))
        placed = 0
        candidates = [n for n in nodes if _node_selected(n, template)]
        for _ in range(desired):
            free = next((n for n in candidates if _fits(n, request)), None)
            if free is None:
                break
            _take(free, request)
            placed += 1
        return desired, placed

    def _reconcile_workload(
        self,
        resource: ResourceType,
        obj: JSON,
        key: tuple[str, str, str],
        nodes: list[_Node],
        now: float,
    ) -> float | None:
        metadata = obj["metadata"]
        generation = int(metadata.get("generation", 1))
        rollout = self._rollouts.get(key)
        if rollout is None:
            rollout = self._rollouts[key] = _Rollout(generation, now)
        elif rollout.generation != generation:
            rollout.generation = generation
            rollout.started = now
        desired, placed = self._place(resource, obj, nodes)
        settled = now - rollout.started >= self.ready_delay
        rollout.ready = placed if settled else min(rollout.ready, placed)
        status = _workload_status(
            resource,
            obj,
            desired=desired,
            ready=rollout.ready,
            generation=generation,
            settled=settled,
        )
        if status != obj.get("status"):
            self.store.write_status(
                resource, metadata["namespace"], metadata["name"], status, manager=STATUS_MANAGER
            )
        if not settled and placed > rollout.ready:
            return rollout.started + self.ready_delay
        return None

    def _bind_claims(self, now: float) -> float | None:
        next_wake: float | None = None
        pending: dict[tuple[str, str], float] = {}
        for claim in list(self.store.iter_objects(PVCS)):
            metadata = claim["metadata"]
            if (claim.get("status") or {}).get("phase") == "Bound":
                continue
            key = (metadata["namespace"], metadata["name"])
            since = pending[key] = self._claims_pending_since.get(key, now)
            if now - since < self.ready_delay:
                wake = since + self.ready_delay
                next_wake = wake if next_wake is None else min(next_wake, wake)
                continue
            spec = claim.get("spec") or {}
            requests = (spec.get("resources") or {}).get("requests") or {}
            bound = {
                "phase": "Bound",
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "capacity": {"storage": requests.get("storage", "1Gi")},
            }
            self.store.write_status(
                PVCS, metadata["namespace"], metadata["name"], bound, manager=STATUS_MANAGER
            )
            del pending[key]
        self._claims_pending_since = pending
        return next_wake


def _condition(kind: str, status: bool, reason: str, message: str, previous: list[JSON]) -> JSON:
    """A condition that keeps its lastTransitionTime while its status is unchanged."""
    timestamp = now_rfc3339()
    value = "True" if status else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    transition = (
        before["lastTransitionTime"] if before and before.get("status") == value else timestamp
    )
    update = (
        before.get("lastUpdateTime", timestamp)
        if before and before.get("reason") == reason
        else timestamp
    )
    return {
        "type": kind,
        "status": value,
        "lastUpdateTime": update,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }


def _max_unavailable(obj: JSON, desired: int) -> int:
    rolling = ((obj.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return desired * int(value[:-1]) // 100
    return int(value)


def _workload_status(
    resource: ResourceType, obj: JSON, *, desired: int, ready: int, generation: int, settled: bool
) -> JSON:
    previous = obj.get("status") or {}
    conditions = previous.get("conditions") or []
    name = obj["metadata"]["name"]
    if resource is DEPLOYMENTS:
        available = ready >= desired - _max_unavailable(obj, desired)
        complete = settled and ready == desired
        status: JSON = {
            "observedGeneration": generation,
            "replicas": desired,
            "updatedReplicas": desired,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if desired > ready:
            status["unavailableReplicas"] = desired - ready
        status["conditions"] = [
            _condition(
                "Available",
                available,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
                conditions,
            ),
            _condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{name}" is progressing.',
                conditions,
            ),
        ]
        return {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
    if resource is STATEFULSETS:
        return {
            "observedGeneration": generation,
            "replicas": desired,
            "readyReplicas": ready,
            "currentReplicas": desired,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "currentRevision": f"{name}-{generation}",
            "updateRevision": f"{name}-{generation}",
            "collisionCount": 0,
        }
    if resource is DAEMONSETS:
        return {
            "observedGeneration": generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": desired,
            "updatedNumberScheduled": desired,
            "numberReady": ready,
            "numberAvailable": ready,
            "numberUnavailable": desired - ready,
            "numberMisscheduled": 0,
        }
    return _job_status(obj, desired, ready, settled, previous)


def _job_status(obj: JSON, desired: int, ready: int, settled: bool, previous: JSON) -> JSON:
    spec = obj.get("spec") or {}
    completions = int(spec.get("completions") or 1)
    start_time = previous.get("startTime") or now_rfc3339()
    if previous.get("completionTime"):
        return previous
    if settled and desired > 0 and ready >= desired:
        finished = now_rfc3339()
        succeeded = completions
        conditions = [
            _condition(
                "SuccessCriteriaMet",
                True,
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                [],
            ),
            _condition(
                "Complete",
                True,
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                [],
            ),
        ]
        for condition in conditions:
            condition["lastProbeTime"] = condition.pop("lastUpdateTime")
        return {
            "startTime": start_time,
            "completionTime": finished,
            "succeeded": succeeded,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": conditions,
        }
    status: JSON = {"startTime": start_time, "active": desired, "ready": ready, "terminating": 0}
    status["uncountedTerminatedPods"] = {}
    return status

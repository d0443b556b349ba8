"""Filter plugins: may the workload run on this cluster at all? Each answers with a reason.

A filter returns None when the cluster passes, or a sentence saying why not;
the scheduler reports that sentence per cluster with the filter's name, so an
unschedulable workload always says which rule excluded which cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE
from foot.kinds.policies import ClusterAffinity, PropagationSpec, Toleration
from foot.quantity import format_milli
from foot_scheduler.core.snapshot import ClusterView, TaintView
from foot_scheduler.core.workload import PODS, Workload

UNLIMITED_REPLICAS = 2**31 - 1
"""What "no limit" means for available replicas (Karmada uses MaxInt32 too)."""


@dataclass(frozen=True, slots=True)
class AppHealth:
    """How the workload's copy on one cluster is doing (from the dispatcher's aggregated status)."""

    healthy: bool
    since: datetime
    """When it last changed between healthy and unhealthy."""


@dataclass(frozen=True, slots=True)
class CycleContext:
    """Everything the plugins read for one decision; built once, shared by all of them."""

    workload: Workload
    spec: PropagationSpec
    affinity: ClusterAffinity | None
    now: datetime
    previous: Mapping[str, int]
    """Replicas per cluster in the placement in force (0 for objects without replicas)."""
    app_health: Mapping[str, AppHealth]
    division: str
    capacity_matters: bool
    """Divided by available replicas or Aggregated: capacity limits the placement."""
    available: Mapping[str, int]
    """Replicas of this workload each cluster can run (including those it already runs)."""
    tolerations: tuple[Toleration, ...] = ()
    """The policy's cluster tolerations plus FOOT's default failover tolerations."""


Filter = Callable[[CycleContext, ClusterView], str | None]


def effective_tolerations(
    tolerations: Sequence[Toleration], default_seconds: int
) -> tuple[Toleration, ...]:
    """The policy's tolerations, plus (as Karmada's webhook and Kubernetes do for pods) a
    NoExecute toleration of the not-ready and unreachable taints for `default_seconds`, for each
    of the two the policy does not tolerate itself. With 0 nothing is added: replicas leave a
    cluster the moment it is not Ready."""
    if default_seconds <= 0:
        return tuple(tolerations)
    defaults = [
        Toleration(
            key=key, operator="Exists", effect="NoExecute", toleration_seconds=default_seconds
        )
        for key in (TAINT_NOT_READY, TAINT_UNREACHABLE)
        if not any(t.tolerates(key, None, "NoExecute") for t in tolerations)
    ]
    return (*tolerations, *defaults)


def cluster_affinity(ctx: CycleContext, cluster: ClusterView) -> str | None:
    if ctx.affinity is None:
        return None
    return ctx.affinity.rejection(cluster.name, cluster.labels, cluster.fields)


def _tolerating(tolerations: Sequence[Toleration], taint: TaintView) -> list[Toleration]:
    return [t for t in tolerations if t.tolerates(taint.key, taint.value, taint.effect)]


def toleration_deadline(
    tolerating: Sequence[Toleration], taint: TaintView, now: datetime
) -> datetime | None:
    """When a tolerated NoExecute taint stops being tolerated (None: never)."""
    if any(t.toleration_seconds is None for t in tolerating):
        return None
    seconds = max(t.toleration_seconds or 0 for t in tolerating)
    # An unknown taint time counts from now: never evict on a guess.
    return (taint.time_added or now) + timedelta(seconds=max(seconds, 0))


def taint_toleration(ctx: CycleContext, cluster: ClusterView) -> str | None:
    tolerations = ctx.tolerations
    already_there = cluster.name in ctx.previous
    for taint in cluster.taints:
        if taint.effect == "PreferNoSchedule":
            continue  # only lowers the score
        tolerating = _tolerating(tolerations, taint)
        if taint.effect == "NoSchedule":
            # NoSchedule keeps new placements out but never evicts what already runs there.
            if not tolerating and not already_there:
                return f"taint {taint.describe()} is not tolerated"
            continue
        if not tolerating:
            return f"taint {taint.describe()} is not tolerated" + (
                " (evicting the replicas there)" if already_there else ""
            )
        deadline = toleration_deadline(tolerating, taint, ctx.now)
        if deadline is not None and ctx.now >= deadline:
            return (
                f"taint {taint.describe()} was tolerated until {deadline.isoformat()} "
                "(tolerationSeconds ran out)"
            )
    return None


def api_enablement(ctx: CycleContext, cluster: ClusterView) -> str | None:
    if ctx.workload.group_version_kind in cluster.enabled_kinds:
        return None
    api_version, kind = ctx.workload.group_version_kind
    if not cluster.enabled_kinds:
        return "has not reported the APIs it serves yet"
    return f"does not serve {api_version} {kind}"


def application_failover(ctx: CycleContext, cluster: ClusterView) -> str | None:
    failover = ctx.spec.failover
    if failover is None or failover.application is None:
        return None
    health = ctx.app_health.get(cluster.name)
    if health is None or health.healthy or cluster.name not in ctx.previous:
        return None
    tolerance = failover.application.decision_conditions.toleration_seconds
    if ctx.now - health.since >= timedelta(seconds=tolerance):
        return (
            f"the application has been unhealthy here since {health.since.isoformat()}, "
            f"longer than decisionConditions.tolerationSeconds {tolerance}"
        )
    return None


def capacity(ctx: CycleContext, cluster: ClusterView) -> str | None:
    if not ctx.capacity_matters or ctx.available.get(cluster.name, 0) > 0:
        return None
    if cluster.free is None:
        return "has not reported its resources (resourceSummary), so no replica can be counted in"
    return "no room for one replica: " + shortfall(cluster, ctx.workload)


def shortfall(cluster: ClusterView, workload: Workload) -> str:
    free = cluster.free or {}
    parts = []
    for resource, needed in sorted(workload.requests.items()):
        if needed <= 0 or (resource == PODS and resource not in free):
            continue
        has = free.get(resource, 0)
        if has < needed:
            parts.append(
                f"{resource} needs {format_milli(needed, resource)} per replica, "
                f"{format_milli(has, resource)} free"
            )
    return "; ".join(parts) or "not enough free resources"


def available_replicas(cluster: ClusterView, workload: Workload, already_there: int) -> int:
    """How many replicas of the workload the cluster can run: its free resources divided by
    one replica's requests (resources it does not list count as none, except pods), plus the
    replicas it already runs for this workload (their resources are counted as allocated)."""
    if cluster.free is None:
        return already_there
    fits = UNLIMITED_REPLICAS
    for resource, needed in workload.requests.items():
        if needed <= 0:
            continue
        if resource not in cluster.free:
            if resource == PODS:
                continue
            return already_there
        fits = min(fits, cluster.free[resource] // needed)
    return min(fits + already_there, UNLIMITED_REPLICAS)


FILTERS: tuple[tuple[str, Filter], ...] = (
    ("ClusterAffinity", cluster_affinity),
    ("TaintToleration", taint_toleration),
    ("APIEnablement", api_enablement),
    ("ApplicationFailover", application_failover),
    ("Capacity", capacity),
)

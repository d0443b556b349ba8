"""One immutable view of every cluster, taken once per scheduling cycle.

Everything a decision needs is precomputed here (free resources as integer
milli-units, the kinds each cluster serves, field values for selectors) so a
decision is plain integer and set arithmetic, and every decision in a cycle
sees the same clusters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE, Cluster
from foot.kinds.policies import selected_cluster_fields
from foot.quantity import milli_value


@dataclass(frozen=True, slots=True)
class TaintView:
    key: str
    value: str | None
    effect: str
    time_added: datetime | None

    def describe(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


SYSTEM_TAINT_KEYS = frozenset({TAINT_NOT_READY, TAINT_UNREACHABLE})


@dataclass(frozen=True, slots=True)
class Readiness:
    """A cluster's Ready condition as the scheduler last heard it (the registry's health event,
    which may arrive before the cluster object records the same transition)."""

    status: str
    """True, False or Unknown."""
    since: datetime | None
    """When it took this value."""
    heard: bool = True
    """True when it comes from a health event, False when from the cluster's condition."""


def effective_readiness(cluster: Cluster, heard: Readiness | None) -> Readiness:
    """The newer of the cluster's Ready condition and the last health event heard; a cluster
    that reports no Ready condition yet counts as Unknown."""
    condition = cluster.status.condition("Ready")
    recorded = (
        Readiness(condition.status, condition.last_transition_time, heard=False)
        if condition is not None
        else Readiness("Unknown", None, heard=False)
    )
    if heard is None:
        return recorded
    if condition is None or recorded.since is None:
        return heard
    if heard.since is not None and heard.since >= recorded.since:
        return heard
    return recorded


def readiness_taints(
    declared: Iterable[TaintView], readiness: Readiness, *, failover: bool
) -> tuple[TaintView, ...]:
    """The taints scheduling honours: the declared ones, plus the system taints a cluster that
    is not Ready carries whether or not the registry has written them yet (NoSchedule keeps new
    placements out; NoExecute, when failover is on, moves existing ones away after their
    toleration). When a health event newer than the cluster object says Ready, the system
    taints the registry has not removed yet no longer count."""
    if readiness.status == "True":
        if readiness.heard:
            return tuple(t for t in declared if t.key not in SYSTEM_TAINT_KEYS)
        return tuple(declared)
    key = TAINT_NOT_READY if readiness.status == "False" else TAINT_UNREACHABLE
    taints = [t for t in declared if t.key not in SYSTEM_TAINT_KEYS or t.key == key]
    effects = ("NoSchedule", "NoExecute") if failover else ("NoSchedule",)
    present = {(t.key, t.effect) for t in taints}
    taints += [
        TaintView(key, None, effect, readiness.since)
        for effect in effects
        if (key, effect) not in present
    ]
    return tuple(taints)


@dataclass(frozen=True, slots=True, eq=False)
class ClusterView:
    """What scheduling needs to know about one cluster (compared by identity: one view per
    cluster per snapshot)."""

    name: str
    labels: Mapping[str, str]
    provider: str | None
    region: str | None
    zones: tuple[str, ...]
    taints: tuple[TaintView, ...]
    enabled_kinds: frozenset[tuple[str, str]]
    """(groupVersion, kind) pairs the cluster serves."""
    free: Mapping[str, int] | None
    """allocatable - allocated - allocating per resource, in milli-units; None: not reported."""
    fields: Mapping[str, tuple[str, ...]]
    """provider/region/zone values, as a fieldSelector compares them."""

    ready: str = "True"
    """The effective Ready status (True, False, Unknown)."""

    @classmethod
    def from_cluster(
        cls, cluster: Cluster, heard: Readiness | None = None, *, failover: bool = True
    ) -> ClusterView:
        """The view of one cluster; `heard` is the last health event for it, if any, and
        `failover` says whether a not-Ready cluster's replicas move away (NoExecute)."""
        spec, status = cluster.spec, cluster.status
        readiness = effective_readiness(cluster, heard)
        declared = [TaintView(t.key, t.value, t.effect, t.time_added) for t in spec.taints]
        enabled = frozenset(
            (enablement.group_version, resource.kind)
            for enablement in status.api_enablements
            for resource in enablement.resources
        )
        free: dict[str, int] | None = None
        summary = status.resource_summary
        if summary is not None:
            free = {}
            for resource, quantity in sorted(summary.allocatable.items()):
                used = milli_value(summary.allocated.get(resource, 0)) + milli_value(
                    summary.allocating.get(resource, 0)
                )
                free[resource] = max(milli_value(quantity) - used, 0)
        return cls(
            name=cluster.name,
            labels=MappingProxyType(dict(cluster.metadata.labels)),
            provider=spec.provider,
            region=spec.region,
            zones=spec.zone_names,
            taints=readiness_taints(declared, readiness, failover=failover),
            enabled_kinds=enabled,
            free=None if free is None else MappingProxyType(free),
            fields=MappingProxyType(
                selected_cluster_fields(spec.provider, spec.region, spec.zone_names)
            ),
            ready=readiness.status,
        )


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Every cluster, sorted by name, and the moment the snapshot stands for."""

    clusters: tuple[ClusterView, ...]
    now: datetime
    """The scheduling cycle's "now" (NoExecute toleration periods, application failover);
    given by the caller, never read from the clock here."""
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
    """Results of pure functions of (a policy part, these clusters), e.g. which clusters a
    clusterAffinity rejects; a caller scheduling many templates over the same clusters may
    share one memo between snapshots of the same `clusters`."""

    @classmethod
    def of(cls, clusters: Iterable[Cluster | ClusterView], now: datetime) -> ClusterSnapshot:
        views = [c if isinstance(c, ClusterView) else ClusterView.from_cluster(c) for c in clusters]
        views.sort(key=lambda view: view.name)
        names = [view.name for view in views]
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"cluster names must be unique in a snapshot: {', '.join(repeated)}")
        return cls(clusters=tuple(views), now=now)

    def without(self, name: str) -> ClusterSnapshot:
        return ClusterSnapshot(tuple(c for c in self.clusters if c.name != name), self.now)

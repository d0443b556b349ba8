"""One immutable view of every cluster, taken once per scheduling cycle.

Everything a decision needs is precomputed here (free resources as integer
milli-units, the kinds each cluster serves, field values for selectors) so a
decision is plain integer and set arithmetic, and every decision in a cycle
sees the same clusters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from foot.kinds.clusters import Cluster
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

    @classmethod
    def from_cluster(cls, cluster: Cluster) -> ClusterView:
        spec, status = cluster.spec, cluster.status
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
            taints=tuple(TaintView(t.key, t.value, t.effect, t.time_added) for t in spec.taints),
            enabled_kinds=enabled,
            free=None if free is None else MappingProxyType(free),
            fields=MappingProxyType(
                selected_cluster_fields(spec.provider, spec.region, spec.zone_names)
            ),
        )


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Every cluster, sorted by name, and the moment the snapshot stands for."""

    clusters: tuple[ClusterView, ...]
    now: datetime
    """The scheduling cycle's "now" (NoExecute toleration periods, application failover);
    given by the caller, never read from the clock here."""

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

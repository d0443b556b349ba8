"""What a scheduling decision takes from the past and gives back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TargetCluster:
    name: str
    replicas: int | None
    """Replicas on this cluster; None for objects without replicas."""


@dataclass(frozen=True, slots=True)
class PreviousPlacement:
    """The placement in force before this decision (the binding's current targets)."""

    targets: tuple[TargetCluster, ...] = ()
    affinity_name: str | None = None
    """The clusterAffinities group the previous decision used."""

    def replicas(self) -> dict[str, int]:
        return {t.name: t.replicas or 0 for t in self.targets}

    def names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.targets)


@dataclass(frozen=True, slots=True)
class ClusterVerdict:
    """Why one cluster did or did not receive the workload."""

    cluster: str
    feasible: bool
    """Passed every filter."""
    plugin: str
    """The filter that rejected it, or the step that left it out ("" when selected)."""
    reason: str
    score: int | None = None
    """Total score of a feasible cluster."""
    affinity_name: str | None = None
    """The clusterAffinities group this verdict was reached in."""


@dataclass(frozen=True, slots=True)
class Eviction:
    """A cluster that held replicas before and holds fewer (or none) now."""

    cluster: str
    replicas_before: int | None
    replicas_after: int
    reason: str
    purge_mode: str
    """Immediately / Graciously / Never (Karmada's purge modes) for removing the old copy."""
    grace_period_seconds: int | None


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    schedulable: bool
    targets: tuple[TargetCluster, ...]
    """Clusters and their replicas, sorted by name; empty when unschedulable."""
    reason: str
    """One line: what was decided, or why nothing could be."""
    verdicts: tuple[ClusterVerdict, ...]
    """Per cluster: selected, or which filter/step left it out and why."""
    division: str
    """Duplicated, StaticWeighted, DynamicWeighted or Aggregated."""
    affinity_name: str | None = None
    """The clusterAffinities group used."""
    reschedule_at: datetime | None = None
    """When a tolerated NoExecute taint on a target runs out: schedule again then."""
    evictions: tuple[Eviction, ...] = ()
    suspended_clusters: tuple[str, ...] = ()
    """Targets to which dispatching is held (policy suspension)."""
    propagate_deps: bool = False
    """Dependencies (ConfigMaps, Secrets, ...) follow the workload to the same targets."""
    conflict_resolution: str = "Abort"
    """Abort or Overwrite an object FOOT did not create, as the binding will say."""
    preserve_resources_on_deletion: bool = False
    """Keep member-cluster objects when the template is deleted."""

    def replicas(self) -> dict[str, int | None]:
        return {t.name: t.replicas for t in self.targets}

    def verdict(self, cluster: str) -> ClusterVerdict:
        """The last verdict for a cluster (the one of the group finally used)."""
        for verdict in reversed(self.verdicts):
            if verdict.cluster == cluster:
                return verdict
        raise KeyError(cluster)

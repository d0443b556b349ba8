"""Score plugins: among feasible clusters, which are better? Higher total wins, then name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from foot_scheduler.core.filters import CycleContext
from foot_scheduler.core.snapshot import ClusterView

MAX_SCORE = 100


@dataclass(frozen=True, slots=True)
class Feasible:
    """What score plugins may know about the feasible clusters as a whole (computed once)."""

    clusters: Sequence[ClusterView]
    most_available: int
    """The roomiest feasible cluster's available replicas for this workload."""


Score = Callable[[CycleContext, ClusterView, Feasible], int]


def cluster_locality(ctx: CycleContext, cluster: ClusterView, _: Feasible) -> int:
    """Keep the existing placement: a cluster already running the workload scores highest,
    so a reschedule prefers it over any newcomer (fewer replicas move)."""
    return 2 * MAX_SCORE if cluster.name in ctx.previous else 0


def available_capacity(ctx: CycleContext, cluster: ClusterView, feasible: Feasible) -> int:
    """Prefer clusters with more room for this workload, relative to the roomiest."""
    if not ctx.capacity_matters or feasible.most_available <= 0:
        return 0
    return ctx.available.get(cluster.name, 0) * MAX_SCORE // feasible.most_available


def prefer_no_schedule(ctx: CycleContext, cluster: ClusterView, _: Feasible) -> int:
    """Avoid clusters with a PreferNoSchedule taint the policy does not tolerate."""
    tolerations = ctx.tolerations
    for taint in cluster.taints:
        if taint.effect == "PreferNoSchedule" and not any(
            t.tolerates(taint.key, taint.value, taint.effect) for t in tolerations
        ):
            return 0
    return MAX_SCORE // 2


SCORES: tuple[tuple[str, Score], ...] = (
    ("ClusterLocality", cluster_locality),
    ("AvailableCapacity", available_capacity),
    ("TaintPreference", prefer_no_schedule),
)


def score_clusters(ctx: CycleContext, feasible: Sequence[ClusterView]) -> dict[str, int]:
    most = (
        max((ctx.available.get(c.name, 0) for c in feasible), default=0)
        if ctx.capacity_matters
        else 0
    )
    summary = Feasible(feasible, most)
    return {
        cluster.name: sum(score(ctx, cluster, summary) for _, score in SCORES)
        for cluster in feasible
    }

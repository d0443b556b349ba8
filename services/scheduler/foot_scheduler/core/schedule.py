"""One scheduling decision: filter -> score -> select under spread constraints -> divide.

`schedule` is the whole pure core for one workload: given the same snapshot,
workload, policy spec, previous placement and application health it always
returns the same ScheduleResult.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from foot.kinds.policies import ClusterAffinity, PropagationSpec, SpreadConstraint, Toleration
from foot_scheduler.core import divide
from foot_scheduler.core.filters import (
    FILTERS,
    AppHealth,
    CycleContext,
    available_replicas,
    effective_tolerations,
    toleration_deadline,
)
from foot_scheduler.core.result import (
    ClusterVerdict,
    Eviction,
    PreviousPlacement,
    ScheduleResult,
    TargetCluster,
)
from foot_scheduler.core.scores import score_clusters
from foot_scheduler.core.snapshot import ClusterSnapshot, ClusterView
from foot_scheduler.core.spread import (
    covering_receiver,
    select_clusters,
    spread_deficit,
    spread_shortfall,
)
from foot_scheduler.core.workload import Workload

__all__ = ["AppHealth", "schedule"]

_NO_HEALTH: Mapping[str, AppHealth] = MappingProxyType({})
_NO_VERDICTS: Mapping[str, ClusterVerdict] = MappingProxyType({})
_LATER_FILTERS = FILTERS[1:]
"""Every filter after ClusterAffinity (which `_affinity_split` runs for all clusters at once)."""
_PURGE_MODE_NAMES = {"Directly": "Immediately", "Gracefully": "Graciously"}
_DEFAULT_CLUSTER_GRACE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class _Attempt:
    """The outcome of scheduling within one cluster group."""

    assigned: Mapping[str, int | None] | None
    """Replicas per target cluster (None values: objects without replicas); None: failed."""
    reason: str
    verdicts: tuple[ClusterVerdict, ...]


def schedule(
    workload: Workload,
    spec: PropagationSpec,
    snapshot: ClusterSnapshot,
    previous: PreviousPlacement | None = None,
    app_health: Mapping[str, AppHealth] | None = None,
    *,
    default_toleration_seconds: int = 0,
) -> ScheduleResult:
    """Place `workload` as `spec` says over the clusters in `snapshot`.

    `default_toleration_seconds`: how long replicas may stay on a cluster that is not Ready
    when the policy tolerates nothing about it (FOOT's failover default, see
    `effective_tolerations`)."""
    previous = previous or PreviousPlacement()
    tolerations = effective_tolerations(placement_tolerations(spec), default_toleration_seconds)
    placement = spec.placement
    division = placement.division if workload.replicas is not None else "Duplicated"
    prior = previous.replicas()
    capacity_matters = bool(workload.replicas) and division in {"DynamicWeighted", "Aggregated"}
    available = (
        {
            cluster.name: available_replicas(cluster, workload, prior.get(cluster.name, 0))
            for cluster in snapshot.clusters
        }
        if capacity_matters
        else {}
    )
    groups: list[tuple[str | None, ClusterAffinity | None]]
    if placement.cluster_affinities:
        groups = [(term.affinity_name, term) for term in placement.cluster_affinities]
        # Like Karmada, start from the group in use: a workload that failed over to a backup
        # group stays there rather than flapping back on every reschedule.
        names = [name for name, _ in groups]
        if previous.affinity_name in names:
            groups = groups[names.index(previous.affinity_name) :]
    else:
        groups = [(None, placement.cluster_affinity)]

    verdicts: list[ClusterVerdict] = []
    failures: list[str] = []
    for group_name, affinity in groups:
        ctx = CycleContext(
            workload=workload,
            spec=spec,
            affinity=affinity,
            now=snapshot.now,
            previous=prior,
            app_health=app_health or _NO_HEALTH,
            division=division,
            capacity_matters=capacity_matters,
            available=available,
            tolerations=tolerations,
        )
        attempt = _attempt(ctx, snapshot, group_name)
        verdicts.extend(attempt.verdicts)
        if attempt.assigned is not None:
            return _result(
                ctx,
                snapshot=snapshot,
                previous=previous,
                attempt=attempt,
                group=group_name,
                verdicts=tuple(verdicts),
            )
        failures.append(f"group {group_name}: {attempt.reason}" if group_name else attempt.reason)
    return ScheduleResult(
        schedulable=False,
        targets=(),
        reason="; ".join(failures),
        verdicts=tuple(verdicts),
        division=division,
    )


def placement_tolerations(spec: PropagationSpec) -> tuple[Toleration, ...]:
    return tuple(spec.placement.cluster_tolerations)


def _affinity_split(
    affinity: ClusterAffinity | None, snapshot: ClusterSnapshot, group: str | None
) -> tuple[Mapping[str, ClusterVerdict], tuple[ClusterView, ...]]:
    """The ClusterAffinity filter over every cluster at once: the verdicts of the clusters it
    rejects, and the clusters it lets through. It depends on nothing but the affinity, the
    group name and the clusters, so it is remembered in the snapshot's memo and a cycle over
    many templates with the same policy pays for it once."""
    if affinity is None:
        return _NO_VERDICTS, snapshot.clusters
    key = ("ClusterAffinity", id(affinity), group)
    stored = snapshot.memo.get(key)
    # The memo keeps the affinity itself too, so its id cannot be reused by another object.
    if isinstance(stored, tuple) and stored[0] is affinity:
        remembered: tuple[Mapping[str, ClusterVerdict], tuple[ClusterView, ...]] = stored[1]
        return remembered
    rejected: dict[str, ClusterVerdict] = {}
    passed = []
    for cluster in snapshot.clusters:
        reason = affinity.rejection(cluster.name, cluster.labels, cluster.fields)
        if reason is None:
            passed.append(cluster)
        else:
            rejected[cluster.name] = ClusterVerdict(
                cluster.name, False, "ClusterAffinity", reason, None, group
            )
    found = (MappingProxyType(rejected), tuple(passed))
    snapshot.memo[key] = (affinity, found)
    return found


def _filter(
    ctx: CycleContext,
    snapshot: ClusterSnapshot,
    group: str | None,
    verdicts: dict[str, ClusterVerdict],
) -> list[ClusterView]:
    """Run every filter plugin; rejected clusters get a verdict, the rest are returned."""
    feasible = []
    rejected_by_affinity, candidates = _affinity_split(ctx.affinity, snapshot, group)
    verdicts.update(rejected_by_affinity)
    checks = _LATER_FILTERS
    for cluster in candidates:
        for plugin, check in checks:
            reason = check(ctx, cluster)
            if reason is not None:
                verdicts[cluster.name] = ClusterVerdict(
                    cluster.name, False, plugin, reason, None, group
                )
                break
        else:
            feasible.append(cluster)
    return feasible


def _attempt(ctx: CycleContext, snapshot: ClusterSnapshot, group: str | None) -> _Attempt:
    verdicts: dict[str, ClusterVerdict] = {}
    feasible = _filter(ctx, snapshot, group, verdicts)
    weights: dict[str, int] = {}
    if ctx.division == "StaticWeighted":
        feasible, weights = _static_weights(ctx, feasible, verdicts, group)

    def failed(reason: str) -> _Attempt:
        return _Attempt(None, reason, tuple(verdicts[c.name] for c in snapshot.clusters))

    if not feasible:
        return failed(_no_feasible_cluster(verdicts, snapshot))

    scores = score_clusters(ctx, feasible)
    ranked = sorted(feasible, key=lambda c: (-scores[c.name], c.name))
    need = ctx.workload.replicas if ctx.capacity_matters else None
    selection = select_clusters(ranked, ctx.spec.placement.spread_constraints, need, ctx.available)
    for name, why in selection.left_out.items():
        verdicts[name] = ClusterVerdict(name, True, "SpreadConstraint", why, scores[name], group)
    if selection.failure is not None:
        for cluster in ranked:
            verdicts.setdefault(
                cluster.name,
                ClusterVerdict(
                    cluster.name,
                    True,
                    "Selection",
                    selection.failure,
                    scores[cluster.name],
                    group,
                ),
            )
        return failed(selection.failure)

    names = [c.name for c in selection.chosen]
    assigned, problem = _assign(ctx, selection.chosen, weights)
    if assigned is None:
        for name in names:
            verdicts[name] = ClusterVerdict(
                name, True, "SpreadConstraint", problem, scores[name], group
            )
        return failed(problem)
    for name in names:
        if name in assigned:
            count = assigned[name]
            what = "selected" if count is None else f"selected: {count} replica(s)"
            verdicts[name] = ClusterVerdict(name, True, "", what, scores[name], group)
        else:
            verdicts[name] = ClusterVerdict(
                name, True, "Division", "selected but given no replicas", scores[name], group
            )
    summary = ", ".join(
        name if count is None else f"{name}={count}" for name, count in sorted(assigned.items())
    )
    return _Attempt(
        MappingProxyType(assigned),
        f"{ctx.division} over {len(assigned)} cluster(s): {summary}",
        tuple(verdicts[c.name] for c in snapshot.clusters),
    )


def _assign(
    ctx: CycleContext, chosen: Sequence[ClusterView], weights: Mapping[str, int]
) -> tuple[dict[str, int | None] | None, str]:
    """Replicas per selected cluster (clusters given none are left out when dividing), or None
    and the reason when the division cannot meet the spread constraints."""
    names = [c.name for c in chosen]
    replicas = ctx.workload.replicas
    if replicas is None:
        return dict.fromkeys(names), ""
    counts = _divide(ctx, replicas, names, weights)
    if replicas == 0 or ctx.division == "Duplicated":
        return dict(counts), ""
    if ctx.spec.placement.spread_constraints:
        problem = _cover_spread(ctx, counts, chosen)
        if problem is not None:
            return None, problem
    return {name: count for name, count in counts.items() if count > 0}, ""


def _static_weights(
    ctx: CycleContext,
    feasible: list[ClusterView],
    verdicts: dict[str, ClusterVerdict],
    group: str | None,
) -> tuple[list[ClusterView], dict[str, int]]:
    strategy = ctx.spec.placement.replica_scheduling
    preference = strategy.weight_preference if strategy is not None else None
    entries = preference.static_weight_list if preference is not None else []
    weights = {
        cluster.name: max(
            (
                entry.weight
                for entry in entries
                if entry.target_cluster.matches(cluster.name, cluster.labels, cluster.fields)
            ),
            default=0,
        )
        for cluster in feasible
    }
    if not any(weights.values()):
        # No weight list, or it names none of the feasible clusters: equal weights (Karmada).
        return feasible, dict.fromkeys(weights, 1)
    kept = []
    for cluster in feasible:
        if weights[cluster.name] > 0:
            kept.append(cluster)
        else:
            verdicts[cluster.name] = ClusterVerdict(
                cluster.name,
                False,
                "StaticWeight",
                "no staticWeightList entry selects it",
                None,
                group,
            )
    return kept, weights


def _divide(
    ctx: CycleContext, replicas: int, names: Sequence[str], weights: Mapping[str, int]
) -> dict[str, int]:
    prior = ctx.previous
    if ctx.division == "Duplicated":
        return divide.duplicated(replicas, names)
    if ctx.division == "StaticWeighted":
        return divide.static_weighted(replicas, [(n, weights[n]) for n in names], prior)
    if ctx.division == "DynamicWeighted":
        return divide.dynamic_weighted(replicas, names, ctx.available, prior)
    return divide.aggregated(replicas, names, ctx.available, prior)


def _cover_spread(
    ctx: CycleContext, counts: dict[str, int], chosen: Sequence[ClusterView]
) -> str | None:
    """Make the clusters that received replicas meet every minGroups, moving one replica at a
    time from the fullest cluster to the best-ranked cluster of a missing group."""
    constraints = ctx.spec.placement.spread_constraints
    rank = {cluster.name: position for position, cluster in enumerate(chosen)}
    while (index := spread_shortfall(counts, chosen, constraints)) is not None:
        room = {
            name: (ctx.available.get(name, 0) - counts[name]) if ctx.capacity_matters else 1
            for name in counts
        }
        receiver = covering_receiver(counts, chosen, constraints, index, room)
        donor = None if receiver is None else _donor(counts, chosen, constraints, receiver, rank)
        if receiver is None or donor is None:
            constraint = constraints[index]
            return (
                f"{sum(counts.values())} replica(s) cannot cover minGroups "
                f"{constraint.effective_min_groups} of spread by {constraint.grouping}"
            )
        counts[donor] -= 1
        counts[receiver.name] += 1
    return None


def _donor(
    counts: Mapping[str, int],
    chosen: Sequence[ClusterView],
    constraints: Sequence[SpreadConstraint],
    receiver: ClusterView,
    rank: Mapping[str, int],
) -> str | None:
    """The cluster to give one replica to `receiver`: the fullest first; a cluster's last
    replica may go only if the move still brings every minGroups closer."""
    before = spread_deficit(counts, chosen, constraints)
    for name in sorted(counts, key=lambda n: (-counts[n], -rank[n])):
        if counts[name] == 0 or name == receiver.name:
            continue
        trial = dict(counts)
        trial[name] -= 1
        trial[receiver.name] += 1
        if spread_deficit(trial, chosen, constraints) < before:
            return name
    return None


def _no_feasible_cluster(verdicts: Mapping[str, ClusterVerdict], snapshot: ClusterSnapshot) -> str:
    if not snapshot.clusters:
        return "no clusters are registered"
    by_plugin = Counter(v.plugin for v in verdicts.values() if not v.feasible)
    parts = ", ".join(f"{count} by {plugin}" for plugin, count in sorted(by_plugin.items()))
    return f"no cluster passes the filters ({len(snapshot.clusters)} cluster(s): rejected {parts})"


def _result(
    ctx: CycleContext,
    *,
    snapshot: ClusterSnapshot,
    previous: PreviousPlacement,
    attempt: _Attempt,
    group: str | None,
    verdicts: tuple[ClusterVerdict, ...],
) -> ScheduleResult:
    assert attempt.assigned is not None  # noqa: S101 - only called for successful attempts
    targets = tuple(TargetCluster(name, count) for name, count in sorted(attempt.assigned.items()))
    by_name = {cluster.name: cluster for cluster in snapshot.clusters}
    return ScheduleResult(
        schedulable=True,
        targets=targets,
        reason=attempt.reason,
        verdicts=verdicts,
        division=ctx.division,
        affinity_name=group,
        reschedule_at=_next_toleration_deadline(ctx, [by_name[t.name] for t in targets]),
        evictions=_evictions(ctx, previous, attempt, by_name),
        suspended_clusters=_suspended(ctx.spec, targets),
        propagate_deps=ctx.spec.propagates_dependencies,
        conflict_resolution=ctx.spec.conflict_resolution,
        preserve_resources_on_deletion=bool(ctx.spec.preserve_resources_on_deletion),
    )


def _next_toleration_deadline(ctx: CycleContext, targets: Sequence[ClusterView]) -> datetime | None:
    tolerations = ctx.tolerations
    deadlines = []
    for cluster in targets:
        for taint in cluster.taints:
            if taint.effect != "NoExecute":
                continue
            tolerating = [
                t for t in tolerations if t.tolerates(taint.key, taint.value, taint.effect)
            ]
            deadline = toleration_deadline(tolerating, taint, ctx.now) if tolerating else None
            if deadline is not None:
                deadlines.append(deadline)
    return min(deadlines, default=None)


def _evictions(
    ctx: CycleContext,
    previous: PreviousPlacement,
    attempt: _Attempt,
    clusters: Mapping[str, ClusterView],
) -> tuple[Eviction, ...]:
    assert attempt.assigned is not None  # noqa: S101
    verdicts = {v.cluster: v for v in attempt.verdicts}
    failover = ctx.spec.failover
    evictions = []
    for target in previous.targets:
        if target.name in attempt.assigned:
            after = attempt.assigned[target.name]
            if after is None or target.replicas is None or after >= target.replicas:
                continue
            evictions.append(
                Eviction(
                    target.name, target.replicas, after, "fewer replicas here", "Immediately", None
                )
            )
            continue
        verdict = verdicts.get(target.name)
        if target.name not in clusters:
            reason, plugin = "the cluster left", "ClusterGone"
        elif verdict is None:
            reason, plugin = "not selected", ""
        else:
            reason, plugin = f"{verdict.plugin}: {verdict.reason}", verdict.plugin
        purge, grace = "Immediately", None
        if plugin == "ApplicationFailover" and failover is not None and failover.application:
            purge = failover.application.purge_mode
            grace = failover.application.effective_grace_period_seconds
        elif (
            plugin in {"TaintToleration", "ClusterGone"}
            and failover is not None
            and failover.cluster
        ):
            purge = failover.cluster.purge_mode
            grace = _DEFAULT_CLUSTER_GRACE_SECONDS
        purge = _PURGE_MODE_NAMES.get(purge, purge)
        if purge != "Graciously":
            grace = None
        evictions.append(Eviction(target.name, target.replicas, 0, reason, purge, grace))
    return tuple(sorted(evictions, key=lambda e: e.cluster))


def _suspended(spec: PropagationSpec, targets: Sequence[TargetCluster]) -> tuple[str, ...]:
    suspension = spec.suspension
    if suspension is None:
        return ()
    if suspension.dispatching:
        return tuple(t.name for t in targets)
    held = suspension.dispatching_on_clusters
    names = set(held.cluster_names) if held is not None else set()
    return tuple(t.name for t in targets if t.name in names)

"""Selection: which of the feasible clusters to use, under spread constraints.

Clusters come in rank order (score, then name). Without spread constraints
every feasible cluster is selected. With them, selection is greedy and
deterministic:

1. coverage: for each constraint, add the best-ranked cluster that brings a
   new group until minGroups groups are covered;
2. fill: add every further cluster, in rank order, that keeps every
   constraint within its maxGroups (Karmada also selects up to maxGroups);
3. capacity: when capacity limits the placement and the selection cannot
   hold the replicas, swap a selected cluster for a roomier unselected one as
   long as every constraint still holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from foot.kinds.policies import SpreadConstraint
from foot_scheduler.core.snapshot import ClusterView

NO_LIMIT = 2**31 - 1


def group_values(cluster: ClusterView, grouping: str) -> frozenset[str]:
    """The groups a cluster belongs to for one spread constraint (empty: it has no such field)."""
    if grouping == "cluster":
        return frozenset((cluster.name,))
    if grouping == "region":
        return frozenset((cluster.region,)) if cluster.region else frozenset()
    if grouping == "provider":
        return frozenset((cluster.provider,)) if cluster.provider else frozenset()
    if grouping == "zone":
        return frozenset(cluster.zones)
    key = grouping.removeprefix("label:")
    value = cluster.labels.get(key)
    return frozenset((value,)) if value is not None else frozenset()


def _describe(grouping: str) -> str:
    if grouping.startswith("label:"):
        return f"label {grouping.removeprefix('label:')}"
    return grouping


@dataclass(frozen=True, slots=True)
class Selection:
    chosen: tuple[ClusterView, ...]
    """Selected clusters in rank order; empty when selection failed."""
    failure: str | None
    """Why nothing could be selected."""
    left_out: Mapping[str, str]
    """Feasible clusters not selected, with the reason."""


class _Groups:
    """Group membership of every usable cluster for every constraint."""

    def __init__(self, constraints: Sequence[SpreadConstraint], clusters: Sequence[ClusterView]):
        self.constraints = tuple(constraints)
        self.minimum = tuple(c.effective_min_groups for c in constraints)
        self.maximum = tuple(c.max_groups or NO_LIMIT for c in constraints)
        self.values = {
            cluster.name: tuple(group_values(cluster, c.grouping) for c in constraints)
            for cluster in clusters
        }

    def covered(self, chosen: Sequence[ClusterView]) -> list[set[str]]:
        used: list[set[str]] = [set() for _ in self.constraints]
        for cluster in chosen:
            for index, values in enumerate(self.values[cluster.name]):
                used[index] |= values
        return used

    def add(self, used: Sequence[set[str]], cluster: ClusterView) -> None:
        """Count `cluster`'s groups as used (what `covered` gives with it chosen as well)."""
        for index, values in enumerate(self.values[cluster.name]):
            used[index].update(values)

    def fits(self, cluster: ClusterView, used: Sequence[set[str]]) -> bool:
        return all(
            len(used[index] | values) <= self.maximum[index]
            for index, values in enumerate(self.values[cluster.name])
        )

    def valid(self, chosen: Sequence[ClusterView]) -> bool:
        used = self.covered(chosen)
        return all(
            self.minimum[index] <= len(groups) <= self.maximum[index]
            for index, groups in enumerate(used)
        )


def select_clusters(
    ranked: Sequence[ClusterView],
    constraints: Sequence[SpreadConstraint],
    need: int | None,
    available: Mapping[str, int],
) -> Selection:
    """Pick clusters; `need` is the replica count capacity must cover (None: no limit)."""
    if not constraints:
        return _check_capacity(tuple(ranked), need, available, {})
    left_out: dict[str, str] = {}
    usable = []
    for cluster in ranked:
        missing = [c.grouping for c in constraints if not group_values(cluster, c.grouping)]
        if missing:
            left_out[cluster.name] = (
                f"has no {', '.join(_describe(g) for g in missing)} to spread by"
            )
        else:
            usable.append(cluster)
    groups = _Groups(constraints, usable)
    chosen: list[ClusterView] = []
    taken: set[str] = set()
    used = groups.covered(chosen)
    for index, constraint in enumerate(constraints):
        while len(used[index]) < groups.minimum[index]:
            pick = next(
                (
                    cluster
                    for cluster in usable
                    if cluster.name not in taken
                    and groups.values[cluster.name][index] - used[index]
                    and groups.fits(cluster, used)
                ),
                None,
            )
            if pick is None:
                available_groups = set().union(*(groups.values[c.name][index] for c in usable))
                return Selection(
                    (),
                    f"spread by {_describe(constraint.grouping)}: minGroups is "
                    f"{groups.minimum[index]} but only {len(used[index])} of "
                    f"{len(available_groups)} group(s) among feasible clusters could be used "
                    "within every maxGroups",
                    left_out,
                )
            chosen.append(pick)
            taken.add(pick.name)
            groups.add(used, pick)
    for cluster in usable:
        if cluster.name not in taken and groups.fits(cluster, used):
            chosen.append(cluster)
            taken.add(cluster.name)
            groups.add(used, cluster)
    if need is not None:
        chosen = _swap_for_capacity(chosen, usable, need, available, groups)
    order = {cluster.name: position for position, cluster in enumerate(ranked)}
    chosen.sort(key=lambda cluster: order[cluster.name])
    taken = {cluster.name for cluster in chosen}
    for cluster in usable:
        if cluster.name not in taken:
            left_out[cluster.name] = "not selected: spread constraints' maxGroups already reached"
    return _check_capacity(tuple(chosen), need, available, left_out)


def _swap_for_capacity(
    chosen: list[ClusterView],
    usable: Sequence[ClusterView],
    need: int,
    available: Mapping[str, int],
    groups: _Groups,
) -> list[ClusterView]:
    def total(clusters: Sequence[ClusterView]) -> int:
        return sum(available.get(c.name, 0) for c in clusters)

    outside = sorted(
        (c for c in usable if c not in chosen), key=lambda c: (-available.get(c.name, 0), c.name)
    )
    for candidate in outside:
        if total(chosen) >= need:
            break
        smallest_first = sorted(chosen, key=lambda c: (available.get(c.name, 0), c.name))
        for incumbent in smallest_first:
            if available.get(candidate.name, 0) <= available.get(incumbent.name, 0):
                break
            trial = [candidate if c is incumbent else c for c in chosen]
            if groups.valid(trial):
                chosen = trial
                break
    return chosen


def _check_capacity(
    chosen: tuple[ClusterView, ...],
    need: int | None,
    available: Mapping[str, int],
    left_out: dict[str, str],
) -> Selection:
    if need is not None:
        room = sum(available.get(c.name, 0) for c in chosen)
        if room < need:
            return Selection(
                (),
                f"not enough room: the selected clusters can run {room} more replica(s), "
                f"{need} needed",
                left_out,
            )
    return Selection(chosen, None, left_out)


def spread_shortfall(
    assigned: Mapping[str, int],
    chosen: Sequence[ClusterView],
    constraints: Sequence[SpreadConstraint],
) -> int | None:
    """Index of the first constraint whose minGroups the clusters with replicas miss, or None."""
    groups = _Groups(constraints, chosen)
    holding = [c for c in chosen if assigned.get(c.name, 0) > 0]
    used = groups.covered(holding)
    for index, minimum in enumerate(groups.minimum):
        if len(used[index]) < minimum:
            return index
    return None


def spread_deficit(
    assigned: Mapping[str, int],
    chosen: Sequence[ClusterView],
    constraints: Sequence[SpreadConstraint],
) -> int:
    """How many groups the clusters holding replicas miss, summed over every minGroups."""
    groups = _Groups(constraints, chosen)
    used = groups.covered([c for c in chosen if assigned.get(c.name, 0) > 0])
    return sum(max(minimum - len(used[index]), 0) for index, minimum in enumerate(groups.minimum))


def covering_receiver(
    assigned: Mapping[str, int],
    chosen: Sequence[ClusterView],
    constraints: Sequence[SpreadConstraint],
    index: int,
    room: Mapping[str, int],
) -> ClusterView | None:
    """The best-ranked selected cluster without replicas that adds a group to constraint `index`."""
    groups = _Groups(constraints, chosen)
    used = groups.covered([c for c in chosen if assigned.get(c.name, 0) > 0])
    for cluster in chosen:
        if (
            assigned.get(cluster.name, 0) == 0
            and room.get(cluster.name, 0) > 0
            and groups.values[cluster.name][index] - used[index]
        ):
            return cluster
    return None

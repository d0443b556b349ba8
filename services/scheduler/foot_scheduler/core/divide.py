"""Replica division over the selected clusters.

Every function returns replicas per cluster summing exactly to the request,
keeps what the previous placement had where it still may, and breaks every
tie by a fixed order (never by dict order), so the same inputs always give
the same division.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def apportion(
    total: int, weights: Sequence[tuple[str, int]], previous: Mapping[str, int]
) -> dict[str, int]:
    """Divide `total` by weight: each gets floor(weight share), then the remainder goes one
    replica at a time first to clusters that held more than their floor before (so fewer
    replicas move), then by weight, then by name."""
    weight_sum = sum(weight for _, weight in weights)
    if total <= 0 or weight_sum <= 0:
        return {name: 0 for name, _ in weights}
    shares = {name: total * weight // weight_sum for name, weight in weights}
    remainder = total - sum(shares.values())
    order = sorted(
        weights,
        key=lambda item: (previous.get(item[0], 0) <= shares[item[0]], -item[1], item[0]),
    )
    for name, _ in order[:remainder]:
        shares[name] += 1
    return shares


def duplicated(replicas: int, clusters: Sequence[str]) -> dict[str, int]:
    return dict.fromkeys(clusters, replicas)


def static_weighted(
    replicas: int, weights: Sequence[tuple[str, int]], previous: Mapping[str, int]
) -> dict[str, int]:
    return apportion(replicas, weights, previous)


def _kept(
    clusters: Sequence[str], available: Mapping[str, int], previous: Mapping[str, int]
) -> dict[str, int]:
    """What the previous placement may keep: its replicas on still-selected clusters, up to room."""
    return {
        name: min(previous[name], available.get(name, 0))
        for name in clusters
        if previous.get(name, 0) > 0
    }


def dynamic_weighted(
    replicas: int,
    clusters: Sequence[str],
    available: Mapping[str, int],
    previous: Mapping[str, int],
) -> dict[str, int]:
    """Weights are available replicas (Karmada's dynamicWeight: AvailableReplicas).

    Fresh: divide by available replicas. Reschedule: keep what may stay; scale down in
    proportion to what is kept; scale up (or replace a lost cluster's replicas) by dividing only
    the missing replicas by each cluster's remaining room. The caller checked there is room.
    """
    kept = _kept(clusters, available, previous)
    kept_total = sum(kept.values())
    if not kept:
        return apportion(replicas, [(name, available.get(name, 0)) for name in clusters], {})
    result = dict.fromkeys(clusters, 0)
    if kept_total >= replicas:
        result.update(apportion(replicas, sorted(kept.items()), kept))
        return result
    room = [(name, available.get(name, 0) - kept.get(name, 0)) for name in clusters]
    added = apportion(replicas - kept_total, [(n, r) for n, r in room if r > 0], {})
    for name in clusters:
        result[name] = kept.get(name, 0) + added.get(name, 0)
    return result


def aggregated(
    replicas: int,
    clusters: Sequence[str],
    available: Mapping[str, int],
    previous: Mapping[str, int],
) -> dict[str, int]:
    """As few clusters as possible: keep what may stay; put the missing replicas on the fewest
    clusters (those already used first, then the roomiest), shared by their room as Karmada does.
    Scaling down empties the clusters holding the fewest replicas first."""
    kept = _kept(clusters, available, previous)
    kept_total = sum(kept.values())
    result = dict.fromkeys(clusters, 0)
    if kept_total >= replicas:
        surplus = kept_total - replicas
        for name in sorted(kept, key=lambda n: (kept[n], n)):
            taken = min(surplus, kept[name])
            kept[name] -= taken
            surplus -= taken
        result.update(kept)
        return result
    missing = replicas - kept_total
    rank = {name: position for position, name in enumerate(clusters)}
    room = {name: available.get(name, 0) - kept.get(name, 0) for name in clusters}
    order = sorted(
        (name for name in clusters if room[name] > 0),
        key=lambda n: (n not in kept, -room[n], rank[n]),
    )
    used: list[str] = []
    covered = 0
    for name in order:
        if covered >= missing:
            break
        used.append(name)
        covered += room[name]
    added = apportion(missing, [(name, room[name]) for name in used], {})
    for name in clusters:
        result[name] = kept.get(name, 0) + added.get(name, 0)
    return result

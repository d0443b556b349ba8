"""Which member clusters a claim gives access to: a list, a selector, or a workload's placement."""

from __future__ import annotations

from collections.abc import Iterable

from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.storage import StorageClaim


def target_clusters(
    claim: StorageClaim,
    clusters: Iterable[Cluster],
    bindings: Iterable[ResourceBinding],
) -> tuple[str, ...]:
    """Sorted names of the clusters that should hold a key for `claim`.

    A listed cluster counts even before the registry knows it (it may join
    later, and the key waits for it); a selector only matches known clusters;
    `placedWith` follows the workload's binding (no binding yet: no cluster).
    """
    access = claim.spec.access
    if access.clusters:
        return tuple(sorted(set(access.clusters)))
    if access.cluster_selector is not None:
        selector = access.cluster_selector
        return tuple(
            sorted(c.metadata.name for c in clusters if selector.matches(c.metadata.labels))
        )
    workload = access.placed_with
    assert workload is not None  # noqa: S101 - the model requires exactly one way
    namespace = workload.namespace or claim.metadata.namespace
    placed: set[str] = set()
    for binding in bindings:
        resource = binding.spec.resource
        if (
            resource.api_version == workload.api_version
            and resource.kind == workload.kind
            and resource.name == workload.name
            and (resource.namespace or namespace) == namespace
        ):
            placed |= {target.name for target in binding.spec.clusters}
    return tuple(sorted(placed))

"""When a member's copy goes, and what a template's status is over all clusters (pure).

Removal of a work whose cluster is no longer a target of its binding:

- binding gone (template deleted) with preserveResourcesOnDeletion: the work is forgotten,
  the member's objects stay;
- binding gone otherwise: the member's objects are deleted, then the work;
- no graceful eviction for the cluster (purge Directly/Immediately, or the eviction ended),
  or an eviction with purgeMode Directly/Immediately: deleted now;
- eviction with purgeMode Never: kept (until the eviction is withdrawn);
- eviction with purgeMode Gracefully/Graciously: kept until every target cluster's copy is
  applied and Healthy, or the grace period (default 600 s) ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from foot.kinds.bindings import ObjectReference, ResourceBinding
from foot.kinds.policies import DEFAULT_GRACE_PERIOD_SECONDS
from foot.kinds.works import AggregatedStatus, ClusterWorkSummary, Work
from foot.object_health import worst

Action = Literal["keep", "delete", "forget"]


@dataclass(frozen=True, slots=True)
class Removal:
    action: Action
    reason: str
    recheck_at: datetime | None = None
    """For a graceful eviction: when the grace period ends."""


def work_applied(work: Work) -> bool:
    status = work.status
    return (
        status.applied_hash == work.spec.manifests_hash
        and bool(status.manifests)
        and all(m.applied for m in status.manifests)
    )


def replacement_ready(
    binding: ResourceBinding,
    works: Mapping[str, Work],
    unreachable: AbstractSet[str] = frozenset(),
) -> bool:
    """Every target cluster's work exists for the current spec, is applied and Healthy, on a
    cluster that is reachable now (an unreachable member's last report is not evidence)."""
    for target in binding.spec.clusters:
        work = works.get(target.name)
        if (
            work is None
            or target.name in unreachable
            or not work_applied(work)
            or work.status.health != "Healthy"
        ):
            return False
    return bool(binding.spec.clusters)


def removal(  # noqa: PLR0911 - one return per row of the table above
    work: Work,
    binding: ResourceBinding | None,
    *,
    now: datetime,
    target_ready: bool,
) -> Removal:
    cluster = work.spec.cluster
    if binding is None:
        if work.spec.preserve_on_deletion:
            return Removal("forget", "template deleted; preserveResourcesOnDeletion keeps objects")
        return Removal("delete", "template deleted")
    if any(t.name == cluster for t in binding.spec.clusters):
        return Removal("keep", "still a target")
    eviction = next((e for e in binding.spec.graceful_evictions if e.from_cluster == cluster), None)
    if eviction is None:
        return Removal("delete", "no longer a target")
    mode = eviction.purge_mode
    if mode in {"Directly", "Immediately"}:
        return Removal("delete", f"evicted ({eviction.reason}), purgeMode {mode}")
    if mode == "Never":
        return Removal("keep", f"evicted ({eviction.reason}), purgeMode Never keeps the copy")
    if target_ready:
        return Removal("delete", f"evicted ({eviction.reason}); the replacement is ready")
    deadline = eviction.created_at + timedelta(
        seconds=eviction.grace_period_seconds or DEFAULT_GRACE_PERIOD_SECONDS
    )
    if now >= deadline:
        return Removal("delete", f"evicted ({eviction.reason}); the grace period ended")
    return Removal(
        "keep", f"evicted ({eviction.reason}); waiting for the replacement", recheck_at=deadline
    )


def _main_manifest(work: Work, resource: ObjectReference) -> int | None:
    for index, manifest in enumerate(work.spec.manifests):
        metadata = manifest.get("metadata") or {}
        if (
            manifest.get("kind") == resource.kind
            and manifest.get("apiVersion") == resource.api_version
            and metadata.get("name") == resource.name
        ):
            return index
    return None


def summarize(
    work: Work, key: str, resource: ObjectReference, *, leaving: bool, reachable: bool = True
) -> ClusterWorkSummary:
    index = _main_manifest(work, resource)
    statuses = work.status.manifests
    main = statuses[index] if index is not None and index < len(statuses) else None
    errors = [f"{m.kind} {m.name}: {m.error}" for m in statuses if m.error]
    errors += [
        c.message for c in work.status.conditions if c.type == "Rendered" and c.status == "False"
    ]
    return ClusterWorkSummary(
        cluster=work.spec.cluster,
        work=key,
        applied=work_applied(work),
        health=work.status.health if reachable else "Unknown",
        reachable=reachable,
        replicas=main.replicas if main is not None else None,
        ready_replicas=main.ready_replicas if main is not None else None,
        conflicts=[m.conflict for m in statuses if m.conflict],
        errors=errors,
        leaving=leaving,
    )


def aggregate(
    binding_key: str,
    resource: ObjectReference,
    target_clusters: frozenset[str],
    works: Mapping[str, tuple[str, Work]],
    *,
    now: datetime,
    unreachable: AbstractSet[str] = frozenset(),
) -> AggregatedStatus:
    """A template's status from its works (`works`: cluster -> (work key, work)).

    A work on an `unreachable` cluster (its Ready condition is not True) keeps its last
    reported figures in its own row, with health Unknown, and its ready replicas are not
    counted in the total: nobody can say they still serve.
    """
    clusters = [
        summarize(
            work,
            key,
            resource,
            leaving=name not in target_clusters,
            reachable=name not in unreachable,
        )
        for name, (key, work) in sorted(works.items())
    ]
    targets = [c for c in clusters if not c.leaving]
    with_replicas = [c for c in targets if c.replicas is not None]
    ready = [c.ready_replicas for c in clusters if c.ready_replicas is not None and c.reachable]
    return AggregatedStatus(
        resource=resource,
        binding=binding_key,
        clusters=clusters,
        replicas=sum(c.replicas or 0 for c in with_replicas) if with_replicas else None,
        ready_replicas=sum(ready) if ready else None,
        applied=bool(targets)
        and len(targets) == len(target_clusters)
        and all(c.applied for c in targets),
        health=worst([c.health for c in targets])
        if len(targets) == len(target_clusters)
        else ("Progressing" if target_clusters else "Unknown"),
        observed_at=now,
    )

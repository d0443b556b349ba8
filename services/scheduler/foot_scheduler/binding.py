"""From a scheduling decision to the ResourceBinding the dispatcher reads (pure, no I/O).

`next_binding` takes the template, the claim, the decision and the binding in
force, and returns the binding to store, or None when nothing changed (so a
reconcile that changes nothing writes nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson

from foot.kinds.bindings import (
    BindingCondition,
    BindingSpec,
    BindingStatus,
    GracefulEviction,
    ObjectReference,
    PolicyReference,
    ResourceBinding,
)
from foot.kinds.bindings import TargetCluster as BindingTarget
from foot.kinds.bindings import binding_name as shared_binding_name
from foot.kinds.policies import AnyPropagationPolicy
from foot.objects import KubeObject, ObjectMeta
from foot_scheduler.core import PreviousPlacement, ScheduleResult, TargetCluster

SCHEDULED = "Scheduled"
REASON_SUCCESS = "Success"
REASON_NO_CLUSTER_FIT = "NoClusterFit"
REASON_NO_POLICY = "NoMatchingPolicy"
REASON_DEPENDENT_OVERRIDES = "DependentOverridesMissing"
_KEPT_EVICTION_MODES = frozenset({"Graciously", "Never"})


def binding_name(template: KubeObject) -> str:
    """`<template name>-<kind>` (Karmada's binding name), shortened with a hash if too long."""
    return shared_binding_name(template.name, template.kind)


def template_hash(template: KubeObject) -> str:
    """Hash of what the dispatcher renders from: desired state, labels and annotations."""
    state = {
        "desired": template.desired_state(),
        "labels": template.metadata.labels,
        "annotations": template.metadata.annotations,
    }
    return hashlib.sha256(orjson.dumps(state, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """What a binding takes from its template, computed once per template version (the
    scheduler keeps them with the parsed template, so a reschedule does not dump it again)."""

    hash: str
    """`template_hash` of the template."""
    replicas: int | None
    """`spec.replicas` when the template has an integer there."""


def template_facts(
    template: KubeObject, document: Mapping[str, Any] | None = None
) -> TemplateFacts:
    """`document`: `template.to_dict()`, when the caller has it already."""
    if document is None:
        document = template.to_dict()
    spec_replicas = (document.get("spec") or {}).get("replicas")
    replicas = spec_replicas if isinstance(spec_replicas, int) else None
    return TemplateFacts(template_hash(template), replicas)


def previous_placement(binding: ResourceBinding | None) -> PreviousPlacement:
    if binding is None:
        return PreviousPlacement()
    return PreviousPlacement(
        targets=tuple(TargetCluster(t.name, t.replicas) for t in binding.spec.clusters),
        affinity_name=binding.status.scheduler_observing_affinity_name,
    )


def policy_reference(policy: AnyPropagationPolicy) -> PolicyReference:
    return PolicyReference(
        api_version=policy.api_version,
        kind=policy.kind,
        namespace=policy.namespace if policy.kind == "PropagationPolicy" else None,
        name=policy.name,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What one reconcile decided for a template."""

    policy: AnyPropagationPolicy | None
    result: ScheduleResult | None
    """None when there is no policy, or it cannot take effect yet."""
    reason: str
    """Condition reason: Success, NoClusterFit, NoMatchingPolicy, DependentOverridesMissing."""
    message: str


def unschedulable_message(result: ScheduleResult) -> str:
    lines = [result.reason]
    seen: dict[str, str] = {}
    for verdict in result.verdicts:
        if verdict.plugin:
            group = f" [{verdict.affinity_name}]" if verdict.affinity_name else ""
            seen[verdict.cluster] = f"{verdict.cluster}{group}: {verdict.plugin}: {verdict.reason}"
    lines += [seen[name] for name in sorted(seen)]
    return "\n".join(lines)


def kept_targets(
    previous: PreviousPlacement, result: ScheduleResult | None
) -> tuple[BindingTarget, ...]:
    """When no new placement can be made: the old targets, minus clusters the workload must
    leave anyway (gone, or a NoExecute taint it does not tolerate any longer)."""
    if result is None:
        return tuple(BindingTarget(name=t.name, replicas=t.replicas) for t in previous.targets)
    evicted = set()
    known = {v.cluster for v in result.verdicts}
    for target in previous.targets:
        if target.name not in known or result.verdict(target.name).plugin == "TaintToleration":
            evicted.add(target.name)
    return tuple(
        BindingTarget(name=t.name, replicas=t.replicas)
        for t in previous.targets
        if t.name not in evicted
    )


def _evictions(
    current: ResourceBinding | None,
    result: ScheduleResult | None,
    targets: Sequence[BindingTarget],
    now: datetime,
) -> list[GracefulEviction]:
    """Graceful evictions in force: earlier ones not expired and not targets again, plus the
    clusters this decision left with purge mode Graciously or Never."""
    names = {t.name for t in targets}
    kept: dict[str, GracefulEviction] = {}
    for eviction in current.spec.graceful_evictions if current is not None else []:
        if eviction.from_cluster in names:
            continue
        if eviction.grace_period_seconds is not None and now >= eviction.created_at + timedelta(
            seconds=eviction.grace_period_seconds
        ):
            continue
        kept[eviction.from_cluster] = eviction
    for left in result.evictions if result is not None else ():
        if (
            left.replicas_after == 0
            and left.purge_mode in _KEPT_EVICTION_MODES
            and left.cluster not in names
            and left.cluster not in kept
        ):
            kept[left.cluster] = GracefulEviction(
                from_cluster=left.cluster,
                replicas=left.replicas_before,
                reason=left.reason,
                purge_mode="Never" if left.purge_mode == "Never" else "Graciously",
                grace_period_seconds=left.grace_period_seconds,
                created_at=now,
            )
    return [kept[name] for name in sorted(kept)]


def next_eviction_expiry(binding: ResourceBinding) -> datetime | None:
    expiries = [
        e.created_at + timedelta(seconds=e.grace_period_seconds)
        for e in binding.spec.graceful_evictions
        if e.grace_period_seconds is not None
    ]
    return min(expiries, default=None)


def next_binding(
    template: KubeObject,
    decision: Decision,
    current: ResourceBinding | None,
    *,
    now: datetime,
    traceparent: str | None,
    facts: TemplateFacts | None = None,
) -> ResourceBinding | None:
    """The binding to store for `decision`, or None when `current` already says the same.
    `facts`: `template_facts(template)`, when the caller has them already."""
    facts = facts or template_facts(template)
    previous = previous_placement(current)
    result = decision.result
    scheduled = result is not None and result.schedulable
    if decision.policy is None:
        targets: tuple[BindingTarget, ...] = ()
    elif scheduled and result is not None:
        targets = tuple(BindingTarget(name=t.name, replicas=t.replicas) for t in result.targets)
    else:
        targets = kept_targets(previous, result)
    replicas = facts.replicas
    if replicas is None and targets and any(t.replicas is not None for t in targets):
        replicas = sum(t.replicas or 0 for t in targets)
    reference = ObjectReference(
        api_version=template.api_version,
        kind=template.kind,
        namespace=template.namespace,
        name=template.name,
        uid=template.metadata.uid,
        generation=template.metadata.generation,
        hash=facts.hash,
    )
    spec = BindingSpec(
        resource=reference,
        policy=policy_reference(decision.policy) if decision.policy is not None else None,
        replicas=replicas,
        clusters=list(targets),
        graceful_evictions=_evictions(current, result, targets, now),
        suspended_clusters=[
            name
            for name in (result.suspended_clusters if result else ())
            if name in {t.name for t in targets}
        ],
        propagate_deps=bool(result and result.propagate_deps),
        conflict_resolution=(
            result.conflict_resolution if result is not None else "Abort"  # type: ignore[arg-type]
        ),
        preserve_resources_on_deletion=bool(result and result.preserve_resources_on_deletion),
    )
    if decision.policy is not None and result is not None and not scheduled:
        # Keep what the binding said about dependencies etc. while nothing new can be placed.
        spec = spec.model_copy(
            update={"suspended_clusters": current.spec.suspended_clusters if current else []}
        )
    status_value: Literal["True", "False"] = "True" if scheduled else "False"
    affinity = result.affinity_name if scheduled and result is not None else previous.affinity_name
    old_condition = next(
        (c for c in (current.status.conditions if current else []) if c.type == SCHEDULED), None
    )
    if (
        current is not None
        and current.spec == spec
        and old_condition is not None
        and (old_condition.status, old_condition.reason, old_condition.message)
        == (status_value, decision.reason, decision.message)
        and current.status.scheduler_observing_affinity_name == affinity
    ):
        return None
    transition = (
        old_condition.last_transition_time
        if old_condition is not None and old_condition.status == status_value
        else now
    )
    condition = BindingCondition(
        type=SCHEDULED,
        status=status_value,
        reason=decision.reason,
        message=decision.message,
        last_transition_time=transition,
    )
    placement_changed = current is None or current.spec.clusters != spec.clusters
    spec_changed = current is None or current.spec != spec
    generation = (current.metadata.generation if current else 0) + (1 if spec_changed else 0)
    scheduled_time: datetime | None = now
    scheduled_trace = traceparent
    if current is not None and not placement_changed:
        scheduled_time = current.status.last_scheduled_time
        scheduled_trace = current.status.last_scheduled_trace
    status = BindingStatus(
        scheduler_observed_generation=generation,
        conditions=[condition],
        last_scheduled_time=scheduled_time,
        last_scheduled_trace=scheduled_trace,
        scheduler_observing_affinity_name=affinity,
    )
    if current is None:
        metadata = ObjectMeta(
            name=binding_name(template),
            namespace=template.namespace,
            labels={},
            generation=generation,
            creation_timestamp=now,
            traceparent=traceparent,
        )
    else:
        metadata = current.metadata.model_copy(
            update={"generation": generation, "traceparent": traceparent}
        )
    return ResourceBinding(
        api_version="work.foot.dev/v1alpha1",
        kind="ResourceBinding",
        metadata=metadata,
        spec=spec,
        status=status,
    )

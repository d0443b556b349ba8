"""Bindings: the scheduler's placement decision for one resource template.

Written by the scheduler only (bucket `bindings`, one per template, keyed like the
template); read by the dispatcher, which renders one work per target cluster.
Shaped after Karmada's `work.karmada.io` ResourceBinding.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from foot.catalog import BINDINGS
from foot.kinds import KindInfo
from foot.objects import FrozenModel, KubeObject

BINDING_API_VERSION = "work.foot.dev/v1alpha1"
BINDING_NAME_MAX = 253

PurgeMode = Literal["Immediately", "Graciously", "Never", "Directly", "Gracefully"]
"""Karmada spells the modes two ways across releases; both are accepted."""


class ObjectReference(FrozenModel):
    api_version: str
    """apiVersion of the template."""
    kind: str
    """Kind of the template."""
    namespace: str | None = None
    """Namespace of the template (None for cluster-scoped)."""
    name: str
    """Name of the template."""
    uid: str | None = None
    """uid of the template this decision was made for."""
    generation: int | None = None
    """The template's generation when it was scheduled."""
    hash: str | None = None
    """Hash of the template's desired state; the dispatcher re-renders when it changes."""


class PolicyReference(FrozenModel):
    api_version: str
    """apiVersion of the policy (FOOT's group or policy.karmada.io/v1alpha1)."""
    kind: Literal["PropagationPolicy", "ClusterPropagationPolicy"]
    """Which of the two propagation policy kinds claimed the template."""
    namespace: str | None = None
    """Namespace of a PropagationPolicy."""
    name: str
    """Name of the policy."""


class TargetCluster(FrozenModel):
    name: str
    """Member cluster name."""
    replicas: int | None = Field(default=None, ge=0)
    """Replicas placed there; None for objects without replicas (ConfigMap, Service...)."""


class GracefulEviction(FrozenModel):
    """A cluster the workload is leaving; its copy stays until the purge mode says it may go."""

    from_cluster: str
    """Cluster being left."""
    replicas: int | None = None
    """Replicas it held."""
    reason: str
    """Why it is being left (taint, policy change, application failover...)."""
    purge_mode: PurgeMode = "Graciously"
    """How the old copy is removed."""
    grace_period_seconds: int | None = None
    """Longest the old copy may stay when the replacement is not ready."""
    created_at: datetime
    """When the eviction was decided."""


class BindingSpec(FrozenModel):
    resource: ObjectReference
    """The template placed."""
    policy: PolicyReference | None = None
    """The propagation policy that claimed it (None: unplaced)."""
    replicas: int | None = Field(default=None, ge=0)
    """Total replicas of the template (None for objects without replicas)."""
    clusters: list[TargetCluster] = Field(default_factory=list)
    """Where it goes, sorted by cluster name."""
    graceful_evictions: list[GracefulEviction] = Field(default_factory=list)
    """Clusters being left whose copies are not removed yet."""
    suspended_clusters: list[str] = Field(default_factory=list)
    """Targets to which dispatching is held (policy suspension)."""
    propagate_deps: bool = False
    """ConfigMaps, Secrets, ServiceAccounts and PVCs the workload references follow it."""
    conflict_resolution: Literal["Abort", "Overwrite"] = "Abort"
    """What to do with a same-named object in a member that FOOT did not create."""
    preserve_resources_on_deletion: bool = False
    """Keep the member copies when the template is deleted."""


class BindingCondition(FrozenModel):
    type: str
    """Scheduled (and others as they come)."""
    status: Literal["True", "False", "Unknown"]
    """Whether it holds."""
    reason: str
    """Machine-readable reason."""
    message: str = ""
    """Why, in words; for an unschedulable template, the reason per cluster."""
    last_transition_time: datetime | None = None
    """When status last changed."""


class BindingStatus(FrozenModel):
    scheduler_observed_generation: int | None = None
    """The binding generation the scheduler last acted on."""
    conditions: list[BindingCondition] = Field(default_factory=list)
    """Scheduled condition with the decision's reason."""
    last_scheduled_time: datetime | None = None
    """When placement last changed."""
    last_scheduled_trace: str | None = None
    """W3C traceparent of the scheduling cycle that made the current placement."""
    scheduler_observing_affinity_name: str | None = None
    """The clusterAffinities group the current placement was made in (Karmada's field of the
    same name); a reschedule starts from it, so a workload does not flap back."""


class ResourceBinding(KubeObject):
    api_version: Literal["work.foot.dev/v1alpha1"]
    kind: Literal["ResourceBinding"]
    spec: BindingSpec
    status: BindingStatus = Field(default_factory=BindingStatus)

    namespaced: ClassVar[bool] = True
    """Namespaced like its template; a cluster-scoped template's binding has no namespace."""


def binding_kinds() -> list[KindInfo]:
    return [
        KindInfo(
            api_version=BINDING_API_VERSION,
            kind="ResourceBinding",
            model=ResourceBinding,
            owner=BINDINGS.owner,
            bucket=BINDINGS.name,
            plural="resourcebindings",
            namespaced=True,
            short_names=("rb", "bindings", "binding"),
        )
    ]


def binding_name(template_name: str, template_kind: str) -> str:
    """The binding of a template: `<template name>-<kind>` (Karmada's naming), shortened with a
    hash when that would be longer than a Kubernetes name may be."""
    name = f"{template_name}-{template_kind.lower()}"
    if len(name) <= BINDING_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: BINDING_NAME_MAX - 11].rstrip('.-')}-{digest}"

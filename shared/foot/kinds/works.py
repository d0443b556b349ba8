"""Works: one cluster's share of a binding, rendered, applied, and observed.

Written by the dispatcher only (bucket `works`, key `<cluster>.<binding key>`); the
gateway-sync reads their status (where a Service really runs and how it is
reached), the storage service reads them to know what is placed where. Shaped after
Karmada's `work.karmada.io` Work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, Field

from foot.catalog import WORKS
from foot.kinds import KindInfo
from foot.kinds.bindings import ObjectReference, binding_kinds
from foot.objects import FrozenModel, KubeObject

WORK_API_VERSION = "work.foot.dev/v1alpha1"

WorkHealth = Literal["Healthy", "Progressing", "Unhealthy", "Unknown"]


class WorkSpec(FrozenModel):
    cluster: str
    """Member cluster the manifests go to."""
    binding: ObjectReference
    """The binding this work renders (its template is `binding`'s resource)."""
    manifests: list[dict[str, Any]] = Field(default_factory=list)
    """Kubernetes objects exactly as applied: replicas set, overrides done, labels added."""
    manifests_hash: str = ""
    """Hash of `manifests`; an apply is skipped when the member already has this hash."""
    conflict_resolution: Literal["Abort", "Overwrite"] = "Abort"
    """Abort: leave an object FOOT did not create untouched and report it; Overwrite: take it."""
    suspended: bool = False
    """Held by the policy's suspension: not applied until resumed."""
    deleting: bool = False
    """The work is being removed from the member (purge in progress)."""
    preserve_on_deletion: bool = False
    """When the template is deleted, leave the member's objects in place (only the work goes)."""


class ServicePort(FrozenModel):
    name: str | None = None
    """Port name in the Service."""
    port: int
    """Service port."""
    protocol: str = "TCP"
    """Protocol."""
    node_port: int | None = None
    """NodePort on every node, when the Service is NodePort or LoadBalancer."""


class ServiceEndpoints(FrozenModel):
    """How something outside the member cluster (the gateway) reaches a Service."""

    type: str
    """ClusterIP, NodePort, LoadBalancer or ExternalName."""
    ports: list[ServicePort] = Field(default_factory=list)
    """Ports with their NodePorts."""
    load_balancer_ingress: list[str] = Field(default_factory=list)
    """IPs or hostnames from status.loadBalancer.ingress."""


class ManifestStatus(FrozenModel):
    """What the member reports for one applied object."""

    api_version: str
    """apiVersion of the object."""
    kind: str
    """Kind of the object."""
    namespace: str | None = None
    """Namespace in the member."""
    name: str
    """Name in the member."""
    applied: bool = False
    """The member accepted the last apply of this manifest."""
    conflict: str | None = None
    """Why it was not applied (an object FOOT did not create, with Abort)."""
    error: str | None = None
    """Last apply error, if any (never a credential)."""
    health: WorkHealth = "Unknown"
    """Interpretation of the object's status (per kind)."""
    replicas: int | None = None
    """Desired replicas in the member (workloads)."""
    ready_replicas: int | None = None
    """Ready replicas in the member (workloads)."""
    service: ServiceEndpoints | None = None
    """For Services: how the gateway reaches them."""
    observed_generation: int | None = None
    """metadata.generation the member's status refers to."""


class WorkCondition(FrozenModel):
    type: str
    """Applied, Available, Conflict..."""
    status: Literal["True", "False", "Unknown"]
    """Whether it holds."""
    reason: str
    """Machine-readable reason."""
    message: str = ""
    """Detail in words."""
    last_transition_time: datetime | None = None
    """When status last changed."""


class WorkStatus(FrozenModel):
    applied_hash: str | None = None
    """`spec.manifestsHash` last applied successfully."""
    manifests: list[ManifestStatus] = Field(default_factory=list)
    """One entry per manifest, in spec order."""
    conditions: list[WorkCondition] = Field(default_factory=list)
    """Applied / Available / Conflict."""
    health: WorkHealth = "Unknown"
    """Worst health of the manifests."""
    last_applied_trace: str | None = None
    """W3C traceparent of the rollout that last applied this work."""
    observed_at: datetime | None = None
    """When the member was last observed."""


class Work(KubeObject):
    api_version: Literal["work.foot.dev/v1alpha1"]
    kind: Literal["Work"]
    spec: WorkSpec
    status: WorkStatus = Field(default_factory=WorkStatus)

    namespaced: ClassVar[bool] = True
    """In the template's namespace; name `<binding name>.<cluster>`."""


class ClusterWorkSummary(FrozenModel):
    """One cluster's share of a template, as the dispatcher last saw it."""

    cluster: str
    """Member cluster."""
    work: str
    """Key of the work in the `works` bucket."""
    applied: bool = False
    """Every manifest of the work's current spec was applied."""
    health: WorkHealth = "Unknown"
    """The work's health."""
    replicas: int | None = None
    """Desired replicas of the template's workload there."""
    ready_replicas: int | None = None
    """Ready replicas of the template's workload there."""
    conflicts: list[str] = Field(default_factory=list)
    """Objects not applied because FOOT did not create them (conflictResolution Abort)."""
    errors: list[str] = Field(default_factory=list)
    """Apply or render errors."""
    leaving: bool = False
    """The cluster is no longer a target; its copy stays until the purge mode allows removal."""
    reachable: bool = True
    """False while the cluster's Ready condition is not True: the figures are the last it
    reported, health is Unknown and its ready replicas are left out of the total."""


class AggregatedStatus(FrozenModel):
    """A template's status over every member cluster: written by the dispatcher only (bucket
    `aggregated-status`, keyed like the template), shown by `foot get KIND NAME -o yaml` as the
    template's `status` and by `foot describe`."""

    resource: ObjectReference
    """The template."""
    binding: str
    """Key of the binding in the `bindings` bucket."""
    clusters: list[ClusterWorkSummary] = Field(default_factory=list)
    """Per cluster, sorted by name."""
    replicas: int | None = None
    """Desired replicas over the target clusters."""
    ready_replicas: int | None = None
    """Ready replicas over every reachable cluster that still runs a copy."""
    applied: bool = False
    """Every target cluster's work is applied."""
    health: WorkHealth = "Unknown"
    """Worst health over the target clusters."""
    observed_at: datetime | None = None
    """When this summary was computed."""


class WorkDelivery(FrozenModel):
    """A work sent to a pull-mode agent (inside a `DeliveryMessage` or a `SyncReply`)."""

    key: str
    """Key of the work in the `works` bucket; status reports name it."""
    work: Work
    """The work; `spec.deleting` asks the agent to remove its objects."""


class WorkStatusReport(FrozenModel):
    """What a pull-mode agent applied (inside a `StatusMessage`)."""

    key: str
    """Key of the work reported on."""
    manifests_hash: str
    """The `spec.manifestsHash` that was applied (or removed)."""
    manifests: list[ManifestStatus] = Field(default_factory=list)
    """One entry per manifest, in spec order."""
    removed: bool = False
    """The work was deleting and its objects are gone from the member."""
    error: str | None = None
    """The member's API server could not be reached (the agent retries)."""


# ---- the works channel's messages (sealed: see foot.agent_channel) -------------------------


class DeliveryMessage(FrozenModel):
    """Hub -> agent on `foot.works.deliver.<cluster>`: one work."""

    sent_at: AwareDatetime
    """When the dispatcher sealed it; the agent refuses it outside its skew, and a delivery
    older than the newest it took for the same work."""
    delivery: WorkDelivery
    """The work."""


class SyncRequest(FrozenModel):
    """Agent -> hub on `foot.works.sync.<cluster>` (request-reply): every work of its cluster."""

    agent_id: str = Field(min_length=1, max_length=128)
    """The agent process; sequences count per agent id."""
    sequence: int = Field(ge=1)
    """Increases by one per message of this agent process (sync requests and reports)."""
    sent_at: AwareDatetime
    """When it was sealed."""


class SyncReply(FrozenModel):
    """Hub -> agent: the answer to one `SyncRequest` (it names the request it answers)."""

    sent_at: AwareDatetime
    """When the dispatcher sealed it."""
    agent_id: str
    """The request's agent id."""
    sequence: int
    """The request's sequence."""
    deliveries: list[WorkDelivery] = Field(default_factory=list)
    """Every work of the cluster (suspended ones left out, deleting ones in)."""


class StatusMessage(FrozenModel):
    """Agent -> hub on `foot.works.status.<cluster>` (request-reply): one report."""

    agent_id: str = Field(min_length=1, max_length=128)
    """The agent process; sequences count per agent id."""
    sequence: int = Field(ge=1)
    """Increases by one per message of this agent process (sync requests and reports)."""
    sent_at: AwareDatetime
    """When it was sealed."""
    report: WorkStatusReport
    """What was applied."""


def work_kinds() -> list[KindInfo]:
    return [
        KindInfo(
            api_version=WORK_API_VERSION,
            kind="Work",
            model=Work,
            owner=WORKS.owner,
            bucket=WORKS.name,
            plural="works",
            namespaced=True,
            short_names=("work",),
            stored_under=binding_kinds()[0].key_prefix,  # `<cluster>.<binding key>`
            sealed_when_secret=True,
        )
    ]

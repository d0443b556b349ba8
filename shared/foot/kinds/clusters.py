"""Member clusters: what the registry knows about each one, and the scheduler's main input.

The registry writes clusters (spec, status, conditions, taints); every other
service only reads them. The shape follows Karmada's `cluster.karmada.io`
Cluster so a Karmada user recognises every field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from foot.catalog import CLUSTERS
from foot.kinds import KindInfo
from foot.objects import FrozenModel, KubeObject, ObjectMeta, check_label
from foot.quantity import check_quantity

CLUSTER_API_VERSION = "cluster.foot.dev/v1alpha1"

# Taints the registry puts on a cluster when its Ready condition goes False / Unknown
# (FOOT's names; tolerations of Karmada's cluster.karmada.io/ keys are matched to them).
TAINT_NOT_READY = "cluster.foot.dev/not-ready"
TAINT_UNREACHABLE = "cluster.foot.dev/unreachable"

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
Quantity = Annotated[str, AfterValidator(check_quantity)]


class LocalSecretReference(FrozenModel):
    namespace: str
    """Namespace of the Secret holding the cluster's credentials."""
    name: str
    """Name of that Secret."""


class Taint(FrozenModel):
    key: str = Field(min_length=1)
    """Taint key; tolerations match on it."""
    value: str | None = None
    """Optional value; an `Equal` toleration must match it."""
    effect: TaintEffect
    """NoSchedule: no new placements; NoExecute: existing placements are evicted as well
    (after the toleration's tolerationSeconds); PreferNoSchedule: avoided when possible."""
    time_added: datetime | None = None
    """When the taint was added; NoExecute toleration periods count from here."""


class ResourceModelRange(FrozenModel):
    name: str
    """Resource name (cpu, memory, ...)."""
    min: Quantity
    """Lower bound of the range (inclusive)."""
    max: Quantity
    """Upper bound of the range (exclusive)."""


class ResourceModel(FrozenModel):
    grade: int = Field(ge=0)
    """Index of this node grade."""
    ranges: list[ResourceModelRange] = Field(min_length=1)
    """Resource ranges describing nodes of this grade."""


class ClusterSpec(FrozenModel):
    sync_mode: Literal["Push", "Pull"]
    """Push: FOOT applies works itself; Pull: the cluster's agent pulls them."""
    api_endpoint: str | None = None
    """The member cluster's API server URL (Push mode)."""
    secret_ref: LocalSecretReference | None = None
    """Where the credentials to reach the cluster are kept."""
    insecure_skip_tls_verification: bool = False
    """Skip TLS verification of the API server (tests only)."""
    proxy_url: str | None = None
    """Proxy to reach the API server through."""
    provider: str | None = None
    """Cloud provider name, used by fieldSelector and spreadByField provider."""
    region: str | None = None
    """Region, used by fieldSelector and spreadByField region."""
    zone: str | None = None
    """Zone, used by fieldSelector and spreadByField zone."""
    zones: list[str] = Field(default_factory=list)
    """Zones of a cluster spanning several (Karmada's newer field); `zone` wins if both set."""
    taints: list[Taint] = Field(default_factory=list)
    """Taints repel placements unless a policy tolerates them."""
    gateway_address: str | None = None
    """Address (IP or DNS name) at which the gateway reaches this cluster's NodePort
    Services; defaults to the API endpoint's host when unset."""
    resource_models: list[ResourceModel] = Field(default_factory=list)
    """Node grades, for estimating how many replicas fit (informational here)."""

    @field_validator("taints")
    @classmethod
    def _taints_unique(cls, taints: list[Taint]) -> list[Taint]:
        seen = set()
        for taint in taints:
            if (taint.key, taint.effect) in seen:
                raise ValueError(f"taint {taint.key}:{taint.effect} is listed twice")
            seen.add((taint.key, taint.effect))
        return taints

    @property
    def zone_names(self) -> tuple[str, ...]:
        if self.zone:
            return (self.zone,)
        return tuple(self.zones)


class APIResource(FrozenModel):
    name: str
    """Plural resource name, e.g. deployments."""
    kind: str
    """Kind, e.g. Deployment."""


class APIEnablement(FrozenModel):
    group_version: str
    """`group/version`, or `v1` for the core group."""
    resources: list[APIResource] = Field(default_factory=list)
    """Resources served in that group version."""


class ClusterCondition(FrozenModel):
    type: str
    """Condition type; `Ready` is the one the registry maintains."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str | None = None
    """Machine-readable reason of the last transition."""
    message: str | None = None
    """Human-readable detail."""
    last_transition_time: datetime | None = None
    """When status last changed."""


class NodeSummary(FrozenModel):
    total_num: int = Field(default=0, ge=0)
    """Nodes in the cluster."""
    ready_num: int = Field(default=0, ge=0)
    """Ready nodes."""

    @model_validator(mode="after")
    def _ready_not_above_total(self) -> NodeSummary:
        if self.ready_num > self.total_num:
            raise ValueError(f"readyNum {self.ready_num} exceeds totalNum {self.total_num}")
        return self


class ResourceSummary(FrozenModel):
    allocatable: dict[str, Quantity] = Field(default_factory=dict)
    """What the nodes offer in total, by resource name (cpu, memory, pods, ...)."""
    allocated: dict[str, Quantity] = Field(default_factory=dict)
    """What running pods already request."""
    allocating: dict[str, Quantity] = Field(default_factory=dict)
    """What pending pods request."""


class ClusterStatus(FrozenModel):
    kubernetes_version: str | None = None
    """Version reported by the member API server."""
    api_enablements: list[APIEnablement] = Field(default_factory=list)
    """Group versions and kinds the cluster serves."""
    conditions: list[ClusterCondition] = Field(default_factory=list)
    """Ready and other conditions."""
    node_summary: NodeSummary | None = None
    """Node counts."""
    resource_summary: ResourceSummary | None = None
    """Capacity figures used for dynamic replica division."""
    last_heartbeat_time: datetime | None = None
    """Last heartbeat of the agent (Pull) or last successful probe (Push)."""
    health_sequence: int = Field(default=0, ge=0)
    """Sequence of the last health event published for this cluster (see foot.health)."""

    def condition(self, condition_type: str) -> ClusterCondition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)


class Cluster(KubeObject):
    api_version: Literal["cluster.foot.dev/v1alpha1"]
    kind: Literal["Cluster"]
    spec: ClusterSpec
    status: ClusterStatus = Field(default_factory=ClusterStatus)
    """Written by the registry only."""

    namespaced: ClassVar[bool] = False

    @field_validator("metadata")
    @classmethod
    def _name_is_label(cls, metadata: ObjectMeta) -> ObjectMeta:
        # A cluster name ends up in namespace names and bucket keys, so it must be a DNS label.
        try:
            check_label(metadata.name)
        except ValueError as exc:
            raise ValueError(f"name {metadata.name!r} {exc}") from None
        return metadata


def cluster_kinds() -> list[KindInfo]:
    return [
        KindInfo(
            api_version=CLUSTER_API_VERSION,
            kind="Cluster",
            model=Cluster,
            owner=CLUSTERS.owner,
            bucket=CLUSTERS.name,
            plural="clusters",
            namespaced=False,
        )
    ]

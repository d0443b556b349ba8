"""StorageClaim: Ceph storage (block, filesystem or object) requested for member clusters.

The storage service owns claims (spec from users, status written by it alone)
and the provisioning records behind them (which Ceph objects it created, the
steps done, the per-cluster keys, sealed). A claim names what it needs; the
service turns it into a pool with a CRUSH rule, an RBD image / CephFS subvolume /
RGW user and bucket, one scoped key per member cluster, and a Secret (plus a
ceph-csi StorageClass for block and filesystem) delivered to those clusters; each
cluster's key travels only in a Secret of its own, placed on that cluster only.

    apiVersion: storage.foot.dev/v1alpha1
    kind: StorageClaim
    metadata: {name: orders-db, namespace: shop}
    spec:
      type: block                   # block | filesystem | object
      size: 20Gi
      placement: {failureDomain: host, deviceClass: ssd, replicas: 3}
      access: {clusters: [east, west]}   # or clusterSelector, or placedWith
      reclaimPolicy: Retain         # Retain (default) | Delete
      quota: {maxBytes: 25Gi}
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from foot.catalog import STORAGE_CLAIMS
from foot.kinds import KindInfo
from foot.kinds.policies import LabelSelector
from foot.objects import FrozenModel, KubeObject, check_subdomain
from foot.quantity import QuantityError, parse_quantity

STORAGE_GROUP = "storage.foot.dev"
STORAGE_API_VERSION = f"{STORAGE_GROUP}/v1alpha1"

ClaimType = Literal["block", "filesystem", "object"]
FailureDomain = Literal["osd", "host", "rack", "zone"]
ReclaimPolicy = Literal["Retain", "Delete"]
Phase = Literal["Pending", "Provisioning", "Ready", "Failed", "Deleting"]

MAX_REPLICAS = 10
_DEVICE_CLASS = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_bytes(value: str | int) -> str:
    """A size: a Kubernetes quantity that is a whole, positive number of bytes."""
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    if amount <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    if amount.denominator != 1:
        raise ValueError(f"{value!r} is not a whole number of bytes")
    return str(value)


def size_bytes(value: str) -> int:
    """The number of bytes of a validated size."""
    return int(parse_quantity(value))


def _check_device_class(value: str) -> str:
    if not _DEVICE_CLASS.match(value):
        raise ValueError(
            f"{value!r} is not a CRUSH device class (lowercase letters, digits, '-' or '_', "
            "at most 32 characters, e.g. hdd, ssd, nvme)"
        )
    return value


Bytes = Annotated[str, AfterValidator(check_bytes)]
ClusterName = Annotated[str, AfterValidator(check_subdomain)]
DeviceClass = Annotated[str, AfterValidator(_check_device_class)]


class DataPlacement(FrozenModel):
    failure_domain: FailureDomain = "host"
    """CRUSH failure domain replicas are spread over: osd, host, rack or zone."""
    device_class: DeviceClass | None = None
    """Only OSDs of this CRUSH device class (hdd, ssd, nvme, ...); any device when unset."""
    replicas: int = Field(default=3, ge=1, le=MAX_REPLICAS)
    """Copies of every object (the pool's size)."""


class WorkloadReference(FrozenModel):
    api_version: str = Field(min_length=1)
    """API version of the workload template, e.g. apps/v1."""
    kind: str = Field(min_length=1)
    """Kind of the workload template, e.g. StatefulSet."""
    name: ClusterName
    """Name of the workload template."""
    namespace: str | None = None
    """Namespace of the workload; the claim's own when unset."""


class ClusterAccess(FrozenModel):
    """Which member clusters get a key; exactly one way of saying it."""

    clusters: list[ClusterName] = Field(default_factory=list)
    """These clusters, by name."""
    cluster_selector: LabelSelector | None = None
    """Every cluster whose labels match."""
    placed_with: WorkloadReference | None = None
    """Wherever the scheduler places this workload (follows it when it moves)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ClusterAccess:
        given = [
            name
            for name, value in (
                ("clusters", self.clusters),
                ("clusterSelector", self.cluster_selector),
                ("placedWith", self.placed_with),
            )
            if value
        ]
        if len(given) != 1:
            chosen = ", ".join(given) if given else "none"
            raise ValueError(
                f"set exactly one of clusters, clusterSelector or placedWith (got {chosen})"
            )
        if len(set(self.clusters)) != len(self.clusters):
            raise ValueError("clusters lists a cluster twice")
        return self


class StorageQuota(FrozenModel):
    max_bytes: Bytes | None = None
    """Upper bound of stored bytes (pool quota for block, bucket quota for object)."""
    max_objects: int | None = Field(default=None, ge=1)
    """Upper bound of stored objects (pool or bucket quota)."""


class StorageClaimSpec(FrozenModel):
    type: ClaimType
    """block: an RBD image in its own pool; filesystem: a CephFS subvolume; object: an RGW
    user and bucket."""
    size: Bytes
    """Capacity: image size, subvolume size, or bucket quota for object storage."""
    placement: DataPlacement = Field(default_factory=DataPlacement)
    """Where and how many copies of the data Ceph keeps (block: its own pool and CRUSH rule)."""
    access: ClusterAccess
    """Which member clusters get a key and the Secret (and StorageClass) to use it."""
    reclaim_policy: ReclaimPolicy = "Retain"
    """Retain: deleting the claim keeps every byte (and says so); Delete: the Ceph objects the
    claim created are removed once no member cluster references them."""
    quota: StorageQuota | None = None
    """Optional quota beyond `size`."""


class ClaimResources(FrozenModel):
    """The Ceph objects behind a claim (names only; keys are never in a claim)."""

    crush_rule: str | None = None
    pool: str | None = None
    image: str | None = None
    fs_name: str | None = None
    subvolume_group: str | None = None
    subvolume: str | None = None
    path: str | None = None
    bucket: str | None = None
    rgw_user: str | None = None
    endpoint: str | None = None


ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
"""Condition: the claim's Ceph objects exist and its Secret (and StorageClass) is delivered."""
CEPH_UNAVAILABLE = "CephUnavailable"
"""Condition (like a Node's NetworkUnavailable): True while the last attempt could not reach
Ceph; the claim's steps are retried with backoff until it answers."""


class StorageClaimCondition(FrozenModel):
    type: str
    """Ready or CephUnavailable."""
    status: ConditionStatus
    """Whether it holds."""
    reason: str
    """Machine-readable reason. Ready: Provisioned, Provisioning, CephUnavailable, Retrying,
    Failed, Deleting. CephUnavailable: CephUnreachable, CephAnswered."""
    message: str = ""
    """Detail in words."""
    last_transition_time: datetime | None = None
    """When status last changed."""


class StorageClaimStatus(FrozenModel):
    phase: Phase = "Pending"
    """Pending: not started; Provisioning: steps under way; Ready: delivered; Failed: stopped
    for `reason`; Deleting: being removed."""
    observed_generation: int = 0
    """Spec generation the status describes."""
    step: str | None = None
    """The step under way (or the last one done)."""
    completed_steps: int = 0
    """Steps done of `total_steps`."""
    total_steps: int = 0
    """Steps of the current plan."""
    retrying: bool = False
    """True while a transient Ceph error is being retried with backoff."""
    attempts: int = 0
    """Failed attempts of the current step."""
    last_error: str | None = None
    """The last error met (transient or not)."""
    next_retry_at: datetime | None = None
    """When the step is tried again (while retrying)."""
    reason: str | None = None
    """Why the claim failed (phase Failed)."""
    resources: ClaimResources = Field(default_factory=ClaimResources)
    """What the claim created on Ceph (only objects that exist: none before Ceph answered)."""
    clusters: list[str] = Field(default_factory=list)
    """Member clusters that hold a key."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Member cluster -> the Secret holding that cluster's own key, delivered in the claim's
    namespace of that cluster only."""
    storage_class: str | None = None
    """Name of the StorageClass delivered (block and filesystem): one name in every member
    cluster, each copy using that cluster's Secret."""
    conditions: list[StorageClaimCondition] = Field(default_factory=list)
    """Ready (with why not: CephUnavailable, Retrying, Failed, ...) and CephUnavailable."""

    def condition(self, condition_type: str) -> StorageClaimCondition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)


class StorageClaim(KubeObject):
    api_version: Literal["storage.foot.dev/v1alpha1"]
    kind: Literal["StorageClaim"]
    spec: StorageClaimSpec
    status: StorageClaimStatus | None = None
    """Written by the storage service only."""

    namespaced: ClassVar[bool] = True


def claim_kind() -> KindInfo:
    return KindInfo(
        api_version=STORAGE_API_VERSION,
        kind="StorageClaim",
        model=StorageClaim,
        owner=STORAGE_CLAIMS.owner,
        bucket=STORAGE_CLAIMS.name,
        plural="storageclaims",
        namespaced=True,
    )


def storage_kinds() -> list[KindInfo]:
    return [claim_kind()]


__all__ = [
    "CEPH_UNAVAILABLE",
    "READY",
    "STORAGE_API_VERSION",
    "ClaimResources",
    "StorageClaim",
    "StorageClaimCondition",
    "StorageClaimSpec",
    "StorageClaimStatus",
    "size_bytes",
]

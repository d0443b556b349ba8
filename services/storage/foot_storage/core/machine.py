"""The provisioning state machine: Pending -> Provisioning -> Ready | Failed, and deletion.

A claim's progress is a `ProvisioningRecord`, stored by the shell after every
step and before any step that depends on it. Steps that do not depend on each other
(the keys, the delivery, the image) may run at the same time; each is recorded as
it completes. The plan (which steps, in which order) is a pure
function of the record; each step's id carries its parameters (`image:1073741824`),
so a changed spec re-runs exactly the steps it affects, and a step found in
`done` is never run again. A crash between a step's effect and its record makes
the shell run that step once more; every effect is an "ensure" (create if
missing), so nothing is duplicated.

Deletion follows the claim's reclaim policy: the delivered Secret/StorageClass
are withdrawn first, keys are revoked once no member cluster references them,
and only with `Delete` are the data objects removed (image before pool before
CRUSH rule; bucket before its user).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from foot.backoff import Backoff
from foot.kinds.storage import (
    CEPH_UNAVAILABLE,
    READY,
    ClaimResources,
    ConditionStatus,
    StorageClaimCondition,
    StorageClaimSpec,
    StorageClaimStatus,
    size_bytes,
)
from foot.objects import FrozenModel
from foot_storage.core.actions import Action
from foot_storage.core.names import CephNames

RecordPhase = Literal["Provisioning", "Ready", "Failed", "Deleting"]
Resource = Literal["crush_rule", "pool", "image", "subvolume", "rgw_user", "bucket"]
"""A Ceph object of the claim's own, by its `ClaimResources` field."""

CREATES: Mapping[str, Resource] = {
    "crush-rule": "crush_rule",
    "pool": "pool",
    "image": "image",
    "subvolume": "subvolume",
    "rgw-user": "rgw_user",
    "bucket": "bucket",
}
"""Step actions whose success means the object exists."""
REMOVES: Mapping[str, Resource] = {
    "delete-image": "image",
    "delete-pool": "pool",
    "delete-crush-rule": "crush_rule",
    "delete-subvolume": "subvolume",
    "delete-bucket": "bucket",
    "delete-rgw-user": "rgw_user",
}
"""Step actions whose success means the object is gone."""
RESOURCES_OF_TYPE: Mapping[str, tuple[Resource, ...]] = {
    "block": ("crush_rule", "pool", "image"),
    "filesystem": ("subvolume",),
    "object": ("rgw_user", "bucket"),
}


class Step(FrozenModel):
    id: str
    """Unique in a plan; includes the parameters the effect depends on."""
    action: Action
    """What the shell does."""
    cluster: str | None = None
    """Member cluster the step is for (keys)."""
    clusters: tuple[str, ...] = ()
    """Clusters a delivery targets."""
    after: tuple[str, ...] = ()
    """Ids of the steps of the same plan that must be done (and recorded) first; steps
    whose prerequisites are all done may run at the same time."""

    @property
    def long(self) -> bool:
        """Steps worth a progress event of their own (they wait on Ceph or on members)."""
        return self.action in {"pool", "await-unreferenced", "delete-pool", "delete-bucket"}


class StepResult(FrozenModel):
    """What a step's effect learned, for the record."""

    sealed_key: str | None = None
    """cephx key or S3 `access:secret`, sealed by the shell (never plain text here)."""
    path: str | None = None
    """CephFS subvolume path."""


CEPH_BACKOFF = Backoff(base_seconds=0.5, max_seconds=10.0)
"""Default wait between attempts after a transient Ceph error."""


class ProvisioningRecord(FrozenModel):
    """Everything the storage service knows about one claim's Ceph objects."""

    claim_uid: str
    """uid of the claim this record belongs to."""
    namespace: str
    name: str
    generation: int
    """Claim generation the plan was made for."""
    spec: StorageClaimSpec
    """The claim's spec at that generation (kept for deletion, after the claim is gone)."""
    names: CephNames
    fs_name: str
    """CephFS volume subvolumes are made in."""
    subvolume_group: str
    """CephFS subvolume group."""
    clusters: tuple[str, ...] = ()
    """Member clusters that should have access now."""
    done: tuple[str, ...] = ()
    """Ids of the steps done, in the order they were done."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Member cluster -> its key, sealed."""
    path: str | None = None
    """CephFS subvolume path, once known."""
    delivered: tuple[str, ...] | None = None
    """Clusters of the last delivery (None: never delivered)."""
    phase: RecordPhase = "Provisioning"
    deleting: bool = False
    step: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_retry_at: datetime | None = None
    reason: str | None = None
    created: tuple[Resource, ...] | None = None
    """The claim's own Ceph objects known to exist (a create step recorded done, its delete
    step not yet). None in records written before this field: see `created_resources`."""
    ceph_unavailable_since: datetime | None = None
    """Since when the failing attempts do not reach Ceph (None while it answers)."""


# ---- planning -----------------------------------------------------------------------------


def _quota_id(record: ProvisioningRecord) -> tuple[int, int]:
    quota = record.spec.quota
    max_bytes = size_bytes(quota.max_bytes) if quota and quota.max_bytes else 0
    max_objects = quota.max_objects if quota and quota.max_objects else 0
    return max_bytes, max_objects


def provisioning_plan(record: ProvisioningRecord) -> list[Step]:
    spec = record.spec
    steps: list[Step] = []
    size = size_bytes(spec.size)
    key_action: Action = "s3-key" if spec.type == "object" else "cephx-key"
    if spec.type == "block":
        placement = spec.placement
        steps += [
            Step(
                id=f"crush-rule:{placement.failure_domain}:{placement.device_class or '*'}",
                action="crush-rule",
            ),
            Step(id=f"pool:{placement.replicas}", action="pool"),
        ]
        max_bytes, max_objects = _quota_id(record)
        if max_bytes or max_objects:
            steps.append(Step(id=f"pool-quota:{max_bytes}:{max_objects}", action="pool-quota"))
        steps.append(Step(id=f"image:{size}", action="image"))
    elif spec.type == "filesystem":
        steps += [
            Step(id="subvolume-group", action="subvolume-group"),
            Step(id=f"subvolume:{size}", action="subvolume"),
        ]
    else:
        max_bytes, max_objects = _quota_id(record)
        steps += [
            Step(id="rgw-user", action="rgw-user"),
            Step(id="bucket", action="bucket"),
            Step(id=f"bucket-quota:{max_bytes or size}:{max_objects}", action="bucket-quota"),
        ]
    steps += [Step(id=f"key:{c}", action=key_action, cluster=c) for c in record.clusters]
    if record.delivered != record.clusters:
        steps.append(
            Step(
                id=f"deliver:{','.join(record.clusters)}",
                action="deliver",
                clusters=record.clusters,
            )
        )
    steps += [
        Step(id=f"revoke:{c}", action="revoke-key", cluster=c)
        for c in sorted(record.keys)
        if c not in record.clusters
    ]
    return steps


def deletion_plan(record: ProvisioningRecord) -> list[Step]:
    spec = record.spec
    steps = [
        Step(id="withdraw", action="withdraw"),
        Step(id="await-unreferenced", action="await-unreferenced"),
    ]
    steps += [Step(id=f"revoke:{c}", action="revoke-key", cluster=c) for c in sorted(record.keys)]
    if spec.reclaim_policy == "Retain":
        steps.append(Step(id="retain", action="retain"))
    elif spec.type == "block":
        steps += [
            Step(id="delete-image", action="delete-image"),
            Step(id="delete-pool", action="delete-pool"),
            Step(id="delete-crush-rule", action="delete-crush-rule"),
        ]
    elif spec.type == "filesystem":
        steps.append(Step(id="delete-subvolume", action="delete-subvolume"))
    else:
        steps += [
            Step(id="delete-bucket", action="delete-bucket"),
            Step(id="delete-rgw-user", action="delete-rgw-user"),
        ]
    return steps


def _with_prerequisites(record: ProvisioningRecord, steps: list[Step]) -> list[Step]:
    """What each provisioning step waits for.

    The Ceph objects form a chain (block: CRUSH rule -> pool -> image and quota;
    filesystem: group -> subvolume; object: user -> bucket -> quota). A block key needs
    nothing (its caps name the pool, which may not exist yet); a filesystem key needs
    the subvolume (its caps name the path); an S3 key needs the user. Delivery needs
    every key and the object the StorageClass or Secret points at (pool, subvolume,
    bucket), not the image: members get their Secret while Ceph still makes the image.
    Revoking a key waits for the delivery that withdraws it.
    """
    by_action: dict[str, list[str]] = {}
    for step in steps:
        by_action.setdefault(step.action, []).append(step.id)

    def ids(*actions: str) -> tuple[str, ...]:
        return tuple(i for a in actions for i in by_action.get(a, []))

    kind = record.spec.type
    needs: dict[str, tuple[str, ...]] = {
        "pool": ids("crush-rule"),
        "pool-quota": ids("pool"),
        "image": ids("pool"),
        "subvolume": ids("subvolume-group"),
        "bucket": ids("rgw-user"),
        "bucket-quota": ids("bucket"),
        "cephx-key": ids("subvolume") if kind == "filesystem" else (),
        "s3-key": ids("rgw-user"),
        "deliver": ids("cephx-key", "s3-key", "pool", "subvolume", "bucket"),
        "revoke-key": ids("deliver"),
    }
    return [s.model_copy(update={"after": needs.get(s.action, ())}) for s in steps]


def _in_sequence(steps: list[Step]) -> list[Step]:
    return [
        s.model_copy(update={"after": (steps[n - 1].id,) if n else ()}) for n, s in enumerate(steps)
    ]


def plan(record: ProvisioningRecord) -> list[Step]:
    """The steps of the current plan, in a valid order, each with its prerequisites
    (deletion runs strictly in sequence: its order is what makes it safe)."""
    if record.deleting:
        return _in_sequence(deletion_plan(record))
    return _with_prerequisites(record, provisioning_plan(record))


# ---- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStep:
    step: Step
    """The first runnable step in plan order."""
    alongside: tuple[Step, ...] = ()
    """Other steps runnable now (their prerequisites are done): the shell may run them at
    the same time, recording each one as it completes."""

    @property
    def steps(self) -> tuple[Step, ...]:
        return (self.step, *self.alongside)


@dataclass(frozen=True, slots=True)
class WaitUntil:
    when: datetime


@dataclass(frozen=True, slots=True)
class Settled:
    """Nothing to do: Ready, Failed, or (deleting) everything done: forget the record."""

    forget: bool = False


Decision = RunStep | WaitUntil | Settled


def decide(record: ProvisioningRecord, now: datetime) -> Decision:
    if record.phase == "Failed":
        return Settled()
    remaining = [step for step in plan(record) if step.id not in record.done]
    if not remaining:
        return Settled(forget=record.deleting)
    if record.next_retry_at is not None and now < record.next_retry_at:
        return WaitUntil(record.next_retry_at)
    done = set(record.done)
    runnable = [step for step in remaining if done.issuperset(step.after)]
    if not runnable:  # a prerequisite outside the plan: run in plan order
        runnable = remaining[:1]
    first, *others = runnable
    return RunStep(first, tuple(others))


# ---- transitions --------------------------------------------------------------------------


def begin(
    *,
    claim_uid: str,
    namespace: str,
    name: str,
    generation: int,
    spec: StorageClaimSpec,
    names: CephNames,
    clusters: tuple[str, ...],
    fs_name: str,
    subvolume_group: str,
) -> ProvisioningRecord:
    return ProvisioningRecord(
        claim_uid=claim_uid,
        namespace=namespace,
        name=name,
        generation=generation,
        spec=spec,
        names=names,
        clusters=tuple(sorted(clusters)),
        fs_name=fs_name,
        subvolume_group=subvolume_group,
        created=(),
    )


def retarget(
    record: ProvisioningRecord,
    *,
    generation: int,
    spec: StorageClaimSpec,
    clusters: tuple[str, ...],
) -> ProvisioningRecord:
    """The claim's spec or its target clusters changed (or not: then the record is returned)."""
    clusters = tuple(sorted(clusters))
    if record.deleting:
        return record
    if record.generation == generation and record.clusters == clusters:
        return record
    update: dict[str, object] = {"generation": generation, "spec": spec, "clusters": clusters}
    if spec.type != record.spec.type:
        update["phase"] = "Failed"
        update["reason"] = (
            f"spec.type cannot change from {record.spec.type} to {spec.type}; "
            "create a new claim instead"
        )
        return record.model_copy(update=update)
    if record.phase == "Failed" and record.generation != generation:
        update |= {"phase": "Provisioning", "reason": None, "attempts": 0, "next_retry_at": None}
    changed = record.model_copy(update=update)
    if changed.phase == "Ready" and plan_pending(changed):
        changed = changed.model_copy(update={"phase": "Provisioning"})
    return changed


def plan_pending(record: ProvisioningRecord) -> bool:
    return any(step.id not in record.done for step in plan(record))


def start_deleting(record: ProvisioningRecord) -> ProvisioningRecord:
    if record.deleting:
        return record
    return record.model_copy(
        update={
            "deleting": True,
            "phase": "Deleting",
            "done": (),
            "attempts": 0,
            "next_retry_at": None,
            "last_error": None,
            "reason": None,
            "ceph_unavailable_since": None,
            "created": tuple(sorted(created_resources(record))),
        }
    )


def step_started(record: ProvisioningRecord, step: Step) -> ProvisioningRecord:
    return record.model_copy(update={"step": step.id})


def _action_of(step_id: str) -> str:
    return step_id.split(":", 1)[0]


def step_done(record: ProvisioningRecord, step: Step, result: StepResult) -> ProvisioningRecord:
    done = list(record.done)
    if step.cluster is None:
        # A step with new parameters replaces the old one (a quota set back to an earlier
        # value runs again).
        done = [d for d in done if _action_of(d) != _action_of(step.id)]
    done.append(step.id)
    keys = dict(record.keys)
    update: dict[str, object] = {}
    if record.attempts == 0 or record.step == step.id:
        # (A step that ran beside a failing one leaves that one's retry as it is.)
        update = {
            "step": step.id,
            "attempts": 0,
            "next_retry_at": None,
            "last_error": None,
            "ceph_unavailable_since": None,
        }
    created = set(created_resources(record))
    if step.action in CREATES:
        created.add(CREATES[step.action])
    if step.action in REMOVES:
        created.discard(REMOVES[step.action])
    if step.action in {"cephx-key", "s3-key"} and step.cluster and result.sealed_key:
        keys[step.cluster] = result.sealed_key
    if step.action == "revoke-key" and step.cluster:
        keys.pop(step.cluster, None)
        # Should the cluster come back, its key is made again.
        done = [d for d in done if d != f"key:{step.cluster}"]
        if not record.deleting:
            done = [d for d in done if d != step.id]
    if step.action == "deliver":
        update["delivered"] = step.clusters
    if step.action == "withdraw":
        update["delivered"] = None
    if result.path:
        update["path"] = result.path
    update |= {"done": tuple(done), "keys": keys, "created": tuple(sorted(created))}
    advanced = record.model_copy(update=update)
    if not advanced.deleting and advanced.phase != "Failed":
        phase: RecordPhase = "Provisioning" if plan_pending(advanced) else "Ready"
        advanced = advanced.model_copy(update={"phase": phase})
    return advanced


def step_failed(
    record: ProvisioningRecord,
    step: Step,
    *,
    retryable: bool,
    message: str,
    now: datetime,
    backoff: Backoff | None = None,
    unavailable: bool = False,
) -> ProvisioningRecord:
    """A transient error is retried after a backoff; a permanent one fails the claim
    (a failing deletion keeps being retried: giving up would leak Ceph objects).
    `unavailable`: Ceph could not be reached (the claim then says so: CephUnavailable)."""
    attempts = record.attempts + 1
    since = (record.ceph_unavailable_since or now) if unavailable else None
    if retryable or record.deleting:
        delay = (backoff or CEPH_BACKOFF).delay(attempts)
        return record.model_copy(
            update={
                "step": step.id,
                "attempts": attempts,
                "last_error": message,
                "next_retry_at": now + timedelta(seconds=delay),
                "ceph_unavailable_since": since,
            }
        )
    return record.model_copy(
        update={
            "step": step.id,
            "attempts": attempts,
            "last_error": message,
            "next_retry_at": None,
            "phase": "Failed",
            "reason": f"step {step.id} failed: {message}",
            "ceph_unavailable_since": since,
        }
    )


# ---- status ----------------------------------------------------------------------------


def created_resources(record: ProvisioningRecord) -> frozenset[Resource]:
    """The claim's own Ceph objects known to exist. A record from before `created` was
    kept: while provisioning, what its done steps made; while deleting (its done steps are
    the deletion's), every object of its type, as that record's service assumed."""
    if record.created is not None:
        return frozenset(record.created)
    if record.deleting:
        return frozenset(RESOURCES_OF_TYPE[record.spec.type])
    return frozenset(CREATES[a] for a in map(_action_of, record.done) if a in CREATES)


def resources_of(record: ProvisioningRecord, rgw_endpoint: str | None) -> ClaimResources:
    """The names of the claim's Ceph objects that exist (what a Retain deletion keeps)."""
    names = record.names
    exists = created_resources(record)

    def named(resource: Resource, name: str) -> str | None:
        return name if resource in exists else None

    spec = record.spec
    if spec.type == "block":
        return ClaimResources(
            crush_rule=named("crush_rule", names.crush_rule),
            pool=named("pool", names.pool),
            image=named("image", names.image),
        )
    if spec.type == "filesystem":
        if "subvolume" not in exists:
            return ClaimResources()
        return ClaimResources(
            fs_name=record.fs_name,
            subvolume_group=record.subvolume_group,
            subvolume=names.subvolume,
            path=record.path,
        )
    return ClaimResources(
        bucket=named("bucket", names.bucket),
        rgw_user=named("rgw_user", names.rgw_user),
        endpoint=rgw_endpoint if "bucket" in exists else None,
    )


def _ready_condition(
    record: ProvisioningRecord, completed: int, total: int
) -> tuple[ConditionStatus, str, str]:
    if record.phase == "Ready":
        clusters = ", ".join(sorted(record.keys)) or "none yet"
        return "True", "Provisioned", f"Ceph objects made; access delivered to: {clusters}"
    if record.phase == "Failed":
        return "False", "Failed", record.reason or "failed"
    retry = ""
    if record.next_retry_at is not None:
        retry = (
            f" (attempt {record.attempts}, next at {record.next_retry_at.isoformat()}): "
            f"{record.last_error}"
        )
    if record.ceph_unavailable_since is not None:
        return "False", "CephUnavailable", f"waiting for Ceph to answer{retry}"
    if record.phase == "Deleting":
        return "False", "Deleting", f"being deleted, step {record.step or 'withdraw'}{retry}"
    if record.next_retry_at is not None:
        return "False", "Retrying", f"step {record.step} failed{retry}"
    return "False", "Provisioning", f"{completed} of {total} steps done"


def _ceph_condition(record: ProvisioningRecord) -> tuple[ConditionStatus, str, str]:
    if record.ceph_unavailable_since is not None:
        return "True", "CephUnreachable", record.last_error or "Ceph does not answer"
    answered = created_resources(record) or any(
        _action_of(d) not in {"deliver", "withdraw", "await-unreferenced", "retain"}
        for d in record.done
    )
    if not answered:
        return "Unknown", "NotContactedYet", ""
    return "False", "CephAnswered", ""


def conditions_of(
    record: ProvisioningRecord,
    *,
    completed: int,
    total: int,
    previous: Sequence[StorageClaimCondition] = (),
    now: datetime | None = None,
) -> list[StorageClaimCondition]:
    """Ready and CephUnavailable; a condition's transition time is kept from `previous`
    while its status stays (CephUnavailable=True: since when Ceph does not answer)."""
    before = {c.type: c for c in previous}
    made = []
    for condition_type, (status, reason, message) in (
        (READY, _ready_condition(record, completed, total)),
        (CEPH_UNAVAILABLE, _ceph_condition(record)),
    ):
        old = before.get(condition_type)
        when = old.last_transition_time if old is not None and old.status == status else None
        if condition_type == CEPH_UNAVAILABLE and status == "True":
            when = record.ceph_unavailable_since
        made.append(
            StorageClaimCondition(
                type=condition_type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=when or now,
            )
        )
    return made


def status_of(
    record: ProvisioningRecord,
    *,
    secrets: Mapping[str, str],
    storage_class: str | None,
    rgw_endpoint: str | None = None,
    previous: StorageClaimStatus | None = None,
    now: datetime | None = None,
) -> StorageClaimStatus:
    steps = plan(record)
    completed = sum(1 for s in steps if s.id in record.done)
    retrying = record.next_retry_at is not None
    return StorageClaimStatus(
        phase=record.phase,
        observed_generation=record.generation,
        step=record.step,
        completed_steps=completed,
        total_steps=len(steps),
        retrying=retrying,
        attempts=record.attempts,
        last_error=record.last_error,
        next_retry_at=record.next_retry_at,
        reason=record.reason,
        resources=resources_of(record, rgw_endpoint),
        clusters=sorted(record.keys),
        secrets=dict(secrets) if record.delivered else {},
        storage_class=storage_class if record.delivered else None,
        conditions=conditions_of(
            record,
            completed=completed,
            total=len(steps),
            previous=previous.conditions if previous is not None else (),
            now=now,
        ),
    )

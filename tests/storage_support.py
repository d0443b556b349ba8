"""Storage claims as the storage machine's tests build them: a claim, its first record and
a run of the whole plan with every effect succeeding (shared by the storage unit tests and
the cross-service tests that hand the storage service's documents to another service)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foot.kinds import KINDS
from foot.kinds.storage import StorageClaim
from foot_storage.core.delivery import CephFacts, ClusterKey, delivery_documents
from foot_storage.core.machine import (
    ProvisioningRecord,
    RunStep,
    StepResult,
    begin,
    decide,
    step_done,
)
from foot_storage.core.names import ceph_names

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_claim(**spec: Any) -> StorageClaim:
    document = {
        "apiVersion": "storage.foot.dev/v1alpha1",
        "kind": "StorageClaim",
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"type": "block", "size": "1Gi", "access": {"clusters": ["east", "west"]}} | spec,
    }
    parsed = KINDS.parse(document)
    assert isinstance(parsed, StorageClaim)
    return parsed


def make_record(claim: StorageClaim, clusters: tuple[str, ...] = ("east", "west")) -> Any:
    return begin(
        claim_uid="0123456789abcdef",
        namespace="shop",
        name="db",
        generation=1,
        spec=claim.spec,
        names=ceph_names("shop", "db", "0123456789abcdef"),
        clusters=clusters,
        fs_name="cephfs",
        subvolume_group="csi",
    )


def run_all(record: ProvisioningRecord) -> tuple[ProvisioningRecord, list[str]]:
    """Drive the machine as the shell does, every effect succeeding."""
    ran = []
    while isinstance(decision := decide(record, NOW), RunStep):
        step = decision.step
        ran.append(step.id)
        sealed = f"sealed-{step.cluster}" if step.action in {"cephx-key", "s3-key"} else None
        record = step_done(record, step, StepResult(sealed_key=sealed, path="/volumes/x"))
    return record, ran


BLOCK_KEYS = {
    "east": ClusterKey(user="foot.east", secret="AQ-east-key"),
    "west": ClusterKey(user="foot.west", secret="AQ-west-key"),
}
"""A cephx key of its own for each of the claim's two members."""


def delivered_block_claim() -> tuple[ProvisioningRecord, list[dict[str, Any]]]:
    """A default (block) claim provisioned to the end and what storage delivers for it, with
    BLOCK_KEYS."""
    record, _ = run_all(make_record(make_claim()))
    facts = CephFacts(cluster_id="fsid")
    return record, delivery_documents(record, ("east", "west"), BLOCK_KEYS, facts)

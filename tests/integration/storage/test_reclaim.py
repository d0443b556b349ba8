"""Deleting claims on a real Ceph (acceptance 5): Retain keeps the data, Delete removes it.

Either way the delivery is withdrawn through FOOT's API and the per-cluster
keys are revoked; only `Delete` removes the image, pool and CRUSH rule (or the
subvolume, or the bucket and its user). Everything is checked on Ceph itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess

import pytest
from integration.storage.conftest import (
    CLAIMS,
    StorageEnv,
    apply,
    ceph_fails,
    ceph_json,
    claim_document,
    delete,
    delivered,
    unique,
    wait_for_phase,
)

from foot.bus import Bus
from foot.catalog import STORAGE_PROVISIONING
from foot.kinds.storage import StorageClaim
from foot_storage.service import StorageService
from foot_testenv.ceph import CephCluster


async def delete_and_wait(bus: Bus, document: dict[str, object]) -> None:
    await delete(bus, document)
    records = await bus.kv(STORAGE_PROVISIONING.name)
    key = CLAIMS.key("apps", str(document["metadata"]["name"]))  # type: ignore[index]
    async with asyncio.timeout(60):
        # Polling: the record is state owned by the service, which offers no event.
        while (entry := await records.get(key)) is not None and entry.value is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


def key_exists(ceph: CephCluster, entity: str) -> bool:
    return not ceph_fails(ceph, "auth", "get", entity)


def pools(ceph: CephCluster) -> set[str]:
    return {p["pool_name"] for p in ceph_json(ceph, "osd", "pool", "ls", "detail")}


def rgw_user_exists(ceph: CephCluster, uid: str) -> bool:
    completed = subprocess.run(
        ["radosgw-admin", "-c", str(ceph.conf), "-k", str(ceph.admin_keyring),
         "-n", "client.admin", "user", "info", "--uid", uid],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return completed.returncode == 0


def rgw_buckets(ceph: CephCluster) -> list[str]:
    completed = subprocess.run(
        ["radosgw-admin", "-c", str(ceph.conf), "-k", str(ceph.admin_keyring),
         "-n", "client.admin", "bucket", "list"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return list(json.loads(completed.stdout))


def entities(claim: StorageClaim) -> list[str]:
    assert claim.status is not None
    assert claim.status.resources.pool or claim.status.resources.subvolume
    base = claim.status.resources.pool or claim.status.resources.subvolume
    return [f"client.{base}.{cluster}" for cluster in claim.status.clusters]


async def test_retain_keeps_pool_and_image_but_withdraws_delivery_and_keys(
    storage_env: StorageEnv, storage: StorageService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="foot_storage")
    env, bus = storage_env, storage_env.bus
    document = claim_document(unique("keep"))
    name = str(document["metadata"]["name"])
    await apply(bus, document)
    claim = await wait_for_phase(bus, name, "Ready")
    assert claim.status is not None
    pool, image = claim.status.resources.pool, claim.status.resources.image
    assert all(key_exists(env.ceph, e) for e in entities(claim))
    assert await delivered(bus, name)

    await delete_and_wait(bus, document)
    assert pool in pools(env.ceph)
    assert image in env.ceph.rbd("ls", str(pool)).split()
    assert not any(key_exists(env.ceph, e) for e in entities(claim))
    assert await delivered(bus, name) == {}
    # The log names what was kept, all of which exists.
    kept = {"crush_rule": claim.status.resources.crush_rule, "pool": pool, "image": image}
    said = [r.getMessage() for r in caplog.records if r.name.startswith("foot_storage")]
    assert f"claim apps/{name} deleted with reclaimPolicy Retain: kept {kept}" in said


async def test_delete_removes_image_pool_rule_subvolume_bucket_user_and_keys(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    block = claim_document(unique("gone"), reclaimPolicy="Delete")
    files = claim_document(unique("gonefs"), type="filesystem", reclaimPolicy="Delete")
    bucket = claim_document(unique("gones3"), type="object", reclaimPolicy="Delete")
    claims = {}
    for document in (block, files, bucket):
        await apply(bus, document)
    for document in (block, files, bucket):
        name = str(document["metadata"]["name"])
        claims[name] = await wait_for_phase(bus, name, "Ready")
    block_claim = claims[str(block["metadata"]["name"])]
    fs_claim = claims[str(files["metadata"]["name"])]
    s3_claim = claims[str(bucket["metadata"]["name"])]
    assert block_claim.status is not None
    assert fs_claim.status is not None
    assert s3_claim.status is not None
    pool = block_claim.status.resources.pool
    rule = block_claim.status.resources.crush_rule
    subvolume = fs_claim.status.resources.subvolume
    uid = s3_claim.status.resources.rgw_user
    assert pool in pools(env.ceph)
    assert rgw_user_exists(env.ceph, str(uid))

    await asyncio.gather(*(delete_and_wait(bus, d) for d in (block, files, bucket)))

    assert pool not in pools(env.ceph)
    rules = {r["rule_name"] for r in ceph_json(env.ceph, "osd", "crush", "rule", "dump")}
    assert rule not in rules
    assert not any(key_exists(env.ceph, e) for e in entities(block_claim) + entities(fs_claim))
    subvolumes = ceph_json(env.ceph, "fs", "subvolume", "ls", "cephfs", "--group_name", "csi")
    assert subvolume not in {s["name"] for s in subvolumes}
    assert not rgw_user_exists(env.ceph, str(uid))
    buckets = rgw_buckets(env.ceph)
    assert s3_claim.status.resources.bucket not in buckets

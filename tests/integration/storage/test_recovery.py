"""Crashes and Ceph outages during provisioning (acceptances 3 and 4), on a real Ceph.

* The storage service runs as a real process and is killed (SIGKILL) the moment
  each provisioning step is recorded, then started again: the claim still
  reaches Ready, and Ceph holds exactly one pool, image, key per cluster, RGW
  user, subuser per cluster and bucket.
* Ceph is frozen for 30 s while a claim provisions: the claim reports that it
  is retrying, then converges once Ceph answers again.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import pytest
from integration.storage.conftest import (
    CLAIMS,
    StorageEnv,
    StorageProcess,
    api,
    apply,
    ceph_json,
    claim_document,
    get_claim,
    unique,
    wait_for_phase,
)

from foot.bus import Bus
from foot.catalog import API_APPLY, STORAGE_PROVISIONING
from foot.kinds.storage import CEPH_UNAVAILABLE, READY
from foot_storage.service import StorageService
from support import eventually

OUTAGE_SECONDS = 30.0


async def done_steps(bus: Bus, name: str) -> tuple[str, ...]:
    records = await bus.kv(STORAGE_PROVISIONING.name)
    entry = await records.get(CLAIMS.key("apps", name))
    if entry is None or entry.value is None:
        return ()
    return tuple(json.loads(entry.value)["done"])


async def submit_when_answering(bus: Bus, document: dict[str, Any]) -> None:
    """Apply once the storage process answers its API subject (it is starting)."""
    while True:
        reply = await api(bus, API_APPLY, [document])
        if reply.results[0].outcome == "created":
            return
        await asyncio.sleep(0.1)


def radosgw_admin(env: StorageEnv, *args: str) -> object:
    completed = subprocess.run(
        ["radosgw-admin", "-c", str(env.ceph.conf), "-k", str(env.ceph.admin_keyring),
         "-n", "client.admin", *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("claim_type", ["block", "object"])
async def test_killed_at_every_step_resumes_to_ready_without_duplicates(
    storage_env: StorageEnv, storage_processes: list[StorageProcess], claim_type: str
) -> None:
    env, bus = storage_env, storage_env.bus
    name = unique(f"crash-{claim_type}")
    kills, seen = 0, 0
    record_steps: tuple[str, ...] = ()
    async with asyncio.timeout(180):
        while True:
            process = StorageProcess(env, env.workdir / f"storage-{len(storage_processes)}.log")
            storage_processes.append(process)
            if not storage_processes[:-1]:
                await submit_when_answering(bus, claim_document(name, type=claim_type))
            while len(done := await done_steps(bus, name)) <= seen:  # noqa: ASYNC110 - polling
                await asyncio.sleep(0.01)
            claim = await get_claim(bus, name)
            seen = len(done)
            record_steps = done
            if seen >= 6 or (claim and claim.status and claim.status.phase == "Ready"):
                break
            process.kill()
            kills += 1
    # Each life is killed as soon as a new step is recorded; steps that land within the same
    # few milliseconds (the two clusters' keys) cannot be told apart from outside, so of the
    # six steps at least three are separate crash points.
    assert kills >= 3, record_steps
    claim = await wait_for_phase(bus, name, "Ready", within=60)
    assert claim.status is not None
    assert claim.status.clusters == ["east", "west"]
    resources = claim.status.resources
    base = resources.pool or resources.rgw_user
    stem = str(base).rsplit("-", 1)[0]  # foot-apps-<name>, without the uid piece
    entities = [e["entity"] for e in ceph_json(env.ceph, "auth", "ls")["auth_dump"]]
    if claim_type == "block":
        matching_pools = [p for p in ceph_json(env.ceph, "osd", "pool", "ls") if stem in p]
        assert matching_pools == [resources.pool]
        assert env.ceph.rbd("ls", str(resources.pool)).split() == [resources.image]
        assert sorted(e for e in entities if stem in e) == [
            f"client.{base}.east",
            f"client.{base}.west",
        ]
    else:
        users = [u for u in radosgw_admin(env, "user", "list") if stem in u]  # type: ignore[attr-defined]
        assert users == [resources.rgw_user]
        info = radosgw_admin(env, "user", "info", "--uid", str(resources.rgw_user))
        assert sorted(s["id"] for s in info["subusers"]) == [  # type: ignore[index]
            f"{base}:east",
            f"{base}:west",
        ]
        buckets = [b for b in radosgw_admin(env, "bucket", "list") if stem in b]  # type: ignore[attr-defined]
        assert buckets == [resources.bucket]


@pytest.mark.slow
async def test_ceph_down_for_30s_reports_retrying_then_converges(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    name = unique("outage")
    env.ceph.pause()
    try:
        await apply(bus, claim_document(name))
        paused_at = time.monotonic()
        retrying = None
        async with asyncio.timeout(OUTAGE_SECONDS):
            while True:
                claim = await get_claim(bus, name)
                if claim and claim.status and claim.status.retrying:
                    retrying = claim.status
                    break
                await asyncio.sleep(0.2)
        assert retrying.phase == "Provisioning"
        assert retrying.attempts >= 1
        assert retrying.last_error
        # Said as a condition of the claim, and by the service's readiness.
        ceph, ready = retrying.condition(CEPH_UNAVAILABLE), retrying.condition(READY)
        assert ceph is not None
        assert ready is not None
        assert (ceph.status, ceph.reason, ceph.message) == (
            "True",
            "CephUnreachable",
            retrying.last_error,
        )
        assert (ready.status, ready.reason) == ("False", "CephUnavailable")
        await eventually(
            lambda: any(p.startswith("ceph unreachable: ") for p in storage.readiness_problems()),
            within=20,
        )
        await asyncio.sleep(max(OUTAGE_SECONDS - (time.monotonic() - paused_at), 0))
        still = await get_claim(bus, name)
        assert still is not None
        assert still.status is not None
        assert still.status.phase == "Provisioning"
    finally:
        env.ceph.resume()
    claim = await wait_for_phase(bus, name, "Ready", within=90)
    assert claim.status is not None
    assert not claim.status.retrying
    assert claim.status.last_error is None
    ceph = claim.status.condition(CEPH_UNAVAILABLE)
    assert ceph is not None
    assert (ceph.status, ceph.reason) == ("False", "CephAnswered")
    await eventually(lambda: not storage.readiness_problems(), within=20)

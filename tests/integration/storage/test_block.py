"""Block claims on a real Ceph (acceptance 1 up to delivery, and 7 through the front door).

A claim submitted through FOOT's API becomes a pool with a CRUSH rule for its
failure domain, an RBD image of the right size and one cephx key per member
cluster that works on that pool and is refused on another (checked with the
key itself); the Secret, StorageClass and policies the storage service submits
through FOOT's front door are accepted and stored in the templates and
policies buckets.
"""

from __future__ import annotations

import json
import subprocess

from integration.storage.conftest import (
    StorageEnv,
    api,
    apply,
    ceph_json,
    claim_document,
    delivered,
    delivered_keys,
    stored,
    unique,
    wait_for_phase,
)

from foot.bus.catalog import API_APPLY, STORAGE_PROVISIONING
from foot_storage.service import StorageService


def rbd_as(env: StorageEnv, user: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    keyring = env.workdir / f"{user}.keyring"
    keyring.write_text(f"[client.{user}]\n\tkey = {key}\n")
    keyring.chmod(0o600)
    return subprocess.run(
        ["rbd", "-c", str(env.ceph.conf), "-n", f"client.{user}", "--keyring", str(keyring),
         *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_block_claim_creates_pool_rule_image_scoped_keys_and_delivery(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    name = unique("orders")
    await apply(bus, claim_document(name, size="64Mi"))
    claim = await wait_for_phase(bus, name, "Ready")
    status = claim.status
    assert status is not None
    pool, image, rule = status.resources.pool, status.resources.image, status.resources.crush_rule
    assert pool is not None
    assert image is not None
    assert rule is not None
    assert status.clusters == ["east", "west"]
    assert (status.secret_name, status.storage_class) == (f"{name}-ceph", f"foot-apps-{name}")

    # The pool uses a CRUSH rule spreading over OSDs of class hdd.
    details = {p["pool_name"]: p for p in ceph_json(env.ceph, "osd", "pool", "ls", "detail")}
    rules = {r["rule_id"]: r for r in ceph_json(env.ceph, "osd", "crush", "rule", "dump")}
    crush_rule = rules[details[pool]["crush_rule"]]
    assert crush_rule["rule_name"] == rule
    assert {"op": "take", "item": crush_rule["steps"][0]["item"], "item_name": "default~hdd"} in (
        crush_rule["steps"]
    )
    assert any(s.get("type") == "osd" for s in crush_rule["steps"])
    assert details[pool]["size"] == 1
    assert "rbd" in details[pool]["application_metadata"]
    # The image has the claimed size.
    image_info = json.loads(env.ceph.rbd("info", f"{pool}/{image}", "--format", "json"))
    assert image_info["size"] == 64 * 2**20

    # Delivery: templates and policies were accepted through the front door and stored.
    documents = await delivered(bus, name)
    assert set(documents) == {
        "Secret",
        "StorageClass",
        "OverridePolicy",
        "ClusterPropagationPolicy",
    }
    assert documents["StorageClass"]["parameters"]["pool"] == pool
    assert documents["StorageClass"]["provisioner"] == "rbd.csi.ceph.com"
    assert documents["StorageClass"]["parameters"]["clusterID"] == env.ceph.fsid
    placement = documents["ClusterPropagationPolicy"]["spec"]["placement"]
    assert placement["clusterAffinity"]["clusterNames"] == ["east", "west"]

    # One key per cluster: works on its pool, refused on another pool, checked with the key.
    keys = delivered_keys(documents)
    assert set(keys) == {"east", "west"}
    assert keys["east"]["userKey"] != keys["west"]["userKey"]
    other = unique("other")
    await apply(bus, claim_document(other, size="8Mi", access={"clusters": ["east"]}))
    other_claim = await wait_for_phase(bus, other, "Ready")
    assert other_claim.status is not None
    other_pool = other_claim.status.resources.pool
    assert other_pool is not None
    for cluster in ("east", "west"):
        user, key = keys[cluster]["userID"], keys[cluster]["userKey"]
        listed = rbd_as(env, user, key, "ls", pool)
        assert listed.returncode == 0, listed.stderr
        assert image in listed.stdout
        made = rbd_as(env, user, key, "create", f"{pool}/{cluster}-scratch", "--size", "4M")
        assert made.returncode == 0, made.stderr
        refused = rbd_as(env, user, key, "create", f"{other_pool}/{cluster}-x", "--size", "4M")
        assert refused.returncode != 0
        assert "Operation not permitted" in refused.stderr or "EPERM" in refused.stderr

    # Keys are stored sealed only: the provisioning record never holds them in plain text.
    records = await stored(bus, STORAGE_PROVISIONING.name)
    raw = str(records)
    for cluster in ("east", "west"):
        assert keys[cluster]["userKey"] not in raw
    assert "foot-sealed-v1:" in raw


async def test_invalid_claims_are_refused_at_the_front_door_with_field_paths(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    bad = claim_document(
        unique("bad"), type="tape", size="0", placement={"failureDomain": "planet"}
    )
    reply = await api(storage_env.bus, API_APPLY, [bad])
    (result,) = reply.results
    assert result.outcome == "rejected"
    assert result.error is not None
    paths = {f.path for f in result.error.fields}
    assert {"spec.type", "spec.size", "spec.placement.failureDomain"} <= paths

"""Block claims on a real Ceph (acceptance 1 up to delivery, and 7 through the front door).

A claim submitted through FOOT's API becomes a pool with a CRUSH rule for its
failure domain, an RBD image of the right size and one cephx key per member
cluster that works on that pool and is refused on another (checked with the
key itself); the Secret, StorageClass and policies the storage service submits
through FOOT's front door are accepted and stored in the templates and
policies buckets.
"""

from __future__ import annotations

import base64
import json
import subprocess

from integration.storage.conftest import (
    StorageEnv,
    api,
    apply,
    ceph_fails,
    ceph_json,
    claim_document,
    delivered,
    delivered_keys,
    one,
    stored,
    unique,
    wait_for_phase,
)

from foot.catalog import API_APPLY, POLICIES, STORAGE_PROVISIONING, TEMPLATES
from foot.kinds.storage import CEPH_UNAVAILABLE, READY
from foot.secrets import FORMAT_PREFIX
from foot_storage.service import StorageService
from support import eventually, stored_values


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
    assert status.secrets == {c: f"{name}-ceph-{c}" for c in ("east", "west")}
    assert status.storage_class == f"foot-apps-{name}"
    ready, ceph = status.condition(READY), status.condition(CEPH_UNAVAILABLE)
    assert ready is not None
    assert ceph is not None
    assert (ready.status, ready.reason) == ("True", "Provisioned")
    assert (ceph.status, ceph.reason) == ("False", "CephAnswered")
    # The service's own probe of Ceph (dashboard and CLI) finds it answering: ready.
    await eventually(lambda: not storage.readiness_problems())

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

    # Delivery: templates and policies were accepted through the front door and stored: a
    # Secret and a PropagationPolicy per cluster, one StorageClass with its placement and
    # the override naming each cluster's Secret.
    documents = await delivered(bus, name)
    assert {kind: len(found) for kind, found in documents.items()} == {
        "Secret": 2,
        "PropagationPolicy": 2,
        "StorageClass": 1,
        "ClusterPropagationPolicy": 1,
        "ClusterOverridePolicy": 1,
    }
    storage_class = one(documents, "StorageClass")
    assert storage_class["parameters"]["pool"] == pool
    assert storage_class["provisioner"] == "rbd.csi.ceph.com"
    assert storage_class["parameters"]["clusterID"] == env.ceph.fsid
    placement = one(documents, "ClusterPropagationPolicy")["spec"]["placement"]
    assert placement["clusterAffinity"]["clusterNames"] == ["east", "west"]
    for policy in documents["PropagationPolicy"]:
        (selector,) = policy["spec"]["resourceSelectors"]
        (cluster,) = policy["spec"]["placement"]["clusterAffinity"]["clusterNames"]
        assert selector["name"] == f"{name}-ceph-{cluster}"

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


def key_forms(secret: str) -> list[bytes]:
    """A key as it could appear: plain, base64 (Secret data), base64 of the base64."""
    once = base64.b64encode(secret.encode())
    return [secret.encode(), once, base64.b64encode(once)]


async def test_no_delivered_key_sits_in_plain_text_in_templates_or_policies(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    """Each cluster's key travels in a Secret template of its own (sealed at rest) and never
    in a policy: the raw `templates` and `policies` buckets hold no key in any form."""
    env, bus = storage_env, storage_env.bus
    block, files, s3 = unique("scan"), unique("scanfs"), unique("scans3")
    await apply(bus, claim_document(block, size="8Mi"))
    await apply(bus, claim_document(files, type="filesystem", size="8Mi"))
    await apply(bus, claim_document(s3, type="object", size="8Mi"))
    secrets: list[str] = []
    for name in (block, files, s3):
        await wait_for_phase(bus, name, "Ready")
        keys = delivered_keys(await delivered(bus, name))
        assert set(keys) == {"east", "west"}
        secrets += [values.get("userKey") or values["secretKey"] for values in keys.values()]
    assert len(set(secrets)) == 6

    raw = {
        bucket: await stored_values(env.nats.url, bucket)
        for bucket in (TEMPLATES.name, POLICIES.name)
    }
    secret_keys = [k for k in raw[TEMPLATES.name] if k.startswith("core.Secret.")]
    assert len(secret_keys) >= 6, sorted(raw[TEMPLATES.name])
    for key in secret_keys:
        assert raw[TEMPLATES.name][key].startswith(FORMAT_PREFIX), key
    assert any(b"ClusterOverridePolicy" in v for v in raw[POLICIES.name].values())
    for bucket, values in raw.items():
        for key, value in values.items():
            for secret in secrets:
                for form in key_forms(secret):
                    assert form not in value, f"a delivered key sits in {bucket}/{key}"


async def test_a_cluster_losing_access_loses_its_secret_policy_and_key(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    name = unique("shrink")
    document = claim_document(name, size="8Mi")
    await apply(bus, document)
    claim = await wait_for_phase(bus, name, "Ready")
    assert claim.status is not None
    east = f"client.{claim.status.resources.pool}.east"
    assert ceph_json(env.ceph, "auth", "get", east)

    document["spec"]["access"] = {"clusters": ["west"]}
    await apply(bus, document)
    claim = await wait_for_phase(bus, name, "Ready")
    assert claim.status is not None
    assert claim.status.clusters == ["west"]
    assert claim.status.secrets == {"west": f"{name}-ceph-west"}
    documents = await delivered(bus, name)
    assert [s["metadata"]["name"] for s in documents["Secret"]] == [f"{name}-ceph-west"]
    assert [p["metadata"]["name"] for p in documents["PropagationPolicy"]] == [
        f"foot-storage-{name}-ceph-west"
    ]
    rules = one(documents, "ClusterOverridePolicy")["spec"]["overrideRules"]
    assert [r["targetCluster"]["clusterNames"] for r in rules] == [["west"]]
    placement = one(documents, "ClusterPropagationPolicy")["spec"]["placement"]
    assert placement["clusterAffinity"]["clusterNames"] == ["west"]
    assert ceph_fails(env.ceph, "auth", "get", east)

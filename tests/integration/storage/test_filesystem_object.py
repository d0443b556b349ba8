"""Filesystem and object claims on a real Ceph (acceptance 2).

A filesystem claim yields a subvolume of the claimed size and a key limited to
its path (checked by mounting CephFS with the key itself through libcephfs); an
object claim yields an RGW user, bucket and quota, and an S3 put/get with the
delivered credentials succeeds (and is refused on another bucket).
"""

from __future__ import annotations

import json
import subprocess
import textwrap

from integration.storage.conftest import (
    StorageEnv,
    apply,
    ceph_json,
    claim_document,
    delivered,
    delivered_keys,
    one,
    unique,
    wait_for_phase,
)
from integration.storage.s3 import s3_request

from foot_storage.service import StorageService

# Runs with the machine's Python, which has Debian's libcephfs bindings.
CEPHFS_PROBE = textwrap.dedent(
    """
    import sys, cephfs
    conf, user, keyring, own, other = sys.argv[1:6]

    def mount(root):
        fs = cephfs.LibCephFS(conffile=conf, auth_id=user, conf={"keyring": keyring})
        fs.mount(mount_root=root.encode(), filesystem_name=b"cephfs")
        return fs

    fs = mount(own)
    fd = fs.open(b"/probe.txt", "w", 0o644)
    fs.write(fd, b"hello", 0)
    fs.close(fd)
    print("own-path-write-ok")
    for root in (other, "/"):
        try:
            fs = mount(root)
            fs.open(b"/probe.txt", "w", 0o644)
            print("write-ok-at", root)
        except cephfs.Error as exc:
            print("refused-at", root, type(exc).__name__)
    """
)


def run(argv: list[str], *, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=check)


async def test_filesystem_claim_makes_a_sized_subvolume_and_a_path_scoped_key(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    name, other = unique("shared"), unique("neighbour")
    await apply(bus, claim_document(name, type="filesystem", size="256Mi"))
    await apply(bus, claim_document(other, type="filesystem", size="8Mi"))
    claim = await wait_for_phase(bus, name, "Ready")
    neighbour = await wait_for_phase(bus, other, "Ready")
    assert claim.status is not None
    assert neighbour.status is not None
    resources = claim.status.resources
    assert resources.subvolume is not None
    info = ceph_json(
        env.ceph, "fs", "subvolume", "info", "cephfs", resources.subvolume, "--group_name", "csi"
    )
    assert info["bytes_quota"] == 256 * 2**20
    assert info["path"] == resources.path

    documents = await delivered(bus, name)
    assert one(documents, "StorageClass")["provisioner"] == "cephfs.csi.ceph.com"
    keys = delivered_keys(documents)
    assert set(keys) == {"east", "west"}
    user = keys["east"]["userID"]
    caps = ceph_json(env.ceph, "auth", "get", f"client.{user}")[0]["caps"]
    assert caps["mds"] == f"allow rw fsname=cephfs path={resources.path}"
    assert f"namespace={info['pool_namespace']}" in caps["osd"]

    keyring = env.workdir / "fs.keyring"
    keyring.write_text(f"[client.{user}]\n\tkey = {keys['east']['userKey']}\n")
    keyring.chmod(0o600)
    probe = run(
        ["/usr/bin/python3", "-c", CEPHFS_PROBE, str(env.ceph.conf), user, str(keyring),
         str(resources.path), str(neighbour.status.resources.path)],
    )  # fmt: skip
    assert "own-path-write-ok" in probe.stdout, probe.stderr
    refusals = probe.stdout + probe.stderr
    assert f"refused-at {neighbour.status.resources.path} PermissionError" in refusals, refusals
    assert "refused-at / PermissionError" in refusals, refusals
    assert "write-ok-at" not in refusals


async def test_object_claim_makes_user_bucket_quota_and_s3_works_with_delivered_keys(
    storage_env: StorageEnv, storage: StorageService
) -> None:
    env, bus = storage_env, storage_env.bus
    name = unique("media")
    await apply(bus, claim_document(name, type="object", size="100Mi", quota={"maxObjects": 1000}))
    claim = await wait_for_phase(bus, name, "Ready")
    assert claim.status is not None
    bucket, uid = claim.status.resources.bucket, claim.status.resources.rgw_user
    assert bucket is not None
    assert uid is not None
    users = json.loads(
        run(
            ["radosgw-admin", "-c", str(env.ceph.conf), "-k", str(env.ceph.admin_keyring),
             "-n", "client.admin", "user", "info", "--uid", uid],
            check=True,
        ).stdout
    )  # fmt: skip
    assert users["bucket_quota"]["enabled"] is True
    assert users["bucket_quota"]["max_size"] == 100 * 2**20
    assert users["bucket_quota"]["max_objects"] == 1000
    assert users["max_buckets"] == 1
    assert sorted(s["id"] for s in users["subusers"]) == [f"{uid}:east", f"{uid}:west"]

    documents = await delivered(bus, name)
    assert "StorageClass" not in documents
    keys = delivered_keys(documents)
    assert set(keys) == {"east", "west"}
    endpoint = keys["east"]["endpoint"]
    assert endpoint == env.ceph.rgw_url
    assert {k["bucket"] for k in keys.values()} == {bucket}
    for cluster in ("east", "west"):
        access, secret = keys[cluster]["accessKey"], keys[cluster]["secretKey"]
        path = f"/{bucket}/{cluster}.txt"
        put = await s3_request(endpoint, access, secret, "PUT", path, body=b"hi")
        assert put[0] == 200, put
        got = await s3_request(endpoint, access, secret, "GET", path)
        assert got == (200, b"hi")
        refused = await s3_request(endpoint, access, secret, "PUT", f"/{unique('elsewhere')}")
        assert refused[0] in {400, 403}, refused

"""Storage acceptance 1 end to end: claims -> Ceph -> Secret + StorageClass in real members.

Everything real: a nats-server, the session's Ceph, two of the session's kube-apiservers
push-joined by the registry, and the scheduler, the dispatcher and the storage service,
all in this process. The test is the user (claims through the API front door) and checks
the members through their own APIs with kubernetes-asyncio, as their admin:

* a block claim for both clusters puts a Secret and the StorageClass in both members;
  each member's Secret holds that member's own key, which works on the claim's pool and is
  refused on another pool (checked with the key itself, read back from the member);
  each member's StorageClass names that member's Secret; no bucket of the bus holds a
  key in plain text;
* an object claim puts in each member a Secret whose S3 keys put and get in the bucket;
* a member that loses access loses its Secret and StorageClass, and its key stops working;
* deleting the claims (Retain) leaves nothing of theirs in the members.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from integration.storage.conftest import (
    StorageEnv,
    apply,
    claim_document,
    delete,
    wait_for_phase,
)
from integration.storage.s3 import s3_request
from integration.storage.test_block import key_forms, rbd_as
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio.client.exceptions import ApiException

from foot.bus import Bus
from foot.catalog import BUCKETS
from foot.registry_api import RegistryReply
from foot.registry_client import RegistryClient
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_storage.service import StorageService
from foot_testenv.clusters import KubeCluster, KubeClusters
from support import stored_values

pytestmark = [pytest.mark.kube, pytest.mark.slow]

SECRET_ROLES = ("provisioner", "controller-expand", "node-stage")


async def until(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float = 60.0,
    seen: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Poll an async condition (state in the members offers no event to wait on)."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - state in the members
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"not within {within:.0f}s; seen: {await seen() if seen else '-'}")


class Member:
    """One member cluster through its own API (kubernetes-asyncio, as its admin)."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.name = cluster.name
        configuration = kube_client.Configuration(host=cluster.server)
        configuration.api_key = {"BearerToken": f"Bearer {cluster.admin_token}"}
        configuration.ssl_ca_cert = str(cluster.ca_path)
        self.api = kube_client.ApiClient(configuration=configuration)
        self.core = kube_client.CoreV1Api(self.api)
        self.storage = kube_client.StorageV1Api(self.api)

    async def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """The Secret's data, decoded; None when it is not there."""
        try:
            found = await self.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (found.data or {}).items()}

    async def secret_names(self, namespace: str, claim: str) -> list[str]:
        try:
            found = await self.core.list_namespaced_secret(
                namespace, label_selector=f"storage.foot.dev/claim={claim}"
            )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        return sorted(s.metadata.name for s in found.items)

    async def storage_class(self, name: str) -> kube_client.V1StorageClass | None:
        try:
            found: kube_client.V1StorageClass = await self.storage.read_storage_class(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def close(self, namespace: str) -> None:
        with contextlib.suppress(ApiException):
            await self.core.delete_namespace(namespace)
        await self.api.close()


async def registry_ask(bus: Bus, verb: str, body: dict[str, Any]) -> RegistryReply:
    return await RegistryClient(bus, wait_seconds=60).ask(verb, body)


@contextlib.asynccontextmanager
async def foot_services(
    env: StorageEnv, nats: EmbeddedNats, member_namespace: str
) -> AsyncIterator[None]:
    """Registry, scheduler and dispatcher beside the storage service, sharing one sealing key
    (the storage fixture's scheduler is already running: a second one would only compete)."""
    common: dict[str, Any] = {
        "nats_url": nats.url,
        "secret_key_file": env.settings.secret_key_file,
        "shutdown_deadline_seconds": 2.0,
        "log_format": "text",
    }
    async with (
        RegistryService(RegistrySettings(**common, member_namespace=member_namespace)),
        DispatcherService(DispatcherSettings(**common)),
        StorageService(env.settings),
    ):
        yield


@pytest.fixture
async def members(
    storage_env: StorageEnv, kube_clusters: KubeClusters
) -> AsyncIterator[tuple[list[Member], str]]:
    namespace = f"st-{uuid.uuid4().hex[:6]}"
    found = [Member(cluster) for cluster in list(kube_clusters)[:2]]
    try:
        yield found, namespace
    finally:
        for member in found:
            await member.close(namespace)


async def test_block_and_object_claims_deliver_own_keys_into_two_real_members(
    storage_env: StorageEnv,
    kube_clusters: KubeClusters,
    members: tuple[list[Member], str],
) -> None:
    env, bus = storage_env, storage_env.bus
    (first, second), namespace = members
    clusters = list(kube_clusters)[:2]
    member_namespace = f"foot-st-{uuid.uuid4().hex[:6]}"
    async with foot_services(env, env.nats, member_namespace):
        for cluster in clusters:
            reply = await registry_ask(
                bus,
                "join",
                {"name": cluster.name, "kubeconfig": cluster.kubeconfig_path.read_text()},
            )
            assert reply.ok, reply.error
        try:
            await check_delivery(env, (first, second), namespace)
        finally:
            for cluster in clusters:
                await registry_ask(
                    bus,
                    "unjoin",
                    {"name": cluster.name, "kubeconfig": cluster.kubeconfig_path.read_text()},
                )


async def check_delivery(env: StorageEnv, both: tuple[Member, Member], namespace: str) -> None:
    bus = env.bus
    first, second = both
    names = [first.name, second.name]
    block = claim_document(
        f"db-{uuid.uuid4().hex[:6]}", namespace=namespace, access={"clusters": names}
    )
    other = claim_document(
        f"other-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        size="8Mi",
        access={"clusters": [names[0]]},
    )
    bucket = claim_document(
        f"media-{uuid.uuid4().hex[:6]}",
        namespace=namespace,
        type="object",
        size="8Mi",
        access={"clusters": names},
    )
    block_name, other_name, bucket_name = (
        str(d["metadata"]["name"]) for d in (block, other, bucket)
    )
    for document in (block, other, bucket):
        await apply(bus, document)
    claim = await wait_for_phase(bus, block_name, "Ready", namespace=namespace)
    other_claim = await wait_for_phase(bus, other_name, "Ready", namespace=namespace)
    s3_claim = await wait_for_phase(bus, bucket_name, "Ready", namespace=namespace)
    assert claim.status is not None
    assert other_claim.status is not None
    assert s3_claim.status is not None
    pool, other_pool = claim.status.resources.pool, other_claim.status.resources.pool
    storage_class = claim.status.storage_class
    assert pool is not None
    assert other_pool is not None
    assert storage_class is not None
    secrets = claim.status.secrets
    assert secrets == {n: f"{block_name}-ceph-{n}" for n in names}

    async def delivered_everywhere() -> bool:
        for member in both:
            if await member.secret(namespace, secrets[member.name]) is None:
                return False
            if await member.storage_class(storage_class) is None:
                return False
            if await member.secret(namespace, f"{bucket_name}-s3-{member.name}") is None:
                return False
        return True

    async def seen() -> object:
        return {m.name: await m.secret_names(namespace, block_name) for m in both}

    await until(delivered_everywhere, seen=seen)

    # Each member holds only its own Secret, with its own key; the StorageClass (one name
    # everywhere) names that member's Secret.
    keys: dict[str, dict[str, str]] = {}
    for member in both:
        own = f"{block_name}-ceph-{member.name}"
        assert await member.secret_names(namespace, block_name) == [own]
        data = await member.secret(namespace, own)
        assert data is not None
        keys[member.name] = data
        found = await member.storage_class(storage_class)
        assert found is not None
        assert found.provisioner == "rbd.csi.ceph.com"
        assert found.parameters["pool"] == pool
        assert found.parameters["clusterID"] == env.ceph.fsid
        for role in SECRET_ROLES:
            assert found.parameters[f"csi.storage.k8s.io/{role}-secret-name"] == own
            assert found.parameters[f"csi.storage.k8s.io/{role}-secret-namespace"] == namespace
    assert keys[first.name]["userKey"] != keys[second.name]["userKey"]
    assert keys[first.name]["userID"] != keys[second.name]["userID"]

    # No bucket of the bus (templates, policies, bindings, works, ...) holds a delivered key in
    # plain text, read as stored (sealed values stay sealed): only sealed values carry them.
    for spec in BUCKETS:
        for key, value in (await stored_values(env.nats.url, spec.name)).items():
            for data in keys.values():
                for form in key_forms(data["userKey"]):
                    assert form not in value, f"a delivered key sits in {spec.name}/{key}"

    # Each key, as read from its member, works on the claim's pool and is refused on another.
    for member in both:
        user, key = keys[member.name]["userID"], keys[member.name]["userKey"]
        listed = rbd_as(env, user, key, "ls", pool)
        assert listed.returncode == 0, listed.stderr
        assert str(claim.status.resources.image) in listed.stdout
        made = rbd_as(env, user, key, "create", f"{pool}/{member.name}-scratch", "--size", "4M")
        assert made.returncode == 0, made.stderr
        refused = rbd_as(env, user, key, "create", f"{other_pool}/{member.name}-x", "--size", "4M")
        assert refused.returncode != 0
        assert "Operation not permitted" in refused.stderr or "EPERM" in refused.stderr

    # Object storage: each member's Secret has its own S3 keys; put/get in the bucket works.
    s3_bucket = s3_claim.status.resources.bucket
    access_keys = set()
    for member in both:
        data = await member.secret(namespace, f"{bucket_name}-s3-{member.name}")
        assert data is not None
        assert data["bucket"] == s3_bucket
        access_keys.add(data["accessKey"])
        path = f"/{s3_bucket}/{member.name}.txt"
        credentials = (data["endpoint"], data["accessKey"], data["secretKey"])
        put = await s3_request(*credentials, "PUT", path, body=b"hi")
        assert put[0] == 200, put
        got = await s3_request(*credentials, "GET", path)
        assert got == (200, b"hi")
    assert len(access_keys) == 2

    # The second member loses access: its Secret and StorageClass leave it, its key is revoked;
    # the first member keeps both.
    block["spec"]["access"] = {"clusters": [first.name]}
    await apply(bus, block)
    await wait_for_phase(bus, block_name, "Ready", namespace=namespace)

    async def withdrawn_from_second() -> bool:
        return (
            await second.secret_names(namespace, block_name) == []
            and await second.storage_class(storage_class) is None
        )

    await until(withdrawn_from_second, seen=seen)
    assert await first.secret_names(namespace, block_name) == [f"{block_name}-ceph-{first.name}"]
    assert await first.storage_class(storage_class) is not None
    user, key = keys[second.name]["userID"], keys[second.name]["userKey"]
    assert rbd_as(env, user, key, "ls", pool).returncode != 0

    # Deleting the claims (Retain) withdraws everything they delivered from the members.
    for document in (block, other, bucket):
        await delete(bus, document)

    async def all_gone() -> bool:
        for member in both:
            for name in (block_name, other_name, bucket_name):
                if await member.secret_names(namespace, name):
                    return False
            if await member.storage_class(storage_class) is not None:
                return False
        return True

    await until(all_gone, seen=seen)

"""Push join against real kube-apiservers (acceptance 1, 5, 6 of the registry issue).

The joins go through the bus (`foot.registry.join`), the checks through the member's
own API with its admin credential, and the raw buckets and log lines are searched
for every secret involved.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import yaml
from registry_support import (
    LogLines,
    admin_target,
    ask,
    member_objects_left,
    raw_bucket_bytes,
    wait_member_clean,
)

from foot.bus import Bus
from foot.catalog import CLUSTERS, health_subject
from foot.credentials import CredentialStore
from foot.errors import TransportError
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.clusters import Cluster
from foot.kube import KubeClient, KubeTarget, KubeUnavailableError
from foot.registry_api import RegistryReply
from foot_registry.core.member_plan import SERVICE_ACCOUNT, role_name
from foot_registry.service import RegistryService
from foot_testenv.clusters import KubeCluster, KubeClusters
from foot_testenv.fixtures import KubeClusterFactory
from support import eventually

pytestmark = pytest.mark.kube

GONE_WITHIN = 60.0
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")


def kubeconfig_of(cluster: KubeCluster) -> str:
    return cluster.kubeconfig_path.read_text()


def secrets_of(cluster: KubeCluster) -> list[bytes]:
    """Every secret of the admin kubeconfig, as text and as it appears base64-encoded."""
    document = cluster.kubeconfig
    found: list[bytes] = [cluster.admin_token.encode()]
    for user in document["users"]:
        for field in ("client-key-data", "client-certificate-data", "token"):
            value = user["user"].get(field)
            if value:
                found.append(value.encode())
                if field.endswith("-data"):
                    pem = base64.b64decode(value).decode()
                    body = "".join(pem.strip().splitlines()[1:-1])
                    found.append(body[:64].encode())
    return found


async def cluster_in_bucket(bus: Bus, name: str) -> Cluster | None:
    store = await bus.kv(CLUSTERS.name)
    entry = await store.get(CLUSTER_KIND.key(None, name))
    if entry is None or entry.value is None:
        return None
    return Cluster.from_json(entry.value)


async def test_push_join_creates_scoped_identity_stores_only_sealed_token_and_unjoin_removes_it(
    kube_cluster_factory: KubeClusterFactory,
    registry: RegistryService,
    bus: Bus,
    log_lines: LogLines,
    member_namespace: str,
) -> None:
    (member,) = await kube_cluster_factory(count=1, with_controller_manager=True)
    events: list[ClusterHealthEvent] = []

    async def on_event(msg: Any) -> None:
        events.append(ClusterHealthEvent.model_validate_json(msg.data))

    subscription = await bus.client.subscribe(health_subject("east"), cb=on_event)
    reply = await ask(
        bus, "join", {"name": "east", "kubeconfig": kubeconfig_of(member), "region": "eu-west"}
    )
    assert reply.ok, reply.error
    assert reply.cluster is not None
    assert reply.cluster["spec"]["apiEndpoint"] == member.server

    # The ServiceAccount, ClusterRole and binding exist in the member, labelled as FOOT's.
    async with KubeClient(admin_target(member)) as admin:
        assert sorted(await member_objects_left(admin, member_namespace, "east")) == [
            "clusterrole",
            "clusterrolebinding",
            "namespace",
            "serviceaccount",
        ]
        role = await admin.get(
            f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role_name(member_namespace)}"
        )
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert not verbs & {"*", "escalate", "bind", "impersonate"}

    # FOOT's stored token works (reads nodes, applies an object) and is the ServiceAccount's.
    credential = await CredentialStore(await bus.kv("cluster-credentials"), registry.box).get(
        "east"
    )
    token = credential.token.get_secret_value()
    assert credential.service_account == f"{member_namespace}/{SERVICE_ACCOUNT}"
    async with KubeClient(KubeTarget.from_credential(credential)) as own:
        await own.get("/api/v1/nodes")
        review = await own.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        username = review["status"]["userInfo"]["username"]
        assert username == f"system:serviceaccount:{member_namespace}:{SERVICE_ACCOUNT}"

    # Ready at once, announced on the health subject.
    await eventually(lambda: any(e.ready == "True" for e in events), within=5)
    stored = await cluster_in_bucket(bus, "east")
    assert stored is not None
    ready = stored.status.condition("Ready")
    assert ready is not None
    assert ready.status == "True"
    # Status collected on demand: version, APIs, nodes (none in this test cluster).
    collected = await ask(bus, "collect", {"name": "east"})
    assert collected.ok, collected.error
    assert collected.cluster is not None
    status = collected.cluster["status"]
    assert status["kubernetesVersion"].startswith("v1.")
    group_versions = {e["groupVersion"] for e in status["apiEnablements"]}
    assert {"v1", "apps/v1", "rbac.authorization.k8s.io/v1"} <= group_versions
    assert status["nodeSummary"] == {"totalNum": 0, "readyNum": 0}

    # Neither the admin kubeconfig's secrets nor FOOT's token are stored in plain text, or
    # logged; the token is not in any event either.
    raw = await raw_bucket_bytes(bus)
    for secret in [*secrets_of(member), token.encode()]:
        assert secret not in raw
    assert b"foot-sealed-v1:" in raw
    assert log_lines.lines, "the join logged nothing at all"
    for line in log_lines.lines:
        assert token not in line
        assert member.admin_token not in line
        for secret in secrets_of(member):
            assert secret.decode() not in line

    # Unjoin with FOOT's own token: everything leaves the member and the buckets.
    reply = await ask(bus, "unjoin", {"name": "east"})
    assert reply.ok, reply.error
    async with KubeClient(admin_target(member)) as admin:
        await wait_member_clean(admin, member_namespace, "east")
    assert await cluster_in_bucket(bus, "east") is None
    assert token.encode() not in await raw_bucket_bytes(bus)
    credentials = await bus.kv("cluster-credentials")
    assert (entry := await credentials.get("east")) is None or entry.deleted
    await subscription.unsubscribe()


class FailingKubeClient(KubeClient):
    """A real client that fails its Nth write, as a member dropping the connection would."""

    def __init__(self, target: KubeTarget, timeout: float, fail_at: int) -> None:
        super().__init__(target, timeout_seconds=timeout)
        self.fail_at = fail_at
        self.writes = 0

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method in {"POST", "PATCH", "PUT"}:
            self.writes += 1
            if self.writes == self.fail_at:
                raise KubeUnavailableError(self.target.server, f"{method} {path}: injected failure")
        return await super().request(method, path, **kwargs)


def failing_factory(
    admin_server_cert: str, fail_at: int
) -> Callable[[KubeTarget, float], KubeClient]:
    def make(target: KubeTarget, timeout: float) -> KubeClient:
        if (
            target.client_cert_pem is not None
            and target.client_cert_pem.get_secret_value() == admin_server_cert
        ):
            return FailingKubeClient(target, timeout, fail_at)
        return KubeClient(target, timeout_seconds=timeout)

    return make


async def test_a_join_failing_at_any_step_leaves_nothing_behind(
    kube_cluster_factory: KubeClusterFactory,
    registry: RegistryService,
    bus: Bus,
    member_namespace: str,
) -> None:
    (member,) = await kube_cluster_factory(count=1, with_controller_manager=True)
    target = admin_target(member)
    assert target.client_cert_pem is not None
    admin_cert = target.client_cert_pem.get_secret_value()
    # Writes of a join: namespace, ServiceAccount, ClusterRole, binding, TokenRequest.
    for step in range(1, 6):
        registry.kube_factory = failing_factory(admin_cert, step)
        reply = await ask(bus, "join", {"name": "west", "kubeconfig": kubeconfig_of(member)})
        assert reply.error is not None, f"step {step}: the join should have failed"
        assert "injected failure" in reply.error.message
        assert reply.error.code == "Unavailable"
        async with KubeClient(target) as admin:
            await wait_member_clean(admin, member_namespace, "west")
        assert await cluster_in_bucket(bus, "west") is None
        credentials = await bus.kv("cluster-credentials")
        assert (entry := await credentials.get("west")) is None or entry.deleted

    # The last step fails on FOOT's side: storing the cluster. The member is cleaned too.
    registry.kube_factory = lambda t, s: KubeClient(t, timeout_seconds=s)
    original = registry.clusters_kv.create

    async def broken_create(key: str, value: bytes, *, seal: bool = False) -> int:
        raise TransportError("injected failure: NATS went away")

    registry.clusters_kv.create = broken_create  # type: ignore[method-assign]
    reply = await ask(bus, "join", {"name": "west", "kubeconfig": kubeconfig_of(member)})
    assert reply.error is not None
    assert "injected failure" in reply.error.message
    registry.clusters_kv.create = original  # type: ignore[method-assign]
    async with KubeClient(target) as admin:
        await wait_member_clean(admin, member_namespace, "west")
    credentials = await bus.kv("cluster-credentials")
    assert (entry := await credentials.get("west")) is None or entry.deleted

    # And with nothing injected, the same join goes through.
    reply = await ask(bus, "join", {"name": "west", "kubeconfig": kubeconfig_of(member)})
    assert reply.ok, reply.error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_token(cluster: KubeCluster, token: str) -> str:
    document = cluster.kubeconfig
    document["users"] = [{"name": "u", "user": {"token": token}}]
    document["contexts"] = [{"name": "c", "context": {"cluster": cluster.name, "user": "u"}}]
    document["current-context"] = "c"
    return yaml.safe_dump(document)


def pointing_at(cluster: KubeCluster, server: str) -> str:
    document = cluster.kubeconfig
    document["clusters"][0]["cluster"]["server"] = server
    return yaml.safe_dump(document)


async def nothing_anywhere(bus: Bus, cluster: KubeCluster, namespace: str, name: str) -> None:
    assert await cluster_in_bucket(bus, name) is None
    credentials = await bus.kv("cluster-credentials")
    assert (entry := await credentials.get(name)) is None or entry.deleted
    async with KubeClient(admin_target(cluster)) as admin:
        assert await member_objects_left(admin, namespace, name) == []


async def test_bad_input_is_refused_clearly_with_nothing_left(
    kube_clusters: KubeClusters, registry: RegistryService, bus: Bus, member_namespace: str
) -> None:
    member = kube_clusters[0]

    async def refused(body: dict[str, Any]) -> RegistryReply:
        reply = await ask(bus, "join", body)
        assert reply.error is not None, body.get("name")
        await nothing_anywhere(bus, member, member_namespace, str(body.get("name")))
        return reply

    reply = await refused({"name": "bad1", "kubeconfig": "clusters: [unclosed"})
    assert reply.error is not None
    assert reply.error.code == "Invalid"
    assert "not valid YAML" in reply.error.message
    broken = member.kubeconfig
    del broken["clusters"][0]["cluster"]["server"]
    reply = await refused({"name": "bad2", "kubeconfig": yaml.safe_dump(broken)})
    assert reply.error is not None
    assert any(f.path.endswith(".cluster.server") for f in reply.error.fields)

    unreachable = pointing_at(member, f"https://127.0.0.1:{free_port()}")
    reply = await refused({"name": "bad3", "kubeconfig": unreachable})
    assert reply.error is not None
    assert reply.error.code == "Unavailable"
    assert "cannot reach the cluster" in reply.error.message

    reply = await refused({"name": "bad4", "kubeconfig": with_token(member, "wrong-" * 6)})
    assert reply.error is not None
    assert "refused the kubeconfig's credentials (401 Unauthorized)" in reply.error.message

    reply = await ask(bus, "join", {"name": "Bad_Name", "kubeconfig": kubeconfig_of(member)})
    assert reply.error is not None
    assert reply.error.code == "Invalid"
    assert [f.path for f in reply.error.fields] == ["name"]
    reply = await ask(bus, "join", {"kubeconfig": kubeconfig_of(member)})
    assert reply.error is not None
    assert any(f.path == "name" for f in reply.error.fields)

    # A good join, then the same name again, and the same member under another name.
    reply = await ask(bus, "join", {"name": "good", "kubeconfig": kubeconfig_of(member)})
    assert reply.ok, reply.error
    before = await cluster_in_bucket(bus, "good")
    reply = await ask(bus, "join", {"name": "good", "kubeconfig": kubeconfig_of(member)})
    assert reply.error is not None
    assert reply.error.code == "AlreadyExists"
    assert await cluster_in_bucket(bus, "good") == before
    reply = await ask(bus, "join", {"name": "twin", "kubeconfig": kubeconfig_of(member)})
    assert reply.error is not None
    assert "created by FOOT's cluster 'good'" in reply.error.message
    await nothing_anywhere(bus, member, f"{member_namespace}-none", "twin")

    # Unjoin with the admin kubeconfig removes every object at once (no garbage collector here).
    reply = await ask(bus, "unjoin", {"name": "good", "kubeconfig": kubeconfig_of(member)})
    assert reply.ok, reply.error
    async with KubeClient(admin_target(member)) as admin:
        left = await member_objects_left(admin, member_namespace, "good")
        # The namespace may still be terminating (nothing finalizes it without a controller
        # manager), everything cluster-scoped is gone.
        assert set(left) <= {"namespace"}
    assert await cluster_in_bucket(bus, "good") is None
    reply = await ask(bus, "unjoin", {"name": "good"})
    assert reply.error is not None
    assert reply.error.code == "NotFound"
    assert orjson.loads(RegistryReply(error=reply.error).to_json())["error"]["code"] == "NotFound"

"""Gateway acceptance 1, end to end: an app over three real clusters -> one weighted upstream.

Everything real but APISIX: a nats-server, three kube-apiservers (session fixture
`kube_clusters`), the registry (push join of each member with its admin kubeconfig), the
scheduler, the dispatcher and gateway-sync, all in this process; the strict fake of the
APISIX Admin API. The test plays only two parts nobody else can play here: the user
(documents through the API front door) and the kubelet (the members have none, so the
Deployment's readiness is written through its status subresource, as a kubelet's pods
becoming ready would).

The members' API servers all listen on 127.0.0.1, so every cluster's gateway address is
that host (the push join has no gatewayAddress; see the report) and the nodes differ by
NodePort only. An OverridePolicy pins a distinct NodePort per cluster, so the three nodes
can never collapse into one address by chance (two clusters behind one `host:port` are
one node to APISIX, and their weights add up).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, HEALTH_PREFIX, WORKS
from foot.health import ClusterHealthEvent
from foot.kinds.works import Work
from foot.kube import KubeClient, KubeTarget
from foot.kube.errors import KubeNotFoundError
from foot.registry_api import RegistryReply
from foot.registry_client import RegistryClient
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_gateway_sync.core import object_id
from foot_gateway_sync.service import GatewaySyncService, GatewaySyncSettings
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_scheduler.service import SchedulerService, SchedulerSettings
from foot_testenv.apisix_fake import ApisixFake
from foot_testenv.clusters import KubeCluster, KubeClusters
from foot_testenv.member_objects import object_or_none, report_deployment_ready
from support import node_port_service

pytestmark = [pytest.mark.kube, pytest.mark.slow]

ADMIN_KEY = "gateway-e2e-admin-key-0123456789"
WEIGHTS = (1, 2, 3)
REPLICAS = sum(WEIGHTS)
# NodePorts from the low band that the apiserver keeps for static allocation (dynamic ones
# come from above it first), so that another test's Service can hardly hold one of ours.
STATIC_NODE_PORTS = range(30000, 30086)


async def until(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float = 60.0,
    seen: Callable[[], object] | None = None,
) -> None:
    """Poll an async condition (member and bucket state offer no event to wait on); on
    timeout, fail with what `seen` shows."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - state in members and buckets
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"not within {within:.0f}s; seen: {seen() if seen else '-'}")


class Members:
    """The members as their admin (the test's view, independent of FOOT) and as a kubelet."""

    def __init__(self, clusters: KubeClusters, namespace: str) -> None:
        self.clusters: list[KubeCluster] = list(clusters)
        self.namespace = namespace
        self.kubes = {
            c.name: KubeClient(
                KubeTarget.from_kubeconfig(
                    c.kubeconfig_path.read_text(), base_dir=c.kubeconfig_path.parent
                )
            )
            for c in self.clusters
        }

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clusters]

    async def get(self, cluster: str, path: str) -> dict[str, Any] | None:
        return await object_or_none(self.kubes[cluster], path)

    def path(self, kind: str) -> str:
        if kind == "Deployment":
            return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/web"
        return f"/api/v1/namespaces/{self.namespace}/services/web"

    async def kubelet(self, cluster: str, ready: int | None = None) -> bool:
        """Write the Deployment's readiness through the status subresource (all of its
        replicas ready unless `ready` says otherwise); False while it is not there yet."""
        return await report_deployment_ready(self.kubes[cluster], self.path("Deployment"), ready)

    async def close(self) -> None:
        for kube in self.kubes.values():
            with contextlib.suppress(KubeNotFoundError):
                await kube.delete(f"/api/v1/namespaces/{self.namespace}")
            await kube.close()


def documents(namespace: str, names: list[str], node_ports: list[int]) -> list[dict[str, Any]]:
    """The user's app: Deployment + NodePort Service, a Karmada policy dividing 6 replicas
    1:2:3 over the three members, per-member NodePorts, and the GatewayRoute."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1"}]},
            },
        },
    }
    service = node_port_service(namespace, "web", {"name": "http", "port": 80, "targetPort": 8080})
    policy = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                {"apiVersion": "v1", "kind": "Service", "name": "web"},
            ],
            "placement": {
                "clusterAffinity": {"clusterNames": names},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": [name]}, "weight": weight}
                            for name, weight in zip(names, WEIGHTS, strict=True)
                        ]
                    },
                },
            },
        },
    }
    node_port_override = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "OverridePolicy",
        "metadata": {"name": "web-node-ports", "namespace": namespace},
        "spec": {
            "resourceSelectors": [{"apiVersion": "v1", "kind": "Service", "name": "web"}],
            "overrideRules": [
                {
                    "targetCluster": {"clusterNames": [name]},
                    "overriders": {
                        "plaintext": [
                            {"path": "/spec/ports/0/nodePort", "operator": "add", "value": port}
                        ]
                    },
                }
                for name, port in zip(names, node_ports, strict=True)
            ],
        },
    }
    return [deployment, service, policy, node_port_override, gateway_route(namespace)]


def gateway_route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.foot.dev/v1alpha1",
        "kind": "GatewayRoute",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "hosts": ["web.example.com"],
            "paths": ["/", "/api/*"],
            "methods": ["GET", "POST"],
            "backend": {"service": "web", "port": "http"},
        },
    }


async def api(bus: Bus, subject: str, docs: list[dict[str, Any]]) -> ApiReply:
    body = orjson.dumps(ApiRequest(objects=docs).model_dump(mode="json", by_alias=True))
    reply = ApiReply.model_validate_json((await bus.request(subject, body, wait_seconds=30)).data)
    assert reply.error is None, reply.error
    rejected = [r for r in reply.results if r.outcome == "rejected"]
    assert not rejected, rejected
    return reply


async def registry_ask(bus: Bus, verb: str, body: dict[str, Any]) -> RegistryReply:
    return await RegistryClient(bus, wait_seconds=60).ask(verb, body)


@contextlib.asynccontextmanager
async def foot_services(
    nats: EmbeddedNats, key_file: Path, member_namespace: str, apisix: ApisixFake
) -> AsyncIterator[GatewaySyncService]:
    common: dict[str, Any] = {
        "nats_url": nats.url,
        "secret_key_file": key_file,
        "shutdown_deadline_seconds": 2.0,
        "log_format": "text",
    }
    gateway = GatewaySyncService(
        GatewaySyncSettings(
            **common,
            apisix_urls=[apisix.url],
            apisix_admin_key=SecretStr(ADMIN_KEY),
            resync_seconds=600,
        )
    )
    async with (
        RegistryService(RegistrySettings(**common, member_namespace=member_namespace)),
        SchedulerService(SchedulerSettings(**common)),
        DispatcherService(DispatcherSettings(**common)),
        gateway,
    ):
        yield gateway


async def test_app_over_three_real_clusters_gives_one_upstream_weighted_by_ready_replicas(
    nats_server: EmbeddedNats, bus: Bus, kube_clusters: KubeClusters, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, member_namespace = f"gw-{suffix}", f"foot-gw-{suffix}"
    members = Members(kube_clusters, namespace)
    names = members.names
    node_ports = random.sample(STATIC_NODE_PORTS, len(names))
    ready_events: set[str] = set()

    async def on_health(msg: Any) -> None:
        event = ClusterHealthEvent.model_validate_json(msg.data)
        if event.ready == "True":
            ready_events.add(event.cluster)

    subscription = await bus.client.subscribe(f"{HEALTH_PREFIX}.>", cb=on_health)
    try:
        async with (
            ApisixFake(admin_key=ADMIN_KEY) as apisix,
            foot_services(
                nats_server, tmp_path / "secret.key", member_namespace, apisix
            ) as gateway,
        ):
            # The registry joins every member (push) and reports it Ready.
            for cluster in members.clusters:
                reply = await registry_ask(
                    bus,
                    "join",
                    {"name": cluster.name, "kubeconfig": cluster.kubeconfig_path.read_text()},
                )
                assert reply.ok, reply.error

            async def all_ready() -> bool:
                return ready_events >= set(names)

            await until(all_ready, within=30)
            try:
                await run_app(bus, members, apisix, gateway, node_ports)
            finally:
                for cluster in members.clusters:
                    await registry_ask(
                        bus,
                        "unjoin",
                        {"name": cluster.name, "kubeconfig": cluster.kubeconfig_path.read_text()},
                    )
    finally:
        await subscription.unsubscribe()
        await members.close()


def gateway_view(gateway: GatewaySyncService) -> dict[str, Any]:
    """What gateway-sync knows (for a failure message)."""
    return {
        "clusters": gateway.cluster_views(),
        "manifests": {
            key: [m.model_dump(exclude_defaults=True) for m in work.status.manifests]
            for key, work in gateway.works.items()
        },
        "instances": gateway.instance_status(),
    }


async def run_app(
    bus: Bus,
    members: Members,
    apisix: ApisixFake,
    gateway: GatewaySyncService,
    node_ports: list[int],
) -> None:
    namespace, names = members.namespace, members.names
    route_key = f"{namespace}.web"
    stable, route_id = object_id(route_key, "stable"), object_id(route_key)
    await api(bus, API_APPLY, documents(namespace, names, node_ports))

    # The scheduler divides 6 replicas 1:2:3 and the dispatcher applies them with each
    # member's NodePort (a first render may come before every policy is stored: wait for
    # the final one); then the kubelet's part: every replica becomes ready.
    expected_replicas = dict(zip(names, WEIGHTS, strict=True))
    pinned = dict(zip(names, node_ports, strict=True))

    async def placed() -> bool:
        for name in names:
            deployment = await members.get(name, members.path("Deployment"))
            service = await members.get(name, members.path("Service"))
            if deployment is None or service is None:
                return False
            if deployment["spec"]["replicas"] != expected_replicas[name]:
                return False
            if service["spec"]["ports"][0].get("nodePort") != pinned[name]:
                return False
        return True

    await until(placed)
    for name in names:
        assert await members.kubelet(name)

    def upstream_nodes() -> dict[str, int]:
        upstream = apisix.objects("upstreams").get(stable)
        if upstream is None:
            return {}
        return {f"{n['host']}:{n['port']}": n["weight"] for n in upstream["nodes"]}

    async def expected_from_members(ready: dict[str, int]) -> dict[str, int]:
        """The nodes as the members themselves say: each cluster's API host and the NodePort
        its Service really got, weighted by its Deployment's ready replicas."""
        nodes = {}
        for cluster in members.clusters:
            service = await members.get(cluster.name, members.path("Service"))
            assert service is not None
            node_port = service["spec"]["ports"][0]["nodePort"]
            host = cluster.server.split("//", 1)[1].rsplit(":", 1)[0]
            if ready[cluster.name]:
                nodes[f"{host}:{node_port}"] = ready[cluster.name]
        return nodes

    expected = await expected_from_members(expected_replicas)

    async def upstream_is(wanted: dict[str, int]) -> bool:
        return upstream_nodes() == wanted

    await until(
        lambda: upstream_is(expected),
        seen=lambda: (expected, apisix.objects("upstreams"), gateway_view(gateway)),
    )
    # Three nodes: one per cluster, at the NodePort each member's Service really has.
    assert len(expected) == len(names)
    assert sorted(int(node.rsplit(":", 1)[1]) for node in expected) == sorted(node_ports)
    assert sorted(expected.values()) == list(WEIGHTS)
    upstreams = apisix.objects("upstreams")
    assert list(upstreams) == [stable], "one upstream for the app"
    assert upstreams[stable]["type"] == "roundrobin"
    assert upstreams[stable]["labels"]["managed-by"] == "foot"
    route = apisix.objects("routes")[route_id]
    assert route["hosts"] == ["web.example.com"]
    assert route["uris"] == ["/", "/api/*"]
    assert route["methods"] == ["GET", "POST"]
    assert route["upstream_id"] == stable
    assert route["labels"] == {"managed-by": "foot", "foot-route": f"{namespace}.web"}
    assert "plugins" not in route  # something is ready: no fast 503

    # The same figures are what the dispatcher wrote into the works' status.
    works = await bus.kv(WORKS.name)
    by_cluster: dict[str, dict[str, Any]] = {}
    for entry in await works.entries():
        if entry.value is None:
            continue
        work = Work.from_json(entry.value)
        for manifest in work.status.manifests:
            if manifest.namespace != namespace:
                continue
            seen = by_cluster.setdefault(work.spec.cluster, {})
            if manifest.kind == "Deployment":
                seen["ready"] = manifest.ready_replicas
            if manifest.kind == "Service" and manifest.service is not None:
                seen["nodePort"] = manifest.service.ports[0].node_port
    assert {
        f"127.0.0.1:{seen['nodePort']}": seen["ready"] for seen in by_cluster.values()
    } == expected

    # Readiness moves in one member (the kubelet reports 3 -> 1 ready): its weight follows.
    third = names[2]
    assert await members.kubelet(third, ready=1)
    expected = await expected_from_members({**expected_replicas, third: 1})
    await until(lambda: upstream_is(expected), within=30)
    assert sorted(expected.values()) == [1, 1, 2]
    # No replica ready there any more: the cluster leaves the upstream, the others stay.
    assert await members.kubelet(third, ready=0)
    expected = await expected_from_members({**expected_replicas, third: 0})
    await until(lambda: upstream_is(expected), within=30)
    assert len(expected) == len(names) - 1
    # Ready again: back with its full weight.
    assert await members.kubelet(third)
    expected = await expected_from_members(expected_replicas)
    await until(lambda: upstream_is(expected), within=30)

    # The route goes away with its GatewayRoute, route first, then the upstream.
    await api(bus, API_DELETE, [gateway_route(namespace)])

    async def gone() -> bool:
        return stable not in apisix.objects("upstreams") and not apisix.objects("routes")

    await until(gone, within=30)

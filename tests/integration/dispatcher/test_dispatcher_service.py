"""The dispatcher service on a real nats-server and three real kube-apiservers.

Standing in for the other services: Cluster objects are written into `clusters` and
credentials through `CredentialStore.put` (the registry), templates, policies and
ResourceBindings straight into their buckets (the scheduler). Everything else is checked
through each member's own API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from nats.aio.msg import Msg

from foot.agent_channel import AgentChannel, AgentRecord, HubChannel, agent_key
from foot.bus import Bus
from foot.catalog import (
    AGGREGATED_STATUS,
    BINDINGS,
    CLUSTER_AGENTS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    DISPATCH_INTENTS,
    POLICIES,
    TEMPLATES,
    WORKS,
)
from foot.cluster_credential import ClusterCredential
from foot.credentials import CredentialStore
from foot.kinds import KINDS
from foot.kinds.works import AggregatedStatus, Work, WorkDelivery, WorkStatusReport
from foot.kube import KubeClient, KubeTarget
from foot.kube.apply import MemberApplier
from foot.kube.errors import KubeNotFoundError
from foot.manifests import ownership_marks
from foot.natsauth import NatsAuthHome, agent_inbox_prefix
from foot.objects import utc_now
from foot.runtime.settings import default_home
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import spawn
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_testenv.clusters import KubeCluster, KubeClusters
from foot_testenv.member_objects import object_or_none, report_deployment_ready
from support import (
    agent_argv,
    agent_credentials,
    agent_env,
    deployment_template,
    eventually,
    harness_credentials,
    node_port_service,
    run_foot,
)

pytestmark = pytest.mark.kube

CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
REGIONS = ("eu", "us", "us")


async def until(check: Callable[[], Awaitable[bool]], *, within: float = 30.0) -> None:
    """Poll an async condition (state in member clusters offers no event to wait on)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - member state offers no event
            await asyncio.sleep(0.1)


class Harness:
    """Stands in for the registry and the scheduler; reads members as the admin."""

    def __init__(self, bus: Bus, clusters: KubeClusters, key_file: Path) -> None:
        self.bus = bus
        self.clusters = list(clusters)
        self.key_file = key_file
        self.namespace = f"shop-{uuid.uuid4().hex[:6]}"
        self.kubes: dict[str, KubeClient] = {}
        self.tokens: dict[str, str] = {}
        """Bootstrap tokens of the pull members (their agents derive the agent key)."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clusters]

    async def join(self, cluster: KubeCluster, region: str, sync_mode: str = "Push") -> None:
        document = {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": cluster.name, "labels": {"region": region}},
            "spec": {"syncMode": sync_mode, "apiEndpoint": cluster.server, "region": region},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        store = await self.bus.kv(CLUSTERS.name)
        await store.put(CLUSTER_KIND.key(None, cluster.name), orjson.dumps(document))
        credentials = CredentialStore(
            await self.bus.kv(CLUSTER_CREDENTIALS.name), SecretBox.from_file(self.key_file)
        )
        await credentials.put(
            ClusterCredential(
                cluster=cluster.name,
                server=cluster.server,
                token=cluster.admin_token,  # type: ignore[arg-type]
                ca_pem=cluster.ca_path.read_text(),
            )
        )
        if sync_mode == "Pull":
            await self.register_agent(cluster.name)
        self.kubes[cluster.name] = KubeClient(
            KubeTarget.from_kubeconfig(
                cluster.kubeconfig_path.read_text(), base_dir=cluster.kubeconfig_path.parent
            )
        )

    async def register_agent(self, name: str) -> None:
        """What the registry keeps at `register`: the agent key, sealed, in `cluster-agents`."""
        token = self.tokens[name] = secrets.token_urlsafe(32)
        record = AgentRecord(cluster=name, agent_key=agent_key(token).hex())
        sealed = SecretBox.from_file(self.key_file).seal(
            orjson.dumps(record.model_dump()), context=f"{CLUSTER_AGENTS.name}/{name}"
        )
        await (await self.bus.kv(CLUSTER_AGENTS.name)).put(name, sealed)

    async def template(self, document: dict[str, Any]) -> str:
        info = KINDS.lookup(document["apiVersion"], document["kind"])
        parsed = KINDS.parse(document)
        key = info.key(parsed.namespace, parsed.name)
        await (await self.bus.kv(TEMPLATES.name)).put(key, parsed.to_json())
        return key

    async def policy(self, document: dict[str, Any]) -> None:
        info = KINDS.lookup(document["apiVersion"], document["kind"])
        parsed = KINDS.parse(document)
        await (await self.bus.kv(POLICIES.name)).put(
            info.key(parsed.namespace, parsed.name), parsed.to_json()
        )

    async def bind(
        self,
        kind: str,
        name: str,
        clusters: dict[str, int | None],
        *,
        api_version: str = "apps/v1",
        evictions: list[dict[str, Any]] | None = None,
        **spec: Any,
    ) -> str:
        binding_name = f"{name}-{kind.lower()}"
        document = {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": binding_name, "namespace": self.namespace},
            "spec": {
                "resource": {
                    "apiVersion": api_version,
                    "kind": kind,
                    "namespace": self.namespace,
                    "name": name,
                },
                "clusters": [{"name": n, "replicas": r} for n, r in sorted(clusters.items())],
                "gracefulEvictions": evictions or [],
                **spec,
            },
        }
        key = BINDING_KIND.key(self.namespace, binding_name)
        await (await self.bus.kv(BINDINGS.name)).put(key, orjson.dumps(document))
        return key

    async def unbind(self, key: str) -> None:
        await (await self.bus.kv(BINDINGS.name)).delete(key)

    async def member_get(self, cluster: str, path: str) -> dict[str, Any] | None:
        return await object_or_none(self.kubes[cluster], path)

    def deployment_path(self, name: str = "web") -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}"

    async def kubelet(self, cluster: str, name: str = "web") -> bool:
        """Write Deployment readiness through the status subresource, as a kubelet would."""
        return await report_deployment_ready(self.kubes[cluster], self.deployment_path(name))

    async def aggregated(self, template_key: str) -> AggregatedStatus | None:
        entry = await (await self.bus.kv(AGGREGATED_STATUS.name)).get(template_key)
        if entry is None or entry.value is None:
            return None
        return AggregatedStatus.model_validate_json(entry.value)

    async def works(self) -> dict[str, Work]:
        store = await self.bus.kv(WORKS.name)
        return {e.key: Work.from_json(e.value) for e in await store.entries() if e.value}

    async def cleanup(self) -> None:
        for kube in self.kubes.values():
            with contextlib.suppress(KubeNotFoundError):
                await kube.delete(f"/api/v1/namespaces/{self.namespace}")
            await kube.close()


@pytest.fixture
async def harness(
    nats_server: EmbeddedNats, kube_clusters: KubeClusters, tmp_path: Path
) -> AsyncIterator[Harness]:
    key_file = tmp_path / "secret.key"
    SecretBox.from_file(key_file, create=True)
    async with await Bus.connect(
        nats_server.url, "harness", credentials_file=harness_credentials()
    ) as bus:
        await bus.declare()
        h = Harness(bus, kube_clusters, key_file)
        for cluster, region in zip(kube_clusters, REGIONS, strict=True):
            await h.join(cluster, region)
        try:
            yield h
        finally:
            await h.cleanup()


def dispatcher(nats_server: EmbeddedNats, harness: Harness) -> DispatcherService:
    return DispatcherService(
        DispatcherSettings(
            nats_url=nats_server.url,
            secret_key_file=harness.key_file,
            log_format="text",
        )
    )


def app(namespace: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
            "spec": {
                "replicas": 6,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "registry.example.com/shop/web:1.0",
                                "volumeMounts": [{"name": "conf", "mountPath": "/etc/web"}],
                            }
                        ],
                        "volumes": [{"name": "conf", "configMap": {"name": "web-config"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": namespace},
            "data": {"mode": "prod"},
        },
        node_port_service(namespace, "web", {"name": "http", "port": 80}),
    ]


def eu_image_override(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "OverridePolicy",
        "metadata": {"name": "eu-registry", "namespace": namespace},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "overrideRules": [
                {
                    "targetCluster": {"labelSelector": {"matchLabels": {"region": "eu"}}},
                    "overriders": {
                        "imageOverrider": [
                            {
                                "component": "Registry",
                                "operator": "replace",
                                "value": "eu.example.com",
                            }
                        ]
                    },
                }
            ],
        },
    }


async def test_app_lands_with_weights_and_overrides_then_moves_by_purge_mode(
    nats_server: EmbeddedNats, harness: Harness
) -> None:
    """Acceptance 1 and 3."""
    h = harness
    m1, m2, m3 = h.names
    ns = h.namespace
    deployment_key, *_ = [await h.template(d) for d in app(ns)]
    await h.policy(eu_image_override(ns))
    # The scheduler's decision for static weights 1:2 over m1, m2 (6 replicas), and the
    # Service duplicated to the same clusters.
    web = await h.bind("Deployment", "web", {m1: 2, m2: 4}, propagateDeps=True)
    await h.bind("Service", "web", {m1: None, m2: None}, api_version="v1")
    async with dispatcher(nats_server, h):

        async def landed() -> bool:
            first = await h.member_get(m1, h.deployment_path())
            second = await h.member_get(m2, h.deployment_path())
            return first is not None and second is not None

        await until(landed)
        for cluster, replicas, image in [
            (m1, 2, "eu.example.com/shop/web:1.0"),
            (m2, 4, "registry.example.com/shop/web:1.0"),
        ]:
            found = await h.member_get(cluster, h.deployment_path())
            assert found is not None
            assert found["spec"]["replicas"] == replicas
            assert found["spec"]["template"]["spec"]["containers"][0]["image"] == image
            assert {e["manager"] for e in found["metadata"]["managedFields"]} == {"foot"}
            config = await h.member_get(cluster, f"/api/v1/namespaces/{ns}/configmaps/web-config")
            assert config is not None, "propagateDeps brought the mounted ConfigMap"
            assert config["data"] == {"mode": "prod"}
            service = await h.member_get(cluster, f"/api/v1/namespaces/{ns}/services/web")
            assert service is not None
        assert await h.member_get(m3, h.deployment_path()) is None

        # Acceptance 3: readiness through the status subresource -> aggregated status.
        await until(lambda: h.kubelet(m1))
        await until(lambda: h.kubelet(m2))

        async def all_ready() -> bool:
            status = await h.aggregated(deployment_key)
            return status is not None and status.ready_replicas == 6 and status.health == "Healthy"

        await until(all_ready)
        status = await h.aggregated(deployment_key)
        assert status is not None
        assert status.replicas == 6
        assert [(c.cluster, c.replicas, c.ready_replicas, c.health) for c in status.clusters] == [
            (m1, 2, 2, "Healthy"),
            (m2, 4, 4, "Healthy"),
        ]
        # `foot get deployment web -o yaml` shows it as the template's status.
        code, stdout, stderr = await run_foot(
            nats_server.url, "get", "deployment", "web", "-n", ns, "-o", "yaml"
        )
        assert code == 0, stderr
        shown = yaml.safe_load(stdout)
        assert shown["spec"]["replicas"] == 6
        assert shown["status"]["readyReplicas"] == 6
        assert shown["status"]["replicas"] == 6
        assert [
            (c["cluster"], c["readyReplicas"], c["health"]) for c in shown["status"]["clusters"]
        ] == [(m1, 2, "Healthy"), (m2, 4, "Healthy")]
        works = await h.works()
        service_work = next(
            w for k, w in works.items() if k.startswith(f"{m1}.") and "web-service" in k
        )
        endpoints = service_work.status.manifests[0].service
        assert endpoints is not None
        assert endpoints.type == "NodePort"
        assert endpoints.ports[0].node_port is not None

        # The policy changes: m1 is left with purge mode Graciously; its copy stays until the
        # replacement on m3 is ready.
        await h.bind(
            "Deployment",
            "web",
            {m2: 3, m3: 3},
            propagateDeps=True,
            evictions=[
                {
                    "fromCluster": m1,
                    "replicas": 2,
                    "reason": "policy changed",
                    "purgeMode": "Graciously",
                    "gracePeriodSeconds": 600,
                    "createdAt": datetime.now(UTC).isoformat(),
                }
            ],
        )

        async def on_m3() -> bool:
            return await h.member_get(m3, h.deployment_path()) is not None

        await until(on_m3)
        second = await h.member_get(m2, h.deployment_path())
        assert second is not None
        assert second["spec"]["replicas"] == 3
        await asyncio.sleep(1.0)
        assert await h.member_get(m1, h.deployment_path()) is not None, "kept until ready"
        status = await h.aggregated(deployment_key)
        assert status is not None
        assert any(c.cluster == m1 and c.leaving for c in status.clusters)
        await until(lambda: h.kubelet(m2))
        await until(lambda: h.kubelet(m3))

        async def m1_gone() -> bool:
            return await h.member_get(m1, h.deployment_path()) is None

        await until(m1_gone)

        async def m1_config_gone() -> bool:
            # Removed after the Deployment (a work's objects go in reverse order, one by one).
            config = f"/api/v1/namespaces/{ns}/configmaps/web-config"
            return await h.member_get(m1, config) is None

        await until(m1_config_gone)
        third = await h.member_get(m3, h.deployment_path())
        assert third is not None
        assert third["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
            "registry.example.com/"
        ), "m3 is not in the eu region: no override"

        # Purge mode Directly (no eviction kept by the scheduler): m2's copy goes at once.
        await h.bind("Deployment", "web", {m3: 6}, propagateDeps=True)

        async def m2_gone() -> bool:
            return await h.member_get(m2, h.deployment_path()) is None

        await until(m2_gone)
        # The Service binding is untouched: still on m1 and m2.
        assert await h.member_get(m1, f"/api/v1/namespaces/{ns}/services/web") is not None

        # Template deleted with preserveResourcesOnDeletion: the member keeps its objects.
        await h.bind(
            "Deployment", "web", {m3: 6}, propagateDeps=True, preserveResourcesOnDeletion=True
        )

        async def preserved_marked() -> bool:
            works = await h.works()
            return any(
                w.spec.preserve_on_deletion for k, w in works.items() if "web-deployment" in k
            )

        await until(preserved_marked)
        await h.unbind(web)

        async def works_gone() -> bool:
            works = await h.works()
            return not any("web-deployment" in k for k in works)

        await until(works_gone)
        assert await h.member_get(m3, h.deployment_path()) is not None, "preserved"

        async def status_gone() -> bool:
            return await h.aggregated(deployment_key) is None

        await until(status_gone)


async def test_conflicts_abort_then_overwrite(nats_server: EmbeddedNats, harness: Harness) -> None:
    """Acceptance 2 (the CLI view is tested with `foot describe` elsewhere in this file)."""
    h = harness
    m1 = h.names[0]
    ns = h.namespace
    kube = h.kubes[m1]
    await kube.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    await kube.create(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"metadata": {"name": "settings"}, "data": {"owner": "someone-else"}},
    )
    template_key = await h.template(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"owner": "foot"},
        }
    )
    await h.bind("ConfigMap", "settings", {m1: None}, api_version="v1")
    async with dispatcher(nats_server, h):

        async def conflict_seen() -> bool:
            status = await h.aggregated(template_key)
            return (
                status is not None and bool(status.clusters) and bool(status.clusters[0].conflicts)
            )

        await until(conflict_seen)
        path = f"/api/v1/namespaces/{ns}/configmaps/settings"
        untouched = await h.member_get(m1, path)
        assert untouched is not None
        assert untouched["data"] == {"owner": "someone-else"}
        status = await h.aggregated(template_key)
        assert status is not None
        assert "was not created by FOOT" in status.clusters[0].conflicts[0]
        assert not status.applied
        code, stdout, stderr = await run_foot(
            nats_server.url, "describe", "configmap/settings", "-n", ns
        )
        assert code == 0, stderr
        assert "not applied" in stdout
        assert "Conflict: ConfigMap" in stdout
        assert "was not created by FOOT; conflictResolution is Abort" in stdout

        await h.bind(
            "ConfigMap", "settings", {m1: None}, api_version="v1", conflictResolution="Overwrite"
        )

        async def taken_over() -> bool:
            found = await h.member_get(m1, path)
            return found is not None and found["data"] == {"owner": "foot"}

        await until(taken_over)

        async def applied() -> bool:
            status = await h.aggregated(template_key)
            return status is not None and status.applied and not status.clusters[0].conflicts

        await until(applied)


async def test_a_refused_manifest_is_tried_again_until_the_member_takes_it(
    nats_server: EmbeddedNats, harness: Harness
) -> None:
    """A NodePort another Service holds: the member refuses FOOT's Service (shown on the
    template's status); once the port is free, the retry lands it without any change."""
    h = harness
    m1 = h.names[0]
    ns = h.namespace
    kube = h.kubes[m1]
    await kube.create("/api/v1/namespaces", {"metadata": {"name": ns}})
    port = {"port": 80, "targetPort": 8080}
    holder = await kube.create(
        f"/api/v1/namespaces/{ns}/services",
        {"metadata": {"name": "holder"}, "spec": {"type": "NodePort", "ports": [port]}},
    )
    node_port = holder["spec"]["ports"][0]["nodePort"]
    template_key = await h.template(node_port_service(ns, "web", {**port, "nodePort": node_port}))
    await h.bind("Service", "web", {m1: None}, api_version="v1")
    settings = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=h.key_file,
        log_format="text",
        retry_max_seconds=1.0,
    )
    async with DispatcherService(settings):

        async def refused() -> bool:
            status = await h.aggregated(template_key)
            return status is not None and bool(status.clusters) and bool(status.clusters[0].errors)

        await until(refused)
        status = await h.aggregated(template_key)
        assert status is not None
        assert "already allocated" in status.clusters[0].errors[0]
        assert await h.member_get(m1, f"/api/v1/namespaces/{ns}/services/web") is None
        await kube.delete(f"/api/v1/namespaces/{ns}/services/holder")

        async def landed() -> bool:
            status = await h.aggregated(template_key)
            return status is not None and status.applied and not status.clusters[0].errors

        await until(landed)
    service = await h.member_get(m1, f"/api/v1/namespaces/{ns}/services/web")
    assert service is not None
    assert service["spec"]["ports"][0]["nodePort"] == node_port


class DispatcherProcess:
    """The dispatcher as its own process, so it can be SIGKILLed mid-rollout."""

    def __init__(self, nats: EmbeddedNats, harness: Harness, log: Path, **env: str) -> None:
        variables = {
            **os.environ,
            "FOOT_NATS_URL": nats.url,
            "FOOT_SECRET_KEY_FILE": str(harness.key_file),
            "FOOT_ADMIN_PORT": "0",
            "FOOT_LOG_FORMAT": "text",
            **env,
        }
        self.process: subprocess.Popen[bytes] = spawn(
            [sys.executable, "-m", "foot_dispatcher"], env=variables, log_path=log
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def test_killed_mid_rollout_converges_exactly_after_restart(
    nats_server: EmbeddedNats, harness: Harness, tmp_path: Path
) -> None:
    """Acceptance 6: SIGKILL mid-rollout, placement changes while it is down, restart: the
    end state is exact, nothing was applied twice with different content, nothing orphaned."""
    h = harness
    m1, m2, m3 = h.names
    ns = h.namespace
    count = 24
    names = [f"app-{n:02d}" for n in range(count)]
    for name in names:
        await h.template(deployment_template(ns, name))
        await h.bind("Deployment", name, {m1: 1, m2: 1})
    slow = {"FOOT_CLUSTER_APPLIES_PER_SECOND": "8", "FOOT_CLUSTER_APPLY_BURST": "1"}
    first = DispatcherProcess(nats_server, h, tmp_path / "first.log", **slow)
    try:

        async def some_applied() -> bool:
            works = await h.works()
            return sum(1 for w in works.values() if w.status.applied_hash) >= 6

        await until(some_applied)
        first.kill()
    finally:
        first.kill()
    works_at_kill = await h.works()
    applied_at_kill = sum(1 for w in works_at_kill.values() if w.status.applied_hash)
    assert applied_at_kill < 2 * count, "killed mid-rollout, not after it"
    # While it is down, half the apps move from m2 to m3 (purge mode Directly).
    moved = set(names[: count // 2])
    for name in moved:
        await h.bind("Deployment", name, {m1: 1, m3: 1})
    second = DispatcherProcess(nats_server, h, tmp_path / "second.log")
    expected = {
        m1: set(names),
        m2: set(names) - moved,
        m3: moved,
    }
    try:

        async def member_names(cluster: str) -> set[str]:
            listing = await h.kubes[cluster].get(
                f"/apis/apps/v1/namespaces/{ns}/deployments",
                labelSelector="foot.dev/managed-by=foot",
            )
            return {item["metadata"]["name"] for item in listing.get("items") or []}

        async def converged() -> bool:
            for cluster, wanted in expected.items():
                if await member_names(cluster) != wanted:
                    return False
            works = await h.works()
            return len(works) == 2 * count and all(
                w.status.applied_hash == w.spec.manifests_hash for w in works.values()
            )

        await until(converged, within=60)
    finally:
        second.kill()
    for cluster, wanted in expected.items():
        listing = await h.kubes[cluster].get(f"/apis/apps/v1/namespaces/{ns}/deployments")
        items = listing.get("items") or []
        assert {i["metadata"]["name"] for i in items} == wanted, "nothing orphaned"
        for item in items:
            # Applying different content would have bumped the generation.
            assert item["metadata"]["generation"] == 1, item["metadata"]["name"]
            assert item["spec"]["replicas"] == 1
            managers = {e["manager"] for e in item["metadata"]["managedFields"]}
            assert managers == {"foot"}
    works = await h.works()
    assert {w.spec.cluster for w in works.values()} == {m1, m2, m3}
    assert not any(w.spec.deleting for w in works.values())


async def test_an_object_applied_before_its_work_was_stored_is_not_orphaned(
    nats_server: EmbeddedNats, harness: Harness
) -> None:
    """A push work is stored with its apply's answer; a dispatcher killed between the two
    leaves an applied object and the binding's intent naming it. When the binding no longer
    wants it there, the restarted dispatcher removes FOOT's object (never someone else's) and
    the intent goes once nothing it names waits."""
    h = harness
    m1, m2, m3 = h.names
    ns = h.namespace
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "left", "namespace": ns},
        "data": {"k": "v"},
    }
    template_key = await h.template(document)
    binding_key = await h.bind("ConfigMap", "left", {m1: None}, api_version="v1")
    # What a killed dispatcher left: the object applied in m2 (with FOOT's marks), and an
    # intent naming m2 and m3; m3 holds someone else's object of that name.
    marked = ownership_marks(ns, "left-configmap")(document)
    async with KubeClient(h.kubes[m2].target) as kube:
        assert (await MemberApplier(kube).apply(marked)).applied
    await h.kubes[m3].create("/api/v1/namespaces", {"metadata": {"name": ns}})
    await h.kubes[m3].create(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"metadata": {"name": "left"}, "data": {"k": "theirs"}},
    )
    ident = ["v1", "ConfigMap", ns, "left"]
    intents = await h.bus.kv(DISPATCH_INTENTS.name)
    await intents.put(
        binding_key,
        orjson.dumps({"binding": binding_key, "clusters": {m2: [ident], m3: [ident]}}),
    )
    path = f"/api/v1/namespaces/{ns}/configmaps/left"
    async with dispatcher(nats_server, h):

        async def settled() -> bool:
            status = await h.aggregated(template_key)
            return (
                status is not None
                and status.applied
                and await h.member_get(m2, path) is None
                and await intents.get(binding_key) is None
            )

        await until(settled)
    assert await h.member_get(m1, path) is not None
    theirs = await h.member_get(m3, path)
    assert theirs is not None
    assert theirs["data"] == {"k": "theirs"}, "someone else's object is never removed"
    assert set((await h.works()).keys()) == {f"{m1}.{binding_key}"}


class AgentProcess:
    """`python -m foot_agent` for one member, with that member's kubeconfig (pull mode: it
    only dials out to NATS) and the bootstrap token its agent key was derived from
    (`Harness.register_agent`). No registry runs here, so its hello goes unanswered; its work
    pulling does not depend on that."""

    def __init__(
        self, nats: EmbeddedNats, cluster: KubeCluster, folder: Path, bootstrap_token: str
    ) -> None:
        token = folder / f"{cluster.name}.token"
        token.write_text(bootstrap_token)
        token.chmod(0o600)
        self.log = folder / f"agent-{cluster.name}.log"
        argv = agent_argv(
            cluster.name,
            nats.url,
            token,
            agent_credentials(folder, cluster.name),
            cluster.kubeconfig_path,
        )
        env = agent_env()
        self.process: subprocess.Popen[bytes] = spawn(argv, env=env, log_path=self.log)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """What must be the same for a push and a pull member (not ids, times, versions)."""
    metadata = obj["metadata"]
    return {
        "labels": metadata.get("labels"),
        "annotations": metadata.get("annotations"),
        "managers": sorted({e["manager"] for e in metadata.get("managedFields") or []}),
        "spec": obj.get("spec"),
        "data": obj.get("data"),
    }


async def test_pull_cluster_reaches_the_same_end_state_as_a_push_cluster(
    nats_server: EmbeddedNats, harness: Harness, kube_clusters: KubeClusters, tmp_path: Path
) -> None:
    """Acceptance 4: member-1 is Push, member-3 is Pull with its agent; same app."""
    h = harness
    m1, _, m3 = h.names
    ns = h.namespace
    await h.join(kube_clusters[2], "us", sync_mode="Pull")
    deployment_key, *_ = [await h.template(d) for d in app(ns)]
    web = await h.bind("Deployment", "web", {m1: 3, m3: 3}, propagateDeps=True)
    await h.bind("Service", "web", {m1: None, m3: None}, api_version="v1")
    agent = AgentProcess(nats_server, kube_clusters[2], tmp_path, h.tokens[m3])
    try:
        async with dispatcher(nats_server, h):

            async def both() -> bool:
                return all(
                    [
                        await h.member_get(m1, h.deployment_path()) is not None,
                        await h.member_get(m3, h.deployment_path()) is not None,
                        await h.member_get(m3, f"/api/v1/namespaces/{ns}/services/web") is not None,
                    ]
                )

            await until(both, within=60)
            for path in [
                h.deployment_path(),
                f"/api/v1/namespaces/{ns}/configmaps/web-config",
                f"/api/v1/namespaces/{ns}/services/web",
            ]:
                pushed = await h.member_get(m1, path)
                pulled = await h.member_get(m3, path)
                assert pushed is not None
                assert pulled is not None
                if path.endswith("services/web"):
                    for obj in (pushed, pulled):  # allocated by each member on its own
                        obj["spec"].pop("clusterIP", None)
                        obj["spec"].pop("clusterIPs", None)
                        for port in obj["spec"]["ports"]:
                            port.pop("nodePort", None)
                assert comparable(pulled) == comparable(pushed), path
            # Readiness in the pull member travels back through the agent.
            await until(lambda: h.kubelet(m1))
            await until(lambda: h.kubelet(m3))

            async def ready_everywhere() -> bool:
                status = await h.aggregated(deployment_key)
                return (
                    status is not None
                    and status.ready_replicas == 6
                    and [(c.cluster, c.ready_replicas, c.health) for c in status.clusters]
                    == [(m1, 3, "Healthy"), (m3, 3, "Healthy")]
                )

            await until(ready_everywhere, within=60)
            works = await h.works()
            pulled_service = next(
                w for k, w in works.items() if k.startswith(f"{m3}.") and "web-service" in k
            )
            endpoints = pulled_service.status.manifests[0].service
            assert endpoints is not None
            assert endpoints.ports[0].node_port is not None
            # Leaving the pull cluster removes its copy there too.
            await h.bind("Deployment", "web", {m1: 6}, propagateDeps=True)

            async def left_m3() -> bool:
                return await h.member_get(m3, h.deployment_path()) is None

            await until(left_m3, within=60)
            assert await h.member_get(m3, f"/api/v1/namespaces/{ns}/configmaps/web-config") is None
            assert not any(
                k.startswith(f"{m3}.") and "web-deployment" in k for k in await h.works()
            )
            assert web in {k.partition(".")[2] for k in await h.works()}
    finally:
        agent.kill()


def plain_forms(value: str) -> list[bytes]:
    """A value as it could leak: plain, base64, base64 of base64."""
    once = base64.b64encode(value.encode())
    return [value.encode(), once, base64.b64encode(once)]


def comparable_status(work: Work) -> Any:
    """What a status report would change in a stored work (not times)."""
    status = work.status
    return (
        status.applied_hash,
        status.manifests,
        [(c.type, c.status, c.reason, c.message) for c in status.conditions],
    )


async def test_the_pull_channel_is_sealed_and_refuses_forgeries(
    nats_server: EmbeddedNats, harness: Harness, kube_clusters: KubeClusters, tmp_path: Path
) -> None:
    """Issue 15: pull works reach only their agent and agents' reports are signed. With NATS
    auth on, a service-level sniffer sees no manifest content in a delivery; a forged
    delivery (a service user with a wrong key, or unsigned) is dropped by the agent and
    never reaches its member; a forged work status (a user with exactly the agent's
    permissions, with a wrong key or unsigned), a replayed one and one for a push cluster's
    work are refused and change no stored work."""
    h = harness
    m1, _, m3 = h.names
    ns = h.namespace
    await h.join(kube_clusters[2], "us", sync_mode="Pull")
    password = f"pw-{uuid.uuid4().hex}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": ns},
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }
    await h.template(secret)
    binding_key = await h.bind("Secret", "db", {m1: None, m3: None}, api_version="v1")
    pull_key, push_key = f"{m3}.{binding_key}", f"{m1}.{binding_key}"
    secret_path = f"/api/v1/namespaces/{ns}/secrets/db"
    box = SecretBox.from_file(h.key_file)
    works = await h.bus.kv(WORKS.name)

    async def stored(key: str) -> Work | None:
        entry = await works.get(key)
        if entry is None or entry.value is None:
            return None
        return Work.from_json(box.open_if_sealed(entry.value, context=f"{WORKS.name}/{key}"))

    # A service-level identity (the scheduler's own user) listens on the pull member's
    # deliveries and reports, and plays the forger on the hub's side.
    sniffed: dict[str, list[bytes]] = {"deliver": [], "status": []}

    async def sniff(msg: Msg) -> None:
        sniffed[msg.subject.split(".")[2]].append(msg.data)

    service_user = NatsAuthHome(default_home()).creds("scheduler")
    settings = DispatcherSettings(
        nats_url=nats_server.url,
        secret_key_file=h.key_file,
        log_format="text",
        # A replay is told from a stale report only within the skew: wide here, so a slow
        # machine never turns the replay below into "too old".
        agent_max_skew_seconds=600,
    )
    async with (
        await Bus.connect(nats_server.url, "sniffer", credentials_file=service_user) as sniffer,
        DispatcherService(settings),
    ):
        for family in ("deliver", "status"):
            await sniffer.subscribe(f"foot.works.{family}.{m3}", sniff)
        # (b) The dispatcher publishes the pull work (again every resend period until its
        # agent reports it): sealed, none of the manifest readable.
        await eventually(lambda: len(sniffed["deliver"]) >= 1, within=30)
        for data in sniffed["deliver"]:
            for form in [*plain_forms(password), ns.encode(), b"Secret"]:
                assert form not in data
        assert (await stored(pull_key)) is not None
        agent = AgentProcess(nats_server, kube_clusters[2], tmp_path, h.tokens[m3])
        try:

            async def applied(key: str) -> bool:
                work = await stored(key)
                return work is not None and work.status.applied_hash == work.spec.manifests_hash

            await until(lambda: applied(pull_key), within=60)
            await until(lambda: applied(push_key), within=60)
            member_secret = await h.member_get(m3, secret_path)
            assert member_secret is not None
            assert member_secret["data"] == secret["data"]
            await eventually(lambda: len(sniffed["status"]) >= 1, within=30)
            for data in sniffed["status"]:
                assert ns.encode() not in data  # reports are sealed too
            captured = sniffed["status"][-1]  # a real report of the agent, replayed below

            # (c) Forged deliveries on the pull member's subject, from a service's user: one
            # sealed with a wrong key, one unsigned. The agent drops both.
            work = await stored(pull_key)
            assert work is not None
            forged_map = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "forged", "namespace": ns},
                "data": {"k": "forged"},
            }
            forged_work = work.model_copy(
                update={
                    "spec": work.spec.model_copy(
                        update={"manifests": [forged_map], "manifests_hash": "forged"}
                    )
                }
            )
            forged_delivery = WorkDelivery(key=pull_key, work=forged_work)
            wrong_hub = HubChannel(m3, agent_key("a guessed token"), max_skew_seconds=60)
            await sniffer.notify(
                f"foot.works.deliver.{m3}",
                wrong_hub.seal_delivery(forged_delivery, now=utc_now()),
            )
            await sniffer.notify(
                f"foot.works.deliver.{m3}", forged_delivery.model_dump_json(by_alias=True).encode()
            )

            def dropped() -> list[str]:
                lines = agent.log.read_text(errors="replace").splitlines()
                return [line for line in lines if "dropped a work delivery" in line]

            await eventually(lambda: len(dropped()) >= 2, within=30)
            reasons = "\n".join(dropped())
            assert "forged or tampered" in reasons
            assert "not sealed" in reasons
            assert password not in agent.log.read_text(errors="replace")

            # (a) Forged work status on the pull member's subject, from a user with exactly
            # its agent's NATS permissions: unsigned, then sealed with a wrong key; then a
            # real report of its agent replayed; then a status for the push member's work.
            before = {key: await stored(key) for key in (pull_key, push_key)}
            lie = WorkStatusReport(
                key=pull_key, manifests_hash=work.spec.manifests_hash, error="forged: unreachable"
            )
            lie_push = lie.model_copy(update={"key": push_key})
            forgers = tmp_path / "forgers"
            forgers.mkdir()

            async def ask(bus: Bus, cluster: str, payload: bytes) -> dict[str, Any]:
                answer = await bus.request(f"foot.works.status.{cluster}", payload)
                return dict(orjson.loads(answer.data))

            async with (
                await Bus.connect(
                    nats_server.url,
                    "forger-pull",
                    credentials_file=agent_credentials(forgers, m3),
                    inbox_prefix=agent_inbox_prefix(m3),
                ) as as_agent,
                await Bus.connect(
                    nats_server.url,
                    "forger-push",
                    credentials_file=agent_credentials(forgers, m1),
                    inbox_prefix=agent_inbox_prefix(m1),
                ) as as_push_agent,
            ):
                unsigned = await ask(as_agent, m3, lie.model_dump_json(by_alias=True).encode())
                wrong = AgentChannel(m3, agent_key("a guessed token"), "x", max_skew_seconds=60)
                guessed = await ask(as_agent, m3, wrong.seal_status(lie, now=utc_now()))
                replayed = await ask(as_agent, m3, captured)
                # Whatever key it is sealed with: a push member's works have no agent.
                own = AgentChannel(m1, agent_key("t"), "x", max_skew_seconds=60)
                pushed = await ask(as_push_agent, m1, own.seal_status(lie_push, now=utc_now()))
            assert unsigned["ok"] is False
            assert "not sealed (unsigned)" in unsigned["error"]
            assert guessed["ok"] is False
            assert f"does not open with cluster {m3}'s agent key" in guessed["error"]
            assert replayed["ok"] is False
            assert "replayed" in replayed["error"]
            assert pushed["ok"] is False
            assert f"cluster '{m1}' is in Push mode" in pushed["error"]
            for key, work_before in before.items():
                after = await stored(key)
                assert work_before is not None
                assert after is not None
                assert comparable_status(after) == comparable_status(work_before), key
                assert "forged" not in after.model_dump_json(), key
            assert await h.member_get(m3, f"/api/v1/namespaces/{ns}/configmaps/forged") is None

            # The real agent still gets the real thing: a new password reaches the member.
            changed = {**secret, "data": {"password": base64.b64encode(b"next").decode()}}
            await h.template(changed)

            async def rotated() -> bool:
                member = await h.member_get(m3, secret_path)
                return member is not None and member["data"] == changed["data"]

            await until(rotated, within=60)
            assert await h.member_get(m3, f"/api/v1/namespaces/{ns}/configmaps/forged") is None
        finally:
            agent.kill()


async def test_with_the_real_scheduler_policy_to_members(
    nats_server: EmbeddedNats, harness: Harness
) -> None:
    """The scheduler's own bindings (not hand-written ones) drive the dispatcher: a Deployment
    and a Karmada PropagationPolicy with static weights 1:3 over two members, then a
    Karmada OverridePolicy changing one member's image."""
    from foot.api import ApiReply, ApiRequest
    from foot.catalog import owner_apply_subject
    from foot_scheduler.service import SchedulerService, SchedulerSettings

    h = harness
    m1, m2, _ = h.names
    ns = h.namespace
    enablements = [
        {"groupVersion": "apps/v1", "resources": [{"name": "deployments", "kind": "Deployment"}]},
        {"groupVersion": "v1", "resources": [{"name": "configmaps", "kind": "ConfigMap"}]},
    ]
    clusters = await h.bus.kv(CLUSTERS.name)
    for cluster, region in zip(h.clusters, REGIONS, strict=True):
        document = {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": cluster.name, "labels": {"region": region}},
            "spec": {"syncMode": "Push", "apiEndpoint": cluster.server, "region": region},
            "status": {
                "apiEnablements": enablements,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            },
        }
        await clusters.put(CLUSTER_KIND.key(None, cluster.name), orjson.dumps(document))
    deployment, config, _ = app(ns)
    policy = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "propagateDeps": True,
            "placement": {
                "clusterAffinity": {"clusterNames": [m1, m2]},
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": [m1]}, "weight": 1},
                            {"targetCluster": {"clusterNames": [m2]}, "weight": 3},
                        ]
                    },
                },
            },
        },
    }

    async def submit(*documents: dict[str, Any]) -> None:
        body = ApiRequest(objects=list(documents)).model_dump(mode="json", by_alias=True)
        answer = await h.bus.request(owner_apply_subject("scheduler"), orjson.dumps(body))
        reply = ApiReply.model_validate_json(answer.data)
        assert reply.error is None, reply.error

    scheduling = SchedulerSettings(nats_url=nats_server.url, shutdown_deadline_seconds=2.0)
    async with SchedulerService(scheduling), dispatcher(nats_server, h):
        await submit(deployment, config, policy)

        async def divided() -> bool:
            first = await h.member_get(m1, h.deployment_path())
            second = await h.member_get(m2, h.deployment_path())
            if first is None or second is None:
                return False
            replicas = (first["spec"]["replicas"], second["spec"]["replicas"])
            # 6 replicas by weights 1:3: the scheduler's rounding decides 1:5 or 2:4.
            return sum(replicas) == 6 and replicas in {(1, 5), (2, 4)}

        await until(divided)
        assert await h.member_get(m2, f"/api/v1/namespaces/{ns}/configmaps/web-config")
        await submit(eu_image_override(ns))

        async def overridden() -> bool:
            found = await h.member_get(m1, h.deployment_path())
            image = found["spec"]["template"]["spec"]["containers"][0]["image"] if found else ""
            return bool(image.startswith("eu.example.com/"))

        await until(overridden)
        second = await h.member_get(m2, h.deployment_path())
        assert second is not None
        assert second["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
            "registry.example.com/"
        )

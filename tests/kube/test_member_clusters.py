"""Real member clusters: three kube-apiservers serve kubernetes_asyncio, survive kills."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, config

from foot_testenv.clusters import Component, KubeCluster, KubeClusters
from foot_testenv.fixtures import KubeClusterFactory
from foot_testenv.kube_client import api_client

pytestmark = pytest.mark.kube

FIELD_MANAGER = "foot-tests"
IMAGE = "registry.example/foot/web:1.0"


def unique_namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def deployment_manifest(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": IMAGE}]},
            },
        },
    }


async def create_namespace(api: client.ApiClient, namespace: str) -> None:
    await client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )


async def apply_deployment(
    api: client.ApiClient, name: str, namespace: str, replicas: int
) -> client.V1Deployment:
    """Server-side apply, as `kubectl apply --server-side` does."""
    return await client.AppsV1Api(api).patch_namespaced_deployment(
        name,
        namespace,
        deployment_manifest(name, namespace, replicas),
        field_manager=FIELD_MANAGER,
        force=True,
        # Documented by the client, missing from its type stubs.
        _content_type="application/apply-patch+yaml",  # type: ignore[call-arg]
    )


def is_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_applies_a_deployment_to_each_of_three_real_clusters(
    kube_clusters: KubeClusters,
) -> None:
    namespace = unique_namespace()

    async def apply_and_read_back(cluster: KubeCluster) -> client.V1Deployment:
        async with api_client(cluster) as api:
            await create_namespace(api, namespace)
            await apply_deployment(api, "web", namespace, replicas=2)
            # Applying again with a change updates the same object.
            await apply_deployment(api, "web", namespace, replicas=3)
            deployment: client.V1Deployment = await client.AppsV1Api(
                api
            ).read_namespaced_deployment("web", namespace)
            return deployment

    deployments = await asyncio.gather(*(apply_and_read_back(c) for c in kube_clusters))

    assert len(deployments) == 3
    for deployment in deployments:
        assert deployment.metadata.namespace == namespace
        assert deployment.metadata.generation == 2
        assert deployment.spec.replicas == 3
        assert deployment.spec.template.spec.containers[0].image == IMAGE
        assert deployment.metadata.labels == {"app.kubernetes.io/name": "web"}
        managers = {entry.manager for entry in deployment.metadata.managed_fields}
        assert FIELD_MANAGER in managers
    # Three separate clusters, not one answering three times.
    assert len({d.metadata.uid for d in deployments}) == 3
    assert len({c.server for c in kube_clusters}) == 3


async def test_client_certificate_and_token_both_authenticate_as_admins(
    kube_clusters: KubeClusters,
) -> None:
    cluster = kube_clusters[0]
    review = client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1")
    identities = {}
    for context in (cluster.context, cluster.token_context):
        async with api_client(cluster, context=context) as api:
            answer = await client.AuthenticationV1Api(api).create_self_subject_review(review)
            identities[context] = answer.status.user_info

    assert identities[cluster.context].username == "kubernetes-admin"
    assert identities[cluster.token_context].username == "token-admin"
    for user_info in identities.values():
        assert "system:masters" in user_info.groups


async def test_clusters_have_separate_certificate_authorities(
    kube_clusters: KubeClusters,
) -> None:
    first, second = kube_clusters[0], kube_clusters[1]
    assert first.ca_path.read_bytes() != second.ca_path.read_bytes()
    # The first cluster's credentials pointed at the second server must be refused
    # at TLS (its CA does not sign the second server's certificate).
    kubeconfig = first.kubeconfig
    kubeconfig["clusters"][0]["cluster"]["server"] = second.server
    configuration = client.Configuration()
    await config.load_kube_config_from_dict(kubeconfig, client_configuration=configuration)
    api = client.ApiClient(configuration)
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await client.CoreV1Api(api).list_namespace()
    finally:
        await api.close()


async def test_serves_openapi_v2_that_parses_as_json(kube_clusters: KubeClusters) -> None:
    # A Go 1.27 (jsonv2) build serves malformed /openapi/v2 and breaks kubectl apply.
    document = await asyncio.to_thread(kube_clusters[0].get_json_blocking, "/openapi/v2")

    assert document["swagger"] == "2.0"
    assert "io.k8s.api.apps.v1.Deployment" in document["definitions"]


async def test_reports_the_pinned_kubernetes_version(kube_clusters: KubeClusters) -> None:
    async with api_client(kube_clusters[0]) as api:
        version = await client.VersionApi(api).get_code()

    assert version.git_version == kube_clusters[0].binaries.version
    assert version.git_tree_state == "clean"


async def test_kill_then_start_brings_the_cluster_back_with_its_data(
    kube_cluster_factory: KubeClusterFactory,
) -> None:
    (cluster,) = await kube_cluster_factory(count=1)
    namespace = unique_namespace()
    async with api_client(cluster) as api:
        core = client.CoreV1Api(api)
        await create_namespace(api, namespace)
        await core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name="survivor"), data={"kept": "yes"}),
        )
    server = cluster.server
    killed_pid = cluster.pid(Component.KUBE_APISERVER)
    etcd_pid = cluster.pid(Component.ETCD)
    assert killed_pid is not None
    assert etcd_pid is not None

    await cluster.kill()

    assert not is_alive(killed_pid)
    assert cluster.pid(Component.KUBE_APISERVER) is None
    assert cluster.pid(Component.ETCD) == etcd_pid
    assert not await cluster.is_ready()
    async with api_client(cluster) as api:
        with pytest.raises(aiohttp.ClientConnectorError):
            await client.CoreV1Api(api).list_namespace()

    await cluster.start()

    assert await cluster.is_ready()
    assert cluster.server == server
    assert cluster.pid(Component.KUBE_APISERVER) not in {None, killed_pid}
    async with api_client(cluster) as api:
        config_map = await client.CoreV1Api(api).read_namespaced_config_map("survivor", namespace)
    assert config_map.data == {"kept": "yes"}


async def test_stop_then_start_restarts_etcd_too_and_keeps_the_data(
    kube_cluster_factory: KubeClusterFactory,
) -> None:
    (cluster,) = await kube_cluster_factory(count=1)
    namespace = unique_namespace()
    async with api_client(cluster) as api:
        await create_namespace(api, namespace)
    pids = [cluster.pid(component) for component in (Component.ETCD, Component.KUBE_APISERVER)]

    await cluster.stop()

    assert cluster.pid(Component.ETCD) is None
    assert cluster.pid(Component.KUBE_APISERVER) is None
    assert all(pid is not None and not is_alive(pid) for pid in pids)

    await cluster.start()

    async with api_client(cluster) as api:
        restored = await client.CoreV1Api(api).read_namespace(namespace)
    assert restored.metadata.name == namespace


async def test_teardown_stops_its_processes_and_removes_etcd_data(tmp_path: Path) -> None:
    async with KubeClusters.start(count=1, workdir=tmp_path) as clusters:
        (cluster,) = clusters
        pids = [cluster.pid(component) for component in Component]
        etcd_data_dir = cluster.etcd_data_dir
        assert etcd_data_dir.is_dir()
        assert await cluster.is_ready()

    started = [pid for pid in pids if pid is not None]
    assert len(started) == 2  # etcd and kube-apiserver; no controller manager asked for
    assert not any(is_alive(pid) for pid in started)
    assert not etcd_data_dir.exists()
    # Logs stay in a caller-provided workdir for post-mortems.
    assert (tmp_path / "member-1" / "logs" / "kube-apiserver.log").stat().st_size > 0


async def test_a_port_taken_before_first_start_moves_the_cluster_to_free_ports(
    tmp_path: Path,
) -> None:
    clusters = KubeClusters.create(1, workdir=tmp_path)
    (cluster,) = clusters
    taken_port = cluster.ports.kube_apiserver
    try:
        # Someone else grabs the picked port between picking and binding.
        with socket.create_server(("127.0.0.1", taken_port)):
            await clusters.launch()

        assert cluster.ports.kube_apiserver != taken_port
        assert cluster.kubeconfig["clusters"][0]["cluster"]["server"] == cluster.server
        async with api_client(cluster) as api:
            namespaces = await client.CoreV1Api(api).list_namespace()
        assert "default" in {namespace.metadata.name for namespace in namespaces.items}
    finally:
        await clusters.dispose()


async def test_cluster_processes_die_with_a_killed_parent(tmp_path: Path) -> None:
    # A crashed test run must not leave clusters behind: start one from a child
    # Python, SIGKILL that Python, and its etcd and kube-apiserver must go too.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from foot_testenv.clusters import Component, KubeClusters\n"
        "with KubeClusters.start_blocking(1, workdir=Path(sys.argv[1])) as clusters:\n"
        "    print(*(clusters[0].pid(c) for c in Component), flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, os.fspath(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 60)
    pids = [int(pid) for pid in line.decode().split() if pid != "None"]
    assert len(pids) == 2
    assert all(is_alive(pid) for pid in pids)

    parent.kill()
    await parent.wait()

    # Polling: the processes are not our children any more, so nothing signals their end.
    async with asyncio.timeout(10):
        while any(is_alive(pid) for pid in pids):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_controller_manager_turns_a_deployment_into_pods(
    kube_cluster_factory: KubeClusterFactory,
) -> None:
    (cluster,) = await kube_cluster_factory(count=1, with_controller_manager=True)
    assert cluster.pid(Component.KUBE_CONTROLLER_MANAGER) is not None
    namespace = unique_namespace()
    async with api_client(cluster) as api:
        core = client.CoreV1Api(api)
        await create_namespace(api, namespace)
        await apply_deployment(api, "web", namespace, replicas=2)

        # Pods stay Pending (no nodes), but the ReplicaSet controller creates them.
        async with asyncio.timeout(60):
            while True:
                pods = await core.list_namespaced_pod(namespace)
                if len(pods.items) == 2:
                    break
                await asyncio.sleep(0.2)
        service_account = await core.read_namespaced_service_account("default", namespace)

    assert {pod.spec.containers[0].image for pod in pods.items} == {IMAGE}
    assert all(pod.metadata.owner_references[0].kind == "ReplicaSet" for pod in pods.items)
    assert service_account.metadata.name == "default"

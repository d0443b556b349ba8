"""Simulator-only behaviour: faults as clients see them, the kubelet, scale, admin API, CLI."""

from __future__ import annotations

import asyncio
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio.client.exceptions import ApiException

from foot_sim import NodeShape, Simulator
from foot_sim.client import KubeHttpClient
from foot_sim.resources import NAMESPACES, RESOURCES_BY_PATH
from support import eventually

MERGE = "application/merge-patch+json"
CONFIGMAPS = RESOURCES_BY_PATH[("", "v1", "configmaps")]
DEPLOYMENTS = RESOURCES_BY_PATH[("apps", "v1", "deployments")]
DAEMONSETS = RESOURCES_BY_PATH[("apps", "v1", "daemonsets")]
JOBS = RESOURCES_BY_PATH[("batch", "v1", "jobs")]
CLAIMS = RESOURCES_BY_PATH[("", "v1", "persistentvolumeclaims")]


def _api_client(server: str, token: str, ca_path: Path | None) -> kube_client.ApiClient:
    configuration = kube_client.Configuration(host=server)
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    if ca_path is not None:
        configuration.ssl_ca_cert = str(ca_path)
    return kube_client.ApiClient(configuration=configuration)


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator(2, ready_delay=0.2, seed=7, bookmark_interval=0.5) as running:
        yield running


async def test_fault_modes_as_kubernetes_asyncio_sees_them(simulator: Simulator) -> None:
    cluster = simulator.clusters[0]
    endpoint = cluster.endpoint()
    api = _api_client(endpoint.server, endpoint.token, endpoint.ca_path)
    try:
        core = kube_client.CoreV1Api(api)
        assert (await core.read_namespace("default")).status.phase == "Active"

        await simulator.set_fault(cluster.name, "down")
        with pytest.raises(aiohttp.ClientConnectorError):
            await core.read_namespace("default")

        await simulator.set_fault(cluster.name, "partitioned")
        with pytest.raises(asyncio.TimeoutError):
            await core.read_namespace("default", _request_timeout=0.5)

        await simulator.set_fault(cluster.name, "slow", latency_ms=300)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await core.read_namespace("default")
        assert loop.time() - began >= 0.3

        await simulator.set_fault(cluster.name, "error-rate", error_rate=1.0, error_codes=(429,))
        with pytest.raises(ApiException) as throttled:
            await core.read_namespace("default")
        assert throttled.value.status == 429
        assert throttled.value.headers is not None
        assert throttled.value.headers["Retry-After"] == "1"
        assert '"reason":"TooManyRequests"' in str(throttled.value.body)

        await simulator.set_fault(cluster.name, "error-rate", error_rate=1.0, error_codes=(500,))
        with pytest.raises(ApiException) as failing:
            await core.read_namespace("default")
        assert failing.value.status == 500
        assert '"reason":"InternalError"' in str(failing.value.body)

        await simulator.set_fault(cluster.name, "healthy")
        assert (await core.read_namespace("default")).metadata.name == "default"
    finally:
        await api.close()


async def test_partial_error_rate_fails_about_that_fraction(simulator: Simulator) -> None:
    cluster = simulator.clusters[0]
    await simulator.set_fault(cluster.name, "error-rate", error_rate=0.5)
    async with KubeHttpClient(cluster.endpoint()) as kube:
        statuses = [(await kube.get("/api/v1/namespaces/default")).status for _ in range(200)]
    failures = sum(1 for status in statuses if status in (429, 500))
    assert 60 < failures < 140
    assert set(statuses) <= {200, 429, 500}


async def test_down_cluster_refuses_while_others_serve(simulator: Simulator) -> None:
    down, other = simulator.clusters
    await simulator.set_fault(down.name, "down")
    async with KubeHttpClient(other.endpoint()) as kube:
        assert (await kube.get("/readyz")).status == 200
    async with KubeHttpClient(down.endpoint()) as kube:
        with pytest.raises(aiohttp.ClientConnectorError):
            await kube.get("/readyz")
    await simulator.set_fault(down.name, "healthy")
    async with KubeHttpClient(down.endpoint()) as kube:
        assert (await kube.get("/readyz")).status == 200


async def test_partition_stalls_open_watches(simulator: Simulator) -> None:
    cluster = simulator.clusters[0]
    async with KubeHttpClient(cluster.endpoint()) as kube:
        path = "/api/v1/namespaces/default/configmaps"
        start = (await kube.get(path)).json["metadata"]["resourceVersion"]
        seen: list[str] = []

        async def watch() -> None:
            async for event in kube.watch(path, {"resourceVersion": start}):
                name = event["object"]["metadata"]["name"]
                seen.append(name)

        watcher = asyncio.create_task(watch())
        await kube.post(path, {"metadata": {"name": "before"}})
        await eventually(lambda: seen == ["before"])
        await simulator.set_fault(cluster.name, "partitioned")
        cluster.store.create(
            CONFIGMAPS, "default", {"metadata": {"name": "during"}}, manager="test"
        )
        await asyncio.sleep(0.3)
        assert seen == ["before"]
        await simulator.set_fault(cluster.name, "healthy")
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(watcher, 5)


async def test_watch_bookmarks_and_expiry(simulator: Simulator) -> None:
    async with KubeHttpClient(simulator.clusters[0].endpoint()) as kube:
        path = "/api/v1/namespaces/default/configmaps"
        start = (await kube.get(path)).json["metadata"]["resourceVersion"]
        params = {"resourceVersion": start, "allowWatchBookmarks": "true", "timeoutSeconds": "3"}
        events = [event async for event in kube.watch(path, params)]
        bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
        assert len(bookmarks) >= 2
        assert bookmarks[0]["object"] == {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": start},
        }
        (expired,) = [event async for event in kube.watch(path, {"resourceVersion": "1"})]
        assert expired["type"] == "ERROR"
        assert (expired["object"]["reason"], expired["object"]["code"]) == ("Expired", 410)


async def test_event_window_expires_old_resource_versions() -> None:
    async with (
        Simulator(1, event_window=5) as small,
        KubeHttpClient(small.clusters[0].endpoint()) as kube,
    ):
        path = "/api/v1/namespaces/default/configmaps"
        first = (await kube.post(path, {"metadata": {"name": "c0"}})).json["metadata"][
            "resourceVersion"
        ]
        for index in range(1, 10):
            await kube.post(path, {"metadata": {"name": f"c{index}"}})
        (expired,) = [e async for e in kube.watch(path, {"resourceVersion": first})]
        assert expired["object"]["message"].startswith(f"too old resource version: {first} (")
        recent = small.clusters[0].store.resource_version - 2
        resumed = [
            e
            async for e in kube.watch(path, {"resourceVersion": str(recent), "timeoutSeconds": "1"})
        ]
        assert [e["object"]["metadata"]["name"] for e in resumed] == ["c8", "c9"]


async def test_namespace_deletion_removes_contents(simulator: Simulator) -> None:
    async with KubeHttpClient(simulator.clusters[0].endpoint()) as kube:
        await kube.post("/api/v1/namespaces", {"metadata": {"name": "temporary"}})
        await kube.post("/api/v1/namespaces/temporary/configmaps", {"metadata": {"name": "inside"}})
        terminating = await kube.delete("/api/v1/namespaces/temporary")
        assert terminating.json["status"]["phase"] == "Terminating"
        refused = await kube.post(
            "/api/v1/namespaces/temporary/configmaps", {"metadata": {"name": "late"}}
        )
        assert (refused.status, refused.json["reason"]) == (403, "Forbidden")
        store = simulator.clusters[0].store
        await eventually(lambda: store.find(NAMESPACES, "", "temporary") is None)
        assert store.find(CONFIGMAPS, "temporary", "inside") is None


def _workload(kind: str, name: str, replicas: int | None, cpu: str) -> dict[str, Any]:
    labels = {"app": name}
    pod = {
        "containers": [{"name": "app", "image": "app:1", "resources": {"requests": {"cpu": cpu}}}]
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


async def test_kubelet_makes_workloads_ready_within_capacity() -> None:
    shape = NodeShape(cpu="2", memory="4Gi", pods=10)
    async with (
        Simulator(1, nodes_per_cluster=2, node_shape=shape, ready_delay=0.3) as sim,
        KubeHttpClient(sim.clusters[0].endpoint()) as kube,
    ):
        deployments = "/apis/apps/v1/namespaces/default/deployments"
        created = await kube.post(deployments, _workload("Deployment", "fits", 3, "500m"))
        assert created.status == 201
        status = (await kube.get(f"{deployments}/fits")).json.get("status", {})
        assert status.get("readyReplicas", 0) == 0

        async def ready(name: str) -> dict[str, Any]:
            status: dict[str, Any] = (await kube.get(f"{deployments}/{name}")).json.get(
                "status", {}
            )
            return status

        store = sim.clusters[0].store
        await eventually(
            lambda: store.get(DEPLOYMENTS, "default", "fits")["status"].get("readyReplicas") == 3
        )
        fits = await ready("fits")
        assert (
            fits["replicas"],
            fits["readyReplicas"],
            fits["availableReplicas"],
            fits["observedGeneration"],
        ) == (3, 3, 3, 1)
        conditions = {c["type"]: (c["status"], c["reason"]) for c in fits["conditions"]}
        assert conditions == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }

        # Two 2-cpu nodes, and `fits` took 1.5 cpu of the first: 1-cpu replicas fit only on the
        # second node, two of them; the other two stay unready however long we wait.
        await kube.post(deployments, _workload("Deployment", "too-big", 4, "1"))

        def ready_count(name: str) -> int:
            count: int = (
                store.get(DEPLOYMENTS, "default", name).get("status", {}).get("readyReplicas", 0)
            )
            return count

        await eventually(lambda: ready_count("too-big") == 2)
        await asyncio.sleep(0.5)  # several ready delays: nothing more becomes ready
        too_big = await ready("too-big")
        assert (too_big["replicas"], too_big["readyReplicas"], too_big["unavailableReplicas"]) == (
            4,
            2,
            2,
        )
        assert {c["type"]: c["status"] for c in too_big["conditions"]}["Available"] == "False"

        # Scaling `fits` down to one replica frees a cpu on the first node: one more fits.
        await kube.patch(f"{deployments}/fits", {"spec": {"replicas": 1}}, MERGE)
        await eventually(lambda: ready_count("too-big") == 3)
        assert ready_count("fits") == 1


async def test_kubelet_runs_daemonsets_jobs_and_binds_claims() -> None:
    async with (
        Simulator(1, nodes_per_cluster=3, ready_delay=0.1) as sim,
        KubeHttpClient(sim.clusters[0].endpoint()) as kube,
    ):
        await kube.post(
            "/apis/apps/v1/namespaces/default/daemonsets",
            _workload("DaemonSet", "agent", None, "100m"),
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}
                }
            },
        }
        await kube.post("/apis/batch/v1/namespaces/default/jobs", job)
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
            },
        }
        await kube.post("/api/v1/namespaces/default/persistentvolumeclaims", claim)

        async def status(path: str) -> dict[str, Any]:
            found: dict[str, Any] = (await kube.get(path)).json.get("status", {})
            return found

        store = sim.clusters[0].store

        def settled() -> bool:
            agent = store.get(DAEMONSETS, "default", "agent").get("status", {})
            once = store.get(JOBS, "default", "once").get("status", {})
            data = store.get(CLAIMS, "default", "data").get("status", {})
            done = (agent.get("numberReady"), once.get("succeeded"), data.get("phase"))
            return done == (3, 1, "Bound")

        await eventually(settled)
        agent = await status("/apis/apps/v1/namespaces/default/daemonsets/agent")
        once = await status("/apis/batch/v1/namespaces/default/jobs/once")
        data = await status("/api/v1/namespaces/default/persistentvolumeclaims/data")
        assert (agent["desiredNumberScheduled"], agent["numberReady"]) == (3, 3)
        assert once["succeeded"] == 1
        assert {c["type"] for c in once["conditions"]} >= {"Complete"}
        assert data == {
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "5Gi"},
        }


async def test_hundred_clusters_start_and_serve(tmp_path: Path) -> None:
    async with Simulator(100, kubeconfig_dir=tmp_path, nodes_per_cluster=1) as sim:
        assert len({c.port for c in sim.clusters}) == 100

        async def ready(index: int) -> int:
            async with KubeHttpClient(sim.clusters[index].endpoint()) as kube:
                return (await kube.get("/api/v1/nodes")).status

        assert await asyncio.gather(*(ready(i) for i in range(100))) == [200] * 100
        assert _count_kubeconfigs(tmp_path) == 100


async def test_admin_api_lists_clusters_and_switches_faults(tmp_path: Path) -> None:
    async with (
        Simulator(2, kubeconfig_dir=tmp_path, admin_port=0) as sim,
        aiohttp.ClientSession(base_url=sim.admin_url) as admin,
    ):
        auth = {"Authorization": f"Bearer {sim.admin_token}"}
        async with admin.get("/sim/clusters") as refused:
            assert refused.status == 401
        async with admin.get("/sim/clusters", headers=auth) as listing:
            clusters = (await listing.json())["clusters"]
        assert [c["name"] for c in clusters] == ["sim-0", "sim-1"]
        assert clusters[0]["fault"]["mode"] == "healthy"
        async with admin.get("/sim/clusters/sim-1/kubeconfig", headers=auth) as kubeconfig:
            document = yaml.safe_load(await kubeconfig.text())
        assert document["clusters"][0]["cluster"]["server"] == sim.clusters[1].server
        async with admin.put(
            "/sim/clusters/sim-1/fault", headers=auth, json={"mode": "slow", "latencyMs": 50}
        ) as set_:
            assert (await set_.json())["mode"] == "slow"
        assert sim.clusters[1].fault.latency_ms == 50
        async with admin.put(
            "/sim/clusters/sim-1/fault", headers=auth, json={"mode": "sideways"}
        ) as bad:
            assert bad.status == 400
        async with admin.get("/sim/clusters/nope", headers=auth) as missing:
            assert missing.status == 404


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foot_sim", "--clusters", "2", "--kubeconfig-dir", str(tmp_path),
        "--admin-port", "0", "--nodes", "1",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    lines = [
        (await asyncio.wait_for(process.stdout.readline(), 30)).decode().split("\t")
        for _ in range(3)
    ]
    assert [line[0] for line in lines] == ["sim-0", "sim-1", "admin"]
    mode, server = _kubeconfig_mode_and_server(Path(lines[0][2].strip()))
    assert mode == 0o600
    assert server == lines[0][1]
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0


def _count_kubeconfigs(directory: Path) -> int:
    return len(list(directory.glob("*.kubeconfig")))


def _kubeconfig_mode_and_server(path: Path) -> tuple[int, str]:
    server: str = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"]
    return stat.S_IMODE(path.stat().st_mode), server

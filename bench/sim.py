"""Benchmark the member-cluster simulator: 100 clusters, 10,000 objects, real HTTP clients.

    .venv/bin/python bench/sim.py [--clusters 100] [--objects 10000]

The simulator runs in a child process (`python -m foot_sim`), so its RSS is
its own and client and server do not share a CPU budget inside one event
loop. Requests go over HTTPS with keep-alive, as a kubernetes client's would.
Latencies are measured one request at a time (a loaded server would add
queueing, which is not what the per-request goal is about); watch delivery
is the time from sending a write to its event arriving at a watcher.

Prints a table, then one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from benchkit import Figure, percentile, report, rss_mb, spawn_simulator
from foot_sim import ClusterEndpoint
from foot_sim.client import KubeHttpClient, KubeResponse

NAMESPACE = "bench"
DEPLOYMENT_SHARE = 5  # every fifth object is a Deployment, the rest ConfigMaps
LOAD_CONCURRENCY = 32
START_TIMEOUT_SECONDS = 120.0
RSS_GOAL_MB = 1024.0
GET_P99_GOAL_MS = 20.0


async def start_simulator(
    clusters: int, directory: Path
) -> tuple[asyncio.subprocess.Process, list[ClusterEndpoint]]:
    process, stdout = await spawn_simulator(
        clusters, directory, "--nodes", "3", "--ready-delay", "0.5"
    )
    endpoints: list[ClusterEndpoint] = []
    async with asyncio.timeout(START_TIMEOUT_SECONDS):
        while len(endpoints) < clusters:
            line = (await stdout.readline()).decode().rstrip("\n")
            endpoints.append(endpoint_from(line, directory / "ca.crt"))
    return process, endpoints


def endpoint_from(line: str, ca_path: Path) -> ClusterEndpoint:
    """The endpoint of one `name<TAB>server<TAB>kubeconfig` line the simulator prints."""
    name, server, kubeconfig_path = line.split("\t")
    kubeconfig = yaml.safe_load(Path(kubeconfig_path).read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    return ClusterEndpoint(name, server, token, Path(kubeconfig_path), ca_path)


def expect(response: KubeResponse, status: int) -> KubeResponse:
    """Benchmarks must not time failures: stop at the first unexpected answer."""
    if response.status != status:
        raise RuntimeError(f"expected HTTP {status}, got {response.status}: {response.body}")
    return response


def object_for(index: int, clusters: int) -> tuple[str, dict[str, Any]]:
    """(collection path, manifest) of the index-th object (on cluster index % clusters)."""
    name = f"obj-{index}"
    if (index // clusters) % DEPLOYMENT_SHARE == 0:
        labels = {"app": name}
        container = {
            "name": "app",
            "image": "registry.example/app:1",
            "resources": {"requests": {"cpu": "10m"}},
        }
        manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": {"bench": "yes"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            },
        }
        return f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", manifest
    data = {f"key-{k}": f"value-{index}-{k}" for k in range(5)}
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "data": data,
    }
    return f"/api/v1/namespaces/{NAMESPACE}/configmaps", manifest


async def load(clients: list[KubeHttpClient], objects: int) -> float:
    """Create `objects` objects spread evenly over the clusters; returns seconds taken."""
    for kube in clients:
        expect(await kube.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}), 201)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(objects):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            path, manifest = object_for(index, len(clients))
            expect(await clients[index % len(clients)].post(path, manifest), 201)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
    return time.perf_counter() - began


async def timed(samples: list[float], action: Callable[[], Awaitable[Any]]) -> None:
    began = time.perf_counter()
    await action()
    samples.append((time.perf_counter() - began) * 1000)


async def measure_gets(
    clients: list[KubeHttpClient], objects: int, count: int, rng: random.Random
) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        index = rng.randrange(objects)
        path, _ = object_for(index, len(clients))
        kube = clients[index % len(clients)]

        async def get(kube: KubeHttpClient = kube, path: str = f"{path}/obj-{index}") -> None:
            expect(await kube.get(path), 200)

        await timed(samples, get)
    return samples


async def measure_lists(
    clients: list[KubeHttpClient], count: int, rng: random.Random
) -> list[float]:
    samples: list[float] = []
    for _ in range(count):
        kube = rng.choice(clients)

        async def list_configmaps(kube: KubeHttpClient = kube) -> None:
            answer = await kube.get(
                f"/api/v1/namespaces/{NAMESPACE}/configmaps", {"labelSelector": "bench=yes"}
            )
            if not expect(answer, 200).json["items"]:
                raise RuntimeError("the benchmark namespace lists no ConfigMaps")

        await timed(samples, list_configmaps)
    return samples


async def measure_applies(
    clients: list[KubeHttpClient], objects: int, count: int, rng: random.Random
) -> list[float]:
    samples: list[float] = []
    for round_number in range(count):
        index = rng.randrange(objects)
        path, manifest = object_for(index, len(clients))
        kube = clients[index % len(clients)]
        if manifest["kind"] == "ConfigMap":
            manifest["data"]["key-0"] = f"applied-{round_number}"
        else:
            manifest["spec"]["replicas"] = 1 + round_number % 3

        async def apply(
            kube: KubeHttpClient = kube, path: str = f"{path}/obj-{index}", body: Any = manifest
        ) -> None:
            expect(await kube.apply(path, body, "bench", force=True), 200)

        await timed(samples, apply)
    return samples


async def measure_watch_delivery(clients: list[KubeHttpClient], writes: int) -> list[float]:
    """Watch ConfigMaps on a set of clusters; time each merge patch until its event arrives."""
    watched = clients[: min(10, len(clients))]
    arrivals: dict[str, asyncio.Future[float]] = {}
    ready = [asyncio.Event() for _ in watched]

    async def watch(position: int, kube: KubeHttpClient) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
        start = (await kube.get(path, {"limit": "1"})).json["metadata"]["resourceVersion"]
        ready[position].set()
        async for event in kube.watch(path, {"resourceVersion": start}):
            marker = (event["object"].get("data") or {}).get("watch-marker")
            waiter = arrivals.get(f"{kube.endpoint.name}/{marker}")
            if waiter is not None and not waiter.done():
                waiter.set_result(time.perf_counter())

    watchers = [asyncio.create_task(watch(i, kube)) for i, kube in enumerate(watched)]
    try:
        await asyncio.gather(*(event.wait() for event in ready))
        samples: list[float] = []
        loop = asyncio.get_running_loop()
        for write in range(writes):
            kube = watched[write % len(watched)]
            # A ConfigMap on this cluster: index ≡ cluster (mod clusters), not in a Deployment row.
            row = 1 + write % (DEPLOYMENT_SHARE - 1)
            index = row * len(clients) + write % len(watched)
            marker = f"w{write}"
            arrival = arrivals[f"{kube.endpoint.name}/{marker}"] = loop.create_future()
            sent = time.perf_counter()
            patch = {"data": {"watch-marker": marker}}
            path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/obj-{index}"
            await kube.patch(path, patch, "application/merge-patch+json")
            samples.append((await asyncio.wait_for(arrival, 10) - sent) * 1000)
        return samples
    finally:
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def latency_figures(name: str, samples: list[float], goal_p99: float | None = None) -> list[Figure]:
    return [
        Figure(f"{name}_p50", round(statistics.median(samples), 2), "ms"),
        Figure(f"{name}_p99", round(percentile(samples, 0.99), 2), "ms", goal_p99),
    ]


async def run(clusters: int, objects: int, requests: int) -> list[Figure]:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="foot-sim-bench-") as directory:
        process, endpoints = await start_simulator(clusters, Path(directory))
        figures = [Figure("rss_idle", round(rss_mb(process.pid), 1), "MB")]
        try:
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(KubeHttpClient(e, connection_limit=4))
                    for e in endpoints
                ]
                load_seconds = await load(clients, objects)
                figures.append(
                    Figure("load_objects_per_s", round(objects / load_seconds), "objects/s")
                )
                figures.append(
                    Figure("rss_loaded", round(rss_mb(process.pid), 1), "MB", RSS_GOAL_MB)
                )
                figures += latency_figures(
                    "get",
                    await measure_gets(clients, objects, requests, rng),
                    GET_P99_GOAL_MS,
                )
                figures += latency_figures("list", await measure_lists(clients, requests // 4, rng))
                figures += latency_figures(
                    "apply", await measure_applies(clients, objects, requests // 2, rng)
                )
                figures += latency_figures(
                    "watch_delivery", await measure_watch_delivery(clients, requests // 4)
                )
                figures.append(
                    Figure(
                        "rss_peak",
                        round(rss_mb(process.pid, "VmHWM"), 1),
                        "MB",
                        RSS_GOAL_MB,
                    )
                )
        finally:
            process.terminate()
            await process.wait()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument(
        "--requests", type=int, default=2000, help="single GETs measured (lists: 1/4, applies: 1/2)"
    )
    args = parser.parse_args()
    figures = asyncio.run(run(args.clusters, args.objects, args.requests))
    report("sim", figures, f"foot-sim: {args.clusters} clusters, {args.objects} objects")


if __name__ == "__main__":
    main()

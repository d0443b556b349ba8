"""Benchmark: a member cluster fails -> its nodes are gone from APISIX (gateway-sync drain).

    .venv/bin/python bench/gateway.py [--kills 20] [--routes 50]

A real nats-server, gateway-sync in its own process (`python -m foot_gateway_sync`),
the strict fake APISIX Admin API in this process (it timestamps every write it
accepts). Three clusters are written into the `clusters` bucket, one work per
cluster and route with ready replicas and a NodePort Service into `works`, and
`--routes` GatewayRoutes are applied through the API; so every upstream has three
nodes. Then `--kills` times: one cluster (in turn) is reported NotReady by a
ClusterHealthEvent on `foot.events.health.<cluster>` (standing in for the
registry, whose probes of a killed kube-apiserver publish the same event), and
the time is taken from that publish until the fake has accepted the write that
removes the cluster's nodes from the *last* upstream that had them: p50/p99
(goal p99 <= 1 s). After each kill the cluster is reported Ready again and its
nodes must all come back before the next kill.

Not measured here yet: the time from the kill of the kube-apiserver itself
(goal p99 <= 2 s with the registry's default probe settings), which needs the
registry service in the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.bus.catalog import API_APPLY, CLUSTERS, WORKS, health_subject
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.natsserver import EmbeddedNats
from foot_testenv.apisix_fake import ApisixFake
from foot_testenv.gateway_objects import cluster, route_document, work

DRAIN_GOAL_P99_S = 1.0
CLUSTER_NAMES = ("east", "west", "north")
ADDRESSES = {"east": "192.0.2.1", "west": "192.0.2.2", "north": "192.0.2.3"}
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
ADMIN_KEY = "bench-gateway-admin-key-0123456789"


def emit(metric: str, value: float, unit: str, goal: str) -> None:
    line = {"bench": "gateway", "metric": metric, "value": value, "unit": unit, "goal": goal}
    print(json.dumps(line), flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def wait_for(check: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the state changes in another task/process
            await asyncio.sleep(0.002)


class Watch:
    """Tracks, from the fake's write hook, which upstreams still hold a cluster's nodes."""

    def __init__(self, fake: ApisixFake) -> None:
        self.fake = fake
        self.address = ""
        self.holding: set[str] = set()
        self.drained_at: float | None = None
        fake.listeners.append(self._on_write)

    def start(self, address: str) -> None:
        self.address = address
        self.holding = {
            upstream_id
            for upstream_id, body in self.fake.objects("upstreams").items()
            if any(n["host"] == address for n in body["nodes"])
        }
        self.drained_at = None

    def _on_write(
        self, _method: str, resource: str, item: str, value: dict[str, Any] | None
    ) -> None:
        if resource != "upstreams" or item not in self.holding:
            return
        if value is None or not any(n["host"] == self.address for n in value["nodes"]):
            self.holding.discard(item)
            if not self.holding:
                self.drained_at = time.perf_counter()


def full(fake: ApisixFake, routes: int) -> bool:
    upstreams = fake.objects("upstreams")
    return len(upstreams) == routes and all(len(u["nodes"]) == 3 for u in upstreams.values())


async def health(bus: Bus, name: str, ready: str, sequence: int) -> None:
    event = ClusterHealthEvent(
        cluster=name,
        ready=ready,  # type: ignore[arg-type]
        reason="ProbeFailed" if ready != "True" else "ProbeSucceeded",
        observed_at=datetime.now(UTC),
        sequence=sequence,
    )
    await bus.publish(
        health_subject(name), event.model_dump_json().encode(), msg_id=event.message_id()
    )


async def setup(bus: Bus, routes: int) -> None:
    clusters = await bus.kv(CLUSTERS.name)
    works = await bus.kv(WORKS.name)
    for index, name in enumerate(CLUSTER_NAMES):
        member = cluster(name, gateway_address=ADDRESSES[name])
        await clusters.put(CLUSTER_KIND.key(None, name), member.to_json())
        for app in range(routes):
            item = work(name, f"app{app:03d}", ready=1 + index, node_port=30000 + app)
            await works.put(f"{name}.shop.app{app:03d}", item.to_json())
    documents = [
        route_document(f"app{app:03d}", backend={"service": f"app{app:03d}", "port": 80})
        for app in range(routes)
    ]
    body = orjson.dumps(ApiRequest(objects=documents).model_dump(mode="json", by_alias=True))
    reply = ApiReply.model_validate_json((await bus.request(API_APPLY, body, wait_seconds=60)).data)
    rejected = [r for r in reply.results if r.outcome == "rejected"]
    if reply.error is not None or rejected:
        raise SystemExit(f"routes refused: {reply.error or rejected[0].error}")


async def run(kills: int, routes: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedNats(data_dir=Path(folder) / "nats") as nats,
    ):
        key_file = Path(folder) / "apisix.key"
        key_file.write_text(ADMIN_KEY)
        key_file.chmod(0o600)
        async with ApisixFake(admin_key=ADMIN_KEY) as fake:
            service = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
                [sys.executable, "-m", "foot_gateway_sync", "--log-level", "WARNING"],
                env={
                    "PATH": "/usr/bin:/bin",
                    "OTEL_TRACES_EXPORTER": "none",
                    "FOOT_NATS_URL": nats.url,
                    "FOOT_APISIX_URLS": json.dumps([fake.url]),
                    "FOOT_APISIX_ADMIN_KEY_FILE": str(key_file),
                    "FOOT_RESYNC_SECONDS": "600",
                },
            )
            try:
                async with await Bus.connect(nats.url, "bench") as bus:
                    await bus.declare()
                    await measure(bus, fake, kills, routes)
            finally:
                service.terminate()
                service.wait(timeout=30)


async def measure(bus: Bus, fake: ApisixFake, kills: int, routes: int) -> None:
    for _ in range(200):  # the service process may still be starting
        try:
            await setup(bus, routes)
            break
        except Exception:  # noqa: BLE001 - retried until the service answers
            await asyncio.sleep(0.1)
    await wait_for(lambda: full(fake, routes), within=60)
    say(f"{routes} routes, 3 clusters, every upstream has 3 nodes; {kills} kills")
    watch = Watch(fake)
    drains: list[float] = []
    sequences = dict.fromkeys(CLUSTER_NAMES, 0)
    for kill in range(kills):
        victim = CLUSTER_NAMES[kill % len(CLUSTER_NAMES)]
        watch.start(ADDRESSES[victim])
        sequences[victim] += 1
        started = time.perf_counter()
        await health(bus, victim, "False", sequences[victim])
        await wait_for(lambda: watch.drained_at is not None, within=30)
        assert watch.drained_at is not None  # noqa: S101 - narrowed by the wait
        drains.append(watch.drained_at - started)
        sequences[victim] += 1
        await health(bus, victim, "True", sequences[victim])
        await wait_for(lambda: full(fake, routes), within=30)
    p50, p99 = percentile(drains, 0.5), percentile(drains, 0.99)
    say("")
    say(f"{'metric':<44}{'value':>12}  goal")
    say(f"{'health event -> nodes gone, p50':<44}{p50 * 1000:>10.1f}ms")
    say(f"{'health event -> nodes gone, p99':<44}{p99 * 1000:>10.1f}ms  <= 1000 ms")
    say(f"{'health event -> nodes gone, max':<44}{max(drains) * 1000:>10.1f}ms")
    emit("health_event_to_nodes_gone_p50", round(p50, 4), "s", "")
    emit("health_event_to_nodes_gone_p99", round(p99, 4), "s", f"<= {DRAIN_GOAL_P99_S}")
    emit("upstreams_drained_per_kill", routes, "upstreams", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--routes", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.kills, args.routes))


if __name__ == "__main__":
    main()

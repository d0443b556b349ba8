"""Benchmark: a member cluster fails -> its nodes are gone from APISIX (gateway-sync drain).

    .venv/bin/python bench/gateway.py [--kills 20] [--routes 50] \
        [--real-kills 20] [--real-routes 10] [--keep-logs DIR]

Two parts, both with a real nats-server, FOOT's services each in its own process
(`python -m foot_<service>`) and the strict fake APISIX Admin API in this process (it
timestamps every write it accepts).

1. Stand-in health events (`--kills`, `--routes`; skipped with `--kills 0`): gateway-sync
   alone. Three clusters are written into the `clusters` bucket, one work per cluster
   and route (ready replicas, NodePort Service) into `works`, and `--routes`
   GatewayRoutes applied through the API; so every upstream has three nodes. Then
   `--kills` times one cluster (in turn) is reported NotReady by a ClusterHealthEvent
   published here on `foot.events.health.<cluster>`, and the time is taken from that
   publish until the fake has accepted the write that removes the cluster's nodes from
   the *last* upstream that had them (goal p99 <= 1 s). It is reported Ready again and
   its nodes must all come back before the next kill.

2. The real registry in the loop (`--real-kills`, `--real-routes`; skipped with
   `--real-kills 0`): three real kube-apiservers (etcd + kube-apiserver from the test
   environment), push-joined by the registry; the scheduler, the dispatcher and
   gateway-sync run too, all with their default settings. `--real-routes` apps
   (Deployment + NodePort Service, a Karmada PropagationPolicy duplicating them on the
   three members and tolerating an unreachable/not-ready member for an hour, so the drain
   is the gateway's own doing and not a rescheduling; an OverridePolicy pinning a NodePort
   per member, as the three API servers share one host) and their GatewayRoutes are
   applied through the API; this process plays the kubelet (readiness through the status
   subresource). Then `--real-kills` times one member (in turn) has its kube-apiserver
   SIGKILLed; figures: from the kill, and from the registry's health event (its
   `observedAt`), until the cluster's nodes are gone from every upstream (goals p99 <= 2 s
   and <= 1 s). The API server is restarted and every node must be back before the next
   kill.

Prints a table, then one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from benchkit import (
    ApiRefusedError,
    Figure,
    HealthEvents,
    api_answers,
    api_apply,
    ask_registry,
    bench_credentials,
    bench_nats_auth,
    percentile,
    report,
    say,
    until_answers,
    wait_for,
)
from foot.bus import Bus
from foot.catalog import CLUSTERS, WORKS, health_subject, registry_subject
from foot.health import ReadyStatus
from foot.kinds import KINDS
from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE
from foot.kube import KubeClient, KubeTarget
from foot_cli.natsserver import EmbeddedNats
from foot_testenv.apisix_fake import ApisixFake
from foot_testenv.clusters import KubeCluster, KubeClusters
from foot_testenv.gateway_objects import NAMESPACE, cluster, health_event, route_document, work
from foot_testenv.kube_binaries import find_binaries
from foot_testenv.member_objects import report_deployment_ready

BENCH = "gateway"
DRAIN_GOAL_P99_S = 1.0
KILL_GOAL_P99_S = 2.0
CLUSTER_NAMES = ("east", "west", "north")
ADDRESSES = {"east": "192.0.2.1", "west": "192.0.2.2", "north": "192.0.2.3"}
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
ADMIN_KEY = "bench-gateway-admin-key-0123456789"
FIRST_NODE_PORT = 30000
TOLERATION_SECONDS = 3600
RESTART_TIMEOUT_S = 120.0

Node = dict[str, Any]


def spread(prefix: str, samples: list[float], goal: float | None) -> list[Figure]:
    return [
        Figure(f"{prefix}_p50", percentile(samples, 0.5), "s"),
        Figure(f"{prefix}_p99", percentile(samples, 0.99), "s", goal),
        Figure(f"{prefix}_max", max(samples), "s"),
    ]


class Watch:
    """Tracks, from the fake's write hook, which upstreams still hold a cluster's nodes."""

    def __init__(self, fake: ApisixFake) -> None:
        self.fake = fake
        self.victim: Callable[[Node], bool] = lambda _node: False
        self.holding: set[str] = set()
        self.drained_at: float | None = None
        """perf_counter() of the write that removed the last of the victim's nodes."""
        self.drained_wall: float | None = None
        """The same moment as time.time() (to compare with timestamps of other processes)."""
        fake.listeners.append(self._on_write)

    def start(self, victim: Callable[[Node], bool]) -> None:
        self.victim = victim
        self.holding = {
            upstream_id
            for upstream_id, body in self.fake.objects("upstreams").items()
            if any(victim(n) for n in body["nodes"])
        }
        if not self.holding:
            raise RuntimeError("no upstream holds the victim's nodes: nothing to drain")
        self.drained_at = self.drained_wall = None

    def _on_write(
        self, _method: str, resource: str, item: str, value: dict[str, Any] | None
    ) -> None:
        if resource != "upstreams" or item not in self.holding:
            return
        if value is None or not any(self.victim(n) for n in value["nodes"]):
            self.holding.discard(item)
            if not self.holding:
                self.drained_at = time.perf_counter()
                self.drained_wall = time.time()


def host_is(host: str, node: Node) -> bool:
    return bool(node["host"] == host)


def address_in(addresses: set[str], node: Node) -> bool:
    return f"{node['host']}:{node['port']}" in addresses


def full(fake: ApisixFake, routes: int) -> bool:
    upstreams = fake.objects("upstreams")
    return len(upstreams) == routes and all(len(u["nodes"]) == 3 for u in upstreams.values())


class Services:
    """FOOT services, each in its own process, logging into files."""

    def __init__(self, nats: EmbeddedNats, home: Path) -> None:
        self.nats = nats
        self.home = home
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []

    def start(self, module: str, **settings: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}
        env |= {
            "OTEL_TRACES_EXPORTER": "none",
            "FOOT_HOME": str(self.home),
            "FOOT_NATS_URL": self.nats.url,
            "FOOT_SECRET_KEY_FILE": str(self.home / "secret.key"),
            "FOOT_LOG_LEVEL": "WARNING",
        }
        env |= {f"FOOT_{name.upper()}": value for name, value in settings.items()}
        log = (self.home / f"{module}.log").open("wb")
        self.logs.append(log)
        self.processes[module] = subprocess.Popen(
            [sys.executable, "-m", module], stdout=log, stderr=subprocess.STDOUT, env=env
        )

    def check(self) -> None:
        for module, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited ({process.returncode}): {self.tail(module)}")

    def tail(self, module: str, lines: int = 15) -> str:
        text = (self.home / f"{module}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()


@contextlib.contextmanager
def services(nats: EmbeddedNats, home: Path) -> Iterator[Services]:
    running = Services(nats, home)
    try:
        yield running
    except BaseException:
        for module in running.processes:
            say(f"--- last lines of {module}:\n{running.tail(module)}")
        raise
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def bench_bus(nats: EmbeddedNats) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats.url, "bench", credentials_file=bench_credentials()) as bus:
        await bus.declare()
        yield bus


def gateway_settings(fake: ApisixFake, home: Path) -> dict[str, str]:
    key_file = home / "apisix.key"
    key_file.write_text(ADMIN_KEY)
    key_file.chmod(0o600)
    return {"apisix_urls": json.dumps([fake.url]), "apisix_admin_key_file": str(key_file)}


# ---- part 1: stand-in health events -------------------------------------------------------


async def health(bus: Bus, name: str, ready: ReadyStatus, sequence: int) -> None:
    event = health_event(name, ready, sequence)
    await bus.publish(
        health_subject(name), event.model_dump_json().encode(), msg_id=event.message_id()
    )


async def stand_in_setup(bus: Bus, routes: int) -> None:
    clusters = await bus.kv(CLUSTERS.name)
    works = await bus.kv(WORKS.name)
    for index, name in enumerate(CLUSTER_NAMES):
        member = cluster(name, gateway_address=ADDRESSES[name])
        await clusters.put(CLUSTER_KIND.key(None, name), member.to_json())
        for app in range(routes):
            item = work(name, f"app{app:03d}", ready=1 + index, node_port=30000 + app)
            await works.put(f"{name}.shop.app{app:03d}", item.to_json())
    await api_apply(
        bus,
        [
            route_document(f"app{app:03d}", backend={"service": f"app{app:03d}", "port": 80})
            for app in range(routes)
        ],
    )


async def stand_in(kills: int, routes: int) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="foot-bench-gateway-") as folder,
        EmbeddedNats(data_dir=Path(folder) / "nats", auth=bench_nats_auth(Path(folder))) as nats,
    ):
        home = Path(folder)
        async with ApisixFake(admin_key=ADMIN_KEY) as fake:
            with services(nats, home) as running:
                # Only the event path: no periodic full resync during the measurement.
                running.start(
                    "foot_gateway_sync", resync_seconds="600", **gateway_settings(fake, home)
                )
                async with bench_bus(nats) as bus:
                    for _ in range(200):  # the service process may still be starting
                        try:
                            await stand_in_setup(bus, routes)
                            break
                        except ApiRefusedError:
                            raise  # answered, and refused: retrying will not help
                        except Exception:  # noqa: BLE001 - retried until the service answers
                            running.check()
                            await asyncio.sleep(0.1)
                    await wait_for(lambda: full(fake, routes), within=60)
                    say(f"{routes} routes, 3 clusters, every upstream has 3 nodes; {kills} kills")
                    watch = Watch(fake)
                    drains: list[float] = []
                    sequences = dict.fromkeys(CLUSTER_NAMES, 0)
                    for kill in range(kills):
                        victim = CLUSTER_NAMES[kill % len(CLUSTER_NAMES)]
                        address = ADDRESSES[victim]
                        watch.start(functools.partial(host_is, address))
                        sequences[victim] += 1
                        started = time.perf_counter()
                        await health(bus, victim, "False", sequences[victim])
                        await wait_for(lambda: watch.drained_at is not None, within=30)
                        assert watch.drained_at is not None  # noqa: S101 - narrowed by the wait
                        drains.append(watch.drained_at - started)
                        sequences[victim] += 1
                        await health(bus, victim, "True", sequences[victim])
                        await wait_for(lambda: full(fake, routes), within=30)
    return [
        *spread("health_event_to_nodes_gone", drains, DRAIN_GOAL_P99_S),
        Figure("upstreams_drained_per_kill", routes, "upstreams"),
    ]


# ---- part 2: the real registry, real kube-apiservers ---------------------------------------


def node_port(app: int, member: int) -> int:
    return FIRST_NODE_PORT + app * 3 + member


def settled(fake: ApisixFake, routes: int) -> bool:
    """Every app's upstream has its three nodes at the NodePorts pinned per member (not one
    a member allocated before the OverridePolicy reached the dispatcher)."""
    wanted = {f"127.0.0.1:{node_port(app, m)}" for app in range(routes) for m in range(3)}
    found = {
        f"{n['host']}:{n['port']}" for u in fake.objects("upstreams").values() for n in u["nodes"]
    }
    return full(fake, routes) and found == wanted


def app_documents(app: int, names: list[str]) -> list[dict[str, Any]]:
    """App `app`: Deployment + NodePort Service on every member, a NodePort per member, and
    its GatewayRoute. The policy tolerates an unreachable or not-ready member for an hour:
    the replicas stay there while it is down, only the gateway reacts."""
    name = f"app{app:03d}"
    labels = {"app": name}
    tolerations = [
        {
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": TOLERATION_SECONDS,
        }
        for key in (TAINT_UNREACHABLE, TAINT_NOT_READY)
    ] + [
        {"key": key, "operator": "Exists", "effect": "NoSchedule"}
        for key in (TAINT_UNREACHABLE, TAINT_NOT_READY)
    ]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"type": "NodePort", "selector": labels, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "resourceSelectors": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    {"apiVersion": "v1", "kind": "Service", "name": name},
                ],
                "placement": {
                    "clusterAffinity": {"clusterNames": names},
                    "clusterTolerations": tolerations,
                    "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
                },
            },
        },
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "OverridePolicy",
            "metadata": {"name": f"{name}-node-ports", "namespace": NAMESPACE},
            "spec": {
                "resourceSelectors": [{"apiVersion": "v1", "kind": "Service", "name": name}],
                "overrideRules": [
                    {
                        "targetCluster": {"clusterNames": [member]},
                        "overriders": {
                            "plaintext": [
                                {
                                    "path": "/spec/ports/0/nodePort",
                                    "operator": "add",
                                    "value": node_port(app, index),
                                }
                            ]
                        },
                    }
                    for index, member in enumerate(names)
                ],
            },
        },
        route_document(name, backend={"service": name, "port": 80}),
    ]


async def unsettled(bus: Bus, fake: ApisixFake, members: list[KubeCluster], routes: int) -> None:
    """Why the apps did not settle: each app's upstream nodes against the NodePorts pinned,
    what the Service works report, and what each member holds."""
    upstreams = fake.objects("upstreams")
    nodes = {f"{n['host']}:{n['port']}" for u in upstreams.values() for n in u["nodes"]}
    say(f"not settled: {len(upstreams)} upstreams of {routes}")
    works = {
        e.key: e.value for e in await (await bus.kv(WORKS.name)).entries() if e.value is not None
    }
    for app in range(routes):
        for index, member in enumerate(members):
            wanted = f"127.0.0.1:{node_port(app, index)}"
            if wanted in nodes:
                continue
            key = next(
                (k for k in works if k.startswith(member.name) and f"app{app:03d}-service" in k),
                None,
            )
            status = json.loads(works[key]).get("status") if key else None
            kube = KubeClient(
                KubeTarget.from_kubeconfig(
                    member.kubeconfig_path.read_text(), base_dir=member.kubeconfig_path.parent
                )
            )
            try:
                found = await kube.get(f"/api/v1/namespaces/{NAMESPACE}/services/app{app:03d}")
                port = found["spec"]["ports"][0].get("nodePort")
            except Exception as exc:  # noqa: BLE001 - a diagnosis prints whatever it finds
                port = f"({exc})"
            finally:
                await kube.close()
            say(
                f"  app{app:03d} on {member.name}: wanted {wanted}, member has {port}, "
                f"work {key}: {json.dumps(status)[:600]}"
            )
    say(f"  upstream nodes: {sorted(nodes)}")


async def kubelet(kube: KubeClient, app: int) -> bool:
    """Every replica of the app's Deployment ready, written through the status subresource
    (the members have no kubelet); False while the Deployment is not there yet."""
    return await report_deployment_ready(
        kube, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/app{app:03d}"
    )


async def both_answer(bus: Bus) -> None:
    """The registry answers and the API front door answers (the services are up)."""
    await bus.request(registry_subject("collect"), b"{}", wait_seconds=1)
    await api_answers(bus)


async def with_registry(kills: int, routes: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="foot-bench-gateway-real-") as folder:
        home = Path(folder)
        say(f"starting 3 real kube-apiservers (etcd + kube-apiserver) in {home}")
        with (
            KubeClusters.start_blocking(3, workdir=home / "kube", binaries=find_binaries()) as kube,
            EmbeddedNats(data_dir=home / "nats", auth=bench_nats_auth(home)) as nats,
        ):
            async with ApisixFake(admin_key=ADMIN_KEY) as fake:
                with services(nats, home) as running:
                    running.start("foot_registry")
                    running.start("foot_scheduler")
                    running.start("foot_dispatcher")
                    running.start("foot_gateway_sync", **gateway_settings(fake, home))
                    async with bench_bus(nats) as bus:
                        return await kill_members(bus, running, fake, list(kube), kills, routes)


async def kill_members(  # noqa: PLR0917 - the bench's one long measurement
    bus: Bus,
    running: Services,
    fake: ApisixFake,
    members: list[KubeCluster],
    kills: int,
    routes: int,
) -> list[Figure]:
    events = HealthEvents(clock=time.time)  # wall clock: compared with the events' observedAt
    await events.listen(bus)
    await until_answers(functools.partial(both_answer, bus), within=60, check=running.check)
    names = [m.name for m in members]
    since = time.time()
    for member in members:
        await ask_registry(
            bus, "join", {"name": member.name, "kubeconfig": member.kubeconfig_path.read_text()}
        )
    for name in names:
        await events.first(name, lambda ready: ready == "True", since, 60)
    say(f"registry joined {', '.join(names)} (push); all Ready")
    await api_apply(bus, [d for app in range(routes) for d in app_documents(app, names)])
    kubes = [
        KubeClient(
            KubeTarget.from_kubeconfig(
                m.kubeconfig_path.read_text(), base_dir=m.kubeconfig_path.parent
            )
        )
        for m in members
    ]
    try:
        async with asyncio.timeout(180):
            for kube in kubes:
                for app in range(routes):
                    while not await kubelet(kube, app):
                        running.check()
                        await asyncio.sleep(0.2)
    finally:
        for kube in kubes:
            await kube.close()
    try:
        await wait_for(lambda: settled(fake, routes), within=120)
    except TimeoutError:
        await unsettled(bus, fake, members, routes)
        raise
    say(f"{routes} apps over 3 members, every upstream has 3 nodes; {kills} kube-apiserver kills")
    watch = Watch(fake)
    from_kill: list[float] = []
    from_event: list[float] = []
    detection: list[float] = []
    for kill in range(kills):
        index = kill % len(members)
        member = members[index]
        victim = {f"127.0.0.1:{node_port(app, index)}" for app in range(routes)}
        watch.start(functools.partial(address_in, victim))
        await asyncio.sleep(random.uniform(0.0, 0.5))  # land anywhere in a probe period
        killed = time.time()
        await member.kill()
        await wait_for(lambda: watch.drained_at is not None, within=30)
        _, event = await events.first(member.name, lambda ready: ready != "True", killed, 30)
        assert watch.drained_wall is not None  # noqa: S101 - narrowed by the wait
        observed = event.observed_at.timestamp()
        from_kill.append(watch.drained_wall - killed)
        from_event.append(watch.drained_wall - observed)
        detection.append(observed - killed)
        say(
            f"  kill {kill + 1:2d} ({member.name}): event {observed - killed:5.2f}s after the "
            f"kill (Ready={event.ready}), nodes gone {from_event[-1] * 1000:6.1f}ms after "
            f"the event, {from_kill[-1]:5.2f}s after the kill"
        )
        restarted = time.time()
        await member.start()
        await events.first(member.name, lambda ready: ready == "True", restarted, RESTART_TIMEOUT_S)
        await wait_for(lambda: settled(fake, routes), within=60)
    return [
        *spread("real_health_event_to_nodes_gone", from_event, DRAIN_GOAL_P99_S),
        *spread("real_kill_to_nodes_gone", from_kill, KILL_GOAL_P99_S),
        *spread("real_kill_to_health_event", detection, None),
        Figure("real_upstreams_drained_per_kill", routes, "upstreams"),
    ]


# ---- main ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    figures: list[Figure] = []
    if args.kills:
        say("part 1: stand-in health events (gateway-sync alone)")
        figures += await stand_in(args.kills, args.routes)
    if args.real_kills:
        say("part 2: the real registry, scheduler, dispatcher, real kube-apiservers")
        figures += await with_registry(args.real_kills, args.real_routes)
    report(BENCH, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="stand-in NotReady events")
    parser.add_argument("--routes", type=int, default=50, help="routes in the stand-in part")
    parser.add_argument(
        "--real-kills", type=int, default=20, help="kills of a real member's kube-apiserver"
    )
    parser.add_argument("--real-routes", type=int, default=10, help="apps on the real members")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

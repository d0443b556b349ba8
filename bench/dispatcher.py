"""Benchmark the dispatcher against 100 simulated member clusters.

    .venv/bin/python bench/dispatcher.py [--clusters 100] [--bindings 100] [--bursts 3]
        [--samples 200] [--phases throughput,latency,isolation]

Four processes: nats-server, the simulator (`python -m foot_sim`), the dispatcher
(`python -m foot_dispatcher`) and this one, which stands in for the registry (Cluster
objects, sealed credentials) and the scheduler (templates, ResourceBindings) by writing
their buckets, and watches the `works` bucket: a work counts as applied when its status
carries the hash of its spec, which the dispatcher writes only after the member answered
the server-side apply.

1. throughput: `--bindings` ConfigMap templates, each bound to every cluster, written at
   once; works applied per second = works / time from the first binding write to the last
   work applied. The first burst ("cold") opens the member connections it needs (TLS
   handshakes included); `--bursts` more run on open connections, and the steady figure is
   their median (each burst is printed too, and each process's CPU share over them): on a
   shared 2-core VM one burst's figure varies by 10-20 % from run to run. A fixed piece of
   Python work is timed before and after (`reference_work_*`): the machine's speed then;
2. latency: one binding at a time to one cluster; time from the binding write (the policy
   event as the dispatcher sees it) to the work applied, p50/p99;
3. isolation: the first ten clusters; bindings to all ten at a steady rate; the latency of
   the nine others with every cluster healthy and with the first one partitioned
   (connections accepted, requests never answered), side by side. The two conditions take
   turns in segments of 10 s (two request timeouts of the partitioned member each), in the
   order healthy, partitioned, partitioned, healthy (each first as often as second), so that
   the machine's speed, which drifts over minutes on a shared VM, weighs on both alike;
   after a partitioned segment the first cluster is healed and its backlog applied before
   the next segment starts.

Prints a table, then one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from benchkit import (
    Figure,
    bench_credentials,
    bench_nats_auth,
    cpu_seconds,
    percentile,
    report,
    spawn_simulator,
)
from foot.bus import Bus
from foot.catalog import BINDINGS, CLUSTER_CREDENTIALS, CLUSTERS, TEMPLATES, WORKS
from foot.cluster_credential import ClusterCredential
from foot.credentials import CredentialStore
from foot.kinds import KINDS
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats

START_TIMEOUT_SECONDS = 180.0
PHASE_TIMEOUT_SECONDS = 300.0
THROUGHPUT_GOAL = 2000.0
LATENCY_P99_GOAL_MS = 250.0
ISOLATION_GOAL_PERCENT = 20.0
ISOLATION_CLUSTERS = 10
ISOLATION_RATE_PER_SECOND = 10.0
ISOLATION_SEGMENTS = 2
"""Segments per condition (healthy, partitioned), taking turns."""
ISOLATION_SEGMENT_SECONDS = 10
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
CONFIGMAP_KIND = KINDS.lookup("v1", "ConfigMap")
LOG = os.environ.get("FOOT_BENCH_DISPATCHER_LOG")
"""Set to a path to keep the dispatcher's log."""
PIDS: dict[str, int] = {}
"""Processes whose CPU use is reported for the throughput phase."""
PROFILE = os.environ.get("FOOT_BENCH_PROFILE")
"""Set to a path to run the dispatcher under cProfile, counting CPU time (for looking into
it, not for figures)."""
PROFILED = """
import cProfile, runpy, sys, time
profile = cProfile.Profile(time.process_time)
sys.argv = ["foot_dispatcher"]
profile.enable()
try:
    runpy.run_module("foot_dispatcher", run_name="__main__")
finally:
    profile.disable()
    profile.dump_stats("{path}")
"""


@dataclass(frozen=True, slots=True)
class SimCluster:
    name: str
    server: str
    token: str


class AppliedWatch:
    """Follows the works bucket; remembers when each work was first seen applied."""

    def __init__(self) -> None:
        self.applied_at: dict[str, float] = {}
        self._waiters: list[tuple[set[str], asyncio.Future[None]]] = []

    def on_entry(self, key: str, value: bytes | None) -> None:
        if value is None or key in self.applied_at:
            return
        work = orjson.loads(value)
        status = work.get("status") or {}
        applied_hash = status.get("appliedHash")
        manifests = status.get("manifests") or []
        if applied_hash == work["spec"].get("manifestsHash") and all(
            m.get("applied") for m in manifests
        ):
            self.applied_at[key] = time.perf_counter()
            for keys, future in self._waiters:
                keys.discard(key)
                if not keys and not future.done():
                    future.set_result(None)

    async def wait(self, keys: set[str], within: float = PHASE_TIMEOUT_SECONDS) -> None:
        pending = {k for k in keys if k not in self.applied_at}
        if not pending:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((pending, future))
        try:
            await asyncio.wait_for(future, within)
        finally:
            self._waiters.remove((pending, future))


async def follow_works(bus: Bus, watch: AppliedWatch) -> None:
    store = await bus.kv(WORKS.name)
    async with store.watch() as events:
        async for entry in events:
            if entry is not None:
                watch.on_entry(entry.key, entry.value)


async def start_simulator(
    clusters: int, directory: Path
) -> tuple[asyncio.subprocess.Process, list[SimCluster], str, str]:
    process, stdout = await spawn_simulator(
        clusters, directory, "--nodes", "1", "--admin-port", "0"
    )
    members: list[SimCluster] = []
    async with asyncio.timeout(START_TIMEOUT_SECONDS):
        while True:
            line = (await stdout.readline()).decode().rstrip("\n")
            name, url, path = line.split("\t")
            text = await asyncio.to_thread(Path(path).read_text)
            if name == "admin":
                return process, members, url, text.strip()
            kubeconfig = yaml.safe_load(text)
            members.append(SimCluster(name, url, kubeconfig["users"][0]["user"]["token"]))


class Stand:
    """Stands in for the registry and the scheduler."""

    def __init__(self, bus: Bus, namespace: str) -> None:
        self.bus = bus
        self.namespace = namespace

    async def join(self, members: list[SimCluster], ca_pem: str, key_file: Path) -> None:
        clusters = await self.bus.kv(CLUSTERS.name)
        credentials = CredentialStore(
            await self.bus.kv(CLUSTER_CREDENTIALS.name), SecretBox.from_file(key_file)
        )
        for member in members:
            document = {
                "apiVersion": "cluster.foot.dev/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": member.name},
                "spec": {"syncMode": "Push", "apiEndpoint": member.server},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            await clusters.put(CLUSTER_KIND.key(None, member.name), orjson.dumps(document))
            await credentials.put(
                ClusterCredential(
                    cluster=member.name,
                    server=member.server,
                    token=member.token,  # type: ignore[arg-type]
                    ca_pem=ca_pem,
                )
            )

    async def template(self, name: str) -> None:
        document = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": {"payload": name * 4},
        }
        key = CONFIGMAP_KIND.key(self.namespace, name)
        await (await self.bus.kv(TEMPLATES.name)).put(key, KINDS.parse(document).to_json())

    async def bind(self, name: str, clusters: list[str]) -> list[str]:
        """Write the binding; returns the work keys it will produce."""
        binding_name = f"{name}-configmap"
        document = {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": binding_name, "namespace": self.namespace},
            "spec": {
                "resource": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "namespace": self.namespace,
                    "name": name,
                },
                "clusters": [{"name": c} for c in sorted(clusters)],
            },
        }
        key = BINDING_KIND.key(self.namespace, binding_name)
        await (await self.bus.kv(BINDINGS.name)).put(key, orjson.dumps(document))
        return [f"{c}.{key}" for c in clusters]


def reference_ms() -> float:
    """CPU time of a fixed piece of Python work (dicts, strings, JSON, like a control plane's):
    how fast this machine is right now. On a shared VM it changes by up to 2x over minutes,
    and every figure here with it; printed beside the figures to read them by."""
    started = time.process_time()
    for n in range(20_000):
        labels = {"app": str(n % 7), "tier": "web"}
        document: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{n}", "labels": labels},
            "data": {"payload": "x" * (n % 50)},
        }
        orjson.loads(orjson.dumps(document))
        sorted(labels.items())
    return (time.process_time() - started) * 1000


async def throughput(
    stand: Stand, watch: AppliedWatch, members: list[str], bindings: int, prefix: str = "tp"
) -> Figure:
    names = [f"{prefix}-{n:04d}" for n in range(bindings)]
    for name in names:
        await stand.template(name)
    started = time.perf_counter()
    keys: set[str] = set()
    for name in names:
        keys |= set(await stand.bind(name, members))
    await watch.wait(keys)
    elapsed = max(watch.applied_at[k] for k in keys) - started
    rate = round(len(keys) / elapsed)
    return Figure("works_applied_per_s", rate, "works/s", THROUGHPUT_GOAL, higher_is_better=True)


async def latency(
    stand: Stand, watch: AppliedWatch, members: list[str], samples: int
) -> list[float]:
    durations = []
    for n in range(samples):
        name = f"lat-{n:04d}"
        await stand.template(name)
        started = time.perf_counter()
        (key,) = await stand.bind(name, [members[n % len(members)]])
        await watch.wait({key}, within=30)
        durations.append((watch.applied_at[key] - started) * 1000)
    return durations


async def steady(
    stand: Stand, watch: AppliedWatch, members: list[str], prefix: str, count: int
) -> tuple[list[float], set[str]]:
    """Bindings to every member at a steady rate; (latencies of the works of members[1:],
    keys of members[0]'s works, which may still be waiting)."""
    for n in range(count):
        await stand.template(f"{prefix}-{n:04d}")
    started: dict[str, float] = {}
    interval = 1.0 / ISOLATION_RATE_PER_SECOND
    begin = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, begin + n * interval - time.perf_counter()))
        moment = time.perf_counter()
        for key in await stand.bind(f"{prefix}-{n:04d}", members):
            started[key] = moment
    first = {k for k in started if k.startswith(f"{members[0]}.")}
    watched = set(started) - first
    await watch.wait(watched)
    return [(watch.applied_at[k] - started[k]) * 1000 for k in watched], first


async def set_fault(admin_url: str, token: str, cluster: str, mode: str) -> None:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.put(f"{admin_url}/{cluster}/fault", json={"mode": mode}) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"setting fault {mode} on {cluster}: {await response.text()}")


PHASES = ("throughput", "latency", "isolation")


async def run(
    clusters: int, bindings: int, bursts: int, samples: int, only: set[str]
) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="foot-dispatch-bench-") as folder:
        directory = Path(folder)
        key_file = directory / "secret.key"
        SecretBox.from_file(key_file, create=True)
        sim, members, admin_url, admin_token = await start_simulator(clusters, directory / "sim")
        names = [m.name for m in members]
        try:
            with EmbeddedNats(
                data_dir=directory / "nats", auth=bench_nats_auth(directory / "home")
            ) as nats:
                env = {
                    **os.environ,
                    "FOOT_NATS_URL": nats.url,
                    "FOOT_HOME": os.environ["FOOT_HOME"],
                    "FOOT_SECRET_KEY_FILE": str(key_file),
                    "FOOT_LOG_LEVEL": "WARNING",
                    "FOOT_ADMIN_PORT": "0",
                    "FOOT_MEMBER_TIMEOUT_SECONDS": "5",
                }
                async with await Bus.connect(
                    nats.url, "bench", credentials_file=bench_credentials()
                ) as bus:
                    await bus.declare()
                    stand = Stand(bus, f"bench-{uuid.uuid4().hex[:6]}")
                    await stand.join(members, (directory / "sim" / "ca.crt").read_text(), key_file)
                    command = ["-c", PROFILED.format(path=PROFILE)] if PROFILE else []
                    dispatcher = await asyncio.create_subprocess_exec(
                        sys.executable, *(command or ["-m", "foot_dispatcher"]), env=env,
                        stderr=(Path(LOG) if LOG else directory / "dispatcher.log").open("wb"),
                    )  # fmt: skip
                    PIDS.update(
                        dispatcher=dispatcher.pid,
                        simulator=sim.pid,
                        nats=nats.process.pid if nats.process else 0,
                        bench=os.getpid(),
                    )
                    watch = AppliedWatch()
                    follower = asyncio.create_task(follow_works(bus, watch), name="follow-works")
                    try:
                        figures = await phases(
                            stand, watch, names, bindings, bursts, samples, admin_url,
                            admin_token, only,
                        )  # fmt: skip
                    finally:
                        follower.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await follower
                        dispatcher.terminate()
                        await dispatcher.wait()
        finally:
            sim.terminate()
            await sim.wait()
    return figures


async def phases(  # noqa: PLR0917 - the benchmark's whole configuration
    stand: Stand,
    watch: AppliedWatch,
    names: list[str],
    bindings: int,
    bursts: int,
    samples: int,
    admin_url: str,
    admin_token: str,
    only: set[str],
) -> list[Figure]:
    # Warm up: connections and discovery to every member, outside the figures.
    await stand.template("warm")
    await watch.wait(set(await stand.bind("warm", names)))
    figures: list[Figure] = []
    figures.append(Figure("reference_work_before", round(reference_ms(), 1), "ms"))
    if "throughput" in only:
        # The first burst opens most member connections (up to cluster_concurrency per
        # member, each a TLS handshake on both sides); a control plane keeps them open, so
        # the second burst is the steady figure. Both are printed.
        cold = await throughput(stand, watch, names, bindings, prefix="cold")
        figures.append(replace(cold, metric="works_applied_per_s_cold", goal=None))
        before = {name: cpu_seconds(pid) for name, pid in PIDS.items()}
        started = time.perf_counter()
        runs = [
            await throughput(stand, watch, names, bindings, prefix=f"tp{n}") for n in range(bursts)
        ]
        wall = time.perf_counter() - started
        figures.append(replace(runs[0], value=round(statistics.median(r.value for r in runs))))
        figures += [
            replace(r, metric=f"works_applied_per_s_burst{n + 1}", goal=None)
            for n, r in enumerate(runs)
        ]
        for name, pid in PIDS.items():
            share = (cpu_seconds(pid) - before[name]) / wall * 100
            figures.append(Figure(f"throughput_cpu_{name}", round(share), "% of a core"))
    figures.append(Figure("reference_work_after_throughput", round(reference_ms(), 1), "ms"))
    if "latency" in only:
        figures += await latency_figures(stand, watch, names, samples)
    if "isolation" in only:
        figures += await isolation_figures(stand, watch, names, admin_url, admin_token)
    return figures


async def latency_figures(
    stand: Stand, watch: AppliedWatch, names: list[str], samples: int
) -> list[Figure]:
    durations = await latency(stand, watch, names, samples)
    return [
        Figure("event_to_applied_p50", round(statistics.median(durations), 1), "ms"),
        Figure(
            "event_to_applied_p99", round(percentile(durations, 0.99), 1), "ms", LATENCY_P99_GOAL_MS
        ),
    ]


async def isolation_figures(
    stand: Stand, watch: AppliedWatch, names: list[str], admin_url: str, admin_token: str
) -> list[Figure]:
    figures: list[Figure] = []
    ten = names[:ISOLATION_CLUSTERS]
    count = int(ISOLATION_RATE_PER_SECOND * ISOLATION_SEGMENT_SECONDS)
    samples: dict[str, list[float]] = {"healthy": [], "partitioned": []}
    order = ["healthy", "partitioned"]
    for segment in range(ISOLATION_SEGMENTS * 2):
        condition = order[(segment + segment // 2) % 2]  # healthy, partitioned, partitioned, ...
        prefix = f"{condition}-{segment}"
        if condition == "healthy":
            durations, _ = await steady(stand, watch, ten, prefix, count)
        else:
            await set_fault(admin_url, admin_token, ten[0], "partitioned")
            try:
                durations, held = await steady(stand, watch, ten, prefix, count)
            finally:
                await set_fault(admin_url, admin_token, ten[0], "healthy")
            await watch.wait(held)  # its backlog is not the next segment's load
        samples[condition] += durations
    healthy, partitioned = samples["healthy"], samples["partitioned"]
    for name, values in samples.items():
        figures += [
            Figure(f"nine_{name}_p50", round(statistics.median(values), 1), "ms"),
            Figure(f"nine_{name}_p99", round(percentile(values, 0.99), 1), "ms"),
        ]
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        base, hit = percentile(healthy, fraction), percentile(partitioned, fraction)
        change = (hit - base) / base * 100
        figures.append(
            Figure(f"nine_{label}_change", round(change, 1), "%", ISOLATION_GOAL_PERCENT)
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument(
        "--bindings", type=int, default=100, help="bindings to every cluster per burst"
    )
    parser.add_argument(
        "--bursts", type=int, default=3, help="steady bursts (the figure is their median)"
    )
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated phases to run (default all)"
    )
    args = parser.parse_args()
    only = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not only or only - set(PHASES):
        parser.error(f"--phases: choose among {', '.join(PHASES)}")
    if args.bursts < 1:
        parser.error("--bursts: at least 1")
    figures = asyncio.run(run(args.clusters, args.bindings, args.bursts, args.samples, only))
    report("dispatcher", figures, f"{args.clusters} simulated clusters")


if __name__ == "__main__":
    main()

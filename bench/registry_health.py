"""Benchmark the registry's health detection: from a cluster's death to the health event.

    .venv/bin/python bench/registry_health.py [--kills 20] [--partitions 20] \
        [--clusters 100] [--jitter-seconds 60]

1. A real kube-apiserver (etcd + kube-apiserver from the test environment) is joined
   (push) and SIGKILLed `--kills` times; each time the figure is the time from the
   kill to the Ready=Unknown event on `foot.events.health.<cluster>`, then it is
   restarted and must turn Ready again.
2. `--clusters` simulated clusters are joined (the simulator runs in this process, in
   a thread of its own; the registry in its own process). One at a time, `--partitions`
   of them are partitioned (connections accepted, never answered) and healed: time
   from the partition to the event.
3. For `--jitter-seconds`, one simulated cluster answers every request late by a
   random 0-1 s (its `slow` latency redrawn every 100 ms): the number of health
   transitions of that cluster must be zero. Over the same window the registry's CPU
   share (of one core) and RSS are read from /proc.

Prints a table, then one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchkit import (
    Figure,
    HealthEvents,
    ask_registry,
    bench_credentials,
    bench_nats_auth,
    cpu_seconds,
    percentile,
    report,
    rss_mb,
    until_answers,
)
from foot.bus import Bus
from foot.catalog import registry_subject
from foot.natsauth import NatsAuthHome
from foot_cli.natsserver import EmbeddedNats
from foot_sim.background import BackgroundSimulator
from foot_sim.faults import FaultMode
from foot_sim.simulator import Simulator
from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import find_binaries

BENCH = "registry_health"
DETECTION_GOAL_S = 3.0
JITTER_MAX_MS = 1000.0
JITTER_STEP_S = 0.1
READY_TIMEOUT_S = 60.0


async def arrival(
    events: HealthEvents, cluster: str, ready: str, after: float, within: float
) -> float:
    """Arrival time of the first event of `cluster` with `ready`, arriving after `after`."""
    arrived, _ = await events.first(cluster, lambda seen: seen == ready, after, within)
    return arrived


def start_registry(nats: EmbeddedNats, home: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "foot_registry",
        "--nats-url", nats.url,
        "--secret-key-file", str(home / "secret.key"),
        "--nats-credentials-file", str(NatsAuthHome(home).creds("registry")),
        "--nats-account-signing-seed-file", str(NatsAuthHome(home).signing_seed),
        "--log-level", "WARNING",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}
    log = (home / "registry.log").open("wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


async def registry_answers(bus: Bus) -> None:
    await bus.request(registry_subject("collect"), b"{}", wait_seconds=1)


async def real_kills(bus: Bus, events: HealthEvents, kills: int, workdir: Path) -> list[float]:
    samples: list[float] = []
    with KubeClusters.start_blocking(
        1, workdir=workdir / "kube", binaries=find_binaries()
    ) as clusters:
        member = clusters[0]
        since = time.monotonic()
        await ask_registry(
            bus, "join", {"name": "real", "kubeconfig": member.kubeconfig_path.read_text()}
        )
        await arrival(events, "real", "True", since, READY_TIMEOUT_S)
        for round_number in range(kills):
            await asyncio.sleep(random.uniform(0.0, 0.5))  # land anywhere in a probe period
            await member.kill()
            killed = time.monotonic()
            detected = await arrival(events, "real", "Unknown", killed, 30)
            samples.append(detected - killed)
            print(f"  kill {round_number + 1:2d}: {detected - killed:.2f}s", flush=True)
            await member.start()
            await arrival(events, "real", "True", detected, READY_TIMEOUT_S)
        await ask_registry(
            bus, "unjoin", {"name": "real", "kubeconfig": member.kubeconfig_path.read_text()}
        )
    return samples


async def simulated(
    bus: Bus,
    events: HealthEvents,
    registry: subprocess.Popen[bytes],
    *,
    clusters: int,
    partitions: int,
    jitter_seconds: float,
) -> list[Figure]:
    figures: list[Figure] = []
    simulator = Simulator(clusters, nodes_per_cluster=3, simulate_workloads=False)
    with BackgroundSimulator(simulator) as sim:
        started = time.monotonic()
        gate = asyncio.Semaphore(16)

        async def join(endpoint: Any) -> None:
            async with gate:
                body = {
                    "name": endpoint.name,
                    "kubeconfig": endpoint.kubeconfig_path.read_text(),
                    "useGivenCredential": True,
                }
                await ask_registry(bus, "join", body)

        await asyncio.gather(*(join(e) for e in sim.endpoints))
        joined = time.monotonic() - started
        print(f"  joined {clusters} simulated clusters in {joined:.1f}s", flush=True)
        figures.append(Figure(f"join_{clusters}_simulated", joined, "s"))
        await asyncio.sleep(3)  # probes settle, first status collections done

        samples: list[float] = []
        for round_number in range(partitions):
            name = sim.endpoints[round_number % clusters].name
            await asyncio.sleep(random.uniform(0.0, 0.5))
            await sim.run_async(functools.partial(simulator.set_fault, name, FaultMode.PARTITIONED))
            cut = time.monotonic()
            detected = await arrival(events, name, "Unknown", cut, 30)
            samples.append(detected - cut)
            print(f"  partition {round_number + 1:2d} ({name}): {detected - cut:.2f}s", flush=True)
            await sim.run_async(functools.partial(simulator.set_fault, name, FaultMode.HEALTHY))
            await arrival(events, name, "True", detected, READY_TIMEOUT_S)
        if samples:
            figures += [
                Figure("partition_detection_p50", percentile(samples, 0.5), "s", DETECTION_GOAL_S),
                Figure("partition_detection_p99", percentile(samples, 0.99), "s", DETECTION_GOAL_S),
            ]

        # Jitter on the last cluster, CPU and RSS of the registry over the same window.
        victim = sim.endpoints[-1].name
        window_start = time.monotonic()
        cpu_before = cpu_seconds(registry.pid)
        rss_samples: list[float] = []
        rng = random.Random(7)
        while time.monotonic() - window_start < jitter_seconds:
            latency = rng.uniform(1.0, JITTER_MAX_MS)
            await sim.run_async(
                functools.partial(simulator.set_fault, victim, FaultMode.SLOW, latency_ms=latency)
            )
            rss_samples.append(rss_mb(registry.pid))
            await asyncio.sleep(JITTER_STEP_S)
        await sim.run_async(lambda: simulator.set_fault(victim, FaultMode.HEALTHY))
        elapsed = time.monotonic() - window_start
        cpu_share = (cpu_seconds(registry.pid) - cpu_before) / elapsed * 100
        transitions = events.count(victim, window_start)
        print(
            f"  jitter {elapsed:.0f}s on {victim}: {transitions} transition(s); "
            f"registry CPU {cpu_share:.1f}% of a core, RSS {max(rss_samples):.0f} MB",
            flush=True,
        )
        figures += [
            Figure("jitter_1s_transitions", transitions, "count", 0),
            Figure(f"registry_cpu_share_{clusters}_clusters", cpu_share, "% of one core"),
            Figure(f"registry_rss_{clusters}_clusters", max(rss_samples), "MB"),
        ]
    return figures


async def main(args: argparse.Namespace) -> None:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="foot-bench-registry-") as folder:
        home = Path(folder)
        with EmbeddedNats(data_dir=home / "nats", auth=bench_nats_auth(home)) as nats:
            registry = start_registry(nats, home)
            try:
                async with await Bus.connect(
                    nats.url, "bench", credentials_file=bench_credentials()
                ) as bus:
                    await bus.declare()
                    events = HealthEvents()
                    await events.listen(bus)
                    await until_answers(functools.partial(registry_answers, bus), within=30)
                    if args.kills:
                        print(f"real kube-apiserver, {args.kills} kills:", flush=True)
                        samples = await real_kills(bus, events, args.kills, home)
                        goal = DETECTION_GOAL_S
                        figures += [
                            Figure("kill_detection_p50", percentile(samples, 0.5), "s", goal),
                            Figure("kill_detection_p99", percentile(samples, 0.99), "s", goal),
                        ]
                    print(f"{args.clusters} simulated clusters:", flush=True)
                    figures += await simulated(
                        bus,
                        events,
                        registry,
                        clusters=args.clusters,
                        partitions=args.partitions,
                        jitter_seconds=args.jitter_seconds,
                    )
            finally:
                registry.terminate()
                registry.wait(30)
    report(BENCH, figures)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kills of a real kube-apiserver")
    parser.add_argument("--partitions", type=int, default=20, help="partitions of simulated ones")
    parser.add_argument("--clusters", type=int, default=100, help="simulated clusters joined")
    parser.add_argument(
        "--jitter-seconds", type=float, default=60.0, help="length of the 0-1 s jitter window"
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))

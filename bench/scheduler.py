"""Benchmark: the scheduler's pure core, the service end to end, and failover latency.

    .venv/bin/python bench/scheduler.py [--clusters 100] [--decisions 2000]
                                        [--templates 10000] [--failovers 3]

1. Pure core: one snapshot of `--clusters` clusters (10 regions, 3 zones, 2
   providers, capacity reported); `--decisions` decisions per division mode
   (Duplicated, StaticWeighted, DynamicWeighted, Aggregated) with a spread
   constraint and a toleration, replicas varying. Prints decisions/s and
   p50/p99 decision time per mode (goal p99 <= 5 ms).
2. End to end: a real nats-server, the scheduler service in its own process
   (`python -m foot_scheduler`), the clusters written into the `clusters`
   bucket; `--templates` Deployments submitted through `foot.api.apply` (batches
   of 250, 8 requests in flight) with ten ClusterPropagationPolicies (one per region, Divided). Time
   from the first submission until every template has a scheduled binding:
   bindings/s (goal >= 1,000/s).
3. Failover: `--failovers` times, a ClusterHealthEvent (Ready=False) for the
   cluster holding most templates; the time from the publish until each binding
   placed there no longer names it, p50/p99 and the last one (goal <= 500 ms for
   every affected binding), measured by a watcher on the bindings bucket.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchkit import (
    Figure,
    api_answers,
    api_apply,
    bench_credentials,
    bench_nats_auth,
    cpu_seconds,
    percentile,
    report,
    say,
    until_answers,
    wait_for,
)
from foot.bus import Bus
from foot.catalog import BINDINGS, CLUSTERS, health_subject
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.clusters import Cluster
from foot.kinds.policies import PropagationSpec
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.core import ClusterSnapshot, Workload, schedule
from foot_scheduler.core.workload import PODS

CORE_GOAL_P99_MS = 5.0
E2E_GOAL_PER_SECOND = 1000.0
FAILOVER_GOAL_MS = 500.0
REGIONS = 10
SUBMITTERS = 8
"""API requests (of 250 templates each) in flight at once, as several clients would."""
CLUSTER_KIND = KINDS.lookup("cluster.foot.dev/v1alpha1", "Cluster")


def cluster_document(index: int) -> dict[str, Any]:
    name = f"member{index:03d}"
    region = f"r{index % REGIONS}"
    return {
        "apiVersion": "cluster.foot.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": {"region": region, "tier": f"t{index % 3}"}},
        "spec": {
            "syncMode": "Push",
            "apiEndpoint": f"https://{name}:6443",
            "provider": f"p{index % 2}",
            "region": region,
            "zone": f"{region}-z{index % 3}",
        },
        "status": {
            "apiEnablements": [
                {
                    "groupVersion": "apps/v1",
                    "resources": [{"name": "deployments", "kind": "Deployment"}],
                }
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ],
            "resourceSummary": {
                "allocatable": {"cpu": str(64 + index % 7 * 8), "memory": "256Gi", "pods": "1100"},
                "allocated": {"cpu": str(index % 13), "memory": "16Gi", "pods": "40"},
            },
        },
    }


# --- 1. the pure core ----------------------------------------------------------------------

PLACEMENTS: dict[str, dict[str, Any]] = {
    "Duplicated": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}},
    "StaticWeighted": {
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {
                "staticWeightList": [
                    {"targetCluster": {"labelSelector": {"matchLabels": {"tier": t}}}, "weight": w}
                    for t, w in (("t0", 3), ("t1", 2), ("t2", 1))
                ]
            },
        }
    },
    "DynamicWeighted": {
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {"dynamicWeight": "AvailableReplicas"},
        }
    },
    "Aggregated": {
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Aggregated",
        }
    },
}  # fmt: skip


def core_spec(mode: str) -> PropagationSpec:
    placement = {
        "clusterAffinity": {"fieldSelector": {"matchExpressions": [
            {"key": "provider", "operator": "In", "values": ["p0", "p1"]}]}},
        "clusterTolerations": [
            {"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}],
        "spreadConstraints": [
            {"spreadByField": "region", "minGroups": 2, "maxGroups": 5},
            {"spreadByField": "cluster", "minGroups": 2},
        ],
        **PLACEMENTS[mode],
    }  # fmt: skip
    return PropagationSpec.model_validate(
        {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": placement,
        }
    )


def bench_core(clusters: int, decisions: int) -> list[Figure]:
    snapshot = ClusterSnapshot.of(
        [Cluster.model_validate(cluster_document(i)) for i in range(clusters)],
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    say(f"\n1. pure core: {clusters} clusters, {decisions} decisions per division mode")
    say(f"   {'mode':<16} {'decisions/s':>12} {'p50 ms':>8} {'p99 ms':>8}")
    figures: list[Figure] = []
    for mode in PLACEMENTS:
        spec = core_spec(mode)
        times: list[float] = []
        for i in range(decisions):
            workload = Workload(
                api_version="apps/v1",
                kind="Deployment",
                namespace="default",
                name=f"w{i}",
                replicas=5 + i % 40,
                requests={"cpu": 500, "memory": 256 * 2**20 * 1000, PODS: 1000},
            )
            started = time.perf_counter()
            result = schedule(workload, spec, snapshot)
            times.append((time.perf_counter() - started) * 1000)
            assert result.schedulable, result.reason  # noqa: S101 - the bench would be void
        rate = len(times) / (sum(times) / 1000)
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        say(f"   {mode:<16} {rate:>12.0f} {p50:>8.3f} {p99:>8.3f}")
        figures += [
            Figure(f"core_{mode}_decisions_per_second", round(rate, 1), "1/s"),
            Figure(f"core_{mode}_p50", round(p50, 4), "ms"),
            Figure(f"core_{mode}_p99", round(p99, 4), "ms", CORE_GOAL_P99_MS),
        ]
    return figures


# --- 2 and 3: through the service ----------------------------------------------------------


def deployment(index: int) -> dict[str, Any]:
    name = f"app-{index:05d}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "bench",
            "labels": {"app": name, "region": f"r{index % REGIONS}"},
        },
        "spec": {
            "replicas": 2 + index % 9,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def region_policy(region: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy.foot.dev/v1alpha1",
        "kind": "ClusterPropagationPolicy",
        "metadata": {"name": f"region-r{region}"},
        "spec": {
            "resourceSelectors": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "labelSelector": {"matchLabels": {"region": f"r{region}"}},
                }
            ],
            "placement": {
                "clusterAffinity": {"labelSelector": {"matchLabels": {"region": f"r{region}"}}},
                "replicaScheduling": {"replicaSchedulingType": "Divided"},
            },
        },
    }


class BindingWatch:
    """Every binding as it changes (watched on the bucket), with a callback per change."""

    def __init__(self) -> None:
        self.clusters: dict[str, frozenset[str]] = {}
        self.placed = 0
        """Bindings naming at least one cluster (kept up to date, so waiting is O(1))."""
        self.on_change: Callable[[str, frozenset[str], int], None] | None = None

    async def run(self, bus: Bus, ready: asyncio.Event) -> None:
        store = await bus.kv(BINDINGS.name)
        async with store.watch(">") as events:
            async for entry in events:
                if entry is None:
                    ready.set()
                    continue
                before = self.clusters.get(entry.key)
                self.placed -= 1 if before else 0
                if entry.value is None:
                    self.clusters.pop(entry.key, None)
                    continue
                document = orjson.loads(entry.value)
                names = frozenset(c["name"] for c in document["spec"]["clusters"])
                self.clusters[entry.key] = names
                self.placed += 1 if names else 0
                if self.on_change is not None:
                    self.on_change(entry.key, names, time.perf_counter_ns())


async def bench_service(clusters: int, templates: int, failovers: int) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory() as folder,
        EmbeddedNats(data_dir=Path(folder), auth=bench_nats_auth(Path(folder) / "home")) as nats,
    ):
        service = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
            [
                sys.executable,
                "-m",
                "foot_scheduler",
                "--nats-url",
                nats.url,
                "--log-level",
                "WARNING",
            ],
            env={
                "OTEL_TRACES_EXPORTER": "none",
                "PATH": "/usr/bin:/bin",
                "FOOT_HOME": os.environ["FOOT_HOME"],  # its NATS user (bench_nats_auth)
            },
        )
        try:
            async with await Bus.connect(
                nats.url, "bench", credentials_file=bench_credentials()
            ) as bus:
                await bus.declare()
                return await run_service_bench(bus, clusters, templates, failovers, service.pid)
        finally:
            service.terminate()
            service.wait(timeout=30)


def cpu_seconds_if_known(pid: int) -> float | None:
    """The process's CPU time so far; None where /proc is missing (not Linux)."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


async def run_service_bench(
    bus: Bus, clusters: int, templates: int, failovers: int, pid: int
) -> list[Figure]:
    store = await bus.kv(CLUSTERS.name)
    for i in range(clusters):
        document = cluster_document(i)
        name = document["metadata"]["name"]
        await store.put(CLUSTER_KIND.key(None, name), orjson.dumps(document))
    watch = BindingWatch()
    synced = asyncio.Event()
    watcher = asyncio.create_task(watch.run(bus, synced), name="bench:bindings")
    try:
        await synced.wait()
        # The service answers the front door once it runs.
        await until_answers(functools.partial(api_answers, bus), within=60)
        await api_apply(bus, [region_policy(r) for r in range(REGIONS)])

        say(f"\n2. end to end: {templates} Deployments through foot.api.apply, {clusters} clusters")
        cpu_before = cpu_seconds_if_known(pid)
        started = time.perf_counter()
        batch = 250
        in_flight = asyncio.Semaphore(SUBMITTERS)

        async def submit(first: int) -> None:
            async with in_flight:
                last = min(first + batch, templates)
                await api_apply(bus, [deployment(i) for i in range(first, last)])

        async with asyncio.TaskGroup() as group:
            for first in range(0, templates, batch):
                group.create_task(submit(first), name=f"bench:submit:{first}")
        submitted = time.perf_counter() - started
        await wait_for(lambda: watch.placed >= templates, 300, interval=0.005)
        elapsed = time.perf_counter() - started
        rate = templates / elapsed
        say(f"   submitted in {submitted:.2f}s, every binding written after {elapsed:.2f}s")
        say(f"   {rate:.0f} bindings/s end to end (goal >= {E2E_GOAL_PER_SECOND:.0f})")
        rate_figure = Figure("e2e_bindings_per_second", round(rate, 1), "1/s", E2E_GOAL_PER_SECOND)
        figures = [replace(rate_figure, higher_is_better=True)]
        cpu_after = cpu_seconds_if_known(pid)
        if cpu_before is not None and cpu_after is not None:
            # CPU the scheduler process spent per template (ingest + decision + binding write):
            # steadier than wall-clock rates on a shared machine.
            per_binding = (cpu_after - cpu_before) * 1000 / templates
            say(f"   scheduler process CPU: {per_binding:.3f} ms per template (ingest + binding)")
            figures.append(Figure("e2e_scheduler_cpu_per_binding", round(per_binding, 4), "ms"))
        return figures + await bench_failover(bus, watch, failovers)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


class Tracker:
    """When each affected binding stopped naming the failed cluster."""

    def __init__(self, victim: str, affected: set[str]) -> None:
        self.victim = victim
        self.pending = set(affected)
        self.latencies: list[float] = []
        self.published = 0

    def changed(self, key: str, names: frozenset[str], at_ns: int) -> None:
        if key in self.pending and self.victim not in names:
            self.pending.discard(key)
            self.latencies.append((at_ns - self.published) / 1e6)


async def bench_failover(bus: Bus, watch: BindingWatch, failovers: int) -> list[Figure]:
    say(f"\n3. failover: {failovers} cluster(s) turn NotReady, one at a time")
    say(f"   {'cluster':<10} {'bindings':>8} {'p50 ms':>8} {'p99 ms':>8} {'last ms':>8}")
    all_latencies: list[float] = []
    lasts: list[float] = []
    down: set[str] = set()
    for sequence in range(1, failovers + 1):
        load: dict[str, int] = {}
        for names in watch.clusters.values():
            for name in names:
                load[name] = load.get(name, 0) + 1
        victim = max((n for n in load if n not in down), key=lambda n: (load[n], n))
        affected = {key for key, names in watch.clusters.items() if victim in names}
        tracker = Tracker(victim, affected)
        watch.on_change = tracker.changed
        event = ClusterHealthEvent(
            cluster=victim,
            ready="False",
            previous="True",
            reason="ProbeFailed",
            observed_at=datetime.now(UTC),
            sequence=sequence,
        )
        tracker.published = time.perf_counter_ns()
        await bus.publish(
            health_subject(victim),
            event.model_dump_json(by_alias=True).encode(),
            msg_id=event.message_id(),
        )
        await wait_for(lambda tracker=tracker: not tracker.pending, 60, interval=0.005)  # type: ignore[misc]
        latencies = tracker.latencies
        watch.on_change = None
        down.add(victim)
        p50, p99, last = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
        say(f"   {victim:<10} {len(affected):>8} {p50:>8.1f} {p99:>8.1f} {last:>8.1f}")
        all_latencies += latencies
        lasts.append(last)
    p50, p99 = percentile(all_latencies, 0.5), percentile(all_latencies, 0.99)
    say(
        f"   all: {len(all_latencies)} bindings, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"worst last {max(lasts):.1f} ms (goal <= {FAILOVER_GOAL_MS:.0f} ms)"
    )
    return [
        Figure("failover_bindings_changed", len(all_latencies), "bindings"),
        Figure("failover_p50", round(p50, 2), "ms", FAILOVER_GOAL_MS),
        Figure("failover_p99", round(p99, 2), "ms", FAILOVER_GOAL_MS),
        Figure("failover_all_changed", round(max(lasts), 2), "ms", FAILOVER_GOAL_MS),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--templates", type=int, default=10000)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--core-only", action="store_true", help="skip the service benchmarks")
    args = parser.parse_args()
    figures = bench_core(args.clusters, args.decisions)
    if not args.core_only:
        figures += asyncio.run(bench_service(args.clusters, args.templates, args.failovers))
    report("scheduler", figures)


if __name__ == "__main__":
    main()

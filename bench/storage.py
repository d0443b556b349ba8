"""Storage benchmark: block StorageClaim -> Ready with Secret + StorageClass in the members.

Starts its own real single-machine Ceph (testenv/ceph/up.sh), two real kube-apiservers
(the test environment's), an embedded nats-server, and the registry (push join of both
members), the scheduler, the dispatcher and the storage service in this process. Then it
submits block claims for both members one at a time through FOOT's front door and
measures, from the apply reply:

* ready: the claim's status says Ready (pool, CRUSH rule, image, one key per member made,
  Secrets, StorageClass and policies accepted by FOOT);
* delivered: ready, and each member's own Secret and the StorageClass are present in
  every member (read through the members' APIs) -- the issue's figure (goal p99 <= 10 s).

It also prints where the time goes: the median time from the apply reply to each
provisioning step being recorded (the storage service's progress events), and from Ready
to the objects being in the members.

    .venv/bin/python bench/storage.py [--claims 20] [--clusters 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from benchkit import (
    Figure,
    ask_registry,
    bench_credentials,
    bench_nats_auth,
    percentile,
    report,
    say,
)
from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, STORAGE_CLAIMS
from foot.kinds import KINDS
from foot.kinds.storage import StorageClaim
from foot.kube import KubeClient, KubeTarget
from foot.kube.errors import KubeNotFoundError
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService, DispatcherSettings
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_scheduler.service import SchedulerService, SchedulerSettings
from foot_storage.service import EVENT_PREFIX, StorageService, StorageSettings
from foot_testenv.ceph import CephCluster, start_ceph, stop_ceph
from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import find_binaries

GOAL_P99_SECONDS = 10.0
NAMESPACE = "bench"
POLL_SECONDS = 0.02
CLAIMS = KINDS.lookup("storage.foot.dev/v1alpha1", "StorageClaim")


class Steps:
    """Arrival times of the storage service's progress events, per claim."""

    def __init__(self) -> None:
        self.done: dict[str, list[tuple[str, float]]] = defaultdict(list)

    async def on_event(self, msg: Any) -> None:
        event = orjson.loads(msg.data)
        if event.get("event") == "step-done":
            name = str(event["claim"]).split("/", 1)[1]
            step = str(event.get("completed") or event["step"])
            self.done[name].append((step.split(":", 1)[0], time.perf_counter()))


class Members:
    """The members as their admin: is the claim's Secret and StorageClass there?"""

    def __init__(self, kube: KubeClusters) -> None:
        self.clients = {
            c.name: KubeClient(
                KubeTarget.from_kubeconfig(
                    c.kubeconfig_path.read_text(), base_dir=c.kubeconfig_path.parent
                )
            )
            for c in kube
        }

    async def _exists(self, client: KubeClient, path: str) -> bool:
        try:
            await client.get(path)
        except KubeNotFoundError:
            return False
        return True

    async def delivered(self, claim: str) -> bool:
        for cluster, client in self.clients.items():
            secret = f"/api/v1/namespaces/{NAMESPACE}/secrets/{claim}-ceph-{cluster}"
            storage_class = f"/apis/storage.k8s.io/v1/storageclasses/foot-{NAMESPACE}-{claim}"
            if not await self._exists(client, secret):
                return False
            if not await self._exists(client, storage_class):
                return False
        return True

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


async def one_claim(
    bus: Bus, members: Members, number: int, clusters: list[str]
) -> tuple[str, float, float, float]:
    """(name, apply time, ready after, delivered after)."""
    name = f"bench-{number}"
    document = {
        "apiVersion": "storage.foot.dev/v1alpha1",
        "kind": "StorageClaim",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "block",
            "size": "64Mi",
            "placement": {"failureDomain": "osd", "replicas": 1},
            "access": {"clusters": clusters},
        },
    }
    body = orjson.dumps(ApiRequest(objects=[document]).model_dump(mode="json", by_alias=True))
    started = time.perf_counter()
    reply = ApiReply.model_validate_json((await bus.request(API_APPLY, body)).data)
    if reply.results[0].outcome != "created":
        raise RuntimeError(f"claim refused: {reply}")
    store = await bus.kv(STORAGE_CLAIMS.name)
    key = CLAIMS.key(NAMESPACE, name)
    ready: float | None = None
    delivered: float | None = None
    async with asyncio.timeout(120):
        while ready is None or delivered is None:
            if ready is None:
                entry = await store.get(key)
                if entry is not None and entry.value is not None:
                    claim = StorageClaim.model_validate_json(entry.value, by_alias=True)
                    phase = claim.status.phase if claim.status else None
                    if phase == "Ready":
                        ready = time.perf_counter() - started
                    elif phase == "Failed":
                        raise RuntimeError(f"{name} failed: {claim.status and claim.status.reason}")
            if delivered is None and await members.delivered(name):
                delivered = time.perf_counter() - started
            await asyncio.sleep(POLL_SECONDS)
    return name, started, ready, max(ready, delivered)


@contextlib.asynccontextmanager
async def foot(
    nats: EmbeddedNats, ceph: CephCluster, workdir: Path
) -> AsyncIterator[StorageSettings]:
    key_file = workdir / "secret.key"
    SecretBox.from_file(key_file, create=True)
    password = workdir / "dashboard.pass"
    password.write_text(ceph.dashboard_password)
    password.chmod(0o600)
    common: dict[str, Any] = {
        "nats_url": nats.url,
        "secret_key_file": key_file,
        "shutdown_deadline_seconds": 2.0,
        "log_format": "text",
    }
    storage = StorageSettings(
        **common,
        ceph_dashboard_url=ceph.dashboard_url,
        ceph_dashboard_user=ceph.dashboard_user,
        ceph_dashboard_password_file=password,
        ceph_conf=ceph.conf,
        ceph_keyring=ceph.admin_keyring,
        rgw_endpoint=ceph.rgw_url,
    )
    async with (
        RegistryService(RegistrySettings(**common, member_namespace="foot-bench")),
        SchedulerService(SchedulerSettings(**common)),
        DispatcherService(DispatcherSettings(**common)),
        StorageService(storage),
    ):
        yield storage


async def measure(
    claims: int, kube: KubeClusters, ceph: CephCluster, workdir: Path
) -> tuple[list[tuple[float, float]], Steps]:
    steps = Steps()
    with EmbeddedNats(data_dir=workdir / "nats", auth=bench_nats_auth(workdir / "home")) as nats:
        async with (
            foot(nats, ceph, workdir),
            await Bus.connect(
                nats.url, "bench-storage", credentials_file=bench_credentials()
            ) as bus,
        ):
            for member in kube:
                join = {"name": member.name, "kubeconfig": member.kubeconfig_path.read_text()}
                await ask_registry(bus, "join", join)
            say(f"registry joined {', '.join(m.name for m in kube)} (push)")
            await bus.client.subscribe(f"{EVENT_PREFIX}.{NAMESPACE}.>", cb=steps.on_event)
            members = Members(kube)
            names = [m.name for m in kube]
            try:
                # Warm-up: dashboard login, first templates, members' namespace.
                _, _, ready, delivered = await one_claim(bus, members, 0, names)
                say(f"warm-up claim: ready {ready:.2f}s, delivered {delivered:.2f}s")
                results = []
                for number in range(1, claims + 1):
                    name, started, ready, delivered = await one_claim(bus, members, number, names)
                    steps.done[name].insert(0, ("apply", started))
                    results.append((ready, delivered))
                    say(f"  {name}: ready {ready:.2f}s, delivered {delivered:.2f}s")
                return results, steps
            finally:
                await members.close()


def step_profile(steps: Steps, claims: int) -> dict[str, float]:
    """Median seconds from the apply reply to each step being recorded (steps run side by
    side where they do not depend on each other, so these are points on a timeline)."""
    spans: dict[str, list[float]] = defaultdict(list)
    for number in range(1, claims + 1):
        events = steps.done.get(f"bench-{number}", [])
        if not events or events[0][0] != "apply":
            continue
        applied = events[0][1]
        for step, at in events[1:]:
            spans[step].append(at - applied)
    return {step: statistics.median(values) for step, values in spans.items()}


async def run(claims: int, cluster_count: int, workdir: Path) -> None:
    started = time.perf_counter()
    with KubeClusters.start_blocking(
        cluster_count, workdir=workdir / "kube", binaries=find_binaries()
    ) as kube:
        say(f"{cluster_count} kube-apiservers up in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        ceph = await asyncio.to_thread(start_ceph, workdir / "ceph")
        say(f"ceph up in {time.perf_counter() - started:.1f}s")
        try:
            results, steps = await measure(claims, kube, ceph, workdir)
        finally:
            await asyncio.to_thread(stop_ceph, workdir / "ceph")
    show_results(results, step_profile(steps, claims), claims, cluster_count)


def show_results(
    results: list[tuple[float, float]], profile: dict[str, float], claims: int, clusters: int
) -> None:
    ready = [r for r, _ in results]
    delivered = [d for _, d in results]
    say(f"\nwhere the time goes (median seconds from apply to each step recorded, {claims} claims)")
    for step, seconds in sorted(profile.items(), key=lambda item: item[1]):
        say(f"  {step:<12} {seconds:>6.2f}")
    gaps = [d - r for r, d in results]
    say(f"  {'ready->members':<12} {statistics.median(gaps):>6.2f}")
    say(f"\nblock claim -> Ready / -> Secret+StorageClass in {clusters} members ({claims} claims)")
    say(f"{'figure':<10} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'goal p99 s':>11}")
    for label, values in (("ready", ready), ("delivered", delivered)):
        say(
            f"{label:<10} {statistics.median(values):>8.2f} {percentile(values, 0.99):>8.2f} "
            f"{max(values):>8.2f} {GOAL_P99_SECONDS:>11.1f}"
        )
    figures = [
        Figure("claim_ready_p50", statistics.median(ready), "s"),
        Figure("claim_ready_p99", percentile(ready, 0.99), "s"),
        Figure("claim_delivered_p50", statistics.median(delivered), "s"),
        Figure("claim_delivered_p99", percentile(delivered, 0.99), "s", GOAL_P99_SECONDS),
    ]
    report("storage", figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20, help="block claims to measure")
    parser.add_argument("--clusters", type=int, default=2, help="member clusters per claim")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="foot-bench-storage-") as folder:
        asyncio.run(run(args.claims, args.clusters, Path(folder)))


if __name__ == "__main__":
    main()

"""Storage benchmark: block StorageClaim -> Ready, on a real single-machine Ceph.

Starts its own Ceph (testenv/ceph/up.sh), an embedded nats-server, the
scheduler (owner of templates and policies) and the storage service, then
submits block claims one at a time through FOOT's front door and measures
from the apply reply until the claim's status is Ready, i.e. pool, CRUSH rule,
image and one key per cluster made, and the Secret, StorageClass and policies
accepted and stored by FOOT (delivery into member clusters is the dispatcher's
part and is not in this figure yet).

    .venv/bin/python bench/storage.py [--claims 20] [--clusters 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.bus.catalog import API_APPLY, STORAGE_CLAIMS
from foot.kinds import KINDS
from foot.kinds.storage import StorageClaim
from foot.natsserver import EmbeddedNats
from foot.runtime.settings import ServiceSettings
from foot_scheduler.service import SchedulerService
from foot_storage.service import StorageService, StorageSettings
from foot_testenv.ceph import start_ceph, stop_ceph

GOAL_P99_SECONDS = 10.0
CLAIMS = KINDS.lookup("storage.foot.dev/v1alpha1", "StorageClaim")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(round(fraction * (len(ordered) - 1)), len(ordered) - 1)
    return ordered[index]


async def one_claim(bus: Bus, number: int, clusters: list[str]) -> float:
    name = f"bench-{number}"
    document = {
        "apiVersion": "storage.foot.dev/v1alpha1",
        "kind": "StorageClaim",
        "metadata": {"name": name, "namespace": "bench"},
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
    key = CLAIMS.key("bench", name)
    async with asyncio.timeout(120):
        while True:
            entry = await store.get(key)
            if entry is not None and entry.value is not None:
                claim = StorageClaim.model_validate_json(entry.value, by_alias=True)
                if claim.status is not None and claim.status.phase == "Ready":
                    return time.perf_counter() - started
                if claim.status is not None and claim.status.phase == "Failed":
                    raise RuntimeError(f"{name} failed: {claim.status.reason}")
            await asyncio.sleep(0.005)


async def run(claims: int, cluster_count: int, workdir: Path) -> list[float]:
    started = time.perf_counter()
    ceph = await asyncio.to_thread(start_ceph, workdir / "ceph")
    print(f"ceph up in {time.perf_counter() - started:.1f}s")
    try:
        password = workdir / "dashboard.pass"
        password.write_text(ceph.dashboard_password)
        password.chmod(0o600)
        with EmbeddedNats(data_dir=workdir / "nats") as nats:
            settings = StorageSettings(
                nats_url=nats.url,
                secret_key_file=workdir / "secret.key",
                ceph_dashboard_url=ceph.dashboard_url,
                ceph_dashboard_user=ceph.dashboard_user,
                ceph_dashboard_password_file=password,
                ceph_conf=ceph.conf,
                ceph_keyring=ceph.admin_keyring,
                rgw_endpoint=ceph.rgw_url,
            )
            async with (
                SchedulerService(ServiceSettings(nats_url=nats.url)),
                StorageService(settings),
                await Bus.connect(nats.url, "bench-storage") as bus,
            ):
                clusters = [f"member-{n + 1}" for n in range(cluster_count)]
                await one_claim(bus, 0, clusters)  # warm-up: dashboard login, CLI caches
                return [await one_claim(bus, n + 1, clusters) for n in range(claims)]
    finally:
        await asyncio.to_thread(stop_ceph, workdir / "ceph")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20, help="block claims to measure")
    parser.add_argument("--clusters", type=int, default=2, help="member clusters per claim")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="foot-bench-storage-") as folder:
        durations = asyncio.run(run(args.claims, args.clusters, Path(folder)))
    p50, p99 = statistics.median(durations), percentile(durations, 0.99)
    print(f"\nblock claim -> Ready ({args.claims} claims, {args.clusters} clusters each)")
    print(f"{'p50 s':>8} {'p99 s':>8} {'max s':>8} {'goal p99 s':>11}")
    print(f"{p50:>8.2f} {p99:>8.2f} {max(durations):>8.2f} {GOAL_P99_SECONDS:>11.1f}")
    for metric, value in (("claim_ready_p50", p50), ("claim_ready_p99", p99)):
        line = {
            "bench": "storage",
            "metric": metric,
            "value": round(value, 3),
            "unit": "s",
            "goal": GOAL_P99_SECONDS if metric.endswith("p99") else None,
        }
        print(json.dumps(line))


if __name__ == "__main__":
    main()

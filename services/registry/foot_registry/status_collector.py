"""Status collection: version, APIs, nodes and resources of every cluster.

Push clusters: collected every status period while Ready (`status:collect`), with
bounded concurrency and a timeout each, and on demand (`foot.registry.collect`).
Pull clusters: their agents send theirs in heartbeats; it is stored as it comes.
Which clusters are due and what a collection changes are the core's (`core.status`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from foot.cluster_status import CollectedStatus
from foot.errors import FootError, NotFoundError
from foot.kinds.clusters import Cluster
from foot.kube import KubeTarget, KubeUnavailableError
from foot.kube.collect import collect_status
from foot.objects import utc_now
from foot_registry.core.status import due_for_status, with_collected, with_pushed_status
from foot_registry.parts import RegistryParts
from foot_registry.routing import Track

log = logging.getLogger(__name__)


class StatusCollector:
    def __init__(
        self,
        *,
        parts: RegistryParts,
        track: Track,
    ) -> None:
        self.parts = parts
        self.track = track

    def take_from_agent(self, name: str, status: CollectedStatus, sent_at: datetime) -> None:
        """Store the status an agent sent (in a task: the heartbeat is not held up)."""
        self.track(
            self._write(name, lambda c: with_collected(c, status, sent_at)),
            f"registry:status:{name}",
        )

    async def _write(self, name: str, change: Callable[[Cluster], Cluster]) -> None:
        try:
            await self.parts.store.update(name, change)
        except FootError as exc:
            log.warning("could not store the status of %s: %s", name, exc)

    async def _collect(self, name: str) -> Cluster | None:
        credential = await self.parts.credentials.get(name)
        timeout = self.parts.settings.status_timeout_seconds
        async with (
            asyncio.timeout(timeout),
            self.parts.make_kube(KubeTarget.from_credential(credential), timeout) as kube,
        ):
            collected = await collect_status(kube)
        now = utc_now()
        return await self.parts.store.update(name, lambda c: with_pushed_status(c, collected, now))

    async def collect_now(self, name: str) -> Cluster:
        cluster = self.parts.roster.clusters.get(name) or await self.parts.store.read(name)
        if cluster is None:
            raise NotFoundError(f"cluster {name!r} is not joined")
        if cluster.spec.sync_mode == "Pull":
            return cluster  # the agent sends its status every status period
        try:
            collected = await self._collect(name)
        except TimeoutError as exc:
            raise KubeUnavailableError(
                cluster.spec.api_endpoint or name, "status collection timed out"
            ) from exc
        if collected is None:
            raise NotFoundError(f"cluster {name!r} is not joined")
        return collected

    async def run(self) -> None:
        gate = asyncio.Semaphore(self.parts.settings.status_concurrency)
        in_flight: set[str] = set()

        async def one(name: str) -> None:
            try:
                async with gate:
                    await self._collect(name)
            except (FootError, TimeoutError) as exc:
                log.info("status of %s not collected: %s", name, exc, extra={"cluster": name})
            finally:
                in_flight.discard(name)

        async with asyncio.TaskGroup() as group:
            while True:
                for name in due_for_status(
                    self.parts.roster.clusters, self.parts.roster.health, in_flight
                ):
                    in_flight.add(name)
                    group.create_task(one(name), name=f"registry:collect:{name}")
                await asyncio.sleep(self.parts.settings.status_period_seconds)

"""The registry's clusters: the mirror of the clusters bucket with each one's health, and
the writes to that bucket (created once, then changed with the revision read)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pydantic import ValidationError

from foot.bus import Entry, KvStore
from foot.catalog import CLUSTERS
from foot.errors import ConflictError
from foot.kinds import KINDS
from foot.kinds.clusters import CLUSTER_API_VERSION, Cluster
from foot.objects import utc_now
from foot_registry.core.health import Health, tracked_health
from foot_registry.core.onboarding import stamped

log = logging.getLogger(__name__)

CLUSTER_KIND = KINDS.lookup(CLUSTER_API_VERSION, "Cluster")
WRITE_ATTEMPTS = 8


def cluster_key(name: str) -> str:
    return CLUSTER_KIND.key(None, name)


class Roster:
    """Every cluster the registry knows and its health, kept in step with the bucket."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}
        self.health: dict[str, Health] = {}
        self.changed = asyncio.Event()
        """Set whenever a cluster comes or goes (the probe loop resyncs its probes)."""

    def apply(self, entry: Entry) -> str | None:
        """Take in one change of the bucket; returns the name of a cluster that is gone."""
        name = entry.key.rsplit(".", 1)[-1]
        if entry.deleted or entry.value is None:
            self.clusters.pop(name, None)
            self.health.pop(name, None)
            self.changed.set()
            return name
        try:
            cluster = Cluster.from_json(entry.value)
        except ValidationError as exc:
            log.warning("unreadable cluster %s in the bucket: %s", name, exc)
            return None
        self.clusters[name] = cluster
        self.health[name] = tracked_health(self.health.get(name), cluster)
        self.changed.set()
        return None

    def add(self, cluster: Cluster) -> None:
        self.clusters[cluster.name] = cluster
        self.changed.set()

    def remove(self, name: str) -> None:
        self.clusters.pop(name, None)
        self.health.pop(name, None)
        self.changed.set()


class ClusterStore:
    """Reads and writes of the clusters bucket, the roster told of what this registry made."""

    def __init__(self, kv: KvStore, roster: Roster) -> None:
        self.kv = kv
        self.roster = roster

    async def exists(self, name: str) -> bool:
        entry = await self.kv.get(cluster_key(name))
        return entry is not None and not entry.deleted

    async def read(self, name: str) -> Cluster | None:
        entry = await self.kv.get(cluster_key(name))
        if entry is None or entry.value is None:
            return None
        return Cluster.from_json(entry.value)

    async def create(self, cluster: Cluster) -> Cluster:
        """Store a new cluster (AlreadyExists when the name is taken)."""
        first = stamped(cluster, utc_now())
        await self.kv.create(cluster_key(cluster.name), first.to_json())
        self.roster.add(first)
        return first

    async def update(self, name: str, change: Callable[[Cluster], Cluster]) -> Cluster | None:
        """Read, change, write with the revision read; again on a conflict. None: gone."""
        key = cluster_key(name)
        for _ in range(WRITE_ATTEMPTS):
            entry = await self.kv.get(key)
            if entry is None or entry.value is None:
                return None
            current = Cluster.from_json(entry.value)
            changed = change(current)
            if changed == current:
                return current
            try:
                await self.kv.update(key, changed.to_json(), entry.revision)
            except ConflictError:
                continue
            return changed
        raise ConflictError(CLUSTERS.name, key, None)

    async def delete(self, name: str) -> None:
        await self.kv.delete(cluster_key(name))

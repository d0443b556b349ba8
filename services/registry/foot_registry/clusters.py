"""The registry's clusters: what the mirror of the clusters bucket holds, by name, with each
one's health, and the writes to that bucket (created once, then changed with the revision
read). The registry is the bucket's one writer: it takes its own writes in at once, before
the mirror hears them back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from foot.bus import KvStore
from foot.bus.kv import Versioned
from foot.kinds import KINDS
from foot.kinds.clusters import CLUSTER_API_VERSION, Cluster
from foot.objects import utc_now
from foot_registry.core.health import Health, tracked_health
from foot_registry.core.onboarding import stamped

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

    def take(self, key: str, cluster: Cluster | None) -> str | None:
        """Take in one change of the bucket as the mirror decoded it (`cluster` None: the key
        was deleted); returns the name of a cluster that is gone."""
        name = key.rsplit(".", 1)[-1]
        if cluster is None:
            self.clusters.pop(name, None)
            self.health.pop(name, None)
            self.changed.set()
            return name
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
        found = await self.kv.read(cluster_key(name), Cluster.from_json)
        return None if found is None else found.value

    async def create(self, cluster: Cluster) -> Cluster:
        """Store a new cluster (AlreadyExists when the name is taken)."""
        first = stamped(cluster, utc_now())
        await self.kv.create(cluster_key(cluster.name), first.to_json())
        self.roster.add(first)
        return first

    async def update(self, name: str, change: Callable[[Cluster], Cluster]) -> Cluster | None:
        """Read, change, write with the revision read; again on a conflict. None: gone (a
        cluster is never created here)."""

        def changed(current: Versioned[Cluster] | None) -> Cluster | None:
            if current is None:
                return None
            new = change(current.value)
            return None if new == current.value else new

        written = await self.kv.update_with(
            cluster_key(name),
            changed,
            decode=Cluster.from_json,
            encode=Cluster.to_json,
            attempts=WRITE_ATTEMPTS,
        )
        return None if written is None else written.value

    async def delete(self, name: str) -> None:
        await self.kv.delete(cluster_key(name))

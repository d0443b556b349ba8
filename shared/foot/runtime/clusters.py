"""The member clusters as services see them: the `clusters` bucket by cluster name, and the
health ledger (the newest Ready transition heard from the registry per cluster).

The registry publishes a health event the moment a cluster's Ready changes, before the
cluster object records it, so services that react to health (failover, draining) listen to
both. Events carry a per-cluster sequence: an older one than what was heard is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

from nats.aio.msg import Msg
from pydantic import ValidationError

from foot.bus import Bus, Informer
from foot.catalog import HEALTH_PREFIX
from foot.health import ClusterHealthEvent
from foot.kinds.clusters import Cluster
from foot.runtime.mirror import Mirror

log = logging.getLogger(__name__)

ClusterCallback = Callable[[str, Cluster | None, Cluster | None], None]
"""(cluster name, before, after); after None: it left."""
HealthCallback = Callable[[ClusterHealthEvent, str | None], None]
"""(the event, the traceparent it was sent with)."""


class Heard(NamedTuple):
    """The newest health event heard for a cluster."""

    sequence: int
    event: ClusterHealthEvent


class ClusterMirror:
    """Clusters by name, and what was heard of their health."""

    def __init__(
        self,
        informer: Informer,
        clusters: dict[str, Cluster] | None = None,
        heard: dict[str, Heard] | None = None,
    ) -> None:
        self.mirror = Mirror(informer, Cluster.from_json, "cluster")
        self.clusters: dict[str, Cluster] = {} if clusters is None else clusters
        """By cluster name (`clusters`: the dict to keep them in, a service's own)."""
        self.heard: dict[str, Heard] = {} if heard is None else heard
        self._names: dict[str, str] = {}
        """clusters bucket key -> cluster name."""
        self._cluster_callbacks: list[ClusterCallback] = []
        self._health_callbacks: list[HealthCallback] = []
        self.mirror.on_change(self._on_entry)

    def on_cluster(self, callback: ClusterCallback) -> None:
        self._cluster_callbacks.append(callback)

    def on_health(self, callback: HealthCallback) -> None:
        """Called for each health event newer than what was heard of its cluster."""
        self._health_callbacks.append(callback)

    async def listen(self, bus: Bus) -> None:
        """Hear the registry's health events from now on."""
        await bus.subscribe(f"{HEALTH_PREFIX}.>", self._on_health_message)

    def _on_entry(self, key: str, _before: Cluster | None, after: Cluster | None) -> None:
        if after is None:
            gone = self._names.pop(key, None)
            if gone is None:
                return
            old = self.clusters.pop(gone, None)
            # A cluster joined again under the same name starts its health sequence anew:
            # what was heard of the old one must neither outrank nor mask its events.
            self.heard.pop(gone, None)
            for callback in self._cluster_callbacks:
                callback(gone, old, None)
            return
        name = after.name
        self._names[key] = name
        old = self.clusters.get(name)
        self.clusters[name] = after
        for callback in self._cluster_callbacks:
            callback(name, old, after)

    async def _on_health_message(self, msg: Msg) -> None:
        try:
            event = ClusterHealthEvent.model_validate_json(msg.data)
        except ValidationError as exc:
            log.warning("malformed health event on %s: %s", msg.subject, exc)
            return
        self.hear(event, (msg.headers or {}).get("traceparent"))

    def hear(self, event: ClusterHealthEvent, traceparent: str | None = None) -> None:
        last = self.heard.get(event.cluster)
        if last is not None and last.sequence > event.sequence:
            return  # older than one already heard
        self.heard[event.cluster] = Heard(event.sequence, event)
        log.info(
            "cluster %s is now Ready=%s (%s)",
            event.cluster,
            event.ready,
            event.reason,
            extra={"cluster": event.cluster},
        )
        for callback in self._health_callbacks:
            callback(event, traceparent)

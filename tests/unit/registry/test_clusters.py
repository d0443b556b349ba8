"""The registry's clusters as the bucket's mirror leaves them: by name, with the health it
tracks, a bad entry leaving what was held, a deletion naming the cluster that is gone."""

from __future__ import annotations

from typing import cast

from foot.bus import Entry, Informer, KvStore
from foot.kinds.clusters import Cluster
from foot.runtime.mirror import Mirror
from foot_registry.clusters import Roster, cluster_key
from foot_registry.core.health import tracked_health


def cluster(name: str) -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"syncMode": "Push"},
        }
    )


def test_the_roster_follows_the_mirror_by_name() -> None:
    informer = Informer(cast("KvStore", None))
    roster = Roster()
    gone: list[str | None] = []
    mirror = Mirror(informer, Cluster.from_json, "cluster")
    mirror.on_change(lambda key, _before, after: gone.append(roster.take(key, after)))
    feed = informer._listeners[0]  # what the informer calls for each change
    key = cluster_key("east")

    feed(Entry(key, cluster("east").to_json(), 1))
    assert roster.clusters == {"east": cluster("east")}
    assert roster.health["east"] == tracked_health(None, cluster("east"))
    assert roster.changed.is_set()

    roster.changed.clear()
    feed(Entry(key, b"not a cluster", 2))
    assert roster.clusters == {"east": cluster("east")}  # what was held stays
    assert not roster.changed.is_set()

    feed(Entry(key, None, 3))
    assert gone == [None, "east"]
    assert roster.clusters == {}
    assert roster.health == {}
    assert roster.changed.is_set()

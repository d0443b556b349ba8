"""What a change in a mirrored bucket sets going (`mirrors`), and the timed render (`queues`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import orjson
import pytest

from foot.bus import Entry, Informer, KvStore, ReconcileQueue
from foot.kinds.bindings import ResourceBinding
from foot.kinds.works import Work
from foot.objects import utc_now
from foot.runtime.clusters import ClusterMirror
from foot.runtime.mirror import Mirror
from foot_dispatcher.mirrors import Mirrors, decode_object
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.works import WorksCache
from memory_kv import MemoryKv

BINDING = "work.foot.dev.ResourceBinding.shop.web-deployment"


async def nothing(_key: str) -> None:
    """A reconciler never run: these tests look at what is queued."""


def queued(queue: ReconcileQueue) -> set[str]:
    return set(queue._queued) | set(queue._delayed)


class Setup:
    def __init__(self) -> None:
        self.lanes: dict[str, ReconcileQueue] = {}
        self.queues = DispatchQueues(
            render=ReconcileQueue("render", nothing),
            status=ReconcileQueue("status", nothing),
            aggregate=ReconcileQueue("aggregate", nothing),
            new_lane=lambda cluster: self.lanes.setdefault(
                cluster, ReconcileQueue(f"apply:{cluster}", nothing)
            ),
            aggregate_delay_seconds=60.0,
        )
        self.works = WorksCache(MemoryKv("works"))
        self.mirrors = mirrors = Mirrors(self.works, self.queues)
        self.informers = {
            bucket: Informer(cast("KvStore", MemoryKv(bucket)), mirror=False)
            for bucket in ("clusters", "policies", "templates", "bindings")
        }
        mirrors.listen(
            clusters=ClusterMirror(self.informers["clusters"], mirrors.clusters),
            policies=Mirror(self.informers["policies"], decode_object, "policy", mirrors.policies),
            templates=Mirror(
                self.informers["templates"], decode_object, "template", mirrors.templates
            ),
            bindings=Mirror(
                self.informers["bindings"], ResourceBinding.from_json, "binding", mirrors.bindings
            ),
        )
        self.informers["bindings"].synced.set()
        self.revision = 0

    def close(self) -> None:
        """Cancel the delayed adds (aggregations, timed renders) still waiting."""
        for queue in (self.queues.render, self.queues.status, self.queues.aggregate):
            queue.shut_down()

    def entry(self, key: str, document: dict[str, Any] | None) -> Entry:
        self.revision += 1
        value = None if document is None else orjson.dumps(document)
        return Entry(key=key, value=value, revision=self.revision)

    def feed(self, bucket: str, entry: Entry) -> None:
        """What the bucket's informer hands its listeners (the mirrors)."""
        for listener in self.informers[bucket]._listeners:
            listener(entry)


def cluster(name: str, *, ready: str = "True", region: str = "eu", version: str = "1") -> Any:
    return {
        "apiVersion": "cluster.foot.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": {"region": region}},
        "spec": {"syncMode": "Push"},
        "status": {
            "kubernetesVersion": version,
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def binding(name: str, namespace: str, clusters: list[str]) -> Any:
    return {
        "apiVersion": "work.foot.dev/v1alpha1",
        "kind": "ResourceBinding",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "resource": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": namespace,
                "name": "web",
                "hash": "h1",
            },
            "clusters": [{"name": c} for c in clusters],
        },
    }


def policy(kind: str, namespace: str | None = None) -> Any:
    metadata: dict[str, Any] = {"name": "p"}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {"overriders": {"labelsOverrider": [{"operator": "add", "value": {"x": "y"}}]}},
    }


def work(cluster_name: str) -> Work:
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": f"web-deployment.{cluster_name}", "namespace": "shop"},
            "spec": {
                "cluster": cluster_name,
                "binding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            },
        }
    )


@pytest.fixture
def setup() -> Iterator[Setup]:
    made = Setup()
    yield made
    made.close()


async def test_a_cluster_change_renders_what_it_holds_but_a_status_change_does_not(
    setup: Setup,
) -> None:
    mirrors, queues = setup.mirrors, setup.queues
    setup.feed("bindings", setup.entry(BINDING, binding("web-deployment", "shop", ["m1"])))
    setup.works.remember(f"m1.{BINDING}", work("m1"), 1)
    queues.render._queued.clear()
    setup.feed("clusters", setup.entry("m1", cluster("m1")))
    assert mirrors.clusters["m1"].metadata.labels == {"region": "eu"}
    assert queued(queues.render) == {BINDING}
    assert queued(setup.lanes["m1"]) == {f"m1.{BINDING}"}
    queues.render._queued.clear()
    setup.feed("clusters", setup.entry("m1", cluster("m1", version="2")))
    assert queued(queues.render) == set(), "status only: nothing dispatching depends on"
    setup.feed("clusters", setup.entry("m1", cluster("m1", region="us")))
    assert queued(queues.render) == {BINDING}
    queues.render._queued.clear()
    setup.feed("clusters", setup.entry("m1", None))
    assert "m1" not in mirrors.clusters
    assert queued(queues.render) == {BINDING}


async def test_a_member_not_ready_is_unreachable_and_its_bindings_aggregated(setup: Setup) -> None:
    mirrors, queues = setup.mirrors, setup.queues
    setup.works.remember(f"m1.{BINDING}", work("m1"), 1)
    setup.feed("clusters", setup.entry("m1", cluster("m1")))
    assert mirrors.unreachable == set()
    assert queued(queues.aggregate) == set()
    setup.feed("clusters", setup.entry("m1", cluster("m1", ready="False")))
    assert mirrors.unreachable == {"m1"}
    assert queued(queues.aggregate) == {BINDING}
    setup.feed("clusters", setup.entry("m1", None))
    assert mirrors.unreachable == set()


async def test_an_entry_that_does_not_parse_is_ignored(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    mirrors = setup.mirrors
    broken = Entry(key="m1", value=b'{"kind": "Cluster"}', revision=1)
    setup.feed("clusters", broken)
    setup.feed("bindings", Entry(key=BINDING, value=b"{}", revision=2))
    setup.feed("templates", Entry(key="t", value=b"not json", revision=3))
    setup.feed("policies", Entry(key="p", value=b'{"apiVersion": "x/v1"}', revision=4))
    setup.works.on_entry(Entry(key=f"m1.{BINDING}", value=b"{}", revision=5))
    assert (mirrors.clusters, mirrors.bindings, mirrors.templates, mirrors.overrides) == (
        {},
        {},
        {},
        {},
    )
    assert setup.works.get(f"m1.{BINDING}") is None
    assert queued(setup.queues.render) == set()
    assert len([r for r in caplog.records if "does not parse, ignored" in r.message]) == 5


async def test_a_policy_renders_the_bindings_it_may_concern(setup: Setup) -> None:
    mirrors, queues = setup.mirrors, setup.queues
    shop = "work.foot.dev.ResourceBinding.shop.a"
    other = "work.foot.dev.ResourceBinding.other.b"
    setup.feed("bindings", setup.entry(shop, binding("a", "shop", ["m1"])))
    setup.feed("bindings", setup.entry(other, binding("b", "other", ["m1"])))
    queues.render._queued.clear()
    setup.feed("policies", setup.entry("op", policy("OverridePolicy", "shop")))
    assert queued(queues.render) == {shop}
    assert "op" in mirrors.overrides
    queues.render._queued.clear()
    setup.feed("policies", setup.entry("op", None))
    assert queued(queues.render) == {shop}, "its removal too"
    assert "op" not in mirrors.overrides
    queues.render._queued.clear()
    setup.feed("policies", setup.entry("cop", policy("ClusterOverridePolicy")))
    assert queued(queues.render) == {shop, other}


async def test_a_timed_render_comes_at_the_earliest_time_asked(setup: Setup) -> None:
    queues = setup.queues
    queues.render_at(BINDING, utc_now() + timedelta(hours=1))
    queues.render_at(BINDING, utc_now())
    await asyncio.sleep(0.2)
    assert queued(queues.render) == {BINDING}
    assert len(queues.render) == 1, "a reminder does not count as pending work"
    queues.render._queued.clear()
    queues.render_at(BINDING, utc_now() + timedelta(seconds=0.1))
    queues.render.shut_down()
    await asyncio.sleep(0.3)
    assert queued(queues.render) == set(), "cancelled at stop"

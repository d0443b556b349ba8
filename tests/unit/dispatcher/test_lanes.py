"""The apply lane against a member whose answer is older than its watch's last report.

Seen in bench/gateway.py under load: the first four Deployments of a member (one per lane
worker) were applied at once; the kubelet marked them ready while the applies were in
flight; the watch's report came before the works were applied, so it was dropped, and the
applies then stored their answers (0 ready). Nothing changed in the member afterwards, so
the works showed 0 ready replicas for good and the gateway never routed to that member.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest

from foot.kinds.clusters import Cluster
from foot.kinds.works import ManifestStatus, Work
from foot.manifests import identity, observed_status
from foot_dispatcher.lanes import ApplyLanes
from foot_dispatcher.works import WorksCache
from memory_kv import MemoryKv

BINDING = "work.foot.dev.ResourceBinding.shop.web-deployment"
KEY = f"m1.{BINDING}"
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 2},
}


def member_object(ready: int) -> dict[str, Any]:
    return DEPLOYMENT | {
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
        "metadata": {**DEPLOYMENT["metadata"], "generation": 1},
    }


def work() -> Work:
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": "web-deployment.m1", "namespace": "shop"},
            "spec": {
                "cluster": "m1",
                "binding": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "manifests": [DEPLOYMENT],
                "manifestsHash": "h1",
            },
        }
    )


class Queue:
    def __init__(self) -> None:
        self.added: list[str] = []

    def add(self, key: str) -> None:
        self.added.append(key)


class Applier:
    """Answers with the object as it was when the apply reached the member (0 ready)."""

    async def apply_all(self, manifests: Sequence[dict[str, Any]], _: str) -> list[ManifestStatus]:
        return [
            observed_status(
                ManifestStatus(api_version="apps/v1", kind="Deployment", namespace="shop",
                               name="web"),
                member_object(ready=0),
                applied=True,
            )
            for _ in manifests
        ]  # fmt: skip


class Limiter:
    async def acquire(self) -> None:
        return None


class Member:
    name = "m1"
    applier = Applier()
    limiter = Limiter()
    watched: set[tuple[str, str]] = {("apps/v1", "Deployment")}  # noqa: RUF012 - a stub

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        yield


class Members:
    async def get(self, _: str) -> Member:
        return Member()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "m1"},
            "spec": {"syncMode": "Push"},
        }
    )


async def lane_of(cluster: Cluster) -> tuple[ApplyLanes, WorksCache, Queue]:
    """The lanes over one stored, not yet applied work of m1; and its status queue."""
    works = WorksCache(MemoryKv("works"))
    await works.put(KEY, lambda _current: work())
    status = Queue()
    queues = SimpleNamespace(
        status=status, render=Queue(), aggregate_soon=lambda _binding: None, lane=None
    )
    parts = SimpleNamespace(
        works=works, mirrors=SimpleNamespace(clusters={"m1": cluster}), queues=queues
    )
    lanes = ApplyLanes(
        parts=cast("Any", parts),
        members=cast("Any", Members()),
        pull=cast("Any", None),
        spawn=lambda _name, _run: None,
        watch_member_status=True,
    )
    return lanes, works, status


async def test_a_report_that_came_while_the_apply_was_in_flight_is_folded_in_after(
    cluster: Cluster,
) -> None:
    lanes, works, status = await lane_of(cluster)
    # The watch reported the replicas ready before the work was applied (dropped then).
    lanes._observed[("m1", identity(DEPLOYMENT))] = member_object(ready=2)
    await lanes.refresh_status(KEY)
    assert status.added == []
    stored = works.get(KEY)
    assert stored is not None
    assert stored.status.manifests == []

    await lanes.apply(KEY)
    stored = works.get(KEY)
    assert stored is not None
    assert stored.status.manifests[0].ready_replicas == 0  # the apply's (older) answer
    assert status.added == [KEY]  # ... so what the watch reported is folded in again
    await lanes.refresh_status(KEY)
    stored = works.get(KEY)
    assert stored is not None
    assert stored.status.manifests[0].ready_replicas == 2
    assert stored.status.health == "Healthy"


async def test_nothing_is_folded_again_where_the_watch_reported_nothing(
    cluster: Cluster,
) -> None:
    lanes, _works, status = await lane_of(cluster)
    await lanes.apply(KEY)
    assert status.added == []

"""List (selectors, pagination) and watch (resume, replay, selectors, timeout) on each backend.

Bookmarks and 410 Expired are checked on the simulator only (tests/sim): the
real test clusters run etcd 3.4, which has no watch progress notification, so
their watch cache never sends bookmarks and never ages events out within a
test's lifetime. Watches here always give a resourceVersion ("0" or a listed
one) because, for the same reason, a real watch without one can wait for a
cache that never catches up and answer 504.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio import watch as kube_watch

from foot_sim.client import KubeHttpClient

# Enough for a watch to deliver what was written before it; far below any test timeout.
EVENT_WAIT_SECONDS = 10.0


def _configmap(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"name": name}}


async def _names(kube: KubeHttpClient, path: str, params: dict[str, str]) -> list[str]:
    answer = await kube.get(path, params)
    assert answer.status == 200, answer.body
    return [item["metadata"]["name"] for item in answer.json["items"]]


@pytest.fixture
async def labelled(kube: KubeHttpClient, namespace: str) -> str:
    """Four ConfigMaps with varied labels; returns their collection path."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name, labels in [
        ("web-prod", {"app": "web", "env": "prod", "tier": "front"}),
        ("web-dev", {"app": "web", "env": "dev"}),
        ("db-prod", {"app": "db", "env": "prod", "tier": "back"}),
        ("plain", {}),
    ]:
        assert (await kube.post(path, _configmap(name, labels))).status == 201
    return path


async def test_list_shape(kube: KubeHttpClient, labelled: str) -> None:
    listing = await kube.get(labelled)
    body = listing.json
    assert (body["kind"], body["apiVersion"]) == ("ConfigMapList", "v1")
    assert int(body["metadata"]["resourceVersion"]) > 0
    assert [item["metadata"]["name"] for item in body["items"]] == [
        "db-prod",
        "plain",
        "web-dev",
        "web-prod",
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["web-dev", "web-prod"]),
        ("app==db", ["db-prod"]),
        ("app!=web", ["db-prod", "plain"]),
        ("env in (prod,staging)", ["db-prod", "web-prod"]),
        ("env notin (prod)", ["plain", "web-dev"]),
        ("tier", ["db-prod", "web-prod"]),
        ("!tier", ["plain", "web-dev"]),
        ("app=web,env=prod", ["web-prod"]),
        ("app in (web, db),!tier", ["web-dev"]),
    ],
)
async def test_label_selector(
    kube: KubeHttpClient, labelled: str, selector: str, expected: list[str]
) -> None:
    assert await _names(kube, labelled, {"labelSelector": selector}) == expected


async def test_field_selector_on_name(kube: KubeHttpClient, labelled: str) -> None:
    assert await _names(kube, labelled, {"fieldSelector": "metadata.name=plain"}) == ["plain"]
    assert await _names(
        kube, labelled, {"fieldSelector": "metadata.name!=plain,metadata.name!=db-prod"}
    ) == [
        "web-dev",
        "web-prod",
    ]


async def test_field_selector_on_namespace_across_namespaces(
    kube: KubeHttpClient, labelled: str, namespace: str
) -> None:
    names = await _names(
        kube, "/api/v1/configmaps", {"fieldSelector": f"metadata.namespace={namespace}"}
    )
    assert names == ["db-prod", "plain", "web-dev", "web-prod"]


async def test_unknown_field_selector_is_bad_request(kube: KubeHttpClient, labelled: str) -> None:
    answer = await kube.get(labelled, {"fieldSelector": "spec.nothing=x"})
    assert answer.status == 400
    assert (answer.json["reason"], answer.json["code"]) == ("BadRequest", 400)


async def test_list_pagination(kube: KubeHttpClient, labelled: str) -> None:
    first = (await kube.get(labelled, {"limit": "3"})).json
    assert [i["metadata"]["name"] for i in first["items"]] == ["db-prod", "plain", "web-dev"]
    token = first["metadata"]["continue"]
    assert token
    assert first["metadata"]["remainingItemCount"] == 1
    second = (await kube.get(labelled, {"limit": "3", "continue": token})).json
    assert [i["metadata"]["name"] for i in second["items"]] == ["web-prod"]
    assert not second["metadata"].get("continue")


async def _collect(
    kube: KubeHttpClient, path: str, params: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The first `count` events of a watch (or fewer, if the server ends the stream first)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(EVENT_WAIT_SECONDS):
        async for event in kube.watch(path, params):
            events.append(event)
            if len(events) == count:
                break
    return events


async def test_watch_from_list_resource_version_sees_changes(
    kube: KubeHttpClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    start = (await kube.get(path)).json["metadata"]["resourceVersion"]
    created = (await kube.post(path, _configmap("watched"))).json
    await kube.patch(
        f"{path}/watched", {"data": {"name": "changed"}}, "application/merge-patch+json"
    )
    await kube.delete(f"{path}/watched")
    events = await _collect(kube, path, {"resourceVersion": start}, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert {e["object"]["metadata"]["uid"] for e in events} == {created["metadata"]["uid"]}
    assert events[1]["object"]["data"] == {"name": "changed"}
    assert events[0]["object"]["kind"] == "ConfigMap"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


async def test_watch_resumes_after_resource_version(kube: KubeHttpClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await kube.post(path, _configmap("before"))
    middle = (await kube.post(path, _configmap("middle"))).json["metadata"]["resourceVersion"]
    await kube.post(path, _configmap("after"))
    events = await _collect(kube, path, {"resourceVersion": middle}, 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after")]


async def test_watch_from_any_resource_version_replays_current_state(
    kube: KubeHttpClient, labelled: str
) -> None:
    params = {"resourceVersion": "0", "labelSelector": "app=web"}
    events = await _collect(kube, labelled, params, 2)
    assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
        ("ADDED", "web-dev"),
        ("ADDED", "web-prod"),
    ]


async def test_watch_ends_at_timeout(kube: KubeHttpClient, namespace: str) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    params = {"resourceVersion": "0", "timeoutSeconds": "1"}
    events = await _collect(kube, f"/api/v1/namespaces/{namespace}/configmaps", params, 5)
    assert events == []
    assert loop.time() - began < EVENT_WAIT_SECONDS


async def test_watch_with_label_selector_sees_objects_leave(
    kube: KubeHttpClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    start = (await kube.get(path)).json["metadata"]["resourceVersion"]
    await kube.post(path, _configmap("mover", {"stage": "canary"}))
    await kube.patch(
        f"{path}/mover",
        {"metadata": {"labels": {"stage": "stable"}}},
        "application/merge-patch+json",
    )
    await kube.post(path, _configmap("other", {"stage": "stable"}))
    await kube.post(path, _configmap("late", {"stage": "canary"}))
    params = {"resourceVersion": start, "labelSelector": "stage=canary"}
    events = await _collect(kube, path, params, 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "mover"),
        ("DELETED", "mover"),
        ("ADDED", "late"),
    ]


async def test_kubernetes_asyncio_watch(api_client: kube_client.ApiClient, namespace: str) -> None:
    core = kube_client.CoreV1Api(api_client)
    listing = await core.list_namespaced_config_map(namespace)
    body = kube_client.V1ConfigMap(
        metadata=kube_client.V1ObjectMeta(name="streamed"), data={"a": "1"}
    )
    await core.create_namespaced_config_map(namespace, body)
    seen: list[tuple[str, str]] = []
    async with kube_watch.Watch() as watcher, asyncio.timeout(EVENT_WAIT_SECONDS):
        async for event in watcher.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=listing.metadata.resource_version,
            timeout_seconds=5,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            break
    assert seen == [("ADDED", "streamed")]

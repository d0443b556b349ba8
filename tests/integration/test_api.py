"""API ingest on a real nats-server (Foundation acceptance 2).

Objects go in through `foot.api.apply` (bus), the owner's HTTP admin API, and
the `foot` CLI; valid ones are stored, invalid ones are refused with their
field paths and never stored.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from admin_support import AdminCredentials

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, EVENTS, REJECTED, owner_apply_subject
from foot.kinds import KINDS
from foot.runtime.settings import ServiceSettings
from foot.store import ObjectStore
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_scheduler.service import SchedulerService

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: Not_A_Name, namespace: shop}
data: {retries: 3}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-settings, namespace: shop}
data: {greeting: hello}
"""

DEPLOYMENTS = KINDS.resolve("deployments")
CONFIGMAPS = KINDS.resolve("configmaps")


def settings(nats: EmbeddedNats, **overrides: object) -> ServiceSettings:
    values: dict[str, object] = {
        "nats_url": nats.url,
        "admin_port": 0,
        "shutdown_deadline_seconds": 2.0,
    }
    return ServiceSettings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
async def scheduler(
    nats_server: EmbeddedNats, admin_credentials: AdminCredentials
) -> AsyncIterator[SchedulerService]:
    # A second service answers the front door too, so forwarding to the owner is exercised.
    async with (
        SchedulerService(settings(nats_server, **admin_credentials.settings())) as owner,
        RegistryService(settings(nats_server)),
    ):
        yield owner


async def request(bus: Bus, subject: str, documents: list[dict[str, object]]) -> ApiReply:
    body = orjson.dumps(ApiRequest(objects=documents).model_dump(mode="json", by_alias=True))
    msg = await bus.request(subject, body)
    return ApiReply.model_validate_json(msg.data)


def documents() -> list[dict[str, object]]:
    from foot.objects import load_documents

    return load_documents(APP)


async def test_apply_over_the_bus_stores_valid_and_refuses_invalid(
    scheduler: SchedulerService, bus: Bus
) -> None:
    rejected = await bus.js.pull_subscribe(REJECTED, durable="rejections", stream=EVENTS.name)
    reply = await request(bus, API_APPLY, documents())

    outcomes = [(r.ref.name, r.outcome) for r in reply.results]
    assert outcomes == [
        ("web", "created"),
        ("Not_A_Name", "rejected"),
        ("web-settings", "created"),
    ]
    error = reply.results[1].error
    assert error is not None
    assert error.code == "Invalid"
    paths = {f.path: f.reason for f in error.fields}
    assert set(paths) == {"metadata.name", "data.retries"}
    assert "RFC 1123" in paths["metadata.name"]

    store = ObjectStore(bus, owner="test")
    web = await store.get(DEPLOYMENTS, "shop", "web")
    assert web is not None
    assert web.metadata.generation == 1
    assert web.metadata.uid
    assert web.model_dump(by_alias=True)["spec"]["replicas"] == 3
    assert await store.get(CONFIGMAPS, "shop", "Not_A_Name") is None
    assert [o.metadata.name for o in await store.list(CONFIGMAPS, "shop")] == ["web-settings"]

    event = (await rejected.fetch(1, timeout=5))[0]
    assert orjson.loads(event.data)["ref"]["name"] == "Not_A_Name"
    await event.ack()
    await rejected.unsubscribe()


async def test_generation_moves_only_when_the_spec_changes(
    scheduler: SchedulerService, bus: Bus
) -> None:
    web = documents()[0]
    first = await request(bus, API_APPLY, [web])
    again = await request(bus, API_APPLY, [web])
    web["spec"]["replicas"] = 5  # type: ignore[index]
    changed = await request(bus, API_APPLY, [web])
    web["metadata"]["labels"] = {"app": "web", "tier": "front"}  # type: ignore[index]
    relabelled = await request(bus, API_APPLY, [web])
    summary = [(r.results[0].outcome, r.results[0].generation) for r in (first, again, changed)]
    assert summary == [("created", 1), ("unchanged", 1), ("configured", 2)]
    assert (relabelled.results[0].outcome, relabelled.results[0].generation) == ("configured", 2)


@pytest.mark.parametrize("subject", [API_APPLY, owner_apply_subject("scheduler")])
async def test_many_documents_in_one_request(
    scheduler: SchedulerService, bus: Bus, subject: str
) -> None:
    """Every document is validated before any is stored, the valid ones are stored (several
    at once), results come back in document order, and documents naming the same object are
    applied in their order - through the front door and on the owner's own subject."""
    many: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"settings-{i:02d}", "namespace": "shop"},
            "data": {"index": str(i)},
        }
        for i in range(40)
    ]
    many.insert(7, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad"}})
    many.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings-03", "namespace": "shop"},
            "data": {"index": "last"},
        }
    )
    reply = await request(bus, subject, many)
    names = [r.ref.name for r in reply.results]
    assert names == [d["metadata"]["name"] for d in many]  # type: ignore[index]
    outcomes = [r.outcome for r in reply.results]
    assert outcomes[7] == "rejected"
    assert outcomes[-1] == "configured"
    assert outcomes[:7] + outcomes[8:-1] == ["created"] * 40
    stored = await ObjectStore(bus, owner="test").list(CONFIGMAPS, "shop")
    assert len(stored) == 40
    last = await ObjectStore(bus, owner="test").get(CONFIGMAPS, "shop", "settings-03")
    assert last is not None
    assert last.model_dump(by_alias=True)["data"] == {"index": "last"}
    assert last.metadata.generation == 2


async def test_delete_over_the_bus(scheduler: SchedulerService, bus: Bus) -> None:
    await request(bus, API_APPLY, documents())
    ref: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-settings", "namespace": "shop"},
    }
    gone = await request(bus, API_DELETE, [ref])
    missing = await request(bus, API_DELETE, [ref])
    nameless = await request(bus, API_DELETE, [{"apiVersion": "v1", "kind": "ConfigMap"}])
    assert gone.results[0].outcome == "deleted"
    assert missing.results[0].outcome == "not-found"
    assert nameless.results[0].error is not None
    assert [f.path for f in nameless.results[0].error.fields] == ["metadata.name"]
    assert await ObjectStore(bus, owner="test").get(CONFIGMAPS, "shop", "web-settings") is None


async def test_apply_and_read_over_http(
    scheduler: SchedulerService, bus: Bus, admin_credentials: AdminCredentials
) -> None:
    url = scheduler.admin.url
    auth = admin_credentials.admin_headers()
    yaml_body = admin_credentials.admin_headers("application/yaml")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/api/apply", data=APP, headers={"Content-Type": "application/yaml"}
        ) as unauthenticated:
            assert unauthenticated.status == 401
        async with http.post(f"{url}/api/apply", data=APP, headers=yaml_body) as response:
            assert response.status == 422  # one document was invalid
            reply = ApiReply.model_validate(await response.json())
        assert [r.outcome for r in reply.results] == ["created", "rejected", "created"]
        async with http.get(
            f"{url}/admin/objects/deployments/web?namespace=shop", headers=auth
        ) as got:
            assert got.status == 200
            assert (await got.json())["spec"]["replicas"] == 3
        async with http.get(f"{url}/admin/objects/cm?namespace=shop", headers=auth) as listed:
            names = [item["metadata"]["name"] for item in (await listed.json())["items"]]
            assert names == ["web-settings"]
        async with http.delete(
            f"{url}/admin/objects/configmaps/web-settings?namespace=shop", headers=auth
        ) as deleted:
            assert deleted.status == 200
        async with http.get(
            f"{url}/admin/objects/configmaps/web-settings?namespace=shop", headers=auth
        ) as gone:
            assert gone.status == 404
            assert (await gone.json())["error"]["code"] == "NotFound"
        async with http.post(f"{url}/api/apply", data="{not yaml: [", headers=yaml_body) as broken:
            assert broken.status == 422
        async with http.get(f"{url}/readyz") as ready:
            assert ready.status == 200
        async with http.get(f"{url}/metrics") as metrics:
            text = await metrics.text()
            assert 'foot_api_objects_total{operation="apply",outcome="created"} 2.0' in text


def foot_cli(
    nats: EmbeddedNats, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FOOT_NATS_URL=nats.url)
    return subprocess.run(
        [sys.executable, "-m", "foot_cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_cli_apply_get_delete(
    scheduler: SchedulerService, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(APP)
    run = asyncio.to_thread
    applied = await run(foot_cli, nats_server, "apply", "-f", str(manifest))
    assert applied.returncode == 1, "one document was invalid"
    assert "deployment.apps/web created" in applied.stdout
    assert "configmap/web-settings created" in applied.stdout
    assert "metadata.name: must be a lowercase RFC 1123 subdomain" in applied.stderr
    assert "data.retries: must be a string, got the number 3" in applied.stderr

    listed = await run(foot_cli, nats_server, "get", "deployments", "-n", "shop")
    assert listed.returncode == 0
    header, web = (line.split() for line in listed.stdout.splitlines()[:2])
    assert header == ["NAME", "READY", "CLUSTERS", "AGE"]
    assert web[:3] == ["web", "-", "-"], "no dispatcher runs: not rolled out anywhere"
    as_json = await run(foot_cli, nats_server, "get", "deploy", "web", "-n", "shop", "-o", "json")
    assert orjson.loads(as_json.stdout)["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "nginx:1.27"
    )
    everything = await run(foot_cli, nats_server, "get", "cm", "-A", "-o", "yaml")
    assert "name: web-settings" in everything.stdout

    from_stdin = await run(
        foot_cli, nats_server, "apply", "-f", "-", stdin=APP.split("---", maxsplit=1)[0]
    )
    assert from_stdin.stdout.strip() == "deployment.apps/web unchanged"

    deleted = await run(foot_cli, nats_server, "delete", "configmap", "web-settings", "-n", "shop")
    assert deleted.returncode == 0
    assert "configmap/web-settings deleted" in deleted.stdout
    missing = await run(foot_cli, nats_server, "get", "cm", "web-settings", "-n", "shop")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    unknown = await run(foot_cli, nats_server, "get", "gizmos")
    assert unknown.returncode == 1
    assert "unknown kind 'gizmos'" in unknown.stderr

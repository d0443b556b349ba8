"""The admin HTTP API is secure by default (issue 15, acceptance 1, HTTP part).

Every service's admin server, started as `foot up` starts it (token files of mode 600) on a
real nats-server: no token or a wrong one is 401, the read-only token may read but not
write (403), a body that is neither JSON nor YAML is 415, a request a web page sends from
another origin is 403, and a same-origin request with the admin token works. Without an
admin token the API is closed; the probes and metrics stay open. Secret values never come
back in plain text, neither from the admin API nor from `foot get`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from admin_support import AdminCredentials

from foot.bus import Bus
from foot.kinds import KINDS
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot.store import ObjectStore
from foot_cli.natsserver import EmbeddedNats
from foot_dispatcher.service import DispatcherService
from foot_gateway_sync.service import GatewaySyncService
from foot_registry.service import RegistryService
from foot_scheduler.service import SchedulerService
from foot_storage.service import StorageService
from support import eventually, password_secret

CONFIGMAPS = KINDS.resolve("configmaps")
SERVICE_TYPES: tuple[type[Service[Any]], ...] = (
    RegistryService,
    SchedulerService,
    DispatcherService,
    GatewaySyncService,
    StorageService,
)
JSON = "application/json"


def settings(nats: EmbeddedNats, **extra: object) -> ServiceSettings:
    values: dict[str, object] = {
        "nats_url": nats.url,
        "admin_port": 0,
        "shutdown_deadline_seconds": 2.0,
    }
    return ServiceSettings(**(values | extra))  # type: ignore[arg-type]


def config_map(name: str) -> bytes:
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
        "data": {"mode": "test"},
    }
    return orjson.dumps(document)


@pytest.fixture
async def services(
    nats_server: EmbeddedNats, admin_credentials: AdminCredentials
) -> AsyncIterator[dict[str, Service[Any]]]:
    """All five services with the session's token files, as `foot up` runs them."""
    running: dict[str, Service[Any]] = {}
    try:
        for service_type in SERVICE_TYPES:
            service = service_type(settings(nats_server, **admin_credentials.settings()))
            running[service.name] = service
            await service.start()
        yield running
    finally:
        for service in reversed(running.values()):
            await service.stop()


async def error_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The one error shape (`foot.api.ApiError` under "error")."""
    assert response.content_type == JSON
    error: dict[str, Any] = (await response.json())["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["message"]
    return error


async def check_guard(
    http: aiohttp.ClientSession, service: Service[Any], credentials: AdminCredentials
) -> None:
    url = service.admin.url
    name = service.name
    read_path = f"{url}/admin/objects"
    apply_path = f"{url}/api/apply"
    admin_json = credentials.admin_headers(JSON)

    async with http.get(read_path) as no_token:
        assert no_token.status == 401, name
        assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await error_of(no_token))["code"] == "Unauthorized"
    wrong = {"Authorization": "Bearer " + "w" * 43}
    async with http.get(read_path, headers=wrong) as wrong_token:
        assert wrong_token.status == 401, name
        assert wrong_token.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await error_of(wrong_token))["code"] == "Unauthorized"
    async with http.get(read_path, headers={"Authorization": "Basic " + "w" * 20}) as basic:
        assert basic.status == 401, name
    anonymous_json = {"Content-Type": JSON}
    async with http.post(apply_path, data=config_map(f"nt-{name}"), headers=anonymous_json) as no:
        assert no.status == 401, name

    async with http.get(read_path, headers=credentials.read_headers()) as read:
        assert read.status == 200, name
        assert isinstance((await read.json())["kinds"], list)
    async with http.head(read_path, headers=credentials.read_headers()) as head:
        assert head.status == 200, name
    async with http.post(
        apply_path, data=config_map(f"ro-{name}"), headers=credentials.read_headers(JSON)
    ) as read_write:
        assert read_write.status == 403, name
        assert (await error_of(read_write))["code"] == "Forbidden"
    async with http.delete(
        f"{url}/admin/objects/configmaps/anything?namespace=shop",
        headers=credentials.read_headers(),
    ) as read_delete:
        assert read_delete.status == 403, name

    for media_type in ("text/plain", "image/png", "application/x-www-form-urlencoded"):
        async with http.post(
            apply_path, data=config_map(f"mt-{name}"), headers=credentials.admin_headers(media_type)
        ) as wrong_type:
            assert wrong_type.status == 415, (name, media_type)
            assert (await error_of(wrong_type))["code"] == "UnsupportedMediaType"
    async with http.post(
        apply_path, data=b"\x89PNG\r\n\x1a\n", headers=credentials.admin_headers()
    ) as untyped:
        assert untyped.status == 415, name  # aiohttp sends bytes as application/octet-stream

    for foreign in ("http://evil.example", "null", f"{url.replace('127.0.0.1', 'localhost')}"):
        async with http.post(
            apply_path, data=config_map(f"xo-{name}"), headers=admin_json | {"Origin": foreign}
        ) as cross_origin:
            assert cross_origin.status == 403, (name, foreign)
            assert (await error_of(cross_origin))["code"] == "Forbidden"
    evil_read = credentials.admin_headers() | {"Origin": "http://evil.example"}
    async with http.get(read_path, headers=evil_read) as read_cross:
        assert read_cross.status == 403, name
    for site in ("cross-site", "same-site"):
        async with http.post(
            apply_path, data=config_map(f"xs-{name}"), headers=admin_json | {"Sec-Fetch-Site": site}
        ) as cross_site:
            assert cross_site.status == 403, (name, site)

    same_origin = credentials.admin_headers("application/yaml; charset=utf-8") | {
        "Origin": url,
        "Sec-Fetch-Site": "same-origin",
    }
    async with http.get(read_path, headers=same_origin) as same_origin_read:
        assert same_origin_read.status == 200, name
    async with http.post(apply_path, data=config_map(f"ok-{name}"), headers=same_origin) as works:
        answer = await works.json()
        if name == "scheduler":
            assert works.status == 200, answer
            assert [r["outcome"] for r in answer["results"]] == ["created"]
        else:  # past the guard, the route answers: ConfigMaps are the scheduler's to store
            assert works.status == 422, (name, answer)
            (field,) = answer["results"][0]["error"]["fields"]
            assert field["reason"] == f"is owned by the scheduler service, not {name}"
    for probe in ("/healthz", "/readyz", "/metrics"):
        async with http.get(f"{url}{probe}") as open_probe:
            if name == "storage" and probe == "/readyz":
                # Open as well; with no Ceph here, storage answers that it is not ready, and why.
                assert open_probe.status == 503, name
                problems = (await open_probe.json())["problems"]
                assert [p for p in problems if p.startswith("ceph ")], problems
            else:
                assert open_probe.status == 200, (name, probe)


async def test_every_admin_server_refuses_what_it_must(
    services: dict[str, Service[Any]], admin_credentials: AdminCredentials, bus: Bus
) -> None:
    async with aiohttp.ClientSession() as http:
        for service in services.values():
            await check_guard(http, service, admin_credentials)

    stored = await ObjectStore(bus, "test").list(CONFIGMAPS, "shop")
    # Only the same-origin request with the admin token to the owner stored anything.
    assert [o.name for o in stored] == ["ok-scheduler"]


async def test_the_registry_cluster_routes_are_guarded_too(
    services: dict[str, Service[Any]], admin_credentials: AdminCredentials
) -> None:
    url = f"{services['registry'].admin.url}/api/clusters"
    register = orjson.dumps({"name": "pull-guarded"})
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 401
        async with http.get(url, headers=admin_credentials.read_headers()) as listed:
            assert listed.status == 200
        async with http.post(
            f"{url}/register", data=register, headers=admin_credentials.read_headers(JSON)
        ) as read_write:
            assert read_write.status == 403
        async with http.post(
            f"{url}/register", data=register, headers=admin_credentials.admin_headers("text/plain")
        ) as plain:
            assert plain.status == 415
        async with http.post(
            f"{url}/register",
            data=register,
            headers=admin_credentials.admin_headers(JSON) | {"Origin": "http://evil.example"},
        ) as cross_origin:
            assert cross_origin.status == 403
        async with http.get(url, headers=admin_credentials.read_headers()) as after:
            assert "pull-guarded" not in await after.text()


async def test_without_an_admin_token_the_api_is_closed_and_the_probes_open(
    nats_server: EmbeddedNats, admin_credentials: AdminCredentials
) -> None:
    async with (
        SchedulerService(settings(nats_server)) as scheduler,
        aiohttp.ClientSession() as http,
    ):
        url = scheduler.admin.url
        for token in (None, admin_credentials.admin):
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            async with http.get(f"{url}/admin/objects", headers=headers) as closed:
                assert closed.status == 401
                assert "no admin token" in (await error_of(closed))["message"]
            async with http.post(
                f"{url}/api/apply",
                data=config_map("closed"),
                headers=headers | {"Content-Type": JSON},
            ) as closed_write:
                assert closed_write.status == 401
        # Readiness comes once the caches have synced, which a loaded machine may take a
        # moment after start() to report: what is tested is that the probes need no token.
        await eventually(lambda: not scheduler.readiness_problems())
        for probe in ("/healthz", "/readyz", "/metrics"):
            async with http.get(f"{url}{probe}") as open_probe:
                assert open_probe.status == 200, probe


async def test_secret_values_are_redacted_on_every_read(
    services: dict[str, Service[Any]],
    admin_credentials: AdminCredentials,
    nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:
    password, encoded, secret = password_secret()
    url = services["scheduler"].admin.url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/api/apply",
            data=orjson.dumps(secret),
            headers=admin_credentials.admin_headers(JSON),
        ) as applied:
            assert applied.status == 200, await applied.text()
            assert password not in await applied.text()
        shown: list[str] = []
        for headers in (admin_credentials.admin_headers(), admin_credentials.read_headers()):
            async with http.get(
                f"{url}/admin/objects/secrets/db?namespace=shop", headers=headers
            ) as got:
                assert got.status == 200
                shown.append(await got.text())
                document = orjson.loads(shown[-1])
                assert document["data"] == {"password": "<redacted>"}
                assert document["stringData"] == {"plain": "<redacted>"}
            async with http.get(
                f"{url}/admin/objects/secrets?namespace=shop", headers=headers
            ) as listed:
                shown.append(await listed.text())
                (item,) = orjson.loads(shown[-1])["items"]
                assert item["data"] == {"password": "<redacted>"}

    # The CLI holds no sealing key: it reads Secrets through the scheduler's admin API, found
    # (with the read token) through the state file of the `foot up` of its home.
    home = tmp_path / "home"
    home.mkdir()
    state = {
        "nats_url": nats_server.url,
        "services": {"scheduler": {"admin_url": url}},
        "read_token_file": str(admin_credentials.read_file),
    }
    (home / "up.json").write_bytes(orjson.dumps(state))
    cli = [sys.executable, "-m", "foot_cli.main", "get", "secrets", "-n", "shop"]
    env = dict(os.environ, FOOT_HOME=str(home))
    for output in ("yaml", "json"):
        run = await asyncio.to_thread(
            subprocess.run, [*cli, "-o", output], capture_output=True, text=True, env=env,
            timeout=60, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        shown.append(run.stdout)
        document = yaml.safe_load(run.stdout)  # JSON is YAML too
        item = document if output == "yaml" else document["items"][0]
        assert item["data"] == {"password": "<redacted>"}
        assert item["stringData"] == {"plain": "<redacted>"}
    table = await asyncio.to_thread(
        subprocess.run, cli, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:2] == ["db", "1"]
    shown.append(table.stdout)
    for text in shown:
        assert password not in text
        assert encoded not in text

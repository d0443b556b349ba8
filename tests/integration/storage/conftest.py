"""Storage integration tests: a real Ceph (session), real NATS, the scheduler as the owner of
templates and policies, and the storage service (in-process, or as a real process to kill)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, POLICIES, STORAGE_CLAIMS, TEMPLATES
from foot.kinds import KINDS
from foot.kinds.storage import StorageClaim
from foot.runtime.settings import ServiceSettings
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import spawn
from foot_scheduler.service import SchedulerService
from foot_storage.service import StorageService, StorageSettings
from foot_testenv.ceph import CephCluster
from support import harness_credentials

CLAIMS = KINDS.lookup("storage.foot.dev/v1alpha1", "StorageClaim")


@dataclass
class StorageEnv:
    ceph: CephCluster
    nats: EmbeddedNats
    bus: Bus
    settings: StorageSettings
    workdir: Path

    def env(self) -> dict[str, str]:
        """The same settings as FOOT_* variables, for a service process."""
        values = self.settings.model_dump(exclude_none=True)
        env = dict(os.environ)
        for name, value in values.items():
            env[f"FOOT_{name.upper()}"] = str(value)
        return env


def claim_document(name: str, namespace: str = "apps", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "block",
        "size": "64Mi",
        "placement": {"failureDomain": "osd", "deviceClass": "hdd", "replicas": 1},
        "access": {"clusters": ["east", "west"]},
    }
    return {
        "apiVersion": "storage.foot.dev/v1alpha1",
        "kind": "StorageClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": base | spec,
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def api(bus: Bus, subject: str, documents: list[dict[str, Any]]) -> ApiReply:
    body = orjson.dumps(ApiRequest(objects=documents).model_dump(mode="json", by_alias=True))
    msg = await bus.request(subject, body, wait_seconds=20)
    return ApiReply.model_validate_json(msg.data)


async def apply(bus: Bus, document: dict[str, Any]) -> None:
    reply = await api(bus, API_APPLY, [document])
    assert [r.outcome for r in reply.results] in (["created"], ["configured"]), reply


async def delete(bus: Bus, document: dict[str, Any]) -> None:
    reply = await api(bus, API_DELETE, [document])
    assert [r.outcome for r in reply.results] == ["deleted"], reply


async def get_claim(bus: Bus, name: str, namespace: str = "apps") -> StorageClaim | None:
    store = await bus.kv(STORAGE_CLAIMS.name)
    entry = await store.get(CLAIMS.key(namespace, name))
    if entry is None or entry.value is None:
        return None
    return StorageClaim.model_validate_json(entry.value, by_alias=True)


async def wait_for_phase(
    bus: Bus, name: str, phase: str, *, within: float = 60.0, namespace: str = "apps"
) -> StorageClaim:
    last: StorageClaim | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await get_claim(bus, name, namespace)
                if (
                    last is not None
                    and last.status is not None
                    and last.status.phase == phase
                    and last.status.observed_generation == last.metadata.generation
                ):
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        status = last.status if last else None
        pytest.fail(f"claim {name} did not reach {phase} in {within}s; last status {status}")


async def stored(bus: Bus, bucket: str, pattern: str = ">") -> dict[str, dict[str, Any]]:
    store = await bus.kv(bucket)
    return {e.key: orjson.loads(e.value or b"{}") for e in await store.entries(pattern)}


Documents = dict[str, list[dict[str, Any]]]


async def delivered(bus: Bus, claim: str, namespace: str = "apps") -> Documents:
    """The templates and policies the storage service submitted for `claim`, by kind (read
    through FOOT's layer, which opens the sealed Secret templates with the test's key)."""
    found: Documents = {}
    for bucket in (TEMPLATES.name, POLICIES.name):
        for document in (await stored(bus, bucket)).values():
            labels = document.get("metadata", {}).get("labels", {})
            if labels.get("storage.foot.dev/claim") == claim and (
                document["metadata"].get("namespace") in (None, namespace)
            ):
                found.setdefault(document["kind"], []).append(document)
    return found


def one(documents: Documents, kind: str) -> dict[str, Any]:
    (document,) = documents[kind]
    return document


def delivered_keys(documents: Documents) -> dict[str, dict[str, str]]:
    """cluster -> {field: plain value} from each cluster's own Secret template."""
    keys: dict[str, dict[str, str]] = {}
    for secret in documents["Secret"]:
        cluster = secret["metadata"]["labels"]["storage.foot.dev/cluster"]
        keys[cluster] = {
            field: base64.b64decode(value).decode() for field, value in secret["data"].items()
        }
    return keys


def ceph_json(ceph: CephCluster, *args: str) -> Any:
    return json.loads(ceph.ceph(*args, "-f", "json"))


def ceph_fails(ceph: CephCluster, *args: str) -> bool:
    try:
        ceph.ceph(*args)
    except subprocess.CalledProcessError:
        return True
    return False


@pytest.fixture
async def storage_env(
    ceph: CephCluster, nats_server: EmbeddedNats, tmp_path: Path
) -> AsyncIterator[StorageEnv]:
    password_file = tmp_path / "dashboard.pass"
    password_file.write_text(ceph.dashboard_password)
    password_file.chmod(0o600)
    settings = StorageSettings(
        nats_url=nats_server.url,
        admin_port=0,
        shutdown_deadline_seconds=3.0,
        secret_key_file=tmp_path / "secret.key",
        ceph_dashboard_url=ceph.dashboard_url,
        ceph_dashboard_user=ceph.dashboard_user,
        ceph_dashboard_password_file=password_file,
        ceph_conf=ceph.conf,
        ceph_keyring=ceph.admin_keyring,
        ceph_fs_name=ceph.fs_name,
        rgw_endpoint=ceph.rgw_url,
        ceph_timeout_seconds=5.0,
        retry_base_seconds=0.2,
        retry_max_seconds=2.0,
        ceph_probe_seconds=5.0,
    )
    scheduler_settings = ServiceSettings(
        nats_url=nats_server.url,
        admin_port=0,
        shutdown_deadline_seconds=2.0,
        secret_key_file=settings.secret_key_file,
    )
    async with (
        await Bus.connect(
            nats_server.url, "storage-test", credentials_file=harness_credentials()
        ) as bus,
        SchedulerService(scheduler_settings),
    ):
        bus.secret_box = SecretBox.from_file(settings.secret_key_file, create=True)
        await bus.declare()
        yield StorageEnv(ceph, nats_server, bus, settings, tmp_path)


@pytest.fixture
async def storage(storage_env: StorageEnv) -> AsyncIterator[StorageService]:
    async with StorageService(storage_env.settings) as service:
        yield service


class StorageProcess:
    """The storage service as a real process (to be killed)."""

    def __init__(self, env: StorageEnv, log: Path) -> None:
        self.process: subprocess.Popen[bytes] = spawn(
            [sys.executable, "-m", "foot_storage"], env=env.env(), log_path=log
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def storage_processes() -> Iterator[list[StorageProcess]]:
    started: list[StorageProcess] = []
    yield started
    for process in started:
        process.kill()

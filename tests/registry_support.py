"""Helpers for the registry tests: a registry on a real nats-server (its own sealing key,
member namespace and log capture), requests, and checks of members and buckets."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from foot.bus import Bus
from foot.catalog import BUCKETS
from foot.kube import KubeClient, KubeNotFoundError, KubeTarget
from foot.natsauth import CLI_IDENTITY, service_creds_path
from foot.registry_api import RegistryReply
from foot.registry_client import RegistryClient
from foot.runtime.logs import JsonFormatter
from foot.runtime.settings import default_home
from foot_cli.natsserver import EmbeddedNats
from foot_registry.core.member_plan import JOINED_LABEL, SERVICE_ACCOUNT, role_name
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_testenv.clusters import KubeCluster


class LogLines(logging.Handler):
    """Every log line, formatted exactly as the service writes it (JSON)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter("registry"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture
def member_namespace() -> str:
    return f"foot-{uuid.uuid4().hex[:8]}"


def registry_settings(nats: EmbeddedNats, tmp_path: Path, **overrides: Any) -> RegistrySettings:
    return RegistrySettings(
        nats_url=nats.url,
        admin_port=0,
        shutdown_deadline_seconds=2.0,
        secret_key_file=tmp_path / "secret.key",
        **overrides,
    )


@pytest.fixture
async def registry(
    nats_server: EmbeddedNats, tmp_path: Path, member_namespace: str
) -> AsyncIterator[RegistryService]:
    settings = registry_settings(nats_server, tmp_path, member_namespace=member_namespace)
    async with RegistryService(settings) as service:
        yield service


async def ask(bus: Bus, verb: str, body: dict[str, Any], wait: float = 30.0) -> RegistryReply:
    """A registry request as the CLI sends it: kubeconfigs sealed, a register's answer
    opened (`RegistryClient`)."""
    return await RegistryClient(bus, wait_seconds=wait).ask(verb, body)


def admin_target(cluster: KubeCluster, context: str | None = None) -> KubeTarget:
    return KubeTarget.from_kubeconfig(cluster.kubeconfig_path.read_text(), context=context)


async def member_objects_left(kube: KubeClient, namespace: str, cluster: str) -> list[str]:
    """FOOT's objects for `cluster` still in the member (a terminating namespace counts)."""
    left = []
    paths = {
        "namespace": f"/api/v1/namespaces/{namespace}",
        "serviceaccount": f"/api/v1/namespaces/{namespace}/serviceaccounts/{SERVICE_ACCOUNT}",
        "clusterrole": f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role_name(namespace)}",
        "clusterrolebinding": (
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role_name(namespace)}"
        ),
    }
    for what, path in paths.items():
        try:
            found = await kube.get(path)
        except KubeNotFoundError:
            continue
        labels = (found.get("metadata") or {}).get("labels") or {}
        if labels.get(JOINED_LABEL) == cluster:
            left.append(what)
    return left


async def raw_bucket_bytes(bus: Bus) -> bytes:
    """Every value in every FOOT bucket, concatenated, exactly as stored."""
    chunks = []
    for spec in BUCKETS:
        store = await bus.kv(spec.name)
        chunks += [entry.value or b"" for entry in await store.entries()]
    return b"\n".join(chunks)


async def wait_member_clean(
    kube: KubeClient, namespace: str, cluster: str, within: float = 60.0
) -> None:
    """Until none of FOOT's objects for `cluster` is left (a namespace deletion and the
    garbage collector take a few seconds); fails with what is left after `within`."""
    left: list[str] = []
    try:
        async with asyncio.timeout(within):
            while left := await member_objects_left(kube, namespace, cluster):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"still in the member after {within:.0f}s: {left}")


async def foot_cli(
    nats: EmbeddedNats, tmp_path: Path, *args: str, wait_seconds: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own (in a thread: the registry shares this event loop),
    with the CLI's own NATS user as `foot up` made it in the run's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}
    env["FOOT_HOME"] = str(tmp_path / "home")
    env["FOOT_NATS_CREDENTIALS_FILE"] = str(service_creds_path(default_home(), CLI_IDENTITY))
    command = [sys.executable, "-m", "foot_cli.main", *args, "--nats-url", nats.url]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=wait_seconds,
        check=False,
    )  # fmt: skip

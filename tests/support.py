"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from foot.bus import Bus
from foot.errors import InvalidObjectError
from foot.kinds import KINDS
from foot.natsauth import account_signing_seed_path, mint_agent_creds, service_creds_path
from foot.natsjwt import NKey, decode_claims, parse_creds
from foot.runtime.settings import default_home

HARNESS_IDENTITY = "test-harness"
"""The NATS user of the tests' own connections (tests/conftest.py creates it)."""
TEST_ONLY_SERVICES = ("runtime-test", "tls-test", "trace-worker", "slow-worker")
"""Services the tests define themselves (not FOOT's): each gets a NATS user like the harness."""


def harness_credentials() -> Path:
    """The `.creds` file of the tests' own NATS user, in the run's FOOT_HOME."""
    return service_creds_path(default_home(), HARNESS_IDENTITY)


def agent_credentials(folder: Path, cluster: str) -> Path:
    """A pull agent's NATS user for `cluster`, minted as the registry mints it at `register`
    (for tests that run an agent without a registration), written to `folder`."""
    signing = NKey.from_seed(account_signing_seed_path(default_home()).read_bytes())
    jwt, _ = parse_creds(harness_credentials().read_text())
    account = str(decode_claims(jwt)["nats"]["issuer_account"])
    path = folder / f"{cluster}.creds"
    path.write_text(mint_agent_creds(signing, account=account, cluster=cluster))
    path.chmod(0o600)
    return path


async def eventually(check: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll `check` until it holds; fail with TimeoutError after `within` seconds.

    Polling is deliberate: the condition is state owned by the code under test,
    which offers no event to wait on.
    """
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def stored_values(nats_url: str, bucket: str) -> dict[str, bytes]:
    """Every live key of a bucket with its value exactly as stored: sealed values stay sealed.

    Read through the bus's own snapshot (`KvStore.entries`), which ends only once the
    bucket's replay has passed its last revision: plain nats-py `keys()` can return before
    the replay ends and miss keys (the nats.py "caught up" race, see foot.bus.kv). The
    connection is a fresh one holding no sealing key, so nothing is opened on the way.
    """
    async with await Bus.connect(
        nats_url, "test-stored-values", credentials_file=harness_credentials()
    ) as bus:
        entries = await (await bus.kv(bucket)).entries()
    return {entry.key: entry.value or b"" for entry in entries}


async def stored_value(nats_url: str, bucket: str, key: str) -> bytes | None:
    """One key's value exactly as stored (sealed stays sealed); None when there is none."""
    async with await Bus.connect(
        nats_url, "test-stored-value", credentials_file=harness_credentials()
    ) as bus:
        entry = await (await bus.kv(bucket)).get(key)
    return None if entry is None else entry.value


async def run_foot(
    nats_url: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the `foot` CLI as a user would: exit code, stdout and stderr (`env`: the whole
    environment; by default this one with 200 columns and no trace export)."""
    if env is None:
        env = {**os.environ, "COLUMNS": "200", "OTEL_TRACES_EXPORTER": "none"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "foot_cli.main",
        *args,
        "--nats-url",
        nats_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def deployment_template(namespace: str, name: str) -> dict[str, Any]:
    """A two-replica Deployment template labelled app=<name>."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"example.com/{name}:1"}]},
            },
        },
    }


def node_port_service(namespace: str, name: str, *ports: dict[str, Any]) -> dict[str, Any]:
    """A NodePort Service `name` in front of the pods labelled app=<name>."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": list(ports)},
    }


def member_deployment(
    name: str, containers: list[dict[str, Any]], replicas: int = 1
) -> dict[str, Any]:
    """A Deployment labelled app=<name> as a client posts it to a member (the path names the
    namespace)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def password_secret() -> tuple[str, str, dict[str, Any]]:
    """A Secret shop/db carrying a fresh password both in `data` (base64) and in `stringData`
    (plain): the password, its base64 and the document."""
    password = f"pw-{uuid.uuid4().hex}"
    encoded = base64.b64encode(password.encode()).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": encoded},
        "stringData": {"plain": password},
    }
    return password, encoded, secret


def custom_resource_definition(
    group: str,
    kind: str,
    scope: str = "Namespaced",
    spec_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CRD registering `<group>/v1` `<kind>`, its spec open unless `spec_schema` says."""
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": spec_schema
                                or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    },
                }
            ],
        },
    }


def problems(document: Mapping[str, Any]) -> dict[str, str]:
    """Field path -> reason of each problem that makes the kinds refuse `document`."""
    with pytest.raises(InvalidObjectError) as refused:
        KINDS.parse(document)
    return {p.path: p.reason for p in refused.value.problems}


def agent_argv(
    cluster: str, nats_url: str, token_file: Path, creds_file: Path, kubeconfig: Path,
    *, log_format: str = "text",
) -> list[str]:  # fmt: skip
    """`python -m foot_agent` for `cluster` as a local process with the member's kubeconfig
    (pull mode: it only dials out to NATS)."""
    return [
        sys.executable, "-m", "foot_agent",
        "--cluster-name", cluster,
        "--nats-url", nats_url,
        "--bootstrap-token-file", str(token_file),
        "--nats-credentials-file", str(creds_file),
        "--kubeconfig", str(kubeconfig),
        "--log-format", log_format,
    ]  # fmt: skip


def agent_env() -> dict[str, str]:
    """This environment without FOOT's variables (the agent reads only its flags)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}

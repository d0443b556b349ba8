"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foot.bus import Bus
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

"""NATS over TLS with a private CA: a service and a pull agent verify the server against
the CA they are given; without it, or in plain text, they do not connect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from foot.bus import Bus
from foot.catalog import CLUSTERS, BucketSpec, work_sync_subject
from foot.errors import InvalidObjectError, PermanentError
from foot.natsauth import NatsAuthHome
from foot.registry_api import RegisterRequest
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings, default_home
from foot_agent.agent import Agent
from foot_agent.settings import AgentSettings
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_registry.settings import RegistrySettings
from foot_testenv.pki import ServerPki, write_server_pki
from support import agent_credentials, harness_credentials

SEEN = BucketSpec(name="tls_seen", owner="tls-test", description="test")


class Minimal(Service):
    name = "tls-test"

    async def setup(self) -> None:
        await self.bus.declare_bucket(SEEN)
        self.informer = await self.watch(SEEN.name)


@pytest.fixture
def pki(tmp_path: Path) -> ServerPki:
    return write_server_pki(tmp_path / "pki", "nats")


@pytest.fixture
def tls_nats(tmp_path: Path, pki: ServerPki) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(
        data_dir=tmp_path / "nats",
        tls_cert=pki.serving_cert,
        tls_key=pki.serving_key,
        auth=NatsAuthHome(default_home()),
    )
    with server:
        yield server


async def test_a_service_connects_with_the_ca_it_is_given(
    tls_nats: EmbeddedNats, pki: ServerPki
) -> None:
    assert tls_nats.url.startswith("tls://")
    settings = ServiceSettings(
        nats_url=tls_nats.url,
        nats_ca_file=pki.ca_cert,
        admin_port=0,
        shutdown_deadline_seconds=1,
    )
    async with Minimal(settings) as service:
        await asyncio.wait_for(service.informer.synced.wait(), 5)
        assert service.readiness_problems() == []
        store = await service.bus.kv(SEEN.name)
        await store.put("k", b"over tls")
        entry = await store.get("k")
        assert entry is not None
        assert entry.value == b"over tls"


async def test_without_the_ca_or_in_plain_text_there_is_no_connection(
    tls_nats: EmbeddedNats,
) -> None:
    # nats-py would retry these forever; FOOT reports them at once, as configuration errors.
    with pytest.raises(PermanentError, match="certificate is not trusted") as untrusted:
        await Bus.connect(tls_nats.url, "no-ca", connect_timeout=2)
    assert "give the CA that signed it (nats_ca_file)" in untrusted.value.message
    # nats:// to a server that requires TLS: the client upgrades, then cannot trust it either.
    plain = tls_nats.url.replace("tls://", "nats://")
    with pytest.raises(PermanentError, match="certificate is not trusted"):
        await Bus.connect(plain, "plain", connect_timeout=2)


async def test_a_pull_agent_reaches_the_hub_over_tls(
    tls_nats: EmbeddedNats, pki: ServerPki, tmp_path: Path
) -> None:
    creds = agent_credentials(tmp_path, "edge-1")
    agent = Agent(
        AgentSettings(
            cluster_name="edge-1",
            nats_url=tls_nats.url,
            nats_ca_file=pki.ca_cert,
            nats_credentials_file=creds,
            bootstrap_token=SecretStr("t0k"),
        )
    )
    async with await Bus.connect(
        tls_nats.url, "hub", ca_file=pki.ca_cert, credentials_file=harness_credentials()
    ) as hub:

        async def answer(msg: object) -> None:
            await msg.respond(b"hello " + msg.data)  # type: ignore[attr-defined]

        # One of the subjects the agent's own NATS user may use.
        await hub.serve(work_sync_subject("edge-1"), answer)  # flushed in order, unlike nats-py's
        async with await agent.connect() as connected:
            reply = await connected.client.request(
                work_sync_subject("edge-1"), b"edge-1", timeout=5
            )
    assert reply.data == b"hello edge-1"


async def test_register_gives_the_agent_the_hub_ca_and_refuses_a_plain_url(
    tls_nats: EmbeddedNats, pki: ServerPki, tmp_path: Path
) -> None:
    settings = RegistrySettings(
        nats_url=tls_nats.url,
        nats_ca_file=pki.ca_cert,
        agent_nats_ca_file=pki.ca_cert,
        admin_port=0,
        shutdown_deadline_seconds=1,
        secret_key_file=tmp_path / "secret.key",
    )
    async with RegistryService(settings) as registry:
        with pytest.raises(InvalidObjectError) as refused:
            await registry.register(
                RegisterRequest(name="edge-plain", hub_nats_url="nats://hub.example:4222")
            )
        assert refused.value.problems[0].path == "hubNatsUrl"
        assert "must be a tls:// URL" in refused.value.problems[0].reason
        clusters = await (await registry.bus.kv(CLUSTERS.name)).entries()
        assert [e.key for e in clusters] == [], "nothing is registered by a refused request"
        _, manifests, _ = await registry.register(
            RegisterRequest(name="edge-tls", hub_nats_url="tls://hub.example:4222")
        )
    secret = next(d for d in yaml.safe_load_all(manifests) if d["kind"] == "Secret")
    assert secret["stringData"]["nats-ca.crt"] == pki.ca_cert.read_text()
    assert secret["stringData"]["nats-url"] == "tls://hub.example:4222"

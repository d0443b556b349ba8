"""The registry's requests on NATS carry no secret in the clear (issue 15): a kubeconfig
only sealed to the registry's key, a registration's bootstrap token and agent credentials
only sealed to the requester's key. On a real nats-server with auth on."""

from __future__ import annotations

import base64

import orjson
import pytest

from foot.bus import Bus
from foot.catalog import CLUSTERS, registry_subject
from foot.registry_api import RegistryReply, join_context
from foot.registry_client import RegistryClient
from foot.secrets import BoxKey, seal_to
from foot_registry.service import RegistryService

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: m, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: admin-token-0123456789}}]
contexts: [{name: c, context: {cluster: m, user: u}}]
current-context: c
"""


def forms(secret: str) -> list[bytes]:
    """A secret as it could sit in a message: plain, base64, base64 of base64."""
    once = base64.b64encode(secret.encode())
    return [secret.encode(), once, base64.b64encode(once)]


async def raw(bus: Bus, verb: str, body: dict[str, object]) -> tuple[bytes, RegistryReply]:
    msg = await bus.request(registry_subject(verb), orjson.dumps(body), wait_seconds=30)
    return msg.data, RegistryReply.model_validate_json(msg.data)


async def test_a_kubeconfig_in_the_clear_is_refused_on_nats(
    registry: RegistryService, bus: Bus
) -> None:
    for verb in ("join", "unjoin"):
        _, reply = await raw(bus, verb, {"name": "east", "kubeconfig": KUBECONFIG})
        assert reply.error is not None
        assert reply.error.code == "Invalid"
        assert [f.path for f in reply.error.fields] == ["kubeconfig"]
        assert "sealedKubeconfig" in reply.error.fields[0].reason
    assert not await (await bus.kv(CLUSTERS.name)).entries()


async def test_a_sealed_kubeconfig_opens_only_for_its_own_cluster(
    registry: RegistryService, bus: Bus
) -> None:
    key = await RegistryClient(bus).sealing_key()
    assert key == registry.box_key.public_key
    for sealed in (
        seal_to(key, KUBECONFIG.encode(), context=join_context("join", "west")),
        seal_to(BoxKey().public_key, KUBECONFIG.encode(), context=join_context("join", "east")),
    ):
        _, reply = await raw(bus, "join", {"name": "east", "sealedKubeconfig": sealed})
        assert reply.error is not None
        assert [f.path for f in reply.error.fields] == ["sealedKubeconfig"]
        assert "join/east" in reply.error.fields[0].reason
    # Sealed right, the registry opens it and goes on to the member (unreachable here).
    reply = await RegistryClient(bus).ask("join", {"name": "east", "kubeconfig": KUBECONFIG})
    assert reply.error is not None
    assert "127.0.0.1:1" in reply.error.message
    assert not await (await bus.kv(CLUSTERS.name)).entries()


async def test_a_registration_needs_a_reply_key_on_nats(
    registry: RegistryService, bus: Bus
) -> None:
    _, reply = await raw(bus, "register", {"name": "north"})
    assert reply.error is not None
    assert [f.path for f in reply.error.fields] == ["replyKey"]
    _, reply = await raw(bus, "register", {"name": "north", "replyKey": "foot-x25519:AAAA"})
    assert reply.error is not None
    assert [f.path for f in reply.error.fields] == ["replyKey"]
    assert "32 bytes" in reply.error.fields[0].reason
    assert not await (await bus.kv(CLUSTERS.name)).entries()


async def test_a_registrations_secrets_come_back_sealed_to_the_requester(
    registry: RegistryService, bus: Bus
) -> None:
    requester = BoxKey()
    data, reply = await raw(bus, "register", {"name": "north", "replyKey": requester.public_key})
    assert reply.ok, reply.error
    assert reply.manifests is None
    assert reply.bootstrap_token is None
    assert reply.sealed is not None
    opened = reply.opened_with(requester, "north")
    assert opened.bootstrap_token is not None
    assert opened.manifests is not None
    token = opened.bootstrap_token.get_secret_value()
    assert token in opened.manifests
    # The agent's NATS seed is in the manifests: neither it nor the token is on the wire.
    seeds = [w.strip("\"'") for w in opened.manifests.split() if w.strip("\"'").startswith("SU")]
    assert seeds
    for secret in (token, *seeds):
        for form in forms(secret):
            assert form not in data
    # Another key does not open it.
    with pytest.raises(Exception, match="does not open"):
        reply.opened_with(BoxKey(), "north")

"""Pull registration, pure: the agent's manifests, and the signatures of its messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml

from foot.registry_api import Heartbeat, agent_key
from foot_registry.core.agents import agent_manifests

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_heartbeat_signature_covers_every_field() -> None:
    key = agent_key("token-1")
    beat = Heartbeat(
        cluster="a", agent_id="x", sequence=1, sent_at=T0, api_server_ready=True
    ).signed(key)
    assert beat.verify(key)
    assert not beat.verify(agent_key("token-2"))
    forged = beat.model_copy(update={"api_server_ready": False})
    assert not forged.verify(key)
    assert not beat.model_copy(update={"cluster": "b"}).verify(key)


def test_agent_manifests_carry_the_token_only_in_the_secret() -> None:
    text = agent_manifests(
        cluster="a", nats_url="nats://hub:4222", bootstrap_token="t0k", nats_creds="cr3ds",
        image="i",
    )  # fmt: skip
    documents = list(yaml.safe_load_all(text))
    holders = [d["kind"] for d in documents if "t0k" in yaml.safe_dump(d)]
    assert holders == ["Secret"]
    assert [d["kind"] for d in documents if "cr3ds" in yaml.safe_dump(d)] == ["Secret"]
    deployment = documents[-1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["foot", "agent"]


def test_agent_manifests_mount_the_hub_nats_ca_when_given() -> None:
    plain = list(yaml.safe_load_all(agent_manifests(
        cluster="a", nats_url="tls://hub:4222", bootstrap_token="t0k", nats_creds="c", image="i"
    )))  # fmt: skip
    with_ca = list(yaml.safe_load_all(agent_manifests(
        cluster="a", nats_url="tls://hub:4222", bootstrap_token="t0k", nats_creds="c",
        image="i", nats_ca_pem="-----BEGIN CERTIFICATE-----\nCA\n",
    )))  # fmt: skip

    def parts(documents: list[dict[str, Any]]) -> tuple[set[str], dict[str, str], list[str]]:
        secret = next(d for d in documents if d["kind"] == "Secret")
        pod = documents[-1]["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}
        items = [i["path"] for i in pod["volumes"][0]["secret"]["items"]]
        return set(secret["stringData"]), env, items

    keys, env, items = parts(plain)
    assert "nats-ca.crt" not in keys
    assert "FOOT_AGENT_NATS_CA_FILE" not in env
    assert items == ["bootstrap-token", "nats.creds"]
    assert env["FOOT_AGENT_NATS_CREDENTIALS_FILE"] == "/etc/foot-agent/nats.creds"
    keys, env, items = parts(with_ca)
    assert "nats-ca.crt" in keys
    assert env["FOOT_AGENT_NATS_CA_FILE"] == "/etc/foot-agent/nats-ca.crt"
    assert items == ["bootstrap-token", "nats.creds", "nats-ca.crt"]

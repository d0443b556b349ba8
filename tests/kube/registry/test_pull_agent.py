"""Pull mode against a real kube-apiserver: `register` prints manifests with a bootstrap
token, an agent process (only outbound NATS) registers, heartbeats keep the cluster Ready,
a stopped agent turns it Unknown after the lease, a restarted one Ready again, and an
agent with the wrong token is refused (acceptance 2 of the registry issue)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from registry_support import ask, raw_bucket_bytes

from foot.bus import Bus
from foot.catalog import health_subject
from foot.health import ClusterHealthEvent
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_testenv.clusters import KubeClusters
from support import agent_argv, agent_env, eventually

pytestmark = pytest.mark.kube


class AgentProcess:
    """`python -m foot_agent` as a local process with a kubeconfig, as the issue allows."""

    def __init__(self, tmp_path: Path, nats: EmbeddedNats, cluster: str, kubeconfig: Path) -> None:
        self.tmp_path = tmp_path
        self.nats = nats
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / f"agent-{cluster}.log"

    def start(self, token: str, nats_creds: str) -> None:
        token_file = self.tmp_path / f"{self.cluster}.token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        creds_file = self.tmp_path / f"{self.cluster}.creds"
        creds_file.write_text(nats_creds)
        creds_file.chmod(0o600)
        argv = agent_argv(
            self.cluster, self.nats.url, token_file, creds_file, self.kubeconfig, log_format="json"
        )
        env = agent_env()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


async def test_agent_registers_heartbeats_and_its_absence_is_detected(
    kube_clusters: KubeClusters, registry: RegistryService, bus: Bus, nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:  # fmt: skip
    member = kube_clusters[1]
    events: list[tuple[float, ClusterHealthEvent]] = []

    async def on_event(msg: Any) -> None:
        events.append((time.monotonic(), ClusterHealthEvent.model_validate_json(msg.data)))

    subscription = await bus.client.subscribe(health_subject("north"), cb=on_event)
    reply = await ask(bus, "register", {"name": "north", "region": "eu-north"})
    assert reply.ok, reply.error
    assert reply.bootstrap_token is not None
    token = reply.bootstrap_token.get_secret_value()
    assert reply.manifests is not None
    kinds = [d["kind"] for d in yaml.safe_load_all(reply.manifests)]
    assert kinds == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Deployment",
    ]  # fmt: skip
    secret = next(d for d in yaml.safe_load_all(reply.manifests) if d["kind"] == "Secret")
    assert secret["stringData"]["bootstrap-token"] == token
    creds = secret["stringData"]["nats.creds"]
    assert secret["stringData"]["nats-url"] == nats_server.url
    # The registry keeps no token, only the sealed key derived from it.
    assert token.encode() not in await raw_bucket_bytes(bus)
    await eventually(lambda: any(e.ready == "Unknown" for _, e in events), within=5)

    agent = AgentProcess(tmp_path, nats_server, "north", member.kubeconfig_path)
    try:
        agent.start(token, creds)
        await eventually(lambda: events[-1][1].ready == "True", within=30)
        assert events[-1][1].reason == "HeartbeatReceived"
        # The status arrives with a heartbeat (status period 10 s by default).
        registry_cluster = registry.clusters

        def has_status() -> bool:
            cluster = registry_cluster.get("north")
            return cluster is not None and cluster.status.kubernetes_version is not None

        await eventually(has_status, within=20)
        stored = registry.clusters["north"]
        assert stored.status.api_enablements
        assert stored.status.last_heartbeat_time is not None

        # Stopped (a crash): Unknown after the lease, reason HeartbeatMissed.
        agent.kill()
        killed_at = time.monotonic()
        await eventually(lambda: events[-1][1].ready == "Unknown", within=15)
        detected_at, event = events[-1]
        assert event.reason == "HeartbeatMissed"
        lease = registry.settings.heartbeat_lease_seconds
        assert event.last_success_at is not None
        assert (event.observed_at - event.last_success_at).total_seconds() >= lease
        print(f"agent killed -> Unknown event: {detected_at - killed_at:.2f}s (lease {lease}s)")  # noqa: T201

        await eventually(
            lambda: (
                "cluster.foot.dev/unreachable"
                in {t.key for t in registry.clusters["north"].spec.taints}
            ),
            within=5,
        )

        # Restarted: Ready again (after the success threshold of heartbeats).
        agent.start(token, creds)
        await eventually(lambda: events[-1][1].ready == "True", within=30)
        await eventually(lambda: not registry.clusters["north"].spec.taints, within=5)
        assert agent.terminate() == 0  # SIGTERM: a clean, staged stop
    finally:
        agent.kill()
        await subscription.unsubscribe()
    log = agent.log.read_text()
    assert token not in log
    assert "registered with the hub as cluster north" in log


async def test_agent_with_a_wrong_token_is_refused(
    kube_clusters: KubeClusters, registry: RegistryService, bus: Bus, nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:  # fmt: skip
    reply = await ask(bus, "register", {"name": "south"})
    assert reply.ok, reply.error
    assert reply.manifests is not None
    secret = next(d for d in yaml.safe_load_all(reply.manifests) if d["kind"] == "Secret")
    agent = AgentProcess(tmp_path, nats_server, "south", kube_clusters[1].kubeconfig_path)
    try:
        agent.start("not-the-token-" * 3, secret["stringData"]["nats.creds"])
        await eventually(
            lambda: "the registry refused this agent" in agent.log.read_text(), within=20
        )
        assert registry.health["south"].ready == "Unknown"
    finally:
        agent.kill()
    duplicate = await ask(bus, "register", {"name": "south"})
    assert duplicate.error is not None
    assert duplicate.error.code == "AlreadyExists"

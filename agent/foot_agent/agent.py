"""The agent process: a connection to the hub's NATS, a client of its own API server, and
named, supervised tasks.

Its tasks, started once connected: the heartbeat (`foot_agent.heartbeat`) and work
pulling (`foot_agent.works`), each given what it works with (`Connected`); an embedding
program may add more with `agent.add_task(name, factory)` before start. Stopping is
staged and idempotent: tasks are cancelled, then the API client and the NATS connection
are closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr

from foot.agent_channel import AgentChannel, agent_key
from foot.backoff import Backoff
from foot.bus import Bus
from foot.errors import FootError, TransportError
from foot.kube import KubeClient, KubeTarget
from foot.natsauth import agent_inbox_prefix
from foot.runtime.lifecycle import StartStop
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.supervisor import Supervisor
from foot_agent.connected import Connected
from foot_agent.heartbeat import Heartbeats
from foot_agent.settings import AgentSettings
from foot_agent.works import WorkPuller

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
CONNECT_FIRST_DELAY_SECONDS = 0.5
CONNECT_MAX_DELAY_SECONDS = 10.0

TaskFactory = Callable[[], Awaitable[None]]


def in_cluster_target() -> KubeTarget:
    """The API server of the cluster this Pod runs in, as its ServiceAccount."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise FootError("not in a cluster (no KUBERNETES_SERVICE_HOST) and no kubeconfig given")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return KubeTarget(
        server=server,
        ca_pem=(SERVICE_ACCOUNT_DIR / "ca.crt").read_text(),
        token=SecretStr((SERVICE_ACCOUNT_DIR / "token").read_text().strip()),
    )


class Agent(StartStop):
    name = "agent"

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.agent_id = secrets.token_hex(8)
        """This process; heartbeat sequences count per agent id."""
        self.metrics = ServiceMetrics("agent")
        self.supervisor = Supervisor("agent", self.metrics)
        self._tasks: list[tuple[str, TaskFactory]] = []
        self._started = False
        self._stopped = False
        self._running = False
        self._stop_lock = asyncio.Lock()
        self.key = b""
        self.bus: Bus | None = None
        self.kube: KubeClient | None = None

    def add_task(self, name: str, factory: TaskFactory) -> None:
        """Run `factory` as a named, supervised task once the agent starts (restarted with
        backoff when it crashes)."""
        if self._running:
            raise RuntimeError("tasks are added before the agent's tasks start")
        self._tasks.append((name, factory))

    def target(self) -> KubeTarget:
        if self.settings.kubeconfig is None:
            return in_cluster_target()
        path = self.settings.kubeconfig
        return KubeTarget.from_kubeconfig(
            path.read_text(), context=self.settings.context, base_dir=path.parent
        )

    async def connect(self) -> Bus:
        """Dial the hub's NATS until it answers (reconnects are NATS's own business after)."""
        delays = Backoff(CONNECT_FIRST_DELAY_SECONDS, CONNECT_MAX_DELAY_SECONDS).delays()
        while True:
            try:
                return await Bus.connect(
                    self.settings.nats_url,
                    f"foot-agent-{self.cluster}",
                    connect_timeout=3,
                    ca_file=self.settings.nats_ca_file,
                    credentials_file=self.settings.nats_credentials_file,
                    # Its user may read replies only on its own inbox (foot.natsauth).
                    inbox_prefix=agent_inbox_prefix(self.cluster),
                )
            except TransportError as exc:
                delay = delays.next()
                log.warning("cannot reach the hub yet (%s); again in %.1fs", exc.message, delay)
                await asyncio.sleep(delay)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.key = agent_key(self.settings.token())
        self.kube = KubeClient(
            self.target(),
            timeout_seconds=self.settings.status_timeout_seconds,
            user_agent="foot-agent",
        )
        self.bus = await self.connect()
        channel = AgentChannel(
            self.cluster,
            self.key,
            self.agent_id,
            max_skew_seconds=self.settings.hub_max_skew_seconds,
        )
        connected = Connected(self.settings, self.agent_id, self.key, self.bus, self.kube, channel)

        async def pull_works() -> None:
            # A fresh puller each run: a restarted task starts from a new queue and a resync
            # (the channel, and so its sequence, stays the process's).
            await WorkPuller(connected.bus, connected.kube, connected.channel).run()

        own_tasks: list[tuple[str, TaskFactory]] = [
            ("heartbeat", Heartbeats(connected).run),
            ("works", pull_works),
        ]
        self._tasks[:0] = own_tasks
        self._running = True
        for name, factory in self._tasks:
            self.supervisor.spawn(name, factory)
        log.info(
            "agent %s of cluster %s started with tasks %s",
            self.agent_id,
            self.cluster,
            ", ".join(name for name, _ in self._tasks),
            extra={"cluster": self.cluster},
        )

    async def stop(self) -> None:
        async with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            await self.supervisor.cancel_all()
            if self.kube is not None:
                await self.kube.close()
            if self.bus is not None:
                await self.bus.close()
            log.info("agent of cluster %s stopped", self.cluster, extra={"cluster": self.cluster})

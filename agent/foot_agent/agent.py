"""The agent process: a connection to the hub's NATS, a client of its own API server, and
named, supervised tasks.

Tasks are registered before start: the agent's own heartbeat task
(`foot_agent.heartbeat`) and whatever `foot_agent.extensions.EXTENSIONS` adds (work
pulling arrives there as a module of its own). Each extension is a function called
with the agent; it registers tasks with `agent.add_task(name, factory)` and may keep
state on the agent. Stopping is staged and idempotent: tasks are cancelled, then the
API client and the NATS connection are closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Self

from pydantic import SecretStr

from foot.backoff import Backoff
from foot.bus import Bus
from foot.errors import FootError, TransportError
from foot.kube import KubeClient, KubeTarget
from foot.registry_api import agent_key
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.supervisor import Supervisor
from foot_agent.settings import AgentSettings

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


class Agent:
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
                )
            except TransportError as exc:
                delay = delays.next()
                log.warning("cannot reach the hub yet (%s); again in %.1fs", exc.message, delay)
                await asyncio.sleep(delay)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        from foot_agent import heartbeat
        from foot_agent.extensions import EXTENSIONS

        self.key = agent_key(self.settings.token())
        self.kube = KubeClient(
            self.target(),
            timeout_seconds=self.settings.status_timeout_seconds,
            user_agent="foot-agent",
        )
        heartbeat.install(self)
        for extension in EXTENSIONS:
            extension(self)
        self.bus = await self.connect()
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

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

"""The agent's hello and heartbeats: what keeps its cluster Ready at the hub.

A hello (`foot.agent.register.<cluster>`, request-reply) until the registry accepts
it (it answers with the heartbeat and status periods), then a heartbeat every period
on `foot.agent.heartbeat.<cluster>`: whether the member's /readyz answered, and every
status period the collected status. Each message is signed with the agent key. After
NATS comes back the agent says hello again; heartbeats sent while NATS is away are
buffered by the client or lost, which is what a lease is for.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from pydantic import ValidationError

from foot.backoff import Backoff
from foot.catalog import agent_heartbeat_subject, agent_register_subject
from foot.cluster_status import CollectedStatus
from foot.errors import FootError
from foot.kube.collect import collect_status
from foot.objects import utc_now
from foot.registry_api import AgentHello, AgentWelcome, Heartbeat
from foot_agent.connected import Connected

log = logging.getLogger(__name__)

HELLO_FIRST_DELAY_SECONDS = 0.5
HELLO_MAX_DELAY_SECONDS = 10.0
VERSION = "0.1.0"


class Heartbeats:
    def __init__(self, agent: Connected) -> None:
        self.agent = agent
        self.sequence = 0
        self.welcome = AgentWelcome(accepted=False)
        self.status: CollectedStatus | None = None
        self._status_due = 0.0

    async def hello(self) -> AgentWelcome:
        agent = self.agent
        delays = Backoff(HELLO_FIRST_DELAY_SECONDS, HELLO_MAX_DELAY_SECONDS).delays()
        while True:
            hello = AgentHello(
                cluster=agent.cluster, agent_id=agent.agent_id, sent_at=utc_now(), version=VERSION
            ).signed(agent.key)
            try:
                msg = await agent.bus.request(
                    agent_register_subject(agent.cluster),
                    orjson.dumps(hello.model_dump(mode="json", by_alias=True)),
                    wait_seconds=agent.settings.hello_timeout_seconds,
                )
                welcome = AgentWelcome.model_validate_json(msg.data)
            except (FootError, ValidationError) as exc:
                delay = delays.next()
                log.warning("no answer from the registry (%s); again in %.1fs", exc, delay)
            else:
                if welcome.accepted:
                    log.info("registered with the hub as cluster %s", agent.cluster)
                    return welcome
                log.error("the registry refused this agent: %s", welcome.message)
                delay = delays.next()
            await asyncio.sleep(delay)

    async def probe(self) -> tuple[bool, str]:
        try:
            await self.agent.kube.readyz(timeout_seconds=self.agent.settings.probe_timeout_seconds)
        except FootError as exc:
            return False, exc.message
        return True, ""

    async def collect(self) -> None:
        """Status collections, every status period (their own task: a slow one never holds
        up heartbeats)."""
        while True:
            try:
                async with asyncio.timeout(self.agent.settings.status_timeout_seconds):
                    self.status = await collect_status(self.agent.kube)
            except (FootError, TimeoutError) as exc:
                log.info("status not collected: %s", exc)
            await asyncio.sleep(self.welcome.status_period_seconds)

    async def run(self) -> None:
        agent = self.agent
        self.welcome = await self.hello()
        collector = asyncio.create_task(self.collect(), name="agent:collect")
        was_connected = True
        try:
            while True:
                connected = agent.bus.connected
                if connected and not was_connected:
                    self.welcome = await self.hello()  # the hub came back: announce again
                was_connected = connected
                ready, message = await self.probe()
                status, self.status = self.status, None
                self.sequence += 1
                beat = Heartbeat(
                    cluster=agent.cluster,
                    agent_id=agent.agent_id,
                    sequence=self.sequence,
                    sent_at=utc_now(),
                    api_server_ready=ready,
                    message=message,
                    status=status,
                ).signed(agent.key)
                payload = orjson.dumps(beat.model_dump(mode="json", by_alias=True))
                try:
                    await agent.bus.notify(agent_heartbeat_subject(agent.cluster), payload)
                except Exception as exc:  # noqa: BLE001 - a lost heartbeat is only logged
                    log.info("heartbeat not sent: %s", exc)
                    self.status = status or self.status
                await asyncio.sleep(self.welcome.heartbeat_period_seconds)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)

"""Cluster health in seconds: probes of push clusters, heartbeats and leases of pull
clusters, and each Ready transition published and recorded.

The decisions are the core's (`core.health`: thresholds and transitions,
`core.liveness`: probe timing, agents' messages, leases); this module runs them:

* push: one probe loop per cluster (supervised by the `health:probes` task), a
  `/readyz` probe every period, overlapping when one hangs, so one dead cluster never
  slows another;
* pull: signed hellos and heartbeats on `foot.agent.{register,heartbeat}.<cluster>`
  and a lease check (`health:leases`);
* each Ready transition is published at once on `foot.events.health.<cluster>`
  (message id for de-duplication) and then recorded on the cluster (condition,
  system taints, sequence), with optimistic concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import orjson
from nats.aio.msg import Msg
from pydantic import ValidationError

from foot.bus import Bus
from foot.catalog import CLUSTER_AGENTS, health_subject
from foot.cluster_status import CollectedStatus
from foot.errors import FootError
from foot.health import ClusterHealthEvent
from foot.kube import KubeApiError, KubeClient, KubeTarget, KubeUnavailableError
from foot.objects import utc_now
from foot.registry_api import AgentHello, AgentWelcome, Heartbeat
from foot.runtime.locks import KeyedLocks
from foot_registry.core.agents import AgentRecord
from foot_registry.core.health import Outcome, Source, Thresholds, observe, with_health
from foot_registry.core.liveness import (
    HeartbeatVerdict,
    HelloVerdict,
    clusters_to_probe,
    failed_probe,
    heartbeat_outcome,
    judge_heartbeat,
    judge_hello,
    lease_lapsed,
    lease_thresholds,
    next_probe,
)
from foot_registry.parts import RegistryParts

log = logging.getLogger(__name__)

PROBE_SET_RESYNC_SECONDS = 1.0
StatusSink = Callable[[str, CollectedStatus, datetime], None]
"""Where an agent's status goes (the status collector stores it)."""


class HealthMonitor:
    """Observes every cluster's health and records each Ready transition."""

    def __init__(
        self,
        *,
        bus: Bus,
        parts: RegistryParts,
        on_agent_status: StatusSink,
    ) -> None:
        self.bus = bus
        self.parts = parts
        self.on_agent_status = on_agent_status
        settings = parts.settings
        self.thresholds = Thresholds(settings.failure_threshold, settings.success_threshold)
        self._observations: dict[str, int] = {}
        self._locks = KeyedLocks()
        self._last_heartbeat: dict[str, float] = {}
        self._last_heartbeat_sent: dict[str, datetime] = {}
        self._agent_keys: dict[str, bytes] = {}

    def forget(self, name: str) -> None:
        """A cluster left the bucket: its agent's key and heartbeats go with it."""
        self._agent_keys.pop(name, None)
        self._last_heartbeat.pop(name, None)
        self._last_heartbeat_sent.pop(name, None)

    # ---- observations and transitions ------------------------------------------------------

    async def publish(self, event: ClusterHealthEvent) -> None:
        payload = orjson.dumps(event.model_dump(mode="json", by_alias=True))
        await self.bus.publish(health_subject(event.cluster), payload, msg_id=event.message_id())

    def _next_observation(self, name: str) -> int:
        number = self._observations.get(name, 0) + 1
        self._observations[name] = number
        return number

    async def _observe(
        self,
        name: str,
        outcome: Outcome,
        number: int,
        *,
        source: Source,
        message: str = "",
        thresholds: Thresholds | None = None,
    ) -> None:
        health = self.parts.roster.health.get(name)
        if health is None:
            return
        health, event = observe(
            health,
            outcome,
            number=number,
            now=utc_now(),
            thresholds=thresholds or self.thresholds,
            source=source,
            message=message,
        )
        self.parts.roster.health[name] = health
        if event is None:
            return
        async with self._locks.hold(name):  # acquired in the order the events were made
            log.info(
                "cluster %s Ready %s -> %s (%s)",
                name,
                event.previous,
                event.ready,
                event.reason,
                extra={"cluster": name, "ready": event.ready, "reason": event.reason},
            )
            try:
                await self.publish(event)
                await self.parts.store.update(name, lambda c: with_health(c, event))
            except FootError as exc:
                log.warning("could not record the health of %s: %s", name, exc)

    # ---- push: probes ------------------------------------------------------------------------

    async def run_probes(self) -> None:
        running: dict[str, asyncio.Task[None]] = {}
        changed = self.parts.roster.changed
        try:
            while True:
                changed.clear()
                wanted = clusters_to_probe(self.parts.roster.clusters)
                for name in list(running):
                    if name not in wanted or running[name].done():
                        running.pop(name).cancel()
                for name in wanted - running.keys():
                    running[name] = asyncio.create_task(
                        self._probe_cluster(name), name=f"registry:probe:{name}"
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROBE_SET_RESYNC_SECONDS):
                        await changed.wait()
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _probe_cluster(self, name: str) -> None:
        try:
            credential = await self.parts.credentials.get(name)
        except FootError as exc:
            log.warning("cannot probe %s: %s", name, exc.message, extra={"cluster": name})
            await asyncio.sleep(self.parts.settings.probe_period_seconds * 4)
            return
        period = self.parts.settings.probe_period_seconds
        loop = asyncio.get_running_loop()
        async with (
            self.parts.make_kube(
                KubeTarget.from_credential(credential), self.parts.settings.probe_timeout_seconds
            ) as kube,
            asyncio.TaskGroup() as probes,
        ):
            scheduled = loop.time()
            while True:
                number = self._next_observation(name)
                probes.create_task(self._probe_once(name, kube, number))
                scheduled, delay = next_probe(scheduled, period, loop.time())
                await asyncio.sleep(delay)

    async def _probe_once(self, name: str, kube: KubeClient, number: int) -> None:
        message = ""
        try:
            await kube.readyz(timeout_seconds=self.parts.settings.probe_timeout_seconds)
            outcome = Outcome.OK
        except KubeUnavailableError as exc:
            outcome, message = failed_probe(answered=exc.status is not None), exc.message
        except KubeApiError as exc:
            outcome, message = failed_probe(answered=True), exc.message
        await self._observe(name, outcome, number, source="probe", message=message)

    # ---- pull: hellos, heartbeats and leases --------------------------------------------------

    def grant_lease(self, name: str) -> None:
        """A newly registered cluster: its agent has one lease to connect in."""
        self._last_heartbeat[name] = asyncio.get_running_loop().time()

    async def _agent_key(self, name: str) -> bytes | None:
        key = self._agent_keys.get(name)
        if key is not None:
            return key
        entry = await self.parts.agents_kv.get(name)
        if entry is None or entry.value is None:
            return None
        opened = self.parts.box.open_if_sealed(entry.value, context=f"{CLUSTER_AGENTS.name}/{name}")
        key = bytes.fromhex(AgentRecord.model_validate_json(opened).agent_key)
        self._agent_keys[name] = key
        return key

    async def on_hello(self, msg: Msg) -> None:
        try:
            hello = AgentHello.model_validate_json(msg.data)
            name = msg.subject.rsplit(".", 1)[-1]
            key = await self._agent_key(name) if hello.cluster == name else None
            verdict = judge_hello(
                signed=key is not None and hello.verify(key),
                sent_at=hello.sent_at,
                now=utc_now(),
                max_skew_seconds=self.parts.settings.heartbeat_max_skew_seconds,
            )
            welcome = self._welcome(verdict, name, hello)
        except (ValidationError, FootError) as exc:
            welcome = AgentWelcome(accepted=False, message=f"malformed hello: {exc}")
        with contextlib.suppress(Exception):
            await msg.respond(orjson.dumps(welcome.model_dump(mode="json", by_alias=True)))

    def _welcome(self, verdict: HelloVerdict, name: str, hello: AgentHello) -> AgentWelcome:
        if verdict is HelloVerdict.UNKNOWN_AGENT:
            return AgentWelcome(
                accepted=False,
                message=f"cluster {name!r} is not registered or the bootstrap token is wrong",
            )
        if verdict is HelloVerdict.CLOCK_OFF:
            return AgentWelcome(accepted=False, message="the agent's clock is too far off")
        log.info(
            "agent %s of cluster %s connected (version %s)",
            hello.agent_id,
            name,
            hello.version or "?",
            extra={"cluster": name},
        )
        return AgentWelcome(
            accepted=True,
            heartbeat_period_seconds=self.parts.settings.heartbeat_period_seconds,
            status_period_seconds=self.parts.settings.status_period_seconds,
        )

    async def on_heartbeat(self, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        try:
            beat = Heartbeat.model_validate_json(msg.data)
            key = await self._agent_key(name) if beat.cluster == name else None
        except (ValidationError, FootError) as exc:
            log.debug("dropped a malformed heartbeat on %s: %s", msg.subject, exc)
            return
        verdict = judge_heartbeat(
            signed=key is not None and beat.verify(key),
            sent_at=beat.sent_at,
            last_sent=self._last_heartbeat_sent.get(name),
            known=name in self.parts.roster.clusters,
            now=utc_now(),
            max_skew_seconds=self.parts.settings.heartbeat_max_skew_seconds,
        )
        if verdict is HeartbeatVerdict.BAD_SIGNATURE:
            log.warning(
                "dropped a heartbeat with a bad signature for %s", name, extra={"cluster": name}
            )
            return
        if verdict is HeartbeatVerdict.STALE:
            log.debug("dropped a stale or replayed heartbeat for %s", name)
            return
        if verdict is not HeartbeatVerdict.ACCEPTED:
            return
        self._last_heartbeat_sent[name] = beat.sent_at
        self._last_heartbeat[name] = asyncio.get_running_loop().time()
        await self._observe(
            name,
            heartbeat_outcome(api_server_ready=beat.api_server_ready),
            self._next_observation(name),
            source="heartbeat",
            message=beat.message,
        )
        if beat.status is not None:
            self.on_agent_status(name, beat.status, beat.sent_at)

    async def run_leases(self) -> None:
        loop = asyncio.get_running_loop()
        lease = self.parts.settings.heartbeat_lease_seconds
        once = lease_thresholds(self.thresholds)
        while True:
            await asyncio.sleep(self.parts.settings.lease_check_seconds)
            now = loop.time()
            for name, cluster in list(self.parts.roster.clusters.items()):
                if cluster.spec.sync_mode != "Pull":
                    continue
                last = self._last_heartbeat.setdefault(name, now)  # a grace lease at start
                if lease_lapsed(
                    now=now,
                    last_heartbeat=last,
                    lease=lease,
                    health=self.parts.roster.health.get(name),
                ):
                    await self._observe(
                        name,
                        Outcome.UNREACHABLE,
                        self._next_observation(name),
                        source="lease",
                        message=f"no heartbeat for {now - last:.1f}s",
                        thresholds=once,
                    )

"""Pull delivery: works for members whose agent fetches them (`syncMode: Pull`).

A pull work is stored before it is delivered: published to its cluster's agent, and again
every `pull_resend_seconds` until the agent reports that spec. An agent asks for all of its
cluster's works when it (re)connects (`sync`), and reports each work's outcome (`status`).

Every message of this channel is sealed with keys derived from the cluster's agent key
(`foot.agent_channel`): the keys come from the registry's `cluster-agents` bucket, mirrored
read-only here (`listen_agents`; the bus's SecretBox opens the sealed records), and are
derived once per cluster (`HubChannel`). Deliveries and sync replies are sealed to the
agent; a sync request or a status report is opened and checked (sealed with the key of the
subject's cluster, fresh, not replayed, about a work of that cluster, and the cluster in
pull mode) before anything is answered or stored; a refusal is answered
`{"ok": false, "error": <reason>}` and logged at warning with that reason (never key
material nor content). A cluster whose agent key is not known gets nothing: logged once,
its works are handed to its lane again when the key appears.

The one place where the dispatcher uses plain NATS: the deliveries it publishes
(`Bus.notify`) and the two subjects agents send requests to (`Bus.subscribe`, with a queue
group; the cluster is the subject's last token).
"""

from __future__ import annotations

import logging

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from foot.agent_channel import AgentRecord, ChannelRefusedError, HubChannel
from foot.bus import Bus
from foot.catalog import WORKS_PREFIX, work_deliver_subject
from foot.errors import FootError
from foot.kinds.clusters import Cluster
from foot.kinds.works import Work, WorkDelivery, WorkStatusReport
from foot.objects import utc_now
from foot.runtime.mirror import Mirror
from foot_dispatcher.core import workstatus
from foot_dispatcher.core.lifecycle import work_applied
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.works import WorksCache, split_work_key

log = logging.getLogger(__name__)

QUEUE_GROUP = "dispatcher"
"""Agents' requests go to one dispatcher of the group."""


class PullDelivery:
    """Delivers pull works and records what the agents report."""

    def __init__(
        self,
        bus: Bus,
        works: WorksCache,
        queues: DispatchQueues,
        clusters: dict[str, Cluster],
        *,
        resend_seconds: float,
        max_skew_seconds: float,
    ) -> None:
        self._bus = bus
        self._works = works
        self._queues = queues
        self._clusters = clusters
        self._resend_seconds = resend_seconds
        self._max_skew_seconds = max_skew_seconds
        self._subscriptions: list[Subscription] = []
        self._stopped = False
        self._channels: dict[str, HubChannel] = {}
        """Cluster -> its channel (keys derived once, replay state)."""
        self._keyless: set[str] = set()
        """Clusters with works waiting for their agent key (logged once each)."""
        self.applies = 0
        """Works acknowledged by agents."""
        self.refusals = 0
        """Agent requests refused (forged, replayed, stale, not this cluster's...)."""

    def listen_agents(self, agents: Mirror[AgentRecord]) -> None:
        """Follow the registry's agent records (a typed mirror of `cluster-agents`)."""
        agents.on_change(self._on_agent)
        for name, record in agents.items.items():
            self._on_agent(name, None, record)

    def _on_agent(self, name: str, _before: AgentRecord | None, after: AgentRecord | None) -> None:
        key = _record_key(name, after) if after is not None else None
        if key is None:
            self._channels.pop(name, None)
            return
        current = self._channels.get(name)
        if current is not None and current.keys.same_key(key):
            return
        self._channels[name] = HubChannel(name, key, max_skew_seconds=self._max_skew_seconds)
        if name in self._keyless:
            self._keyless.discard(name)
            log.info("agent key of cluster %s known: delivering its works", name)
            lane = self._queues.lane(name)
            for work_key in self._works.keys_of_cluster(name):
                lane.add(work_key)

    async def start(self) -> None:
        """Answer the agents' status reports and sync requests (not after `stop`)."""
        if self._stopped:
            return
        self._subscriptions.append(
            await self._bus.subscribe(
                f"{WORKS_PREFIX}.status.*", self._on_status, queue=QUEUE_GROUP
            )
        )
        self._subscriptions.append(
            await self._bus.subscribe(f"{WORKS_PREFIX}.sync.*", self._on_sync, queue=QUEUE_GROUP)
        )

    async def stop(self) -> None:
        self._stopped = True
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed during stop", exc_info=True)
        self._subscriptions.clear()

    def _delivery(self, key: str, work: Work) -> WorkDelivery:
        if work.spec.deleting:
            keep = [
                m
                for m in work.spec.manifests
                if not self._works.wanted_elsewhere(key, work.spec.cluster, m)
            ]
            work = work.model_copy(
                update={"spec": work.spec.model_copy(update={"manifests": keep})}
            )
        return WorkDelivery(key=key, work=work)

    async def deliver(self, key: str, work: Work) -> None:
        """Publish a stored work to its cluster's agent (again later, until it reports it)."""
        if work.spec.suspended and not work.spec.deleting:
            return
        if not work.spec.deleting and work.status.applied_hash == work.spec.manifests_hash:
            return  # the agent reported this spec (applied, or a conflict/refusal it keeps)
        cluster = work.spec.cluster
        channel = self._channels.get(cluster)
        if channel is None:
            if cluster not in self._keyless:
                self._keyless.add(cluster)
                log.warning(
                    "no agent key known for pull cluster %s: its works wait until the "
                    "registry has one (is the cluster registered?)",
                    cluster,
                )
            return  # handed to the lane again when the key appears (`_on_agent`)
        await self._bus.notify(
            work_deliver_subject(cluster),
            channel.seal_delivery(self._delivery(key, work), now=utc_now()),
        )
        # Not acknowledged yet: publish again later until the agent reports it.
        self._queues.lane(cluster).add_after(key, self._resend_seconds)

    def _channel(self, cluster: str) -> HubChannel:
        """The channel of a pull cluster whose agent key is known, or ChannelRefusedError."""
        member = self._clusters.get(cluster)
        if member is None:
            raise ChannelRefusedError(f"cluster {cluster!r} is not a member")
        if member.spec.sync_mode != "Pull":
            raise ChannelRefusedError(
                f"cluster {cluster!r} is in {member.spec.sync_mode} mode: the dispatcher "
                "applies its works, no agent speaks for it"
            )
        channel = self._channels.get(cluster)
        if channel is None:
            raise ChannelRefusedError(
                f"no agent key known for cluster {cluster!r} (not registered?)"
            )
        return channel

    async def _refuse(self, msg: Msg, what: str, cluster: str, reason: str) -> None:
        self.refusals += 1
        log.warning("%s of cluster %s refused: %s", what, cluster, reason)
        await msg.respond(orjson.dumps({"ok": False, "error": reason}))

    async def _on_sync(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        try:
            channel = self._channel(cluster)
            request = channel.open_sync_request(msg.data, now=utc_now())
        except ChannelRefusedError as exc:
            await self._refuse(msg, "sync request", cluster, exc.message)
            return
        deliveries = [
            self._delivery(key, work)
            for key in sorted(self._works.keys_of_cluster(cluster))
            if (work := self._works.get(key)) is not None
            and (not work.spec.suspended or work.spec.deleting)
        ]
        await msg.respond(channel.seal_sync_reply(request, deliveries, now=utc_now()))

    def _open_status(self, cluster: str, data: bytes) -> WorkStatusReport:
        """The report in a status message, or ChannelRefusedError."""
        report = self._channel(cluster).open_status(data, now=utc_now()).report
        work = self._works.get(report.key)
        if split_work_key(report.key)[0] != cluster or (
            work is not None and work.spec.cluster != cluster
        ):
            raise ChannelRefusedError(f"work {report.key!r} is not a work of cluster {cluster!r}")
        return report

    async def _on_status(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        try:
            report = self._open_status(cluster, msg.data)
        except ChannelRefusedError as exc:
            await self._refuse(msg, "work status", cluster, exc.message)
            return
        try:
            await self._record_status(report)
        except FootError as exc:
            await msg.respond(orjson.dumps({"ok": False, "error": exc.message}))
            return
        await msg.respond(orjson.dumps({"ok": True}))

    async def _record_status(self, report: WorkStatusReport) -> None:
        work = self._works.get(report.key)
        if work is None:
            return
        now = utc_now()
        if report.removed:
            if work.spec.deleting:
                await self._works.delete(report.key)
                self._queues.render.add(split_work_key(report.key)[1])
            return
        if report.error:
            await self._works.put(
                report.key,
                lambda c: workstatus.unavailable(c, report.error or "", now=now) if c else None,
            )
            return
        stored = await self._works.put(
            report.key,
            lambda c: (
                workstatus.applied(c, report.manifests_hash, report.manifests, now=now)
                if c
                else None
            ),
        )
        if stored is not None and work_applied(stored):
            self.applies += 1
        self._queues.aggregate_soon(split_work_key(report.key)[1])


def _record_key(name: str, record: AgentRecord) -> bytes | None:
    """The agent key of a record stored under `name` (None, logged: a malformed record)."""
    try:
        key = record.key()
    except ValueError as exc:
        log.error("agent record %s ignored: agentKey: %s", name, exc)  # noqa: TRY400
        return None
    if record.cluster != name:
        log.error(
            "agent record %s ignored: cluster %r is stored under another name", name, record.cluster
        )
        return None
    return key

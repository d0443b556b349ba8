"""Pull delivery: works for members whose agent fetches them (`syncMode: Pull`).

A pull work is stored before it is delivered: published to its cluster's agent, and again
every `pull_resend_seconds` until the agent reports that spec. An agent asks for all of its
cluster's works when it (re)connects (`sync`), and reports each work's outcome (`status`).

The one place where the dispatcher uses plain NATS: the deliveries it publishes
(`Bus.notify`) and the two subjects agents send requests to (`Bus.subscribe`, with a queue
group; the cluster is the subject's last token).
"""

from __future__ import annotations

import logging

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from foot.bus import Bus
from foot.catalog import WORKS_PREFIX, work_deliver_subject
from foot.errors import FootError
from foot.kinds.works import Work, WorkDelivery, WorkStatusReport
from foot.objects import utc_now
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
        *,
        resend_seconds: float,
    ) -> None:
        self._bus = bus
        self._works = works
        self._queues = queues
        self._resend_seconds = resend_seconds
        self._subscriptions: list[Subscription] = []
        self.applies = 0
        """Works acknowledged by agents."""

    async def start(self) -> None:
        """Answer the agents' status reports and sync requests."""
        self._subscriptions.append(
            await self._bus.subscribe(
                f"{WORKS_PREFIX}.status.*", self._on_status, queue=QUEUE_GROUP
            )
        )
        self._subscriptions.append(
            await self._bus.subscribe(f"{WORKS_PREFIX}.sync.*", self._on_sync, queue=QUEUE_GROUP)
        )

    async def stop(self) -> None:
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
        await self._bus.notify(
            work_deliver_subject(work.spec.cluster),
            self._delivery(key, work).model_dump_json(by_alias=True).encode(),
        )
        # Not acknowledged yet: publish again later until the agent reports it.
        self._queues.lane(work.spec.cluster).add_after(key, self._resend_seconds)

    async def _on_sync(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        deliveries = [
            self._delivery(key, work).model_dump(mode="json", by_alias=True)
            for key in sorted(self._works.keys_of_cluster(cluster))
            if (work := self._works.get(key)) is not None
            and (not work.spec.suspended or work.spec.deleting)
        ]
        await msg.respond(orjson.dumps(deliveries))

    async def _on_status(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        try:
            report = WorkStatusReport.model_validate_json(msg.data)
        except ValidationError as exc:
            await msg.respond(orjson.dumps({"ok": False, "error": str(exc)}))
            return
        if split_work_key(report.key)[0] != cluster:
            # An agent speaks for its own cluster only.
            await msg.respond(orjson.dumps({"ok": False, "error": "not this cluster's work"}))
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

"""Pull delivery inside the member cluster: the agent applies its cluster's works with the
same code the dispatcher uses for push clusters (`foot.kube.apply`) and reports back.

* deliveries arrive on `foot.works.deliver.<cluster>`; at start, and every
  `RESYNC_SECONDS` after, the agent asks for all of its cluster's works on
  `foot.works.sync.<cluster>` (a delivery missed while disconnected is never lost: the
  dispatcher also sends again until the status is reported);
* one queue keyed by work key, newest delivery wins; a work whose hash was already applied
  here is not applied again, only reported again;
* a deleting work: the objects FOOT manages are removed, then `removed` is reported;
* the kinds with interesting status are watched (label selector `foot.dev/managed-by=foot`)
  and a change is reported for the work that holds the object;
* reports go on `foot.works.status.<cluster>` as requests; without an answer they are
  retried with backoff (the dispatcher stores them before it answers).

Everything on this channel is sealed with keys derived from the agent key
(`foot.agent_channel`, `Connected.channel`): a delivery or sync reply that does not open
(unsigned, forged, tampered, another cluster's or subject's) or is too old is dropped and
logged at warning with the reason, never applied; one older than the newest delivery taken
for the same work (a resend overtaken by a sync reply, or a replay) is ignored. Every sync
request and status report is sealed, with the process's agent id and sequence.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from nats.aio.msg import Msg

from foot.agent_channel import WIRE_PREFIX, AgentChannel, ChannelRefusedError
from foot.backoff import Backoff
from foot.bus.reconcile import ReconcileQueue
from foot.catalog import work_deliver_subject, work_status_subject, work_sync_subject
from foot.errors import FootError, RetryableError
from foot.kinds.works import ManifestStatus, WorkDelivery, WorkStatusReport
from foot.kube import KubeClient
from foot.kube.apply import MemberApplier
from foot.kube.watch import watch_collection
from foot.manifests import MANAGED_SELECTOR, identity, observed_status
from foot.object_health import WATCHED_KINDS
from foot.objects import utc_now

if TYPE_CHECKING:
    from foot.bus import Bus

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0
SYNC_RETRY_FIRST_SECONDS = 0.5
"""A sync that failed is tried again after this (doubling up to RESYNC_SECONDS)."""
REPORT_TIMEOUT_SECONDS = 5.0
APPLY_WORKERS = 4
Identity = tuple[str, str, str | None, str]


class WorkPuller:
    """Applies one cluster's works as they are delivered."""

    def __init__(self, bus: Bus, kube: KubeClient, channel: AgentChannel) -> None:
        self.bus = bus
        self.channel = channel
        self.cluster = cluster = channel.cluster
        self.kube = kube
        self.applier = MemberApplier(kube)
        self.deliveries: dict[str, WorkDelivery] = {}
        """Newest delivery per work key."""
        self.sent_at: dict[str, datetime] = {}
        """When the newest delivery taken per work key was sealed (kept after the work is
        removed, until older than the channel accepts: an older one is a replay)."""
        self.dropped = 0
        """Deliveries and sync replies dropped (not sealed, forged, for another subject, or
        stale)."""
        self.reported: dict[str, WorkStatusReport] = {}
        """Last report per work key that the dispatcher acknowledged."""
        self._objects: dict[Identity, set[str]] = {}
        self._watched: set[tuple[str, str]] = set()
        self._watches: list[asyncio.Task[None]] = []
        self.queue = ReconcileQueue(
            f"works:{cluster}",
            self._reconcile,
            workers=APPLY_WORKERS,
            backoff=Backoff(base_seconds=0.2, max_seconds=30.0),
        )

    # ---- intake -------------------------------------------------------------------------

    def _accept(self, delivery: WorkDelivery, sent_at: datetime) -> None:
        if not delivery.key.startswith(f"{self.cluster}."):
            log.warning("ignored a work for another cluster: %s", delivery.key)
            return
        newest = self.sent_at.get(delivery.key)
        if newest is not None and sent_at < newest:
            # A resend overtaken by a sync reply, or a replay: the newer one stands.
            log.info("ignored a delivery of %s older than the newest one taken", delivery.key)
            return
        self.sent_at[delivery.key] = sent_at
        self.deliveries[delivery.key] = delivery
        for manifest in delivery.work.spec.manifests:
            self._objects.setdefault(identity(manifest), set()).add(delivery.key)
        self.queue.add(delivery.key)

    async def _on_delivery(self, msg: Msg) -> None:
        try:
            message = self.channel.open_delivery(msg.data, now=utc_now())
        except ChannelRefusedError as exc:
            self.dropped += 1
            log.warning("dropped a work delivery: %s", exc.message)
            return
        self._accept(message.delivery, message.sent_at)

    async def sync(self) -> None:
        """Ask for every work of this cluster."""
        request, payload = self.channel.sync_request(now=utc_now())
        msg = await self.bus.request(work_sync_subject(self.cluster), payload, wait_seconds=10)
        if not msg.data.startswith(WIRE_PREFIX):
            raise FootError(f"the hub refused the sync: {_refusal(msg.data)}")
        try:
            reply = self.channel.open_sync_reply(msg.data, request, now=utc_now())
        except ChannelRefusedError:
            self.dropped += 1
            raise
        for delivery in reply.deliveries:
            self._accept(delivery, reply.sent_at)
        self._forget_old(reply.sent_at)
        log.info("synced %d work(s) of cluster %s", len(reply.deliveries), self.cluster)

    def _forget_old(self, now: datetime) -> None:
        """Drop the times of removed works older than any delivery the channel accepts."""
        horizon = now - timedelta(seconds=2 * self.channel.max_skew_seconds)
        for key, sent_at in list(self.sent_at.items()):
            if key not in self.deliveries and sent_at < horizon:
                del self.sent_at[key]

    async def run(self) -> None:
        """Subscribe, sync now and every RESYNC_SECONDS (sooner after a failure), apply
        until cancelled."""
        subscription = await self.bus.subscribe(
            work_deliver_subject(self.cluster), self._on_delivery
        )
        worker = asyncio.create_task(self.queue.run(), name=f"agent:works:{self.cluster}")
        retries = Backoff(SYNC_RETRY_FIRST_SECONDS, RESYNC_SECONDS).delays()
        try:
            while True:
                try:
                    await self.sync()
                except FootError as exc:
                    # A ChannelRefusedError says why a reply was dropped (never its content).
                    delay = retries.next()
                    log.warning("cannot sync works yet (%s); again in %.1fs", exc.message, delay)
                else:
                    retries.reset()
                    delay = RESYNC_SECONDS
                await asyncio.sleep(delay)
        finally:
            self.queue.shut_down()
            worker.cancel()
            for task in self._watches:
                task.cancel()
            await asyncio.gather(worker, *self._watches, return_exceptions=True)
            try:
                await subscription.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)

    # ---- apply --------------------------------------------------------------------------

    async def _reconcile(self, key: str) -> None:
        delivery = self.deliveries.get(key)
        if delivery is None:
            return
        work = delivery.work
        spec = work.spec
        if spec.deleting:
            for manifest in reversed(spec.manifests):
                await self.applier.remove(manifest)
            await self._report(
                WorkStatusReport(key=key, manifests_hash=spec.manifests_hash, removed=True)
            )
            self.deliveries.pop(key, None)
            self.reported.pop(key, None)
            return
        if spec.suspended:
            return
        done = self.reported.get(key)
        if (
            done is not None
            and done.manifests_hash == spec.manifests_hash
            and all(m.applied for m in done.manifests)
        ):
            await self._report(done)  # the dispatcher asked again: say it again
            return
        try:
            statuses = await self.applier.apply_all(spec.manifests, spec.conflict_resolution)
        except RetryableError as exc:
            await self._report(
                WorkStatusReport(key=key, manifests_hash=spec.manifests_hash, error=exc.message),
                required=False,
            )
            raise
        self._watch(spec.manifests)
        await self._report(
            WorkStatusReport(key=key, manifests_hash=spec.manifests_hash, manifests=statuses)
        )

    async def _report(self, report: WorkStatusReport, *, required: bool = True) -> None:
        try:
            msg = await self.bus.request(
                work_status_subject(self.cluster),
                self.channel.seal_status(report, now=utc_now()),
                wait_seconds=REPORT_TIMEOUT_SECONDS,
            )
            answer = orjson.loads(msg.data)
        except (FootError, orjson.JSONDecodeError) as exc:
            if required:
                raise RetryableError(f"status of {report.key} not reported: {exc}") from exc
            return
        if not answer.get("ok"):
            raise RetryableError(f"status of {report.key} refused: {answer.get('error')}")
        if not report.removed and not report.error:
            self.reported[report.key] = report

    # ---- status -------------------------------------------------------------------------

    def _watch(self, manifests: list[dict[str, Any]]) -> None:
        for manifest in manifests:
            api_version, kind, _, _ = identity(manifest)
            if (api_version, kind) in WATCHED_KINDS and (api_version, kind) not in self._watched:
                self._watched.add((api_version, kind))
                self._watches.append(
                    asyncio.create_task(self._follow(api_version, kind), name=f"agent:watch:{kind}")
                )

    async def _follow(self, api_version: str, kind: str) -> None:
        path = await self.applier.collection_path(api_version, kind)

        def on_event(event: str, obj: dict[str, Any]) -> None:
            metadata = obj.get("metadata") or {}
            ident = (api_version, kind, metadata.get("namespace"), str(metadata.get("name")))
            for key in self._objects.get(ident, set()):
                self._observed(key, ident, None if event == "DELETED" else obj)

        await watch_collection(self.kube, path, on_event, label_selector=MANAGED_SELECTOR)

    def _observed(self, key: str, ident: Identity, obj: dict[str, Any] | None) -> None:
        report = self.reported.get(key)
        delivery = self.deliveries.get(key)
        if report is None or delivery is None:
            return
        statuses: list[ManifestStatus] = list(report.manifests)
        for index, manifest in enumerate(delivery.work.spec.manifests):
            if identity(manifest) != ident or index >= len(statuses):
                continue
            if obj is None:
                self.reported.pop(key, None)  # deleted behind FOOT's back: apply again
                self.queue.add(key)
                return
            statuses[index] = observed_status(statuses[index], obj)
        if statuses != report.manifests:
            updated = report.model_copy(update={"manifests": statuses})
            self.reported[key] = updated
            self.queue.add(key)  # reports the new status (the hash is applied already)


def _refusal(data: bytes) -> str:
    """The reason in a hub's `{"ok": false, "error": ...}` answer (or that it had none)."""
    try:
        answer = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "an answer that is neither sealed nor an error"
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return str(answer["error"])
    return "an answer that is neither sealed nor an error"

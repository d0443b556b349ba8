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
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from nats.aio.msg import Msg
from pydantic import ValidationError

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

if TYPE_CHECKING:
    from foot.bus import Bus

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0
REPORT_TIMEOUT_SECONDS = 5.0
APPLY_WORKERS = 4
Identity = tuple[str, str, str | None, str]


class WorkPuller:
    """Applies one cluster's works as they are delivered."""

    def __init__(self, bus: Bus, kube: KubeClient, cluster: str) -> None:
        self.bus = bus
        self.cluster = cluster
        self.kube = kube
        self.applier = MemberApplier(kube)
        self.deliveries: dict[str, WorkDelivery] = {}
        """Newest delivery per work key."""
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

    def _accept(self, delivery: WorkDelivery) -> None:
        if not delivery.key.startswith(f"{self.cluster}."):
            log.warning("ignored a work for another cluster: %s", delivery.key)
            return
        self.deliveries[delivery.key] = delivery
        for manifest in delivery.work.spec.manifests:
            self._objects.setdefault(identity(manifest), set()).add(delivery.key)
        self.queue.add(delivery.key)

    async def _on_delivery(self, msg: Msg) -> None:
        try:
            self._accept(WorkDelivery.model_validate_json(msg.data))
        except ValidationError as exc:
            log.error("malformed work delivery: %s", exc)  # noqa: TRY400

    async def sync(self) -> None:
        """Ask for every work of this cluster."""
        msg = await self.bus.request(work_sync_subject(self.cluster), b"", wait_seconds=10)
        deliveries = orjson.loads(msg.data)
        for document in deliveries:
            self._accept(WorkDelivery.model_validate(document))
        log.info("synced %d work(s) of cluster %s", len(deliveries), self.cluster)

    async def run(self) -> None:
        """Subscribe, sync now and every RESYNC_SECONDS, apply until cancelled."""
        subscription = await self.bus.subscribe(
            work_deliver_subject(self.cluster), self._on_delivery
        )
        worker = asyncio.create_task(self.queue.run(), name=f"agent:works:{self.cluster}")
        try:
            while True:
                try:
                    await self.sync()
                except (FootError, ValidationError, orjson.JSONDecodeError) as exc:
                    log.warning("cannot sync works yet: %s", exc)
                await asyncio.sleep(RESYNC_SECONDS)
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
                report.model_dump_json(by_alias=True).encode(),
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

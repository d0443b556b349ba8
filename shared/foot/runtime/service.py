"""The service runtime: lifecycle, supervised tasks, staged shutdown, readiness.

A service subclasses `Service[ItsSettings]`, sets `name` and `settings_model`, and in
`setup()` registers what it runs: consumers (`consume`), informers, typed mirrors and
reconcile queues (`watch`, `mirror`, `watch_clusters`, `reconcile`), request-reply
subjects (`serve`), or plain supervised tasks (`supervisor.spawn`). Everything is
started by `start()` and stopped in stages by `stop()`:

1. stop taking new work: API subscriptions closed, consumers stop fetching,
   reconcile queues stop accepting keys;
2. finish in-flight work up to `shutdown_deadline_seconds`;
3. cancel whatever is still running (consumer messages are handed back with a
   nak, so nothing is lost), close the admin server and the NATS connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, cast

from typing_extensions import TypeVar

from foot.bus import Bus, Consumer, ConsumerSpec, Delivery, Informer, ReconcileQueue
from foot.catalog import CLUSTERS
from foot.kinds.clusters import Cluster
from foot.runtime.admin import AdminServer
from foot.runtime.clusters import ClusterMirror, Heard
from foot.runtime.ingest import ApiIngest
from foot.runtime.lifecycle import StartStop
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.mirror import Mirror
from foot.runtime.requests import ErrorReply, RequestHandler, Responder
from foot.runtime.settings import ServiceSettings, as_settings
from foot.runtime.supervisor import Supervisor
from foot.secrets import SecretBox
from foot.store import ObjectStore

log = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=ServiceSettings, default=ServiceSettings)
T = TypeVar("T")


class _Running:
    """What a service holds once connected (`Service.start`)."""

    def __init__(self, bus: Bus, store: ObjectStore, responder: Responder, ingest: ApiIngest):
        self.bus = bus
        self.store = store
        self.responder = responder
        self.ingest = ingest


class Service(StartStop, Generic[SettingsT]):
    """A service with settings of type `SettingsT` (its `settings_model`)."""

    name: ClassVar[str] = "service"
    settings_model: ClassVar[type[ServiceSettings]] = ServiceSettings

    def __init__(self, settings: ServiceSettings) -> None:
        # Given only the common settings (a test, an embedding program), the service's own
        # fields take their defaults or FOOT_* variables.
        self.settings: SettingsT = cast("SettingsT", as_settings(self.settings_model, settings))
        self.metrics = ServiceMetrics(self.name)
        self.supervisor = Supervisor(self.name, self.metrics)
        self._consumers: list[Consumer] = []
        self._queues: list[ReconcileQueue] = []
        self._informers: list[Informer] = []
        self._started = False
        self._stopped = False
        self._stop_lock = asyncio.Lock()
        self._running: _Running | None = None
        self._connection: Bus | None = None
        self.admin = AdminServer(
            self.name,
            self.settings.admin_host,
            self.settings.admin_port,
            self.settings.admin_tokens,
            metrics=self.metrics,
            readiness_problems=self.readiness_problems,
        )

    # ---- what start() connects -------------------------------------------------------------

    @property
    def bus(self) -> Bus:
        if self._connection is None:
            raise RuntimeError(f"{self.name} is not connected (not started)")
        return self._connection

    @bus.setter
    def bus(self, bus: Bus) -> None:
        self._connection = bus

    def _up(self) -> _Running:
        if self._running is None:
            raise RuntimeError(f"{self.name} is not running (not started)")
        return self._running

    @property
    def store(self) -> ObjectStore:
        return self._up().store

    @property
    def ingest(self) -> ApiIngest:
        return self._up().ingest

    # ---- what subclasses use ---------------------------------------------------------------

    async def setup(self) -> None:
        """Register consumers, informers and tasks (called once, connected to NATS)."""

    def consume(
        self, spec: ConsumerSpec, handler: Callable[[Delivery], Awaitable[None]]
    ) -> Consumer:
        consumer = Consumer(
            self.bus, spec, handler, on_outcome=self.metrics.consumer_outcome(spec.durable)
        )
        self._consumers.append(consumer)
        return consumer

    async def watch(
        self, bucket: str, pattern: str = ">", *, mirror: bool = True, follow: bool = True
    ) -> Informer:
        """An informer on `bucket`, run and awaited for sync with the service (`mirror`,
        `follow`: see `Informer`)."""
        informer = Informer(await self.bus.kv(bucket), pattern, mirror=mirror, follow=follow)
        self._informers.append(informer)
        return informer

    async def serve(
        self,
        subject: str,
        handler: RequestHandler,
        *,
        error_reply: ErrorReply,
        queue: str = "",
    ) -> None:
        """Answer requests on `subject` (request-reply): tracked, closed in the first stage
        of a stop, a FootError answered with `error_reply` (see `Responder`)."""
        await self._up().responder.serve(subject, handler, error_reply=error_reply, queue=queue)

    async def mirror(
        self,
        bucket: str,
        decode: Callable[[bytes], T],
        what: str,
        items: dict[str, T] | None = None,
    ) -> Mirror[T]:
        """A typed mirror of `bucket` (see `Mirror`), run and awaited for sync with the
        service."""
        return Mirror(await self.watch(bucket, mirror=False), decode, what, items)

    async def watch_clusters(
        self,
        clusters: dict[str, Cluster] | None = None,
        heard: dict[str, Heard] | None = None,
    ) -> ClusterMirror:
        """The member clusters by name and the registry's health events (see
        `ClusterMirror`)."""
        mirror = ClusterMirror(await self.watch(CLUSTERS.name, mirror=False), clusters, heard)
        await mirror.listen(self.bus)
        return mirror

    async def synced(self) -> None:
        """Wait until every informer of the service has replayed its bucket."""
        for informer in self._informers:
            await informer.synced.wait()

    def reconcile(self, name: str, reconciler: Callable[[str], Awaitable[None]]) -> ReconcileQueue:
        queue = ReconcileQueue(
            name,
            reconciler,
            workers=self.settings.reconcile_workers,
            on_outcome=self.metrics.reconcile_outcome(name),
        )
        self._queues.append(queue)
        return queue

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        started = time.perf_counter()
        bus = self._connection = await Bus.connect(
            self.settings.nats_url,
            f"foot-{self.name}",
            ca_file=self.settings.nats_ca_file,
            credentials_file=self.settings.nats_credentials(self.name),
        )
        # Every service opens sealed values (a Secret template, a work carrying one); the
        # key file is shared by the installation and created by whoever starts first.
        bus.secret_box = SecretBox.from_file(self.settings.secret_key_file, create=True)
        await bus.declare()
        responder = Responder(bus)
        store = ObjectStore(bus, self.name)
        ingest = ApiIngest(bus, self.name, self.metrics, responder)
        self._running = _Running(bus, store, responder, ingest)
        self.admin.add_object_routes(store, ingest)
        await self.setup()
        for consumer in self._consumers:
            await consumer.subscribe()
            self.supervisor.spawn(f"consumer:{consumer.spec.durable}", consumer.run)
        for index, informer in enumerate(self._informers):
            self.supervisor.spawn(f"informer:{informer.store.name}:{index}", informer.run)
        for queue in self._queues:
            self.supervisor.spawn(f"queue:{queue.name}", queue.run)
        await self.ingest.start()
        await self.admin.start()
        log.info(
            "%s started in %.2fs, admin on %s",
            self.name,
            time.perf_counter() - started,
            self.admin.url,
            extra={"admin_url": self.admin.url},
        )

    def readiness_problems(self) -> list[str]:
        problems = []
        if not self._started or self._stopped:
            problems.append("not running")
        elif self._connection is None or not self._connection.connected:
            problems.append("not connected to NATS")
        problems += [
            f"cache of {informer.store.name} not synced yet"
            for informer in self._informers
            if not informer.synced.is_set()
        ]
        if self.supervisor.fatal.is_set():
            problems.append(self.supervisor.fatal_reason)
        return problems

    async def stop(self) -> None:
        """Staged, idempotent shutdown (see the module docstring)."""
        async with self._stop_lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
            deadline = self.settings.shutdown_deadline_seconds
            log.info("%s stopping: no new work, in-flight work has %.0fs", self.name, deadline)
            running = self._running
            if running is None:  # start failed before anything ran
                if self._connection is not None:
                    await self._connection.close()
                return
            await running.responder.stop_taking_requests()
            for consumer in self._consumers:
                consumer.stop_fetching()
            for queue in self._queues:
                queue.shut_down()
            queue_tasks = [
                task for name, task in self.supervisor.tasks.items() if name.startswith("queue:")
            ]
            async with asyncio.TaskGroup() as group:
                drains = [group.create_task(c.drain(deadline)) for c in self._consumers]
                group.create_task(running.responder.drain(deadline))
                if queue_tasks:
                    group.create_task(asyncio.wait(queue_tasks, timeout=deadline))
            cancelled = sum(task.result() for task in drains)
            if cancelled:
                log.warning("%d message(s) handed back unfinished at the deadline", cancelled)
            await self.supervisor.cancel_all()
            await self.admin.stop()
            await running.bus.close()
            log.info("%s stopped", self.name)

"""The gateway-sync service: GatewayRoutes + works' status + cluster health -> APISIX.

The shell around the pure core (`foot_gateway_sync.core`):

* it owns GatewayRoutes (stored by the generic API ingest, validated there);
* it mirrors works, clusters and GatewayRoutes (informers, parsed once per
  change) and listens to the registry's health events on plain NATS, so a
  cluster that goes NotReady is drained the moment the event arrives;
* one sync loop per APISIX instance (several are kept identical): on any change
  it computes the desired objects, diffs them against what it last knew of that
  instance and sends the writes in a safe order; every `resync_seconds` (and at
  start, and after any error) it lists the instance again, which reverts manual
  edits of managed objects. Unmanaged objects are never touched. An instance
  that is down is retried with capped backoff and converges when it is back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import aiohttp
from pydantic import Field, SecretStr, field_validator, model_validator

from foot.backoff import Backoff
from foot.bus import KvStore
from foot.catalog import GATEWAY_ROUTES, WORKS
from foot.errors import ConflictError, FootError, PermanentError
from foot.kinds.clusters import Cluster
from foot.kinds.gateway import GatewayRoute, GatewayRouteStatus
from foot.kinds.works import Work
from foot.objects import utc_now
from foot.runtime.clusters import Heard
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot_gateway_sync.apisix import ApisixClient
from foot_gateway_sync.core import (
    ROUTES,
    UPSTREAMS,
    ClusterView,
    DesiredState,
    HeardHealth,
    InstanceView,
    Operation,
    cluster_view,
    desired_state,
    phases,
    plan,
    route_key,
    route_status,
)

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]
SYNC_RETRY_FIRST_SECONDS = 0.1
"""Wait after an instance's first failed sync pass (doubling up to retry_max_seconds)."""


class GatewaySyncSettings(ServiceSettings):
    apisix_urls: list[str] = Field(default_factory=list)
    """Admin API base URLs of the APISIX instances to keep identical, e.g.
    ["http://apisix-1:9180","http://apisix-2:9180"] (JSON list in FOOT_APISIX_URLS). Empty
    (the default, as under a bare `foot up`): no gateway is driven; routes are still
    computed and their status says so. A key is required as soon as one URL is given."""
    apisix_admin_key: SecretStr | None = None
    """Admin API key (X-API-KEY); prefer apisix_admin_key_file. Never logged."""
    apisix_admin_key_file: Path | None = None
    """File holding the Admin API key (mode 600); wins over apisix_admin_key."""
    resync_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Full resync period: list every instance and revert manual edits of managed objects."""
    request_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """Longest one Admin API request may take."""
    request_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts per Admin API request (connection errors, timeouts, 5xx) before the sync pass
    fails and is retried with backoff."""
    retry_max_seconds: float = Field(default=2.0, gt=0, le=300)
    """Cap of the backoff between failed sync passes of an instance (APISIX down)."""
    write_concurrency: int = Field(default=8, ge=1, le=64)
    """Admin API writes sent at once to one instance within one step of a pass (upstream
    PUTs, then route PUTs, route DELETEs, upstream DELETEs; the steps stay in that order):
    a drained cluster leaves many upstreams in the time of a few writes."""

    @field_validator("apisix_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        if len(set(urls)) != len(urls):
            raise ValueError("lists an instance twice")
        return urls

    @model_validator(mode="after")
    def _key_when_driving_apisix(self) -> Self:
        if (
            self.apisix_urls
            and self.apisix_admin_key is None
            and self.apisix_admin_key_file is None
        ):
            raise ValueError(
                "apisix_urls is set but no Admin API key: set apisix_admin_key_file "
                "(FOOT_APISIX_ADMIN_KEY_FILE) or apisix_admin_key (FOOT_APISIX_ADMIN_KEY)"
            )
        return self

    def admin_key(self) -> str:
        if self.apisix_admin_key_file is not None:
            try:
                return self.apisix_admin_key_file.read_text().strip()
            except OSError as exc:
                raise PermanentError(
                    f"apisix_admin_key_file {self.apisix_admin_key_file}: {exc.strerror}"
                ) from exc
        if self.apisix_admin_key is not None:
            return self.apisix_admin_key.get_secret_value()
        raise PermanentError(
            "no APISIX Admin API key: set apisix_admin_key_file (FOOT_APISIX_ADMIN_KEY_FILE) "
            "or apisix_admin_key (FOOT_APISIX_ADMIN_KEY)"
        )


@dataclass(slots=True)
class Instance:
    """One APISIX instance and what gateway-sync last knew of it."""

    client: ApisixClient
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    actual: dict[ObjectKey, dict[str, Any]] | None = None
    """Objects as last listed and written (None: list again before the next pass)."""
    last_full: float = 0.0
    synced: bool = False
    failures: int = 0
    passes: int = 0
    writes: int = 0
    last_error: str = ""
    problems: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return self.client.url


def _heard_health(heard: Heard | None) -> HeardHealth | None:
    if heard is None:
        return None
    return HeardHealth(heard.sequence, heard.event.ready == "True", heard.event.observed_at)


class GatewaySyncService(Service[GatewaySyncSettings]):
    name = "gateway-sync"
    settings_model: ClassVar[type[ServiceSettings]] = GatewaySyncSettings

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        self.routes: dict[str, GatewayRoute] = {}
        self.clusters: dict[str, Cluster] = {}
        self.works: dict[str, Work] = {}
        self.heard: dict[str, Heard] = {}
        self.instances: list[Instance] = []
        self._desired: DesiredState | None = None
        self._session: aiohttp.ClientSession | None = None
        self._routes_store: KvStore | None = None
        self._status_due = asyncio.Event()
        self._status_written: dict[str, GatewayRouteStatus] = {}
        self._stopping = False

    # ---- wiring -------------------------------------------------------------------------

    async def setup(self) -> None:
        if not self.settings.apisix_urls:
            log.warning(
                "no APISIX instance configured (apisix_urls): routes are computed only, and "
                "each GatewayRoute's status says so (Programmed=False, NoGatewayConfigured)"
            )
        key = self.settings.admin_key() if self.settings.apisix_urls else ""
        self._session = aiohttp.ClientSession()
        self.instances = [
            Instance(
                ApisixClient(
                    url,
                    key,
                    self._session,
                    attempts=self.settings.request_attempts,
                    timeout_seconds=self.settings.request_timeout_seconds,
                )
            )
            for url in self.settings.apisix_urls
        ]
        routes = await self.mirror(
            GATEWAY_ROUTES.name, GatewayRoute.from_json, "gateway route", self.routes
        )
        routes.on_change(self._on_route)
        members = await self.watch_clusters(self.clusters, self.heard)
        members.on_cluster(self._on_cluster)
        members.on_health(lambda _event, _traceparent: self._changed())
        works = await self.mirror(WORKS.name, Work.from_json, "work", self.works)
        works.on_change(self._on_work)
        self._routes_store = await self.bus.kv(GATEWAY_ROUTES.name)
        for instance in self.instances:
            self.supervisor.spawn(
                f"sync:{instance.url}", functools.partial(self._sync_loop, instance)
            )
        self.supervisor.spawn("route-status", self._status_loop)

    async def stop(self) -> None:
        # Said before the tasks are cancelled, and every loop is woken to hear it: see
        # _stop_if_stopping.
        self._stopping = True
        self._status_due.set()
        for instance in self.instances:
            instance.wake.set()
        await super().stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def readiness_problems(self) -> list[str]:
        problems = super().readiness_problems()
        problems += [
            f"APISIX {i.url} not in sync yet: {i.last_error or 'first pass pending'}"
            for i in self.instances
            if not i.synced
        ]
        return problems

    def _stop_if_stopping(self) -> None:
        """End the calling loop (CancelledError) once stop() has begun.

        The loops do not rely on their cancellation alone: on Python 3.11 two awaits can
        swallow it. `asyncio.wait_for`, which nats-py uses for every request (so every KV get
        and update), returns the result when the awaited reply landed in the same loop turn
        as the cancel; and a TaskGroup whose child failed raises the child's error instead of
        the CancelledError (and may leave the task's `cancelling()` count set for good, so
        that count cannot be trusted either). A loop that carried on would then wait for its
        next trigger forever and stop() would never return. Each loop calls this after such
        awaits and before it waits for a trigger.
        """
        if self._stopping:
            raise asyncio.CancelledError

    # ---- triggers -----------------------------------------------------------------------

    def _changed(self) -> None:
        self._desired = None
        for instance in self.instances:
            instance.wake.set()
        if not self.instances:
            # Nothing to write to: the status (computed upstreams, NoGatewayConfigured) is
            # all there is to show. With instances, each sync pass brings the status.
            self._status_due.set()

    def _on_route(self, key: str, old: GatewayRoute | None, route: GatewayRoute | None) -> None:
        if route is None:
            self._status_written.pop(key, None)  # a route made again gets its status again
            if old is not None:
                self._changed()
        elif old is None or old.spec != route.spec or old.metadata.name != route.metadata.name:
            self._changed()

    def _on_cluster(self, _: str, old: Cluster | None, cluster: Cluster | None) -> None:
        if cluster is None or old is None or cluster_view(old) != cluster_view(cluster):
            self._changed()  # a heartbeat changes nothing the gateway depends on

    def _on_work(self, _: str, old: Work | None, work: Work | None) -> None:
        if work is None:
            if old is not None:
                self._changed()
        elif old is None or old.status.manifests != work.status.manifests or old.spec != work.spec:
            self._changed()

    # ---- the desired state --------------------------------------------------------------

    def cluster_views(self) -> dict[str, ClusterView]:
        return {
            name: cluster_view(cluster, _heard_health(self.heard.get(name)))
            for name, cluster in self.clusters.items()
        }

    def desired(self) -> DesiredState:
        if self._desired is None:
            by_cluster: dict[str, list[Work]] = {}
            for work in self.works.values():
                by_cluster.setdefault(work.spec.cluster, []).append(work)
            routes = [self.routes[key] for key in sorted(self.routes)]
            self._desired = desired_state(routes, self.cluster_views(), by_cluster)
        return self._desired

    # ---- syncing one instance -----------------------------------------------------------

    async def _sync_loop(self, instance: Instance) -> None:
        # Never sync before every cache is complete: an empty cache would delete everything.
        await self.synced()
        loop = asyncio.get_running_loop()
        while True:
            self._stop_if_stopping()
            due = instance.last_full + self.settings.resync_seconds
            if instance.actual is not None and not instance.wake.is_set():
                try:
                    async with asyncio.timeout(max(0.0, due - loop.time())):
                        await instance.wake.wait()
                except TimeoutError:
                    pass
            instance.wake.clear()
            full = instance.actual is None or loop.time() >= due
            try:
                await self.sync_once(instance, full=full)
            except FootError as exc:
                instance.actual = None  # list again: we no longer know what is there
                instance.synced = False
                instance.failures += 1
                instance.last_error = str(exc)
                self._status_due.set()
                delay = Backoff(SYNC_RETRY_FIRST_SECONDS, self.settings.retry_max_seconds).delay(
                    instance.failures
                )
                log.warning(
                    "APISIX %s: sync failed (%d in a row), again in %.2fs: %s",
                    instance.url,
                    instance.failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)

    async def sync_once(self, instance: Instance, *, full: bool) -> list[Operation]:
        """One pass: (list the instance,) diff, write. Raises FootError on failure."""
        started = time.perf_counter()
        if full or instance.actual is None:
            listed: dict[ObjectKey, dict[str, Any]] = {}
            for resource in (UPSTREAMS, ROUTES):
                for object_id, value in (await instance.client.list(resource)).items():
                    listed[(resource, object_id)] = value
            instance.actual = listed
            instance.last_full = asyncio.get_running_loop().time()
        actual = instance.actual
        result = plan(self.desired().objects, actual)
        if result.problems != instance.problems:
            for problem in result.problems:
                log.warning("APISIX %s: %s", instance.url, problem)
        instance.problems = result.problems
        for step in phases(result.operations):
            await self._execute_step(instance, actual, step)
        instance.passes += 1
        instance.writes += len(result.operations)
        instance.failures = 0
        instance.last_error = ""
        instance.synced = True
        self._status_due.set()
        if result.operations:
            log.info(
                "APISIX %s: %d write(s) in %.1f ms%s",
                instance.url,
                len(result.operations),
                (time.perf_counter() - started) * 1000,
                " (full resync)" if full else "",
                extra={"writes": [str(op) for op in result.operations]},
            )
        return list(result.operations)

    async def _execute_step(
        self,
        instance: Instance,
        actual: dict[ObjectKey, dict[str, Any]],
        step: tuple[Operation, ...],
    ) -> None:
        """Writes that do not depend on each other, at most `write_concurrency` at once; the
        first failure cancels the rest (the pass fails and the instance is listed again)."""
        if len(step) == 1 or self.settings.write_concurrency == 1:
            for operation in step:
                await self._execute(instance, actual, operation)
            return
        limit = asyncio.Semaphore(self.settings.write_concurrency)

        async def bounded(operation: Operation) -> None:
            async with limit:
                await self._execute(instance, actual, operation)

        try:
            async with asyncio.TaskGroup() as group:
                for operation in step:
                    group.create_task(
                        bounded(operation),
                        name=f"apisix-write:{operation.resource}/{operation.id}",
                    )
        except ExceptionGroup as failed:
            self._stop_if_stopping()  # a stop that landed as a write failed: stop, not retry
            for error in failed.exceptions:
                if isinstance(error, FootError):
                    raise error from failed
            raise

    async def _execute(
        self, instance: Instance, actual: dict[ObjectKey, dict[str, Any]], operation: Operation
    ) -> None:
        key = (operation.resource, operation.id)
        if operation.method == "PUT":
            assert operation.body is not None  # noqa: S101 - a PUT always has its body
            stored = await instance.client.put(operation.resource, operation.id, operation.body)
            actual[key] = stored
        else:
            await instance.client.delete(operation.resource, operation.id)
            actual.pop(key, None)

    # ---- GatewayRoute status (written by this service only) -----------------------------

    def route_status(
        self, route: GatewayRoute, previous: GatewayRouteStatus | None = None
    ) -> GatewayRouteStatus | None:
        """The route's status from the computed plan and what each instance holds (None when
        the route is not in the desired state yet)."""
        plan = self.desired().plans.get(route_key(route))
        if plan is None:
            return None
        views = [
            InstanceView(
                url=i.url,
                synced=i.synced,
                actual=i.actual,
                last_error=i.last_error,
            )
            for i in self.instances
        ]
        return route_status(
            route,
            plan,
            views,
            previous=route.status if previous is None else previous,
            now=utc_now(),
        )

    async def _status_loop(self) -> None:
        await self.synced()
        if not self.instances:
            self._status_due.set()  # routes stored before this start get their status
        while True:
            self._stop_if_stopping()
            await self._status_due.wait()
            self._status_due.clear()
            for key in sorted(self.routes):
                route = self.routes.get(key)
                if route is None:
                    continue
                written = self._status_written.get(key)
                status = self.route_status(route, written)
                if status is None or status in (written, route.status):
                    continue
                assert self._routes_store is not None  # noqa: S101 - set in setup()
                # One try, not update_with: a stop may land with the read's reply, and then
                # nothing may be written (see _stop_if_stopping); a conflict is tried again
                # on the next round.
                entry = await self._routes_store.get(key)
                self._stop_if_stopping()
                if entry is None or entry.value is None:
                    continue
                stored = GatewayRoute.from_json(entry.value)
                try:
                    await self._routes_store.update(
                        key, stored.model_copy(update={"status": status}).to_json(), entry.revision
                    )
                except ConflictError:
                    self._stop_if_stopping()
                    self._status_due.set()  # changed meanwhile: try again next round
                    continue
                self._status_written[key] = status
                self._stop_if_stopping()

    # ---- introspection (tests, admin) ---------------------------------------------------

    def instance_status(self) -> list[Mapping[str, Any]]:
        return [
            {
                "url": i.url,
                "synced": i.synced,
                "passes": i.passes,
                "writes": i.writes,
                "lastError": i.last_error,
                "problems": list(i.problems),
            }
            for i in self.instances
        ]

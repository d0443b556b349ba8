"""The dispatcher service: bindings -> works -> member clusters -> status.

The shell around the pure core (`foot_dispatcher.core`); this module only wires its parts:

* `mirrors`: bindings, templates, override policies and clusters (typed mirrors, parsed
  once per change), and what a change there sets going;
* `works`: the works cache (its own works, the staged ones, their indexes, revision-checked
  writes);
* `rendering`: the `render` queue keyed by binding: render one work per target cluster,
  store or stage the works that changed, decide the fate of the works of clusters the
  binding left (purge mode), and hand works to their cluster's lane;
* `intents`: the `dispatch-intents` records covering what is applied before it is stored;
* `lanes`: one `apply:<cluster>` lane per member cluster (its own workers, token bucket,
  retry with backoff, its own connection), so one slow or dead member never holds up the
  others, and the list-and-watch of the workload kinds FOOT applied in each push member,
  feeding a `status` queue that folds what the member reports into the works;
* `pull`: delivery to pull members' agents and their reports, sealed with each cluster's
  agent key (mirrored from the registry's `cluster-agents` bucket);
* `aggregation`: an `aggregate` queue keyed by binding that writes each template's status
  over all its clusters into the `aggregated-status` bucket (the template itself belongs to
  the scheduler);
* `queues`: the queues through which these parts hand each other work.

A push work is stored once per apply, with its spec and what the member answered together:
rendering stages the desired work in memory, and before any staged work of a binding is
applied the binding's intent (each cluster and the objects being applied there) is stored in
`dispatch-intents`. A work is deleted only after its objects are gone. So a dispatcher killed
at any point restarts from the works and the intents and converges: what was applied has
`status.appliedHash`, rendering is deterministic, and an object applied whose work was never
stored is found through the intent and removed if its binding no longer wants it there;
nothing is orphaned. Pull works (and suspended ones) are stored before they are delivered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from pydantic import Field

from foot.agent_channel import MAX_SKEW_SECONDS, AgentRecord
from foot.backoff import Backoff
from foot.bus import KvStore, ReconcileQueue
from foot.catalog import (
    AGGREGATED_STATUS,
    BINDINGS,
    CLUSTER_AGENTS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    DISPATCH_INTENTS,
    POLICIES,
    TEMPLATES,
    WORKS,
)
from foot.credentials import CredentialStore
from foot.kinds.bindings import ResourceBinding
from foot.runtime.clusters import ClusterMirror
from foot.runtime.collector import LongLivedHeap
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot.secrets import SecretBox
from foot_dispatcher.aggregation import Aggregation
from foot_dispatcher.core.lifecycle import work_applied
from foot_dispatcher.intents import DispatchIntents
from foot_dispatcher.lanes import ApplyLanes
from foot_dispatcher.members import MemberLimits, Members
from foot_dispatcher.mirrors import Mirrors, decode_object
from foot_dispatcher.parts import DispatchParts
from foot_dispatcher.pull import PullDelivery
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.rendering import Renderer
from foot_dispatcher.works import WorksCache, split_work_key

log = logging.getLogger(__name__)

GC_YOUNG_THRESHOLD = 50_000
"""Young collections every 50,000 net new container objects instead of every 700: a backstop
for when the heap is not frozen on its timer (see `LongLivedHeap`)."""
APPLY_RETRY_BASE_SECONDS = 0.1
"""First backoff of a failed apply (doubling up to `retry_max_seconds`)."""


class DispatcherSettings(ServiceSettings):
    cluster_concurrency: int = Field(default=8, ge=1, le=256)
    """Works applied at once per member cluster (each cluster has its own workers)."""
    cluster_applies_per_second: float = Field(default=500.0, gt=0)
    """Token-bucket rate of work applies per member cluster."""
    cluster_apply_burst: int = Field(default=100, ge=1)
    """Applies a member cluster may get at once before its rate applies."""
    member_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Longest one request to a member's API server may take (then retried with backoff)."""
    member_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    """Longest a connection to a member's API server may take to open."""
    retry_max_seconds: float = Field(default=30.0, gt=0, le=600)
    """Cap of the exponential backoff between retries of a failed apply, and of the time a
    member that does not answer is left alone between probes."""
    member_breaker_seconds: float = Field(default=1.0, gt=0, le=600)
    """After a request to a member gets no answer (timeout, refused, TLS failure), its
    applies fail at once for this long, then one probe request goes; each probe that gets
    no answer doubles the wait (up to `retry_max_seconds`), an answer ends it."""
    watch_member_status: bool = True
    """Watch the workload kinds FOOT applied in push members and fold their status into works."""
    aggregate_delay_seconds: float = Field(default=0.2, ge=0, le=60)
    """A template's aggregated status is recomputed this long after its works change, once for
    the whole burst (a rollout to 100 clusters changes 100 works)."""
    pull_resend_seconds: float = Field(default=5.0, gt=0, le=300)
    """How often a work is published again to a pull agent that has not reported it applied."""
    agent_max_skew_seconds: float = Field(default=MAX_SKEW_SECONDS, gt=0, le=3600)
    """A pull agent's sync request or status report is refused when its time is further than
    this from the dispatcher's clock (see `foot.agent_channel`: also how long one is
    remembered against replay)."""
    gc_freeze_every_seconds: float = Field(default=0.2, ge=0, le=60)
    """How often new objects are frozen without a collection scanning them (0: never; young
    collections then scan them once, ~7 % of the CPU of a burst of applies). Reference cycles
    among them wait for the next full collection."""
    full_gc_every_seconds: float = Field(default=3600.0, ge=0)
    """How often the whole heap is garbage-collected (0: never), reclaiming the reference
    cycles frozen since; a full collection pauses about 1 s per 30,000 works held."""


class DispatcherService(Service[DispatcherSettings]):
    name = "dispatcher"
    settings_model: ClassVar[type[ServiceSettings]] = DispatcherSettings
    tune_gc: ClassVar[bool] = False
    """Set by the process entry point: GC settings are the whole process's business."""

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        self._heap: LongLivedHeap | None = None
        self._members: Members | None = None
        """Member connections, closed at stop (once set up)."""
        self._pull: PullDelivery | None = None
        """Pull delivery, which stops answering agents first at stop (once set up)."""

    @property
    def applies(self) -> int:
        """Works applied to members (push) or acknowledged by agents (pull), for benchmarks."""
        pulled = self._pull.applies if self._pull is not None else 0
        return self.apply_lanes.applies + pulled

    async def setup(self) -> None:
        settings = self.settings
        works_store: KvStore = await self.bus.kv(WORKS.name)
        aggregates_store: KvStore = await self.bus.declare_bucket(AGGREGATED_STATUS)
        intents_store: KvStore = await self.bus.declare_bucket(DISPATCH_INTENTS)
        box = SecretBox.from_file(self.settings.secret_key_file, create=True)
        self.queues = DispatchQueues(
            render=self.reconcile("render", self._render),
            status=self.reconcile("status", self._refresh_status),
            aggregate=self.reconcile("aggregate", self._aggregate),
            new_lane=self._new_lane,
            aggregate_delay_seconds=settings.aggregate_delay_seconds,
        )
        members = self._members = Members(
            CredentialStore(await self.bus.kv(CLUSTER_CREDENTIALS.name), box),
            MemberLimits(
                timeout_seconds=settings.member_timeout_seconds,
                connect_timeout_seconds=settings.member_connect_timeout_seconds,
                rate=settings.cluster_applies_per_second,
                burst=settings.cluster_apply_burst,
                connection_limit=settings.cluster_concurrency + 2,
                breaker_base_seconds=settings.member_breaker_seconds,
                breaker_max_seconds=settings.retry_max_seconds,
            ),
            on_answering_again=self.queues.answering_again,
        )
        self.works = WorksCache(works_store)
        self.mirrors = Mirrors(self.works, self.queues)
        self.intents = DispatchIntents(intents_store, self.works, self.mirrors.clusters, members)
        # A previous life's intents, read before any render can store a new one.
        await self.intents.recover()
        parts = DispatchParts(
            works=self.works,
            mirrors=self.mirrors,
            intents=self.intents,
            queues=self.queues,
            synced=self.synced,
        )
        self.renderer = Renderer(parts=parts)
        pull = self._pull = PullDelivery(
            self.bus,
            self.works,
            self.queues,
            self.mirrors.clusters,
            resend_seconds=settings.pull_resend_seconds,
            max_skew_seconds=settings.agent_max_skew_seconds,
        )
        self.apply_lanes = ApplyLanes(
            parts=parts,
            members=members,
            pull=pull,
            spawn=self.supervisor.spawn,
            watch_member_status=settings.watch_member_status,
        )
        self.aggregation = Aggregation(
            parts=parts, bucket=aggregates_store, render_errors=self.renderer.errors
        )
        await self._mirror_buckets()
        # The registry's agent records (read-only; the bus's SecretBox opens them): the keys
        # that seal the pull works channel.
        pull.listen_agents(
            await self.mirror(CLUSTER_AGENTS.name, AgentRecord.model_validate_json, "agent record")
        )
        self.supervisor.spawn("resume", self._resume, restart=False)

    async def _mirror_buckets(self) -> None:
        """Read the works once; mirror clusters, policies, templates and bindings."""
        # The dispatcher is the works' only writer: it reads them once at start and keeps
        # its copy from its own writes (a write that finds another revision re-reads the
        # key), instead of receiving every one of its writes back.
        works = await self.watch(WORKS.name, mirror=False, follow=False)
        works.listen(self.works.on_entry)
        mirrors = self.mirrors
        # Not `watch_clusters`: what the dispatcher goes by is the Ready condition recorded
        # on the cluster (`Mirrors.unreachable`), not the registry's health events.
        clusters = ClusterMirror(await self.watch(CLUSTERS.name, mirror=False), mirrors.clusters)
        mirrors.listen(
            clusters=clusters,
            policies=await self.mirror(POLICIES.name, decode_object, "policy", mirrors.policies),
            templates=await self.mirror(
                TEMPLATES.name, decode_object, "template", mirrors.templates
            ),
            bindings=await self.mirror(
                BINDINGS.name, ResourceBinding.from_json, "binding", mirrors.bindings
            ),
        )

    # ---- the queues' reconcilers ---------------------------------------------------------

    async def _render(self, binding_key: str) -> None:
        await self.renderer.render(binding_key)

    async def _refresh_status(self, key: str) -> None:
        await self.apply_lanes.refresh_status(key)

    async def _aggregate(self, binding_key: str) -> None:
        await self.aggregation.aggregate(binding_key)

    def _new_lane(self, cluster: str) -> ReconcileQueue:
        """A member cluster's apply lane, run with the service."""
        lane = ReconcileQueue(
            f"apply:{cluster}",
            self.apply_lanes.apply,
            workers=self.settings.cluster_concurrency,
            backoff=Backoff(
                base_seconds=APPLY_RETRY_BASE_SECONDS, max_seconds=self.settings.retry_max_seconds
            ),
            on_outcome=self.metrics.reconcile_outcome("apply"),
        )
        self._queues.append(lane)
        self.supervisor.spawn(f"queue:apply:{cluster}", lane.run)
        return lane

    # ---- lifecycle -----------------------------------------------------------------------

    async def stop(self) -> None:
        if self._pull is not None:
            await self._pull.stop()
        await super().stop()
        if self._members is not None:
            await self._members.close()
        if self._heap is not None:
            self._heap.uninstall()

    async def _resume(self) -> None:
        """After (re)start: answer the pull agents, finish what the works say is unfinished,
        drop orphans."""
        await self.synced()
        if self._pull is not None:
            # Only now: a sync answered before the works and the agent keys are read would
            # be refused or empty.
            await self._pull.start()
        if self.tune_gc:
            # The caches hold long-lived objects (every work's manifests): keep the cyclic
            # collector from rescanning them (full collections show up as latency spikes).
            heap = LongLivedHeap(
                GC_YOUNG_THRESHOLD,
                self.settings.full_gc_every_seconds,
                self.settings.gc_freeze_every_seconds,
            )
            heap.install(asyncio.get_running_loop())
            self._heap = heap
            self.supervisor.spawn("gc-freeze", heap.freezes_on_timer)
            self.supervisor.spawn("full-gc", heap.full_collections)
        for binding_key in self.intents.recovered_bindings():
            self.queues.render.add(binding_key)
        for key, work in self.works.items():
            _, binding_key = split_work_key(key)
            if binding_key not in self.mirrors.bindings:
                self.queues.render.add(binding_key)
            elif not work_applied(work) or work.spec.deleting:
                self.queues.lane(work.spec.cluster).add(key)
            elif self.settings.watch_member_status:
                self.queues.lane(work.spec.cluster).add(key)  # re-establishes the status watches
        await self.aggregation.resume()

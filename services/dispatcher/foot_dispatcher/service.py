"""The dispatcher service: bindings -> works -> member clusters -> status.

The shell around the pure core (`foot_dispatcher.core`):

* it mirrors bindings, templates, override policies and clusters (informers, parsed once per
  change) and its own works;
* a `render` queue keyed by binding: render one work per target cluster, store the works
  that changed (optimistic concurrency), decide the fate of the works of clusters the
  binding left (purge mode), and hand works to their cluster's lane;
* one `apply:<cluster>` lane per member cluster (its own workers, token bucket, retry with
  backoff, its own connection), so one slow or dead member never holds up the others. A lane
  applies a work (push: server-side apply; pull: publish to the cluster's agent), or purges
  it (delete the member's objects FOOT manages, unless another work still wants them, then
  the work);
* list-and-watch of the workload kinds FOOT applied in each push member, feeding a `status`
  queue that folds what the member reports into the works;
* an `aggregate` queue keyed by binding that writes each template's status over all its
  clusters into the `aggregated-status` bucket (the template itself belongs to the
  scheduler).

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
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace
from pydantic import Field, ValidationError

from foot.bus import Entry, KvStore, ReconcileQueue
from foot.bus.reconcile import Backoff
from foot.catalog import (
    AGGREGATED_STATUS,
    BINDINGS,
    CLUSTER_CREDENTIALS,
    CLUSTERS,
    DISPATCH_INTENTS,
    POLICIES,
    TEMPLATES,
    WORKS,
    WORKS_PREFIX,
    work_deliver_subject,
)
from foot.credentials import CredentialStore
from foot.errors import AlreadyExistsError, ConflictError, FootError, RetryableError
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import AnyOverridePolicy, ClusterOverridePolicy, OverridePolicy
from foot.kinds.works import (
    AggregatedStatus,
    ClusterWorkSummary,
    Work,
    WorkDelivery,
    WorkStatusReport,
)
from foot.kube.watch import watch_collection
from foot.manifests import MANAGED_SELECTOR, identity
from foot.object_health import WATCHED_KINDS
from foot.objects import KubeObject, utc_now
from foot.runtime.collector import LongLivedHeap
from foot.runtime.locks import KeyedLocks
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings, as_settings
from foot.secrets import SecretBox
from foot.telemetry import extract_context, inject_headers, tracer
from foot_dispatcher.core import workstatus
from foot_dispatcher.core.lifecycle import aggregate, removal, replacement_ready, work_applied
from foot_dispatcher.core.render import (
    RenderedWork,
    dependency_keys,
    desired_work,
    render,
    work_key,
)
from foot_dispatcher.members import Member, Members

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 8
GC_YOUNG_THRESHOLD = 50_000
"""Young collections every 50,000 net new container objects instead of every 700: a backstop
for when the heap is not frozen on its timer (see `LongLivedHeap`)."""
RENDER_WRITE_BATCH = 32
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
Identity = tuple[str, str, str | None, str]


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
    gc_freeze_every_seconds: float = Field(default=0.2, ge=0, le=60)
    """How often new objects are frozen without a collection scanning them (0: never; young
    collections then scan them once, ~7 % of the CPU of a burst of applies). Reference cycles
    among them wait for the next full collection."""
    full_gc_every_seconds: float = Field(default=3600.0, ge=0)
    """How often the whole heap is garbage-collected (0: never), reclaiming the reference
    cycles frozen since; a full collection pauses about 1 s per 30,000 works held."""


def _decode(data: bytes) -> KubeObject:
    document = orjson.loads(data)
    info = KINDS.lookup(document["apiVersion"], document["kind"])
    return info.model.model_validate(document, by_alias=True)


def _encode(work: Work) -> bytes:
    """The stored form (the bucket revision is not part of the value)."""
    if work.metadata.revision:
        work = work.model_copy(
            update={"metadata": work.metadata.model_copy(update={"revision": 0})}
        )
    return work.model_dump_json(by_alias=True, exclude_none=True).encode()


def _carries_secret(work: Work) -> bool:
    """A work holding a Secret is stored sealed (never in plain text in the bucket)."""
    return any(
        m.get("kind") == "Secret" and m.get("apiVersion") == "v1" for m in work.spec.manifests
    )


def _template_key(binding: ResourceBinding) -> str | None:
    resource = binding.spec.resource
    try:
        info = KINDS.lookup(resource.api_version, resource.kind)
    except FootError:
        return None
    return info.key(resource.namespace, resource.name)


def _identity(value: list[Any]) -> Identity:
    api_version, kind, namespace, name = value
    return (str(api_version), str(kind), namespace, str(name))


def _identity_manifest(ident: Identity) -> dict[str, Any]:
    """The least manifest naming an object (enough to remove it)."""
    api_version, kind, namespace, name = ident
    metadata = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def _change_of(
    binding: ResourceBinding, rendered: RenderedWork, now: datetime
) -> Callable[[Work | None], Work | None]:
    """The change a render makes to one cluster's work (None: nothing to write)."""

    def change(current: Work | None) -> Work | None:
        desired = desired_work(binding, rendered, current, traceparent=binding.metadata.traceparent)
        base = desired or current
        if base is None:
            return None
        return workstatus.rendered_condition(base, None, now=now) or desired

    return change


def _split_work_key(key: str) -> tuple[str, str]:
    """(cluster, binding key) of a work key."""
    cluster, _, binding_key = key.partition(".")
    return cluster, binding_key


class DispatcherService(Service):
    name = "dispatcher"
    settings_model: ClassVar[type[ServiceSettings]] = DispatcherSettings
    tune_gc: ClassVar[bool] = False
    """Set by the process entry point: GC settings are the whole process's business."""

    def __init__(self, settings: ServiceSettings) -> None:
        config = as_settings(DispatcherSettings, settings)
        super().__init__(config)
        self.config: DispatcherSettings = config
        self.bindings: dict[str, ResourceBinding] = {}
        self.templates: dict[str, KubeObject] = {}
        self.overrides: dict[str, AnyOverridePolicy] = {}
        self.clusters: dict[str, Cluster] = {}
        self._cluster_keys: dict[str, str] = {}
        self._cluster_fingerprints: dict[str, bytes] = {}
        self._unreachable: set[str] = set()
        """Clusters whose Ready condition is not True."""
        self.works: dict[str, Work] = {}
        """Work key -> newest copy known (the informer's or this process's own write)."""
        self._revisions: dict[str, int] = {}
        """Work key -> bucket revision of that copy (what the next write expects)."""
        self._staged: dict[str, Work] = {}
        """Work key -> desired push work not stored yet (stored with its first apply's answer)."""
        self._staged_of_binding: dict[str, set[str]] = {}
        self._intents: dict[str, tuple[int, dict[str, list[Identity]]]] = {}
        """Binding key -> (revision, cluster -> objects) of the intent this process stored."""
        self._recovered: dict[str, dict[str, list[Identity]]] = {}
        """Intents found at start (a previous life's): checked for orphans at the next render."""
        self._works_of_binding: dict[str, set[str]] = {}
        self._works_of_cluster: dict[str, set[str]] = {}
        self._object_works: dict[tuple[str, Identity], set[str]] = {}
        self._binding_of_template: dict[str, str] = {}
        self._dependents: dict[str, set[str]] = {}
        """Template key of a dependency -> binding keys whose workload references it."""
        self._observed: dict[tuple[str, Identity], dict[str, Any] | None] = {}
        self._locks = KeyedLocks()
        self._heap: LongLivedHeap | None = None
        self._lanes: dict[str, ReconcileQueue] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._aggregates: dict[str, AggregatedStatus] = {}
        self._render_errors: dict[str, dict[str, str]] = {}
        """Binding key -> cluster -> why its work could not be rendered (last render)."""
        self._subscriptions: list[Subscription] = []
        self.applies = 0
        """Works applied to members (push) or acknowledged by agents (pull), for benchmarks."""

    # ---- wiring -------------------------------------------------------------------------

    async def setup(self) -> None:
        self.works_store: KvStore = await self.bus.kv(WORKS.name)
        self.aggregates_store: KvStore = await self.bus.declare_bucket(AGGREGATED_STATUS)
        self.intents_store: KvStore = await self.bus.declare_bucket(DISPATCH_INTENTS)
        # A previous life's intents, read before any render can store a new one.
        for entry in await self.intents_store.entries():
            if entry.value is None:
                continue
            document = orjson.loads(entry.value)
            self._recovered[entry.key] = {
                cluster: [_identity(i) for i in objects]
                for cluster, objects in (document.get("clusters") or {}).items()
            }
            self._intents[entry.key] = (entry.revision, self._recovered[entry.key])
        box = SecretBox.from_file(self.settings.secret_key_file, create=True)
        self.members = Members(
            CredentialStore(await self.bus.kv(CLUSTER_CREDENTIALS.name), box),
            timeout_seconds=self.config.member_timeout_seconds,
            connect_timeout_seconds=self.config.member_connect_timeout_seconds,
            rate=self.config.cluster_applies_per_second,
            burst=self.config.cluster_apply_burst,
            connection_limit=self.config.cluster_concurrency + 2,
            breaker_base_seconds=self.config.member_breaker_seconds,
            breaker_max_seconds=self.config.retry_max_seconds,
            on_answering_again=self._answering_again,
        )
        self.render_queue = self.reconcile("render", self._render)
        self.status_queue = self.reconcile("status", self._refresh_status)
        self.aggregate_queue = self.reconcile("aggregate", self._aggregate)
        # The dispatcher is the works' only writer: it reads them once at start and keeps
        # its copy from its own writes (a write that finds another revision re-reads the
        # key), instead of receiving every one of its writes back.
        self._work_informer = await self.watch(WORKS.name, mirror=False, follow=False)
        self._work_informer.listen(self._on_work_entry)
        self._cluster_informer = await self.watch(CLUSTERS.name, mirror=False)
        self._cluster_informer.listen(self._on_cluster_entry)
        self._policy_informer = await self.watch(POLICIES.name, mirror=False)
        self._policy_informer.listen(self._on_policy_entry)
        self._template_informer = await self.watch(TEMPLATES.name, mirror=False)
        self._template_informer.listen(self._on_template_entry)
        self._binding_informer = await self.watch(BINDINGS.name, mirror=False)
        self._binding_informer.listen(self._on_binding_entry)
        self._subscriptions.append(
            await self.bus.client.subscribe(
                f"{WORKS_PREFIX}.status.*", cb=self._on_pull_status, queue="dispatcher"
            )
        )
        self._subscriptions.append(
            await self.bus.client.subscribe(
                f"{WORKS_PREFIX}.sync.*", cb=self._on_pull_sync, queue="dispatcher"
            )
        )
        self.supervisor.spawn("resume", self._resume, restart=False)

    async def _synced(self) -> None:
        for informer in self._informers:
            await informer.synced.wait()

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed during stop", exc_info=True)
        self._subscriptions.clear()
        await super().stop()
        if hasattr(self, "members"):
            await self.members.close()
        if self._heap is not None:
            self._heap.uninstall()

    async def _resume(self) -> None:
        """After (re)start: finish what the works say is unfinished, drop orphans."""
        await self._synced()
        if self.tune_gc:
            # The caches hold long-lived objects (every work's manifests): keep the cyclic
            # collector from rescanning them (full collections show up as latency spikes).
            heap = LongLivedHeap(
                GC_YOUNG_THRESHOLD,
                self.config.full_gc_every_seconds,
                self.config.gc_freeze_every_seconds,
            )
            heap.install(asyncio.get_running_loop())
            self._heap = heap
            self.supervisor.spawn("gc-freeze", heap.freezes_on_timer)
            self.supervisor.spawn("full-gc", heap.full_collections)
        for binding_key in sorted(self._recovered):
            self.render_queue.add(binding_key)
        for key, work in list(self.works.items()):
            _, binding_key = _split_work_key(key)
            if binding_key not in self.bindings:
                self.render_queue.add(binding_key)
            elif not work_applied(work) or work.spec.deleting:
                self._lane(work.spec.cluster).add(key)
            elif self.config.watch_member_status:
                self._lane(work.spec.cluster).add(key)  # re-establishes the status watches
        for entry in await self.aggregates_store.entries():
            if entry.value is None:
                continue
            try:
                record = AggregatedStatus.model_validate_json(entry.value)
            except ValidationError:
                continue
            self._aggregates[entry.key] = record
            if record.binding not in self.bindings:
                self.aggregate_queue.add(record.binding)

    # ---- lanes ---------------------------------------------------------------------------

    def _lane(self, cluster: str) -> ReconcileQueue:
        lane = self._lanes.get(cluster)
        if lane is None:
            lane = ReconcileQueue(
                f"apply:{cluster}",
                self._apply,
                workers=self.config.cluster_concurrency,
                backoff=Backoff(base_seconds=0.1, max_seconds=self.config.retry_max_seconds),
                on_outcome=self.metrics.reconcile_outcome("apply"),
            )
            self._lanes[cluster] = lane
            self._queues.append(lane)
            self.supervisor.spawn(f"queue:apply:{cluster}", lane.run)
        return lane

    def _answering_again(self, cluster: str) -> None:
        """A member answers again: what waits for its backoff is tried now."""
        log.info("member %s answers again", cluster)
        lane = self._lanes.get(cluster)
        if lane is not None:
            lane.expedite()

    # ---- informer listeners --------------------------------------------------------------

    def _on_binding_entry(self, entry: Entry) -> None:
        if entry.deleted or entry.value is None:
            self.bindings.pop(entry.key, None)
        else:
            try:
                binding = ResourceBinding.from_json(entry.value)
            except ValidationError as exc:
                log.error("binding %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
                return
            self.bindings[entry.key] = binding
            template_key = _template_key(binding)
            if template_key is not None:
                self._binding_of_template[template_key] = entry.key
        self.render_queue.add(entry.key)

    def _on_template_entry(self, entry: Entry) -> None:
        if entry.deleted or entry.value is None:
            self.templates.pop(entry.key, None)
        else:
            try:
                self.templates[entry.key] = _decode(entry.value)
            except (ValidationError, FootError, KeyError, orjson.JSONDecodeError) as exc:
                log.error("template %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
                return
        affected = set(self._dependents.get(entry.key, ()))
        if entry.key in self._binding_of_template:
            affected.add(self._binding_of_template[entry.key])
        for binding_key in sorted(affected):
            self.render_queue.add(binding_key)

    def _on_policy_entry(self, entry: Entry) -> None:
        before = self.overrides.pop(entry.key, None)
        after: KubeObject | None = None
        if not entry.deleted and entry.value is not None:
            try:
                after = _decode(entry.value)
            except (ValidationError, FootError, KeyError, orjson.JSONDecodeError) as exc:
                log.error("policy %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
                return
            if isinstance(after, OverridePolicy | ClusterOverridePolicy):
                self.overrides[entry.key] = after
            else:
                after = None
        namespaces: set[str | None] = set()
        everywhere = False
        for policy in (before, after):
            if isinstance(policy, ClusterOverridePolicy):
                everywhere = True
            elif isinstance(policy, OverridePolicy):
                namespaces.add(policy.namespace)
        if not everywhere and not namespaces:
            return
        for key, binding in self.bindings.items():
            if everywhere or binding.namespace in namespaces:
                self.render_queue.add(key)

    def _on_cluster_entry(self, entry: Entry) -> None:
        if entry.deleted or entry.value is None:
            name = self._cluster_keys.pop(entry.key, None)
            if name is None:
                return
            self.clusters.pop(name, None)
            self._cluster_fingerprints.pop(name, None)
            self._unreachable.discard(name)
            self._cluster_changed(name)
            return
        try:
            cluster = Cluster.from_json(entry.value)
        except ValidationError as exc:
            log.error("cluster %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
            return
        self._cluster_keys[entry.key] = cluster.name
        self.clusters[cluster.name] = cluster
        self._note_reachability(cluster)
        fingerprint = orjson.dumps(
            [cluster.metadata.labels, cluster.spec.model_dump(mode="json")],
            option=orjson.OPT_SORT_KEYS,
        )
        if self._cluster_fingerprints.get(cluster.name) == fingerprint:
            return  # status only (heartbeats, probes): nothing dispatching depends on
        self._cluster_fingerprints[cluster.name] = fingerprint
        self._cluster_changed(cluster.name)

    def _note_reachability(self, cluster: Cluster) -> None:
        """A member whose Ready condition is not True (the registry's verdict) shows its
        works' last figures as unconfirmed: re-aggregate its bindings when that changes."""
        ready = cluster.status.condition("Ready")
        unreachable = ready is not None and ready.status != "True"
        name = cluster.name
        if unreachable == (name in self._unreachable):
            return
        if unreachable:
            self._unreachable.add(name)
        else:
            self._unreachable.discard(name)
        for key in self._works_of_cluster.get(name, ()):
            self._aggregate_soon(_split_work_key(key)[1])

    def _cluster_changed(self, name: str) -> None:
        """Labels/zone feed override targets, syncMode the delivery, existence everything."""
        if not self._binding_informer.synced.is_set():
            return
        for key in sorted(self._works_of_cluster.get(name, ())):
            self.render_queue.add(_split_work_key(key)[1])
            self._lane(name).add(key)
        for key, binding in self.bindings.items():
            if any(t.name == name for t in binding.spec.clusters):
                self.render_queue.add(key)

    def _on_work_entry(self, entry: Entry) -> None:
        if self._revisions.get(entry.key, 0) >= entry.revision:
            return  # our own write, already known
        if self._locks.locked(entry.key) and not entry.deleted:
            return  # our own write in flight: it updates the cache itself
        if entry.deleted or entry.value is None:
            self._forget_work(entry.key)
            return
        try:
            work = Work.from_json(entry.value)
        except ValidationError as exc:
            log.error("work %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
            return
        self._remember_work(entry.key, work, entry.revision)

    # ---- the works cache -----------------------------------------------------------------

    def _remember_work(self, key: str, work: Work, revision: int) -> None:
        old = self.works.get(key)
        self.works[key] = work
        self._revisions[key] = revision
        cluster, binding_key = _split_work_key(key)
        self._works_of_binding.setdefault(binding_key, set()).add(key)
        self._works_of_cluster.setdefault(cluster, set()).add(key)
        if old is None or old.spec.manifests_hash != work.spec.manifests_hash:
            self._unlink(key, old, work, self._staged.get(key))
            self._link(key, work)

    def _forget_work(self, key: str) -> None:
        old = self.works.pop(key, None)
        self._revisions.pop(key, None)
        cluster, binding_key = _split_work_key(key)
        self._works_of_binding.get(binding_key, set()).discard(key)
        self._works_of_cluster.get(cluster, set()).discard(key)
        self._unlink(key, old, self._staged.get(key))

    def _link(self, key: str, work: Work) -> None:
        """Index the objects of a work (stored or staged) by (cluster, identity)."""
        cluster = work.spec.cluster
        for manifest in work.spec.manifests:
            self._object_works.setdefault((cluster, identity(manifest)), set()).add(key)

    def _unlink(self, key: str, old: Work | None, *keep: Work | None) -> None:
        """Drop the index entries of `old`'s objects that none of `keep` has."""
        if old is None:
            return
        kept = {identity(m) for work in keep if work is not None for m in work.spec.manifests}
        for manifest in old.spec.manifests:
            ident = identity(manifest)
            if ident not in kept:
                self._object_works.get((old.spec.cluster, ident), set()).discard(key)

    def _stage(self, key: str, work: Work) -> None:
        previous = self._staged.get(key)
        self._staged[key] = work
        self._staged_of_binding.setdefault(_split_work_key(key)[1], set()).add(key)
        self._unlink(key, previous, work, self.works.get(key))
        self._link(key, work)

    def _unstage(self, key: str, only: Work | None = None) -> bool:
        """Drop the staged work of `key` (only if it is `only`, when given); True if dropped."""
        previous = self._staged.get(key)
        if previous is None or (only is not None and previous is not only):
            return False
        del self._staged[key]
        binding_key = _split_work_key(key)[1]
        keys = self._staged_of_binding.get(binding_key)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._staged_of_binding[binding_key]
        self._unlink(key, previous, self.works.get(key))
        return True

    def _binding_view(self, binding_key: str) -> dict[str, tuple[str, Work]]:
        """The binding's works, the staged ones in place of what is stored."""
        found = self._binding_works(binding_key)
        for key in self._staged_of_binding.get(binding_key, ()):
            work = self._staged[key]
            found[work.spec.cluster] = (key, work)
        return found

    def _binding_works(self, binding_key: str) -> dict[str, tuple[str, Work]]:
        found = {}
        for key in self._works_of_binding.get(binding_key, set()):
            work = self.works.get(key)
            if work is not None:
                found[work.spec.cluster] = (key, work)
        return found

    async def _refresh_work(self, key: str) -> None:
        entry = await self.works_store.get(key)
        if entry is None or entry.value is None:
            self._forget_work(key)
        else:
            self._remember_work(key, Work.from_json(entry.value), entry.revision)

    async def _put_work(
        self, key: str, change: Callable[[Work | None], Work | None]
    ) -> Work | None:
        """Store `change(current)` with optimistic concurrency (None from `change`: nothing
        to write); re-read and try again when someone (our other path) wrote in between."""
        async with self._locks.hold(key):
            for _ in range(WRITE_ATTEMPTS):
                current = self.works.get(key)
                updated = change(current)
                if updated is None:
                    return current
                body = _encode(updated)
                seal = _carries_secret(updated)
                try:
                    if current is None:
                        revision = await self.works_store.create(key, body, seal=seal)
                    else:
                        revision = await self.works_store.update(
                            key, body, self._revisions.get(key, 0), seal=seal
                        )
                except (ConflictError, AlreadyExistsError):
                    await self._refresh_work(key)
                    continue
                self._remember_work(key, updated, revision)
                return updated
        raise ConflictError(WORKS.name, key, None)

    async def _delete_work(self, key: str) -> None:
        async with self._locks.hold(key):
            current = self.works.get(key)
            if current is None:
                return
            try:
                await self.works_store.delete(key, revision=self._revisions.get(key, 0))
            except ConflictError:
                await self._refresh_work(key)
                raise
            self._forget_work(key)

    # ---- render ----------------------------------------------------------------------------

    async def _render(self, binding_key: str) -> None:
        await self._synced()
        binding = self.bindings.get(binding_key)
        parent = binding.metadata.traceparent if binding is not None else None
        context = extract_context({"traceparent": parent}) if parent else None
        with tracer().start_as_current_span(
            "dispatch", context=context, kind=trace.SpanKind.INTERNAL
        ) as span:
            span.set_attribute("foot.binding", binding_key)
            if binding is None:
                await self._binding_gone(binding_key)
                return
            await self._render_binding(binding_key, binding)

    async def _binding_gone(self, binding_key: str) -> None:
        self._render_errors.pop(binding_key, None)
        for key in list(self._staged_of_binding.get(binding_key, ())):
            self._unstage(key)
        await self._sweep(binding_key)
        now = utc_now()
        for _cluster, (key, work) in sorted(self._binding_works(binding_key).items()):
            decision = removal(work, None, now=now, target_ready=False)
            if decision.action == "forget":
                await self._delete_work(key)
            else:
                await self._mark_deleting(key)
        self._aggregate_soon(binding_key)

    async def _render_binding(self, binding_key: str, binding: ResourceBinding) -> None:
        template_key = _template_key(binding)
        template = self.templates.get(template_key) if template_key else None
        now = utc_now()
        if template is not None:
            await self._render_works(binding_key, binding, template, now)

        targets = {t.name for t in binding.spec.clusters}
        for key in list(self._staged_of_binding.get(binding_key, ())):
            if _split_work_key(key)[0] not in targets:
                self._unstage(key)  # left before it was applied (if it is being applied, the
                # write that follows brings the binding back here)
        works = self._binding_works(binding_key)
        ready = replacement_ready(
            binding, {name: work for name, (_, work) in works.items()}, self._unreachable
        )
        for name, (key, work) in sorted(works.items()):
            if name in targets or work.spec.deleting:
                continue
            decision = removal(work, binding, now=now, target_ready=ready)
            if decision.action == "delete":
                log.info("removing %s from %s: %s", binding_key, name, decision.reason)
                await self._mark_deleting(key)
            elif decision.recheck_at is not None:
                self._render_at(binding_key, decision.recheck_at)
        await self._sweep(binding_key)
        self._aggregate_soon(binding_key)

    async def _render_works(
        self, binding_key: str, binding: ResourceBinding, template: KubeObject, now: datetime
    ) -> None:
        """Render the binding's works; store or stage the ones that changed."""
        keys = dependency_keys(template)
        for key, _ in keys:
            self._dependents.setdefault(key, set()).add(binding_key)
        deps = {key: self.templates[key] for key, _ in keys if key in self.templates}
        result = render(binding, template, deps, list(self.overrides.values()), self.clusters)
        pending, writes = self._sort_rendered(binding_key, binding, result.works, now)

        async def store(name: str, rendered: RenderedWork) -> None:
            key = work_key(name, binding_key)
            stored = await self._put_work(key, _change_of(binding, rendered, now))
            if stored is not None and (not work_applied(stored) or stored.spec.suspended):
                self._lane(name).add(key)

        # Works stored now are written a batch at a time (each is its own key).
        for start in range(0, len(writes), RENDER_WRITE_BATCH):
            async with asyncio.TaskGroup() as group:
                for name, rendered in writes[start : start + RENDER_WRITE_BATCH]:
                    group.create_task(store(name, rendered), name=f"store-work:{name}")
        if pending:
            await self._cover(binding_key, pending.values())
            for key, work in pending.items():
                self._stage(key, work)
                self._lane(work.spec.cluster).add(key)
        self._render_errors[binding_key] = dict(result.errors)
        for name, error in sorted(result.errors.items()):
            log.warning("cannot render %s for %s: %s", binding_key, name, error)
            await self._put_work(
                work_key(name, binding_key),
                lambda c, e=error: workstatus.rendered_condition(c, e, now=now) if c else None,  # type: ignore[misc]
            )
        if result.missing_dependencies:
            log.info(
                "%s references %s, which are not templates: not propagated",
                binding_key,
                ", ".join(result.missing_dependencies),
            )

    def _sort_rendered(
        self,
        binding_key: str,
        binding: ResourceBinding,
        works: Mapping[str, RenderedWork],
        now: datetime,
    ) -> tuple[dict[str, Work], list[tuple[str, RenderedWork]]]:
        """(push works to apply, staged once an intent covers them; works to store now)."""
        pending: dict[str, Work] = {}
        writes: list[tuple[str, RenderedWork]] = []
        for name, rendered in sorted(works.items()):
            key = work_key(name, binding_key)
            cluster = self.clusters.get(name)
            if cluster is None or cluster.spec.sync_mode == "Pull":
                writes.append((name, rendered))  # stored first, then delivered
                continue
            current = self._staged.get(key) or self.works.get(key)
            updated = _change_of(binding, rendered, now)(current)
            if updated is None:
                if key in self._staged:
                    pending[key] = self._staged[key]  # still to apply: keep it covered
                elif current is not None and (not work_applied(current) or current.spec.suspended):
                    self._lane(name).add(key)
            elif not updated.spec.suspended and not work_applied(updated):
                pending[key] = updated
            else:
                self._unstage(key)  # suspended, or back to what is applied: store that
                writes.append((name, rendered))
        return pending, writes

    # ---- intents (what is applied before its work is stored) -------------------------------

    async def _cover(self, binding_key: str, works: Iterable[Work]) -> None:
        """Store the binding's intent so that it names every object of `works` (and whatever
        it already named), before any of them is applied."""
        revision, clusters = self._intents.get(binding_key, (0, {}))
        merged = {cluster: list(objects) for cluster, objects in clusters.items()}
        grown = revision == 0
        for work in works:
            objects = merged.setdefault(work.spec.cluster, [])
            for manifest in work.spec.manifests:
                ident = identity(manifest)
                if ident not in objects:
                    objects.append(ident)
                    grown = True
        if not grown:
            return
        body = orjson.dumps({"binding": binding_key, "clusters": merged})
        self._intents[binding_key] = (await self.intents_store.put(binding_key, body), merged)

    async def _sweep(self, binding_key: str) -> None:
        """After a restart: remove what a previous life applied for this binding (its intent
        names it) where neither a stored nor a staged work of the binding has it any more."""
        recovered = self._recovered.get(binding_key)
        if recovered is None:
            return
        for cluster, objects in sorted(recovered.items()):
            key = work_key(cluster, binding_key)
            keep = {
                identity(m)
                for work in (self._staged.get(key), self.works.get(key))
                if work is not None
                for m in work.spec.manifests
            }
            left = [ident for ident in objects if ident not in keep]
            target = self.clusters.get(cluster)
            if not left or target is None or target.spec.sync_mode == "Pull":
                continue  # pull works are stored before they are delivered
            member = await self.members.get(cluster)
            for ident in left:
                manifest = _identity_manifest(ident)
                if self._wanted_elsewhere(key, cluster, manifest):
                    continue
                with member.guarded():
                    await member.limiter.acquire()
                    removed = await member.applier.remove(manifest)
                if removed:
                    log.info("removed %s from %s: applied for %s, no longer wanted there",
                             ident, cluster, binding_key)  # fmt: skip
        del self._recovered[binding_key]

    async def _uncover(self, binding_key: str) -> None:
        """Delete the binding's intent once nothing it names waits to be stored."""
        if binding_key in self._staged_of_binding or binding_key in self._recovered:
            return
        intent = self._intents.pop(binding_key, None)
        if intent is None:
            return
        try:
            await self.intents_store.delete(binding_key, revision=intent[0])
        except ConflictError:
            log.debug("intent of %s was stored again meanwhile: kept", binding_key)

    async def _mark_deleting(self, key: str) -> None:
        def deleting(current: Work | None) -> Work | None:
            if current is None or current.spec.deleting:
                return None
            return current.model_copy(
                update={"spec": current.spec.model_copy(update={"deleting": True})}
            )

        stored = await self._put_work(key, deleting)
        if stored is not None:
            self._lane(stored.spec.cluster).add(key)

    def _render_at(self, binding_key: str, when: datetime) -> None:
        old = self._timers.pop(binding_key, None)
        if old is not None:
            old.cancel()
        delay = max((when - utc_now()).total_seconds(), 0.0) + 0.05
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(binding_key, None)
            self.render_queue.add(binding_key)

        self._timers[binding_key] = loop.call_later(delay, fire)

    # ---- apply (one lane per cluster) ------------------------------------------------------

    async def _apply(self, key: str) -> None:
        staged = self._staged.get(key)
        work = staged or self.works.get(key)
        if work is None:
            return
        name = work.spec.cluster
        cluster = self.clusters.get(name)
        if cluster is None:
            if work.spec.deleting:
                await self._delete_work(key)  # the member left FOOT; nothing to reach
                self.render_queue.add(_split_work_key(key)[1])
            return  # applied when the cluster appears
        if cluster.spec.sync_mode == "Pull":
            if staged is not None:  # the member turned to pull mode: stored, then delivered
                stored_work = await self._store_staged(key, staged, lambda w: w)
                if stored_work is None:
                    return
                work = stored_work
            await self._deliver_pull(key, work)
        elif work.spec.deleting:
            await self._purge(key, work)
        elif not work.spec.suspended:
            await self._apply_push(key, work, staged)

    async def _apply_push(self, key: str, work: Work, staged: Work | None) -> None:
        name = work.spec.cluster
        member = await self.members.get(name)
        if work_applied(work):
            self._watch_member(member, work)
            return
        parent = work.metadata.traceparent
        context = extract_context({"traceparent": parent}) if parent else None
        try:
            with member.guarded():
                await member.limiter.acquire()
                # One rollout is one trace: the member apply joins the binding's trace.
                with tracer().start_as_current_span(
                    f"apply {name}", context=context, kind=trace.SpanKind.CLIENT
                ):
                    statuses = await member.applier.apply_all(
                        work.spec.manifests, work.spec.conflict_resolution
                    )
        except RetryableError as exc:
            message = exc.message
            if staged is not None:  # shown as waiting for its member from now on
                await self._store_staged(
                    key, staged, lambda w: workstatus.unavailable(w, message, now=utc_now()) or w
                )
            else:
                await self._put_work(
                    key, lambda c: workstatus.unavailable(c, message, now=utc_now()) if c else None
                )
            raise
        if any(s.error and (" 401 " in s.error or " 403 " in s.error) for s in statuses):
            await self.members.forget(name)  # credential rotated? read it again next time
            raise RetryableError(f"member {name} refused FOOT's credential")
        self.applies += 1
        manifests_hash = work.spec.manifests_hash
        if staged is not None:  # one write: the spec and what the member answered
            stored = await self._store_staged(
                key,
                staged,
                lambda w: workstatus.applied(w, manifests_hash, statuses, now=utc_now()) or w,
            )
        else:
            stored = await self._put_work(
                key,
                lambda c: (
                    workstatus.applied(c, manifests_hash, statuses, now=utc_now()) if c else None
                ),
            )
        if stored is not None:
            self._watch_member(member, stored)
        self._aggregate_soon(_split_work_key(key)[1])
        refused = [f"{s.kind} {s.name}: {s.error}" for s in statuses if s.error]
        if refused:
            # Shown on the work; tried again with backoff, as a refusal may pass (a NodePort
            # someone else holds, a kind not served yet). A conflict (Abort) is a decision
            # and waits for a change of the binding instead.
            raise RetryableError(f"member {name} refused {'; '.join(refused)}")

    async def _store_staged(
        self, key: str, staged: Work, finish: Callable[[Work], Work]
    ) -> Work | None:
        """Store a staged work as `finish` makes it, whatever is stored now; then it is no
        longer staged (unless a newer render staged another meanwhile)."""
        stored = await self._put_work(key, lambda _current: finish(staged))
        if not self._unstage(key, only=staged):
            # Staged again or dropped while being applied: the binding's render looks again.
            self.render_queue.add(_split_work_key(key)[1])
        return stored

    def _wanted_elsewhere(self, key: str, cluster: str, manifest: dict[str, Any]) -> bool:
        """Another live work for the same cluster has the same object (a shared dependency)."""
        for other in self._object_works.get((cluster, identity(manifest)), set()):
            work = self._staged.get(other) or self.works.get(other)
            if other != key and work is not None and not work.spec.deleting:
                return True
        return False

    async def _purge(self, key: str, work: Work) -> None:
        member = await self.members.get(work.spec.cluster)
        for manifest in reversed(work.spec.manifests):
            if self._wanted_elsewhere(key, work.spec.cluster, manifest):
                continue
            with member.guarded():
                await member.limiter.acquire()
                removed = await member.applier.remove(manifest)
            if not removed:
                log.info("left %s/%s alone: FOOT does not manage it", work.spec.cluster, manifest)
        await self._delete_work(key)
        self.render_queue.add(_split_work_key(key)[1])

    # ---- member status ---------------------------------------------------------------------

    def _watch_member(self, member: Member, work: Work) -> None:
        if not self.config.watch_member_status:
            return
        for manifest in work.spec.manifests:
            api_version, kind, _, _ = identity(manifest)
            if (api_version, kind) not in WATCHED_KINDS or (api_version, kind) in member.watched:
                continue
            member.watched.add((api_version, kind))
            self.supervisor.spawn(
                f"watch:{member.name}:{kind}",
                lambda m=member, a=api_version, k=kind: self._watch(m, a, k),  # type: ignore[misc]
            )

    async def _watch(self, member: Member, api_version: str, kind: str) -> None:
        path = await member.applier.collection_path(api_version, kind)

        def on_event(event: str, obj: dict[str, Any]) -> None:
            metadata = obj.get("metadata") or {}
            ident: Identity = (
                api_version,
                kind,
                metadata.get("namespace"),
                str(metadata.get("name")),
            )
            self._observed[(member.name, ident)] = None if event == "DELETED" else obj
            for key in self._object_works.get((member.name, ident), set()):
                self.status_queue.add(key)

        await watch_collection(member.kube, path, on_event, label_selector=MANAGED_SELECTOR)

    async def _refresh_status(self, key: str) -> None:
        work = self.works.get(key)
        if work is None or work.spec.deleting:
            return
        cluster = work.spec.cluster
        objects = {
            ident: self._observed[(cluster, ident)]
            for ident in (identity(m) for m in work.spec.manifests)
            if (cluster, ident) in self._observed
        }
        missing = False

        def fold(current: Work | None) -> Work | None:
            nonlocal missing
            if current is None:
                return None
            updated, missing = workstatus.observed(current, objects, now=utc_now())
            return updated

        stored = await self._put_work(key, fold)
        if missing and stored is not None:
            self._lane(cluster).add(key)  # deleted in the member behind FOOT's back: apply again
        self._aggregate_soon(_split_work_key(key)[1])

    # ---- pull delivery ---------------------------------------------------------------------

    def _delivery(self, key: str, work: Work) -> WorkDelivery:
        if work.spec.deleting:
            keep = [
                m
                for m in work.spec.manifests
                if not self._wanted_elsewhere(key, work.spec.cluster, m)
            ]
            work = work.model_copy(
                update={"spec": work.spec.model_copy(update={"manifests": keep})}
            )
        return WorkDelivery(key=key, work=work)

    async def _deliver_pull(self, key: str, work: Work) -> None:
        if work.spec.suspended and not work.spec.deleting:
            return
        if not work.spec.deleting and work.status.applied_hash == work.spec.manifests_hash:
            return  # the agent reported this spec (applied, or a conflict/refusal it keeps)
        headers = inject_headers({})
        await self.bus.client.publish(
            work_deliver_subject(work.spec.cluster),
            self._delivery(key, work).model_dump_json(by_alias=True).encode(),
            headers=headers,
        )
        # Not acknowledged yet: publish again later until the agent reports it.
        self._lane(work.spec.cluster).add_after(key, self.config.pull_resend_seconds)

    async def _on_pull_sync(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        deliveries = [
            self._delivery(key, work).model_dump(mode="json", by_alias=True)
            for key in sorted(self._works_of_cluster.get(cluster, set()))
            if (work := self.works.get(key)) is not None
            and (not work.spec.suspended or work.spec.deleting)
        ]
        await msg.respond(orjson.dumps(deliveries))

    async def _on_pull_status(self, msg: Msg) -> None:
        cluster = msg.subject.rsplit(".", 1)[-1]
        try:
            report = WorkStatusReport.model_validate_json(msg.data)
        except ValidationError as exc:
            await msg.respond(orjson.dumps({"ok": False, "error": str(exc)}))
            return
        if _split_work_key(report.key)[0] != cluster:
            # An agent speaks for its own cluster only.
            await msg.respond(orjson.dumps({"ok": False, "error": "not this cluster's work"}))
            return
        try:
            await self._record_pull_status(report)
        except FootError as exc:
            await msg.respond(orjson.dumps({"ok": False, "error": exc.message}))
            return
        await msg.respond(orjson.dumps({"ok": True}))

    async def _record_pull_status(self, report: WorkStatusReport) -> None:
        work = self.works.get(report.key)
        if work is None:
            return
        now = utc_now()
        if report.removed:
            if work.spec.deleting:
                await self._delete_work(report.key)
                self.render_queue.add(_split_work_key(report.key)[1])
            return
        if report.error:
            await self._put_work(
                report.key,
                lambda c: workstatus.unavailable(c, report.error or "", now=now) if c else None,
            )
            return
        stored = await self._put_work(
            report.key,
            lambda c: (
                workstatus.applied(c, report.manifests_hash, report.manifests, now=now)
                if c
                else None
            ),
        )
        if stored is not None and work_applied(stored):
            self.applies += 1
        self._aggregate_soon(_split_work_key(report.key)[1])

    # ---- aggregated status -----------------------------------------------------------------

    def _aggregate_soon(self, binding_key: str) -> None:
        """Aggregate a binding's works after a short delay, once for a burst of changes."""
        self.aggregate_queue.add_after(binding_key, self.config.aggregate_delay_seconds)

    async def _aggregate(self, binding_key: str) -> None:
        await self._synced()
        await self._uncover(binding_key)
        binding = self.bindings.get(binding_key)
        works = self._binding_view(binding_key)
        record_key = _template_key(binding) if binding is not None else None
        if record_key is None:
            record_key = next(
                (k for k, r in self._aggregates.items() if r.binding == binding_key), None
            )
        if record_key is None:
            return
        if binding is None:
            if not works:
                await self.aggregates_store.delete(record_key)
                self._aggregates.pop(record_key, None)
            return
        status = aggregate(
            binding_key,
            binding.spec.resource,
            frozenset(t.name for t in binding.spec.clusters),
            works,
            now=utc_now(),
            unreachable=self._unreachable,
        )
        unrendered = [
            ClusterWorkSummary(cluster=name, work=work_key(name, binding_key), errors=[error])
            for name, error in self._render_errors.get(binding_key, {}).items()
            if name not in works
        ]
        if unrendered:
            clusters = sorted([*status.clusters, *unrendered], key=lambda c: c.cluster)
            status = status.model_copy(update={"clusters": clusters, "applied": False})
        old = self._aggregates.get(record_key)
        if old is not None and old.model_copy(update={"observed_at": None}) == status.model_copy(
            update={"observed_at": None}
        ):
            return
        await self.aggregates_store.put(record_key, status.model_dump_json(by_alias=True).encode())
        self._aggregates[record_key] = status
        if binding.spec.graceful_evictions:
            # A target's copy may just have become ready: the evicted copies may go now.
            self.render_queue.add(binding_key)


def binding_keys(keys: Iterable[str]) -> set[str]:
    """Binding keys of work keys."""
    return {_split_work_key(key)[1] for key in keys}

"""The scheduler service: templates + propagation policies + clusters -> bindings.

The shell around the pure core (`foot_scheduler.core`, `foot_scheduler.binding`):

* it owns templates and policies, stored by the generic API ingest (validated
  there, nothing invalid is stored);
* it mirrors templates, policies, clusters and its own bindings (informers,
  parsed once per change) and listens to the registry's health events;
* one reconcile queue keyed by template: claim the template with the best
  policy, schedule it over one snapshot of the clusters, write its binding with
  optimistic concurrency (only when something changed), and come back at the
  decision's `reschedule_at` (a tolerated taint running out) or when a graceful
  eviction expires;
* every trigger the issue lists requeues exactly the templates it can affect:
  a template change that template; a policy change the templates it selects or
  holds; a cluster added, removed, relabelled, re-tainted or changing health
  every claimed template (those placed on that cluster first); a capacity
  change the templates divided by capacity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import ClassVar

import orjson
from opentelemetry import trace

from foot.bus import Entry, KvStore
from foot.bus.kv import Versioned
from foot.catalog import BINDINGS, POLICIES, TEMPLATES
from foot.errors import ConflictError, FootError
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import (
    ClusterPropagationPolicy,
    PropagationPolicy,
)
from foot.objects import KubeObject, utc_now
from foot.runtime.clusters import Heard
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot.telemetry import current_traceparent, extract_context, tracer
from foot_scheduler.binding import (
    REASON_DEPENDENT_OVERRIDES,
    REASON_NO_CLUSTER_FIT,
    REASON_NO_POLICY,
    REASON_SUCCESS,
    Decision,
    binding_name,
    next_binding,
    next_eviction_expiry,
    previous_placement,
    unschedulable_message,
)
from foot_scheduler.core import (
    ClusterSnapshot,
    ClusterView,
    schedule,
)
from foot_scheduler.core.snapshot import Readiness
from foot_scheduler.policies import (
    Identity,
    Policies,
    Prepared,
    identity,
    prepare,
    selected_kinds,
    templates_of_kinds,
)
from foot_scheduler.settings import SchedulerSettings

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5
BINDING_KIND = KINDS.lookup("work.foot.dev/v1alpha1", "ResourceBinding")
__all__ = ["SchedulerService", "SchedulerSettings"]


def _readiness(heard: Heard | None) -> Readiness | None:
    return None if heard is None else Readiness(heard.event.ready, heard.event.observed_at)


def _at_revision(binding: ResourceBinding, revision: int) -> ResourceBinding:
    return binding.model_copy(
        update={"metadata": binding.metadata.model_copy(update={"revision": revision})}
    )


def _encode_binding(binding: ResourceBinding) -> bytes:
    document = binding.to_dict()
    document["metadata"]["revision"] = 0  # the bucket's revision is the entry's own
    return orjson.dumps(document)


def _decode(data: bytes) -> KubeObject:
    document = orjson.loads(data)
    info = KINDS.lookup(document["apiVersion"], document["kind"])
    return info.model.model_validate(document, by_alias=True)


class SchedulerService(Service[SchedulerSettings]):
    name = "scheduler"
    settings_model: ClassVar[type[ServiceSettings]] = SchedulerSettings

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        # Parsed mirrors of the buckets (keys as in the buckets).
        self.templates: dict[str, KubeObject] = {}
        self._prepared: dict[str, Prepared] = {}
        """template key -> what was derived from its current version (see `prepare`)."""
        self.policies = Policies()
        self.propagation = self.policies.propagation
        self.overrides = self.policies.overrides
        self.clusters: dict[str, Cluster] = {}
        self.heard: dict[str, Heard] = {}
        """Per cluster: the last health event (see ClusterMirror)."""
        self._views: tuple[ClusterView, ...] | None = None
        self._memo: dict[object, object] = {}
        """Shared by the snapshots of the current views (see ClusterSnapshot.memo)."""
        self._fingerprints: dict[str, tuple[bytes, bytes]] = {}
        # Indexes kept by the reconciler.
        self._binding_key: dict[str, str] = {}
        """template key -> binding key (kept after the template is gone, until its binding is)."""
        self._written: dict[str, ResourceBinding] = {}
        """binding key -> what this process last wrote (newer than the informer, maybe)."""
        self._claimed_by: dict[str, Identity] = {}
        self._on_cluster: dict[str, set[str]] = {}
        self._placed_on: dict[str, frozenset[str]] = {}
        self._capacity_bound: set[str] = set()
        self._waiting_for_overrides: set[str] = set()
        self._trigger: dict[str, str] = {}
        """template key -> traceparent of what last asked for it to be scheduled."""
        self.decisions = 0
        self.writes = 0

    # ---- wiring -------------------------------------------------------------------------

    async def setup(self) -> None:
        self.queue = self.reconcile("schedule", self._reconcile)
        self.bindings_store: KvStore = await self.bus.kv(BINDINGS.name)
        policies = await self.mirror(POLICIES.name, _decode, "policy")
        policies.on_change(self._on_policy)
        members = await self.watch_clusters(self.clusters, self.heard)
        members.on_cluster(self._on_cluster_change)
        members.on_health(self._on_health)
        self._binding_informer = await self.watch(BINDINGS.name)
        self._binding_informer.listen(self._on_binding_entry)
        self._templates = await self.mirror(TEMPLATES.name, _decode, "template", self.templates)
        self._templates.on_change(self._on_template)
        self.supervisor.spawn("orphan-bindings", self._collect_orphans, restart=False)

    # ---- triggers -----------------------------------------------------------------------

    def _enqueue(self, keys: Iterable[str], traceparent: str | None = None) -> None:
        for key in keys:
            if traceparent:
                self._trigger[key] = traceparent
            self.queue.add(key)

    def _on_template(self, key: str, _: KubeObject | None, template: KubeObject | None) -> None:
        if template is None:
            self._prepared.pop(key, None)
            self.policies.forget(key)
            self._enqueue([key])
            return
        self._prepared[key] = prepare(template)
        self._binding_key[key] = BINDING_KIND.key(template.namespace, binding_name(template))
        self._enqueue([key], template.metadata.traceparent)

    def _on_policy(self, key: str, _: KubeObject | None, after: KubeObject | None) -> None:
        before = self.policies.change(key, after)
        if not self._templates.synced:
            return  # the initial replay schedules every template anyway
        trace_of = after.metadata.traceparent if after is not None else current_traceparent()
        affected: set[str] = set()
        for policy in (before, after):
            if policy is None:
                continue
            if isinstance(policy, PropagationPolicy | ClusterPropagationPolicy):
                holder = identity(policy)
                affected |= {k for k, held in self._claimed_by.items() if held == holder}
                affected |= templates_of_kinds(self.templates, selected_kinds(policy))
            else:
                affected |= self._waiting_for_overrides
        self._enqueue(sorted(affected), trace_of)

    def _on_cluster_change(self, name: str, _: Cluster | None, cluster: Cluster | None) -> None:
        if cluster is None:
            self._fingerprints.pop(name, None)
            self._views = None
            self._cluster_changed(name, capacity_only=False, only_placed=True)
            return
        old = self._fingerprints.get(name)
        fingerprint = self._fingerprint(cluster)
        self._fingerprints[name] = fingerprint
        if old == fingerprint:
            return  # a heartbeat: nothing scheduling looks at changed
        self._views = None
        capacity_only = old is not None and old[0] == fingerprint[0]
        self._cluster_changed(name, capacity_only=capacity_only)

    @staticmethod
    def _fingerprint(cluster: Cluster) -> tuple[bytes, bytes]:
        """(what placement depends on, capacity): heartbeats change neither."""
        spec = cluster.spec.model_dump(mode="json", exclude={"gateway_address"})
        ready = cluster.status.condition("Ready")
        placement = orjson.dumps(
            [
                cluster.metadata.labels,
                spec,
                [e.model_dump(mode="json") for e in cluster.status.api_enablements],
                ready.model_dump(mode="json") if ready else None,
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        summary = cluster.status.resource_summary
        capacity = orjson.dumps(summary.model_dump(mode="json") if summary else None)
        return placement, capacity

    def _cluster_changed(
        self,
        name: str,
        *,
        capacity_only: bool,
        traceparent: str | None = None,
        only_placed: bool = False,
    ) -> None:
        """Requeue what the change can affect: the templates placed on the cluster first (so
        failover is not stuck behind the rest), then the others that may now fit or spread
        differently (none when the cluster only became unusable: `only_placed`)."""
        if not self._templates.synced:
            return
        first = sorted(self._on_cluster.get(name, ()))
        rest: list[str] = []
        if not only_placed:
            rest = sorted(self._capacity_bound if capacity_only else self._claimed_by)
        self._enqueue([*first, *rest], traceparent)

    def _on_health(self, event: ClusterHealthEvent, traceparent: str | None) -> None:
        self._views = None
        self._cluster_changed(
            event.cluster,
            capacity_only=False,
            traceparent=traceparent,
            only_placed=event.ready != "True",
        )

    def _on_binding_entry(self, entry: Entry) -> None:
        if entry.deleted:
            self._written.pop(entry.key, None)

    # ---- the snapshot -------------------------------------------------------------------

    def snapshot(self) -> ClusterSnapshot:
        views = self._views
        if views is None:
            views = tuple(
                ClusterView.from_cluster(
                    cluster,
                    _readiness(self.heard.get(name)),
                    failover=self.settings.failover,
                )
                for name, cluster in sorted(self.clusters.items())
            )
            self._views = views
            self._memo = {}
        return ClusterSnapshot(views, utc_now(), self._memo)

    # ---- bindings -----------------------------------------------------------------------

    def _current_binding(self, key: str) -> ResourceBinding | None:
        """The newest binding we know of: the informer's, or our own last write if newer."""
        entry = self._binding_informer.get(key)
        written = self._written.get(key)
        if entry is None or entry.value is None:
            return written
        if written is not None and written.metadata.revision >= entry.revision:
            return written
        return _at_revision(ResourceBinding.from_json(entry.value), entry.revision)

    async def _fresh_binding(self, key: str) -> ResourceBinding | None:
        return self._remember(key, await self.bindings_store.read(key, ResourceBinding.from_json))

    def _remember(
        self, key: str, version: Versioned[ResourceBinding] | None
    ) -> ResourceBinding | None:
        """`version`, just read from the bucket, as what we know of the binding now."""
        if version is None:
            self._written.pop(key, None)
            return None
        binding = self._written[key] = _at_revision(version.value, version.revision)
        return binding

    # ---- the reconciler -----------------------------------------------------------------

    async def _reconcile(self, key: str) -> None:
        await self.synced()
        parent = self._trigger.pop(key, None)
        context = extract_context({"traceparent": parent}) if parent else None
        with tracer().start_as_current_span(
            "schedule", context=context, kind=trace.SpanKind.INTERNAL
        ) as span:
            span.set_attribute("foot.template", key)
            binding_key = self._binding_key.get(key)
            if key not in self.templates:
                if binding_key is not None:
                    await self._delete_binding(binding_key)
                    self._forget(key)
                return
            assert binding_key is not None  # noqa: S101 - set when the template was seen
            await self._schedule(key, binding_key)

    async def _schedule(self, key: str, binding_key: str) -> None:
        """Decide and write the template's binding (deciding again after a lost write)."""
        outcome: list[tuple[Decision, ResourceBinding | None, ResourceBinding | None]] = []
        """(decision, binding to write or None, binding it replaces) of the last try."""
        gone = False
        known = self._current_binding(binding_key)
        first = True

        def change(version: Versioned[ResourceBinding] | None) -> ResourceBinding | None:
            nonlocal first, gone
            current = known if first else self._remember(binding_key, version)
            first = False
            template = self.templates.get(key)
            if template is None:
                gone = True
                return None
            decision = self.decide(template, current, key)
            prepared = self._prepared.get(key)
            binding = next_binding(
                template,
                decision,
                current,
                now=utc_now(),
                traceparent=current_traceparent(),
                facts=prepared.facts if prepared and prepared.template is template else None,
            )
            self._index(key, decision, binding or current)
            outcome[:] = [(decision, binding, current)]
            return binding

        written = await self.bindings_store.update_with(
            binding_key,
            change,
            decode=ResourceBinding.from_json,
            encode=_encode_binding,
            known=Versioned(known, known.metadata.revision) if known is not None else None,
            attempts=WRITE_ATTEMPTS,
        )
        if gone:
            return
        decision, binding, current = outcome[0]
        if binding is not None and written is not None:
            self._written[binding_key] = _at_revision(binding, written.revision)
            self.writes += 1
        self._requeue_later(key, decision, binding or current)

    def decide(
        self, template: KubeObject, current: ResourceBinding | None, key: str | None = None
    ) -> Decision:
        """Claim and schedule one template over the current snapshot (no I/O). `key`: the
        template's bucket key, to reuse what was derived from this version of it."""
        self.decisions += 1
        prepared = self._prepared.get(key) if key is not None else None
        if prepared is None or prepared.template is not template:
            prepared = prepare(template)
        held = None
        if current is not None and current.spec.policy is not None:
            ref_held = current.spec.policy
            held = (ref_held.kind, ref_held.namespace, ref_held.name)
        claim = self.policies.claim(key, prepared, held)
        if claim.policy is None:
            return Decision(None, None, REASON_NO_POLICY, claim.reason)
        policy = claim.policy
        missing = self.policies.missing_overrides(policy)
        if missing:
            return Decision(
                policy,
                None,
                REASON_DEPENDENT_OVERRIDES,
                f"{claim.reason}; waiting for OverridePolicies {', '.join(missing)}",
            )
        result = schedule(
            prepared.workload,
            policy.spec,
            self.snapshot(),
            previous_placement(current),
            default_toleration_seconds=self.settings.failover_toleration_seconds,
        )
        if result.schedulable:
            return Decision(policy, result, REASON_SUCCESS, f"{claim.reason}; {result.reason}")
        message = f"{claim.reason}; unschedulable: {unschedulable_message(result)}"
        return Decision(policy, result, REASON_NO_CLUSTER_FIT, message)

    def _index(self, key: str, decision: Decision, binding: ResourceBinding | None) -> None:
        if decision.policy is not None:
            self._claimed_by[key] = identity(decision.policy)
        else:
            self._claimed_by.pop(key, None)
        if decision.reason == REASON_DEPENDENT_OVERRIDES:
            self._waiting_for_overrides.add(key)
        else:
            self._waiting_for_overrides.discard(key)
        result = decision.result
        if result is not None and result.division in {"DynamicWeighted", "Aggregated"}:
            self._capacity_bound.add(key)
        else:
            self._capacity_bound.discard(key)
        names = frozenset(t.name for t in binding.spec.clusters) if binding is not None else set()
        old = self._placed_on.get(key, frozenset())
        for name in old - names:
            self._on_cluster.get(name, set()).discard(key)
        for name in names - old:
            self._on_cluster.setdefault(name, set()).add(key)
        self._placed_on[key] = frozenset(names)

    def _forget(self, key: str) -> None:
        self._claimed_by.pop(key, None)
        self.policies.forget(key)
        self._capacity_bound.discard(key)
        self._waiting_for_overrides.discard(key)
        for name in self._placed_on.pop(key, frozenset()):
            self._on_cluster.get(name, set()).discard(key)
        self._binding_key.pop(key, None)
        self.queue.forget(key)

    def _requeue_later(self, key: str, decision: Decision, binding: ResourceBinding | None) -> None:
        """Come back when a tolerated taint runs out or a graceful eviction expires."""
        moments = []
        if decision.result is not None and decision.result.reschedule_at is not None:
            moments.append(decision.result.reschedule_at)
        if binding is not None and (expiry := next_eviction_expiry(binding)) is not None:
            moments.append(expiry)
        if not moments:
            return
        delay = max((min(moments) - utc_now()).total_seconds(), 0.0) + 0.01
        self.queue.wake_after(key, delay)

    async def _delete_binding(self, binding_key: str) -> None:
        current = self._current_binding(binding_key)
        if current is None:
            return
        try:
            await self.bindings_store.delete(binding_key, revision=current.metadata.revision)
        except ConflictError:
            await self._fresh_binding(binding_key)
            raise
        self._written.pop(binding_key, None)

    async def _collect_orphans(self) -> None:
        """After a restart: bindings whose template was deleted while we were away."""
        await self.synced()
        for entry in self._binding_informer.values():
            if entry.value is None:
                continue
            binding = ResourceBinding.from_json(entry.value)
            resource = binding.spec.resource
            try:
                info = KINDS.lookup(resource.api_version, resource.kind)
            except FootError:
                continue
            template_key = info.key(resource.namespace, resource.name)
            if template_key not in self.templates and template_key not in self._binding_key:
                self._binding_key[template_key] = entry.key
                self.queue.add(template_key)

"""What the dispatcher mirrors of the buckets it reads, and what a change there sets going.

The one place where bucket entries are decoded (the informers' `on_*_entry` callbacks, a
value that does not parse is logged and ignored) and where the cluster mirror lives, with
its health bookkeeping: which members the registry does not find Ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import orjson
from pydantic import ValidationError

from foot.bus import Entry, Informer
from foot.errors import FootError
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import AnyOverridePolicy, ClusterOverridePolicy, OverridePolicy
from foot.kinds.works import Work
from foot.objects import KubeObject
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.works import WorksCache, split_work_key

log = logging.getLogger(__name__)


def decode_object(data: bytes) -> KubeObject:
    document = orjson.loads(data)
    info = KINDS.lookup(document["apiVersion"], document["kind"])
    return info.model.model_validate(document, by_alias=True)


def template_key(binding: ResourceBinding) -> str | None:
    """Key of the template a binding propagates (None: not a kind FOOT knows)."""
    resource = binding.spec.resource
    try:
        info = KINDS.lookup(resource.api_version, resource.kind)
    except FootError:
        return None
    return info.key(resource.namespace, resource.name)


class Mirrors:
    """Bindings, templates, override policies and clusters, parsed once per change."""

    def __init__(self, works: WorksCache, queues: DispatchQueues) -> None:
        self._works = works
        self._queues = queues
        self.bindings: dict[str, ResourceBinding] = {}
        self.templates: dict[str, KubeObject] = {}
        self.overrides: dict[str, AnyOverridePolicy] = {}
        self.clusters: dict[str, Cluster] = {}
        self.unreachable: set[str] = set()
        """Clusters whose Ready condition is not True."""
        self._cluster_keys: dict[str, str] = {}
        self._cluster_fingerprints: dict[str, bytes] = {}
        self._binding_of_template: dict[str, str] = {}
        self._dependents: dict[str, set[str]] = {}
        """Template key of a dependency -> binding keys whose workload references it."""
        self._bindings_synced: Callable[[], bool] = lambda: False
        """Whether the bindings are all read (a cluster's change waits for them)."""

    def listen(
        self,
        *,
        works: Informer,
        clusters: Informer,
        policies: Informer,
        templates: Informer,
        bindings: Informer,
    ) -> None:
        """Follow the informers of the buckets mirrored here."""
        works.listen(self._on_work_entry)
        clusters.listen(self._on_cluster_entry)
        policies.listen(self._on_policy_entry)
        templates.listen(self._on_template_entry)
        bindings.listen(self._on_binding_entry)
        self._bindings_synced = bindings.synced.is_set

    def note_dependencies(self, binding_key: str, keys: Iterable[str]) -> None:
        """The binding's workload references these templates: render it when they change."""
        for key in keys:
            self._dependents.setdefault(key, set()).add(binding_key)

    # ---- informer callbacks --------------------------------------------------------------

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
            key = template_key(binding)
            if key is not None:
                self._binding_of_template[key] = entry.key
        self._queues.render.add(entry.key)

    def _on_template_entry(self, entry: Entry) -> None:
        if entry.deleted or entry.value is None:
            self.templates.pop(entry.key, None)
        else:
            try:
                self.templates[entry.key] = decode_object(entry.value)
            except (ValidationError, FootError, KeyError, orjson.JSONDecodeError) as exc:
                log.error("template %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
                return
        affected = set(self._dependents.get(entry.key, ()))
        if entry.key in self._binding_of_template:
            affected.add(self._binding_of_template[entry.key])
        for binding_key in sorted(affected):
            self._queues.render.add(binding_key)

    def _on_policy_entry(self, entry: Entry) -> None:
        before = self.overrides.pop(entry.key, None)
        after: KubeObject | None = None
        if not entry.deleted and entry.value is not None:
            try:
                after = decode_object(entry.value)
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
                self._queues.render.add(key)

    def _on_work_entry(self, entry: Entry) -> None:
        if not self._works.is_news(entry.key, entry.revision, deleted=entry.deleted):
            return
        if entry.deleted or entry.value is None:
            self._works.forget(entry.key)
            return
        try:
            work = Work.from_json(entry.value)
        except ValidationError as exc:
            log.error("work %s does not parse, ignored: %s", entry.key, exc)  # noqa: TRY400
            return
        self._works.remember(entry.key, work, entry.revision)

    # ---- the cluster mirror --------------------------------------------------------------

    def _on_cluster_entry(self, entry: Entry) -> None:
        if entry.deleted or entry.value is None:
            name = self._cluster_keys.pop(entry.key, None)
            if name is None:
                return
            self.clusters.pop(name, None)
            self._cluster_fingerprints.pop(name, None)
            self.unreachable.discard(name)
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
        if unreachable == (name in self.unreachable):
            return
        if unreachable:
            self.unreachable.add(name)
        else:
            self.unreachable.discard(name)
        for key in self._works.keys_of_cluster(name):
            self._queues.aggregate_soon(split_work_key(key)[1])

    def _cluster_changed(self, name: str) -> None:
        """Labels/zone feed override targets, syncMode the delivery, existence everything."""
        if not self._bindings_synced():
            return
        for key in sorted(self._works.keys_of_cluster(name)):
            self._queues.render.add(split_work_key(key)[1])
            self._queues.lane(name).add(key)
        for key, binding in self.bindings.items():
            if any(t.name == name for t in binding.spec.clusters):
                self._queues.render.add(key)

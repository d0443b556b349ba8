"""What the dispatcher mirrors of the buckets it reads, and what a change there sets going.

Bindings, templates and override policies are typed mirrors (`foot.runtime.mirror.Mirror`:
each entry decoded once, a bad one logged and skipped there), the member clusters a
`ClusterMirror`; this module keeps what the dispatcher derives from them: which templates
a binding depends on, and which members the registry does not find Ready (the Ready
condition the cluster object records).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import orjson

from foot.errors import FootError
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import AnyOverridePolicy, ClusterOverridePolicy, OverridePolicy
from foot.objects import KubeObject
from foot.runtime.clusters import ClusterMirror
from foot.runtime.mirror import Mirror
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
    """Bindings, templates, override policies and clusters, parsed once per change.

    The dicts are the mirrors' own (given to them as their `items`): bindings, templates
    and policies by bucket key, clusters by name.
    """

    def __init__(self, works: WorksCache, queues: DispatchQueues) -> None:
        self._works = works
        self._queues = queues
        self.bindings: dict[str, ResourceBinding] = {}
        self.templates: dict[str, KubeObject] = {}
        self.policies: dict[str, KubeObject] = {}
        """Every policy of the bucket (the override policies are also in `overrides`)."""
        self.overrides: dict[str, AnyOverridePolicy] = {}
        self.clusters: dict[str, Cluster] = {}
        self.unreachable: set[str] = set()
        """Clusters whose Ready condition is not True."""
        self._cluster_fingerprints: dict[str, bytes] = {}
        self._binding_of_template: dict[str, str] = {}
        self._dependents: dict[str, set[str]] = {}
        """Template key of a dependency -> binding keys whose workload references it."""
        self._bindings_synced: Callable[[], bool] = lambda: False
        """Whether the bindings are all read (a cluster's change waits for them)."""

    def listen(
        self,
        *,
        clusters: ClusterMirror,
        policies: Mirror[KubeObject],
        templates: Mirror[KubeObject],
        bindings: Mirror[ResourceBinding],
    ) -> None:
        """Follow the mirrors (made with this object's dicts as their items)."""
        clusters.on_cluster(self._on_cluster)
        policies.on_change(self._on_policy)
        templates.on_change(self._on_template)
        bindings.on_change(self._on_binding)
        self._bindings_synced = lambda: bindings.synced

    def note_dependencies(self, binding_key: str, keys: Iterable[str]) -> None:
        """The binding's workload references these templates: render it when they change."""
        for key in keys:
            self._dependents.setdefault(key, set()).add(binding_key)

    # ---- what a change sets going --------------------------------------------------------

    def _on_binding(
        self, key: str, _before: ResourceBinding | None, binding: ResourceBinding | None
    ) -> None:
        if binding is not None:
            template = template_key(binding)
            if template is not None:
                self._binding_of_template[template] = key
        self._queues.render.add(key)

    def _on_template(self, key: str, _before: KubeObject | None, _after: KubeObject | None) -> None:
        affected = set(self._dependents.get(key, ()))
        if key in self._binding_of_template:
            affected.add(self._binding_of_template[key])
        for binding_key in sorted(affected):
            self._queues.render.add(binding_key)

    def _on_policy(self, key: str, _before: KubeObject | None, after: KubeObject | None) -> None:
        before = self.overrides.pop(key, None)
        override: AnyOverridePolicy | None = None
        if isinstance(after, OverridePolicy | ClusterOverridePolicy):
            override = self.overrides[key] = after
        namespaces: set[str | None] = set()
        everywhere = False
        for policy in (before, override):
            if isinstance(policy, ClusterOverridePolicy):
                everywhere = True
            elif isinstance(policy, OverridePolicy):
                namespaces.add(policy.namespace)
        if not everywhere and not namespaces:
            return
        for binding_key, binding in self.bindings.items():
            if everywhere or binding.namespace in namespaces:
                self._queues.render.add(binding_key)

    # ---- the member clusters -------------------------------------------------------------

    def _on_cluster(self, name: str, _before: Cluster | None, cluster: Cluster | None) -> None:
        if cluster is None:
            self._cluster_fingerprints.pop(name, None)
            self.unreachable.discard(name)
            self._cluster_changed(name)
            return
        self._note_reachability(cluster)
        fingerprint = orjson.dumps(
            [cluster.metadata.labels, cluster.spec.model_dump(mode="json")],
            option=orjson.OPT_SORT_KEYS,
        )
        if self._cluster_fingerprints.get(name) == fingerprint:
            return  # status only (heartbeats, probes): nothing dispatching depends on
        self._cluster_fingerprints[name] = fingerprint
        self._cluster_changed(name)

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

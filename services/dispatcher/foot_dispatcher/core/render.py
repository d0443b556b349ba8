"""Rendering: binding + template (+ dependencies) + override policies -> one work per cluster.

Pure and deterministic: the same inputs always give the same manifests and hash, so a
restarted dispatcher recognises what it already applied and never applies different content
for the same decision.

Per cluster, each manifest (the dependencies first, then the workload) is built as:

1. the template's object: its own fields, metadata reduced to name, namespace, labels and
   annotations (FOOT's bookkeeping and status are dropped);
2. the workload's replica field set to the cluster's share (Deployment, StatefulSet,
   ReplicaSet: `spec.replicas`; Job: `spec.parallelism`);
3. the override policies that select the manifest, in this order: ClusterOverridePolicies
   before OverridePolicies; inside each, the less specific selector first (match all, then
   labelSelector, then name), then by name; so the most specific policy has the last word.
   Each policy's rules in order; a rule applies when its targetCluster selects the cluster;
   inside a rule the overriders run in `foot_dispatcher.core.overriders`' order;
4. FOOT's ownership marks (label `foot.dev/managed-by: foot`, annotation `foot.dev/binding`),
   last, so no override can remove them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from foot.kinds import KINDS
from foot.kinds.bindings import ObjectReference, ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import (
    AnyOverridePolicy,
    ClusterOverridePolicy,
    ResourceSelector,
    selected_cluster_fields,
)
from foot.kinds.works import Work, WorkSpec
from foot.manifests import ownership_marks
from foot.objects import DNS1123_SUBDOMAIN_MAX, KubeObject, ObjectMeta
from foot_dispatcher.core.deps import DEPENDENCY_API_VERSION, dependencies
from foot_dispatcher.core.overriders import Manifest, apply_overriders
from foot_dispatcher.core.pointer import OverrideError

WORK_API_VERSION = "work.foot.dev/v1alpha1"
BINDING_KIND = KINDS.lookup(WORK_API_VERSION, "ResourceBinding")

REPLICA_FIELDS: dict[tuple[str, str], str] = {
    ("apps/v1", "Deployment"): "replicas",
    ("apps/v1", "StatefulSet"): "replicas",
    ("apps/v1", "ReplicaSet"): "replicas",
    ("batch/v1", "Job"): "parallelism",
}
"""Where a workload's replica count lives (the same kinds the scheduler divides)."""


def binding_key(binding: ResourceBinding) -> str:
    return BINDING_KIND.key(binding.namespace, binding.name)


def work_key(cluster: str, binding_key_: str) -> str:
    """Bucket key of a work: `<cluster>.<binding key>` (so `<cluster>.>` is one cluster's)."""
    return f"{cluster}.{binding_key_}"


def work_name(binding_name: str, cluster: str) -> str:
    name = f"{binding_name}.{cluster}"
    if len(name) <= DNS1123_SUBDOMAIN_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: DNS1123_SUBDOMAIN_MAX - 11].rstrip('.-')}-{digest}"


def manifests_hash(manifests: Sequence[Manifest]) -> str:
    return hashlib.sha256(orjson.dumps(list(manifests), option=orjson.OPT_SORT_KEYS)).hexdigest()[
        :32
    ]


def template_manifest(template: KubeObject) -> Manifest:
    """The object a template describes, as a member cluster should receive it."""
    document = template.to_dict()
    document.pop("status", None)
    metadata: dict[str, Any] = {"name": template.name}
    if template.namespace is not None:
        metadata["namespace"] = template.namespace
    if template.metadata.labels:
        metadata["labels"] = dict(template.metadata.labels)
    if template.metadata.annotations:
        metadata["annotations"] = dict(template.metadata.annotations)
    document["metadata"] = metadata
    return document


def set_replicas(manifest: Manifest, replicas: int | None) -> Manifest:
    replica_field = REPLICA_FIELDS.get((str(manifest.get("apiVersion")), str(manifest.get("kind"))))
    if replica_field is None or replicas is None:
        return manifest
    spec = dict(manifest.get("spec") or {})
    spec[replica_field] = replicas
    return {**manifest, "spec": spec}


# --- override policy selection ------------------------------------------------------------


def _selector_priority(selector: ResourceSelector, manifest: Manifest) -> int:
    """0: no match; 1: matches by kind; 2: by labelSelector; 3: by name (Karmada's implicit
    priority of a resource selector)."""
    metadata = manifest.get("metadata") or {}
    if selector.api_version != manifest.get("apiVersion") or selector.kind != manifest.get("kind"):
        return 0
    if selector.namespace and selector.namespace != metadata.get("namespace"):
        return 0
    if selector.name:
        return 3 if selector.name == metadata.get("name") else 0
    if selector.label_selector is not None:
        return 2 if selector.label_selector.matches(metadata.get("labels") or {}) else 0
    return 1


def override_priority(policy: AnyOverridePolicy, manifest: Manifest) -> int:
    """How specifically `policy` selects `manifest` (0: not at all)."""
    if not isinstance(policy, ClusterOverridePolicy) and policy.namespace != (
        manifest.get("metadata") or {}
    ).get("namespace"):
        return 0
    if not policy.spec.resource_selectors:
        return 1
    return max(_selector_priority(s, manifest) for s in policy.spec.resource_selectors)


def ordered_policies(
    policies: Sequence[AnyOverridePolicy], manifest: Manifest
) -> list[AnyOverridePolicy]:
    """The policies selecting `manifest`, in the order they are applied."""
    ranked = []
    for policy in policies:
        priority = override_priority(policy, manifest)
        if priority:
            scope = 0 if isinstance(policy, ClusterOverridePolicy) else 1
            ranked.append(((scope, priority, policy.name, policy.namespace or ""), policy))
    ranked.sort(key=lambda item: item[0])
    return [policy for _, policy in ranked]


def _cluster_selected(policy_rule_target: Any, name: str, cluster: Cluster | None) -> bool:
    if policy_rule_target is None:
        return True
    labels = cluster.metadata.labels if cluster is not None else {}
    fields = (
        selected_cluster_fields(cluster.spec.provider, cluster.spec.region, cluster.spec.zone_names)
        if cluster is not None
        else selected_cluster_fields(None, None, ())
    )
    return bool(policy_rule_target.matches(name, labels, fields))


def override_manifest(
    manifest: Manifest,
    policies: Sequence[AnyOverridePolicy],
    cluster_name: str,
    cluster: Cluster | None,
) -> tuple[Manifest, tuple[str, ...]]:
    """`manifest` with every selected policy's matching rules applied; and the policies used
    (`Kind/namespace/name`), for the work's record."""
    used = []
    for policy in ordered_policies(policies, manifest):
        applied = False
        for index, rule in enumerate(policy.spec.rules):
            if not _cluster_selected(rule.target_cluster, cluster_name, cluster):
                continue
            try:
                manifest = apply_overriders(manifest, rule.overriders)
            except OverrideError as exc:
                where = f"{policy.kind} {policy.namespace or ''}/{policy.name} rule {index}"
                raise OverrideError(f"{where}: {exc.message}") from None
            applied = True
        if applied:
            used.append(f"{policy.kind}/{policy.namespace or ''}/{policy.name}".replace("//", "/"))
    return manifest, tuple(used)


# --- the whole binding ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedWork:
    cluster: str
    manifests: tuple[Manifest, ...]
    manifests_hash: str
    overrides: tuple[str, ...] = ()
    """Override policies that changed something, for the record."""


@dataclass(frozen=True, slots=True)
class RenderResult:
    works: Mapping[str, RenderedWork] = field(default_factory=dict)
    """Per target cluster."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Per target cluster that could not be rendered: why (an override that does not fit)."""
    missing_dependencies: tuple[str, ...] = ()
    """Dependencies the workload references that are not templates (not propagated)."""


def dependency_keys(template: KubeObject) -> list[tuple[str, str]]:
    """Template bucket keys and `Kind/name` of the dependencies a template references."""
    keys = []
    for kind, name in dependencies(template_manifest(template)):
        info = KINDS.lookup(DEPENDENCY_API_VERSION, kind)
        keys.append((info.key(template.namespace, name), f"{kind}/{name}"))
    return keys


def render(
    binding: ResourceBinding,
    template: KubeObject,
    dependency_templates: Mapping[str, KubeObject],
    policies: Sequence[AnyOverridePolicy],
    clusters: Mapping[str, Cluster],
) -> RenderResult:
    """One work per target cluster of `binding` (the clusters it is leaving are not rendered:
    their works stay as they were until removed).

    `dependency_templates` holds the templates found for `dependency_keys(template)` (by key);
    they are used only when the binding says propagateDeps.
    """
    base = template_manifest(template)
    deps: list[Manifest] = []
    missing: list[str] = []
    if binding.spec.propagate_deps:
        for key, label in dependency_keys(template):
            found = dependency_templates.get(key)
            if found is None:
                missing.append(label)
            else:
                deps.append(template_manifest(found))
    marks = ownership_marks(binding.namespace, binding.name)
    works: dict[str, RenderedWork] = {}
    errors: dict[str, str] = {}
    for target in binding.spec.clusters:
        cluster = clusters.get(target.name)
        manifests = []
        used: list[str] = []
        try:
            for manifest in [*deps, set_replicas(base, target.replicas)]:
                overridden, policies_used = override_manifest(
                    manifest, policies, target.name, cluster
                )
                manifests.append(marks(overridden))
                used += [p for p in policies_used if p not in used]
        except OverrideError as exc:
            errors[target.name] = exc.message
            continue
        works[target.name] = RenderedWork(
            cluster=target.name,
            manifests=tuple(manifests),
            manifests_hash=manifests_hash(manifests),
            overrides=tuple(used),
        )
    return RenderResult(works=works, errors=errors, missing_dependencies=tuple(missing))


def binding_reference(binding: ResourceBinding) -> ObjectReference:
    return ObjectReference(
        api_version=binding.api_version,
        kind=binding.kind,
        namespace=binding.namespace,
        name=binding.name,
        uid=binding.metadata.uid,
        generation=binding.metadata.generation,
        hash=binding.spec.resource.hash,
    )


def desired_work(
    binding: ResourceBinding,
    rendered: RenderedWork,
    existing: Work | None,
    *,
    traceparent: str | None,
) -> Work | None:
    """The work to store for one cluster, or None when `existing` already says it."""
    spec = WorkSpec(
        cluster=rendered.cluster,
        binding=binding_reference(binding).model_copy(update={"generation": None, "uid": None}),
        manifests=list(rendered.manifests),
        manifests_hash=rendered.manifests_hash,
        conflict_resolution=binding.spec.conflict_resolution,
        suspended=rendered.cluster in binding.spec.suspended_clusters,
        deleting=False,
        preserve_on_deletion=binding.spec.preserve_resources_on_deletion,
    )
    if existing is not None and existing.spec == spec:
        return None
    if existing is None:
        metadata = ObjectMeta(
            name=work_name(binding.name, rendered.cluster),
            namespace=binding.namespace or "default",
            labels={},
            generation=1,
            traceparent=traceparent,
        )
        return Work(api_version="work.foot.dev/v1alpha1", kind="Work", metadata=metadata, spec=spec)
    metadata = existing.metadata.model_copy(
        update={"generation": existing.metadata.generation + 1, "traceparent": traceparent}
    )
    return existing.model_copy(update={"metadata": metadata, "spec": spec})

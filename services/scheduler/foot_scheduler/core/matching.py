"""Which policy claims a template, which overrides apply to it, and in what order to schedule.

Claiming follows Karmada's resource detector:

* a PropagationPolicy only sees templates in its own namespace, and any
  PropagationPolicy that matches beats every ClusterPropagationPolicy (the
  detector looks at namespaced policies first);
* within the same scope: the more specific match first (a selector by name
  beats one by labelSelector, which beats one by kind alone), then the higher
  explicit `priority`, then the policy name in alphabetical order - the order
  FOOT's issue and the reference page give ("the most specific policy wins,
  then higher priority, then name order"), so `priority` decides between
  equally specific policies only;
* a claimed template stays with its policy unless a policy that ranks strictly
  higher in that same order has `preemption: Always`: a PropagationPolicy may
  then take it from any ClusterPropagationPolicy, otherwise a policy of the
  same scope takes it when it is more specific, or equally specific with a
  higher priority (the name order alone never preempts; a
  ClusterPropagationPolicy never takes a template from a PropagationPolicy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType

from foot.kinds.policies import (
    AnyOverridePolicy,
    AnyPropagationPolicy,
    ClusterOverridePolicy,
    ClusterPropagationPolicy,
    OverridePolicy,
    PropagationPolicy,
    ResourceSelector,
)
from foot.objects import KubeObject
from foot_scheduler.core.snapshot import ClusterSnapshot
from foot_scheduler.core.workload import Workload


class Specificity(IntEnum):
    """How precisely a selector matched (Karmada's implicit priority)."""

    NONE = 0
    ALL = 1
    """An override policy without resource selectors: every template in scope."""
    KIND = 2
    LABEL_SELECTOR = 3
    NAME = 4


@dataclass(frozen=True, slots=True)
class TemplateRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.api_version} {self.kind} {where}{self.name}"


def template_ref(template: KubeObject | Workload) -> TemplateRef:
    if isinstance(template, Workload):
        labels = template.labels
    else:
        labels = MappingProxyType(dict(template.metadata.labels))
    return TemplateRef(
        template.api_version, template.kind, template.namespace, template.name, labels
    )


def selector_specificity(
    selector: ResourceSelector, template: TemplateRef, policy_namespace: str | None
) -> Specificity:
    if (
        selector.api_version != template.api_version
        or selector.kind != template.kind
        or not _namespace_in_scope(selector, template, policy_namespace)
    ):
        return Specificity.NONE
    if selector.name:
        return Specificity.NAME if selector.name == template.name else Specificity.NONE
    if selector.label_selector is not None:
        if selector.label_selector.matches(template.labels):
            return Specificity.LABEL_SELECTOR
        return Specificity.NONE
    return Specificity.KIND


def _namespace_in_scope(
    selector: ResourceSelector, template: TemplateRef, policy_namespace: str | None
) -> bool:
    if policy_namespace is not None and template.namespace != policy_namespace:
        return False  # a namespaced policy sees its own namespace only, whatever it selects
    return not selector.namespace or selector.namespace == template.namespace


def _policy_namespace(policy: KubeObject) -> str | None:
    if isinstance(policy, PropagationPolicy | OverridePolicy):
        return policy.namespace or "default"
    return None


def policy_specificity(
    selectors: Sequence[ResourceSelector],
    template: TemplateRef,
    policy_namespace: str | None,
    empty_matches_all: bool = False,
) -> Specificity:
    if not selectors:
        if not empty_matches_all:
            return Specificity.NONE
        if policy_namespace is not None and template.namespace != policy_namespace:
            return Specificity.NONE
        return Specificity.ALL
    return max(selector_specificity(s, template, policy_namespace) for s in selectors)


@dataclass(frozen=True, slots=True)
class Claim:
    policy: AnyPropagationPolicy | None
    """The winning policy; None: the template is unplaced."""
    reason: str
    specificity: Specificity = Specificity.NONE

    @property
    def placed(self) -> bool:
        return self.policy is not None


def _is_namespaced(policy: AnyPropagationPolicy) -> bool:
    return isinstance(policy, PropagationPolicy)


def _rank(policy: AnyPropagationPolicy, specificity: Specificity) -> tuple[int, int, int, str]:
    """Sort key, best first: scope (namespaced first), specificity, priority, name."""
    return (0 if _is_namespaced(policy) else 1, -specificity, -policy.spec.priority, policy.name)


def _identity(policy: AnyPropagationPolicy) -> tuple[str, str | None, str]:
    return (policy.kind, policy.namespace if _is_namespaced(policy) else None, policy.name)


def claim_template(
    template: TemplateRef,
    policies: Iterable[AnyPropagationPolicy],
    current: tuple[str, str | None, str] | None = None,
) -> Claim:
    """The policy that places `template`. `current` is (kind, namespace, name) of the policy
    that claims it now, if any."""
    candidates = []
    for policy in policies:
        if isinstance(policy, ClusterPropagationPolicy) or template.namespace is not None:
            specificity = policy_specificity(
                policy.spec.resource_selectors, template, _policy_namespace(policy)
            )
            if specificity:
                candidates.append((_rank(policy, specificity), policy, specificity))
    if not candidates:
        scope = (
            f"no PropagationPolicy in namespace {template.namespace} and no "
            "ClusterPropagationPolicy"
            if template.namespace
            else "no ClusterPropagationPolicy"
        )
        return Claim(None, f"unplaced: {scope} selects {template.describe()}")
    candidates.sort(key=lambda item: item[0])
    _, best, best_specificity = candidates[0]
    holder = next((c for c in candidates if _identity(c[1]) == current), None)
    if holder is not None and holder[1] is not best:
        _, held_by, held_specificity = holder
        if not _preempts(candidates[0][0], holder[0], best):
            return Claim(
                held_by,
                f"stays with {held_by.kind} {held_by.name}: {best.kind} {best.name} "
                "does not preempt (preemption Never, or not more specific or higher priority)",
                held_specificity,
            )
        return Claim(
            best,
            f"preempted from {held_by.kind} {held_by.name} by {best.kind} {best.name}",
            best_specificity,
        )
    return Claim(
        best,
        f"claimed by {best.kind} {best.name} (priority {best.spec.priority}, "
        f"match by {best_specificity.name.lower().replace('_', ' ')})",
        best_specificity,
    )


def _preempts(
    challenger_rank: tuple[int, int, int, str],
    holder_rank: tuple[int, int, int, str],
    challenger: AnyPropagationPolicy,
) -> bool:
    """Whether `challenger` (the best-ranked candidate) takes the template from its holder:
    only with `preemption: Always` and a strictly better (scope, specificity, priority) - the
    claim order without the name tie-break."""
    if challenger.spec.preemption != "Always":
        return False
    return challenger_rank[:3] < holder_rank[:3]


def overrides_for(
    template: TemplateRef, policies: Iterable[AnyOverridePolicy]
) -> tuple[AnyOverridePolicy, ...]:
    """The override policies that apply, in the order to apply them: ClusterOverridePolicies
    before OverridePolicies, and within each the less specific first (so the more specific
    one's changes win), then by name (Karmada's order)."""
    matched = []
    for policy in policies:
        namespace = _policy_namespace(policy)
        if namespace is not None and template.namespace is None:
            continue
        specificity = policy_specificity(
            policy.spec.resource_selectors, template, namespace, empty_matches_all=True
        )
        if specificity:
            scope = 0 if isinstance(policy, ClusterOverridePolicy) else 1
            matched.append(((scope, int(specificity), policy.name), policy))
    matched.sort(key=lambda item: item[0])
    return tuple(policy for _, policy in matched)


@dataclass(frozen=True, slots=True)
class OverrideStep:
    policy_kind: str
    policy_name: str
    rule_index: int


def override_plan(
    template: TemplateRef,
    clusters: Sequence[str],
    policies: Iterable[AnyOverridePolicy],
    snapshot: ClusterSnapshot,
) -> dict[str, tuple[OverrideStep, ...]]:
    """Per target cluster, the override rules to apply in order (the dispatcher applies them)."""
    ordered = overrides_for(template, policies)
    views = {cluster.name: cluster for cluster in snapshot.clusters}
    plan: dict[str, tuple[OverrideStep, ...]] = {}
    for name in sorted(clusters):
        view = views.get(name)
        steps = []
        for policy in ordered:
            for index, rule in enumerate(policy.spec.rules):
                target = rule.target_cluster
                if target is None or (
                    view is not None and target.matches(name, view.labels, view.fields)
                ):
                    steps.append(OverrideStep(policy.kind, policy.name, index))
        plan[name] = tuple(steps)
    return plan


def order_for_scheduling(workloads: Iterable[Workload]) -> list[Workload]:
    """A batch in scheduling order: higher priority first, then a stable key."""
    return sorted(workloads, key=lambda w: (-w.priority, w.key))


def schedule_priority(
    schedule_priority_class: str | None, priority_classes: Mapping[str, int]
) -> int:
    """A workload's scheduling priority from its policy's schedulePriority class (0 if unknown)."""
    if schedule_priority_class is None:
        return 0
    return priority_classes.get(schedule_priority_class, 0)

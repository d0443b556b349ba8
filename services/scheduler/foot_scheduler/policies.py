"""The scheduler's view of the policies: propagation and override policies by bucket key,
and each template's claim, remembered until the template, its holder or any propagation
policy changes (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from foot.kinds.policies import (
    AnyOverridePolicy,
    AnyPropagationPolicy,
    ClusterOverridePolicy,
    ClusterPropagationPolicy,
    OverridePolicy,
    PropagationPolicy,
)
from foot.objects import KubeObject
from foot_scheduler.binding import TemplateFacts, template_facts
from foot_scheduler.core import Workload, claim_template, template_ref, workload_from_template
from foot_scheduler.core.matching import Claim, TemplateRef

Identity = tuple[str, str | None, str]
"""(kind, namespace, name) of a propagation policy, as `claim_template` takes it."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What scheduling and the binding take from one version of a template, derived once."""

    template: KubeObject
    ref: TemplateRef
    workload: Workload
    facts: TemplateFacts


def prepare(template: KubeObject) -> Prepared:
    document = template.to_dict()
    return Prepared(
        template,
        template_ref(template),
        workload_from_template(template, document=document),
        template_facts(template, document),
    )


def is_propagation(obj: KubeObject | None) -> bool:
    return isinstance(obj, PropagationPolicy | ClusterPropagationPolicy)


def identity(policy: AnyPropagationPolicy) -> Identity:
    namespace = policy.namespace if isinstance(policy, PropagationPolicy) else None
    return (policy.kind, namespace, policy.name)


def selected_kinds(policy: AnyPropagationPolicy) -> set[tuple[str, str]]:
    return {(s.api_version, s.kind) for s in policy.spec.resource_selectors}


class Policies:
    """The policies bucket as the scheduler needs it."""

    def __init__(self) -> None:
        self.propagation: dict[str, AnyPropagationPolicy] = {}
        self.overrides: dict[str, AnyOverridePolicy] = {}
        self.version = 0
        """Bumped on every propagation policy change: remembered claims older than it are
        void."""
        self._by_kind: dict[tuple[str, str], list[AnyPropagationPolicy]] = {}
        """(apiVersion, kind) -> the propagation policies selecting it, at `_by_kind_version`."""
        self._by_kind_version = -1
        self._claims: dict[str, tuple[KubeObject, int, Identity | None, Claim]] = {}
        """template key -> (template, policy version, holder, claim) of its last claim."""

    def change(self, key: str, after: KubeObject | None) -> KubeObject | None:
        """Hold `after` (None: deleted) under `key`; returns the policy it replaces."""
        before: KubeObject | None = self.propagation.get(key) or self.overrides.get(key)
        if key in self.propagation or is_propagation(after):
            self.version += 1
        self.propagation.pop(key, None)
        self.overrides.pop(key, None)
        if isinstance(after, PropagationPolicy | ClusterPropagationPolicy):
            self.propagation[key] = after
        elif isinstance(after, OverridePolicy | ClusterOverridePolicy):
            self.overrides[key] = after
        return before

    def forget(self, template_key: str) -> None:
        self._claims.pop(template_key, None)

    def claim(self, key: str | None, prepared: Prepared, held: Identity | None) -> Claim:
        """`claim_template` over the policies selecting the template's kind, remembered until
        the template, its holder or any propagation policy changes."""
        template = prepared.template
        remembered = self._claims.get(key) if key is not None else None
        if (
            remembered is not None
            and remembered[0] is template
            and remembered[1] == self.version
            and (
                remembered[2] == held
                # Claimed with no holder, and now held by that very winner: the same answer.
                or (
                    remembered[2] is None
                    and remembered[3].policy is not None
                    and identity(remembered[3].policy) == held
                )
            )
        ):
            return remembered[3]
        if self._by_kind_version != self.version:
            by_kind: dict[tuple[str, str], list[AnyPropagationPolicy]] = {}
            for policy in self.propagation.values():
                for pair in selected_kinds(policy):
                    by_kind.setdefault(pair, []).append(policy)
            self._by_kind = by_kind
            self._by_kind_version = self.version
        ref = prepared.ref
        claim = claim_template(ref, self._by_kind.get((ref.api_version, ref.kind), ()), held)
        if key is not None:
            self._claims[key] = (template, self.version, held, claim)
        return claim

    def missing_overrides(self, policy: AnyPropagationPolicy) -> list[str]:
        if not policy.spec.dependent_overrides:
            return []
        present = {
            (o.namespace, o.name) for o in self.overrides.values() if o.kind == "OverridePolicy"
        }
        return sorted(
            name
            for name in policy.spec.dependent_overrides
            if (policy.namespace, name) not in present
        )


def templates_of_kinds(
    templates: dict[str, KubeObject], kinds: Iterable[tuple[str, str]]
) -> set[str]:
    wanted = set(kinds)
    return {key for key, t in templates.items() if (t.api_version, t.kind) in wanted}

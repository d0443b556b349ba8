"""The kind registry: which model validates a kind, which service owns it, where it is stored.

Every service registers nothing itself: the registry is built here, in the
common library, so any process (the CLI, the API front door, any service) can
validate any kind before it is sent to its owner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from foot.errors import FieldProblem, InvalidObjectError, NotFoundError
from foot.objects import DNS1123_SUBDOMAIN_FRAGMENT, KubeObject, problems_from_validation

_API_VERSION = re.compile(
    rf"^({DNS1123_SUBDOMAIN_FRAGMENT}/)?v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$"
)
"""Kubernetes' apiVersion: an optional API group and a version (v1, v1beta2, v2alpha1)."""

DocumentCheck = Callable[[Mapping[str, Any]], list[FieldProblem]]
"""Every problem of a raw document, as field paths and reasons (empty: none)."""


@dataclass(frozen=True, slots=True)
class KindInfo:
    """How FOOT handles one (apiVersion, kind)."""

    api_version: str
    kind: str
    model: type[KubeObject]
    owner: str
    """Service that validates, stores and alone writes objects of this kind."""
    bucket: str
    """JetStream key-value bucket holding the objects."""
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    sensitive: bool = False
    """Objects carry secrets (a Secret's data): stored sealed, never in plain text."""
    check: DocumentCheck | None = None
    """Checks of the raw document beyond the model (a template's Kubernetes schema); every
    problem it finds is reported together with the model's."""
    stored_under: str | None = None
    """For a kind stored once per member cluster under the key of the object it comes from
    (a work: `<cluster>.<its binding's key>`), that object's key prefix. Its objects are found
    by listing: their own name is not in their key."""
    sealed_when_secret: bool = False
    """Objects holding a Secret are stored sealed (a work carrying one), so only the owner,
    holding the sealing key, reads them all."""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def key_prefix(self) -> str:
        """Bucket key prefix shared by every object of this kind (dots separate tokens)."""
        return f"{self.group or 'core'}.{self.kind}"

    def key(self, namespace: str | None, name: str) -> str:
        return f"{self.key_prefix}.{namespace or '_'}.{name}"

    def pattern(self, namespace: str | None = None) -> str:
        """Bucket keys of every object of this kind (in `namespace`), as a NATS pattern."""
        prefix = self.key_prefix if self.stored_under is None else f"*.{self.stored_under}"
        return f"{prefix}.{namespace}.>" if namespace else f"{prefix}.>"

    def names(self) -> Iterator[str]:
        yield self.kind.lower()
        yield self.plural
        yield from self.short_names

    def group_spellings(self) -> set[str]:
        """How a person names this kind's group after the kind: `apps`, `v1.apps`, `core`."""
        version = self.api_version.rpartition("/")[2].lower()
        group = self.group.lower() or "core"
        return {group, f"{version}.{group}"} | ({version} if not self.group else set())

    @property
    def qualified(self) -> str:
        """`plural.group`, the spelling that names this kind in one group only."""
        return f"{self.plural}.{self.group or 'core'}"

    def same_kind(self, other: KindInfo) -> bool:
        """One kind accepted in two groups (Karmada's policies beside FOOT's own)."""
        return self.kind == other.kind and self.model is other.model


@dataclass(slots=True)
class KindRegistry:
    """Maps (apiVersion, kind) to KindInfo, and CLI spellings (`deploy`, `deployments`) too."""

    _by_type: dict[tuple[str, str], KindInfo] = field(default_factory=dict)
    fallback: Callable[[str, str], KindInfo | None] | None = None
    """Handles an (apiVersion, kind) nobody registered (custom resources as templates)."""

    def register(self, info: KindInfo) -> None:
        self._by_type[(info.api_version, info.kind)] = info

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(self._by_type.values())

    def owned_by(self, owner: str) -> list[KindInfo]:
        return [info for info in self if info.owner == owner]

    def lookup(self, api_version: str, kind: str) -> KindInfo:
        try:
            return self._by_type[(api_version, kind)]
        except KeyError:
            generic = self.fallback(api_version, kind) if self.fallback else None
            if generic is not None:
                return generic
            raise InvalidObjectError(
                f"{kind or '<no kind>'}", [self._unknown(api_version, kind)]
            ) from None

    def _unknown(self, api_version: str, kind: str) -> FieldProblem:
        """Why nothing handles (apiVersion, kind): a malformed apiVersion, a kind spelled in
        the wrong case, or else the kinds FOOT knows."""
        if not _API_VERSION.match(api_version):
            reason = (
                f"{api_version!r} is not an apiVersion: 'version' or 'group/version', the group "
                "a lowercase DNS subdomain and the version like v1, v2beta1 (e.g. 'v1', 'apps/v1')"
            )
            return FieldProblem("apiVersion", reason)
        spelled = [i.kind for i in self if i.kind.lower() == kind.lower() and i.kind != kind]
        if spelled:
            return FieldProblem(
                "kind", f"{api_version}/{kind} is not a kind FOOT knows; did you mean {spelled[0]}?"
            )
        known = ", ".join(sorted({f"{i.api_version}/{i.kind}" for i in self}))
        return FieldProblem("kind", f"{api_version}/{kind} is not a kind FOOT knows ({known})")

    def resolve(self, spelling: str) -> KindInfo:
        """Find a kind by what a person types: `Deployment`, `deployment`, `deployments`,
        `deploy`, or `deployments.apps` (`deployments.v1.apps`) to pick a group. A kind FOOT
        accepts in several groups (`pp`: FOOT's and Karmada's) answers with the group
        registered first; `resolve_all` gives every one."""
        return self.resolve_all(spelling)[0]

    def resolve_all(self, spelling: str) -> list[KindInfo]:
        """Every group of the kind `spelling` names (one, unless it is a kind FOOT accepts in
        several groups). Two different kinds of the same name are refused: the person has to
        say which, as `plural.group`."""
        wanted, _, group = spelling.strip().lower().partition(".")
        matches = [
            info
            for info in self
            if wanted in info.names() and (not group or group in info.group_spellings())
        ]
        if not matches:
            raise NotFoundError(f"unknown kind {spelling!r}; try one of: {self.spellings()}")
        if all(matches[0].same_kind(other) for other in matches[1:]):
            return matches
        choices = ", ".join(info.qualified for info in matches)
        raise NotFoundError(
            f"kind {spelling!r} names kinds of several groups: say which, as KIND.GROUP ({choices})"
        )

    def spellings(self) -> str:
        """Every kind once, by its plural (`plural.group` where kinds of different groups
        share a plural), with its short names."""
        shown: dict[str, str] = {}
        for info in self:
            siblings = [other for other in self if other.plural == info.plural]
            if all(info.same_kind(other) for other in siblings):
                name = info.plural
            else:
                name = info.qualified
            short = f" ({', '.join(info.short_names)})" if info.short_names else ""
            shown.setdefault(name, f"{name}{short}")
        return ", ".join(shown[name] for name in sorted(shown))

    def parse(
        self,
        document: Mapping[str, Any],
        source: str = "object",
        *,
        custom: Mapping[tuple[str, str], DocumentCheck] | None = None,
    ) -> KubeObject:
        """Validate a raw document into its model; every problem is reported at once.

        `custom` holds the checks of the custom resource kinds registered by a stored
        CustomResourceDefinition (`foot.kinds.custom`); any other kind Kubernetes does not
        serve is refused.
        """
        api_version = document.get("apiVersion")
        kind = document.get("kind")
        problems = [
            FieldProblem(field, _required_string(value))
            for field, value in (("apiVersion", api_version), ("kind", kind))
            if not isinstance(value, str) or not value
        ]
        if problems:
            raise InvalidObjectError(source, problems)
        assert isinstance(api_version, str)  # noqa: S101 - narrowed by the checks above
        assert isinstance(kind, str)  # noqa: S101
        info = self.lookup(api_version, kind)
        name = describe(document, kind)
        check = (custom or {}).get((api_version, kind)) or info.check
        problems = check(document) if check is not None else []
        try:
            parsed = info.model.model_validate(document, by_alias=True)
        except ValidationError as exc:
            reported = {p.path for p in problems}
            problems += [p for p in problems_from_validation(exc) if p.path not in reported]
        if problems:
            raise InvalidObjectError(name, problems)
        if info.namespaced and parsed.metadata.namespace is None:
            parsed = parsed.model_copy(
                update={"metadata": parsed.metadata.model_copy(update={"namespace": "default"})}
            )
        elif not info.namespaced and parsed.metadata.namespace is not None:
            raise InvalidObjectError(
                name, [FieldProblem("metadata.namespace", f"{kind} is cluster-scoped")]
            )
        return parsed


def _required_string(value: Any) -> str:
    """Why `value` is no apiVersion or kind: missing, or not a string."""
    if value is None or value == "":
        return "is required"
    if isinstance(value, bool):
        return "must be a string, got a boolean"
    if isinstance(value, int | float):
        return f"must be a string, got the number {value!r}"
    return f"must be a string, got {'a list' if isinstance(value, list) else 'a mapping'}"


def describe(document: Mapping[str, Any], kind: str) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{kind}/{name}" if isinstance(name, str) else kind


KINDS = KindRegistry()


def _register_builtin_kinds() -> None:
    from foot.kinds import bindings, clusters, gateway, policies, storage, templates, works

    for info in templates.template_kinds():
        KINDS.register(info)
    KINDS.fallback = templates.generic_template_kind
    for info in policies.policy_kinds():
        KINDS.register(info)
    for info in clusters.cluster_kinds():
        KINDS.register(info)
    for info in bindings.binding_kinds():
        KINDS.register(info)
    for info in works.work_kinds():
        KINDS.register(info)
    for info in storage.storage_kinds():
        KINDS.register(info)
    for info in gateway.gateway_kinds():
        KINDS.register(info)


_register_builtin_kinds()

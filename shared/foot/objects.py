"""Kubernetes-style objects: the pydantic base every FOOT kind builds on.

Objects are frozen values; a change is a new object (`model_copy(update=...)`).
On the wire and in the buckets they are camelCase JSON serialized with orjson,
exactly as a Kubernetes client would write them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from foot.errors import FieldProblem
from foot.yamlsafe import load_documents as load_documents  # noqa: PLC0414 - re-exported for callers of foot.objects

# The one spelling of Kubernetes' DNS-1123 names in the tree (k8s.io/apimachinery's
# validation): kinds, settings and the simulator all build on these fragments.
DNS1123_LABEL_FRAGMENT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FRAGMENT = rf"{DNS1123_LABEL_FRAGMENT}(\.{DNS1123_LABEL_FRAGMENT})*"
DNS1123_LABEL_PATTERN = rf"^{DNS1123_LABEL_FRAGMENT}$"
"""Anchored, for pydantic `Field(pattern=...)`."""
DNS1123_SUBDOMAIN = re.compile(rf"^{DNS1123_SUBDOMAIN_FRAGMENT}$")
DNS1123_LABEL = re.compile(DNS1123_LABEL_PATTERN)
DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_MAX = 63


class FrozenModel(BaseModel):
    """Immutable, camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )


def check_subdomain(value: str) -> str:
    if len(value) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            "must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-' and '.', "
            f"starting and ending alphanumeric, at most {DNS1123_SUBDOMAIN_MAX} characters)"
        )
    return value


def check_label(value: str) -> str:
    if len(value) > DNS1123_LABEL_MAX or not DNS1123_LABEL.match(value):
        raise ValueError(
            "must be a lowercase RFC 1123 label (a-z, 0-9 and '-', "
            f"starting and ending alphanumeric, at most {DNS1123_LABEL_MAX} characters)"
        )
    return value


class ObjectMeta(FrozenModel):
    """Standard object metadata, as in Kubernetes, plus where FOOT stored it."""

    name: str
    """Object name, an RFC 1123 subdomain."""
    namespace: str | None = None
    """Namespace for namespaced kinds; absent for cluster-scoped ones."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Identifying key/value pairs used by selectors."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Non-identifying key/value pairs."""
    uid: str | None = None
    """Assigned by the owning service when the object is first stored."""
    generation: int = 0
    """Bumped by the owning service every time the desired state (spec) changes."""
    revision: int = 0
    """Revision of the bucket entry this copy was read from (0: never stored)."""
    creation_timestamp: datetime | None = None
    """When the owning service first stored the object."""
    traceparent: str | None = None
    """W3C trace context of the change that last wrote this object."""

    @field_validator("name")
    @classmethod
    def _name_is_subdomain(cls, value: str) -> str:
        return check_subdomain(value)

    @field_validator("namespace")
    @classmethod
    def _namespace_is_label(cls, value: str | None) -> str | None:
        return None if value is None else check_label(value)


class KubeObject(FrozenModel):
    """Base of every stored kind: apiVersion, kind, metadata; subclasses add spec/status."""

    api_version: str
    kind: str
    metadata: ObjectMeta

    namespaced: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    def desired_state(self) -> dict[str, Any]:
        """What counts as the desired state for `generation` (everything but metadata/status)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"metadata", "status"})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        return cls.model_validate_json(data, by_alias=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


_FIXED_REASONS = {"missing": "is required", "extra_forbidden": "unknown field"}
"""pydantic's words for these, in the words the Kubernetes schema checks use."""
_QUOTES_VALUE = frozenset(
    {"literal_error", "enum", "greater_than", "greater_than_equal", "less_than", "less_than_equal"}
)
"""Errors whose reason ends with the value given (a choice or a number, never free text)."""


def _reason(item: Any) -> str:
    """One pydantic error in FOOT's words: "is required", "unknown field", "must be ..."."""
    kind = item["type"]
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    context = item.get("ctx") or {}
    if kind == "too_short" and "min_length" in context:
        least = context["min_length"]
        return (
            f"must have at least {least} item{'s' if least != 1 else ''}, "
            f"got {context.get('actual_length', 0)}"
        )
    reason = str(item["msg"]).removeprefix("Value error, ")
    if reason.startswith("Input should be "):
        reason = "must be " + reason.removeprefix("Input should be ")
        if kind in _QUOTES_VALUE:
            reason += f", got {item['input']!r}"
    return reason


def problems_from_validation(error: ValidationError) -> list[FieldProblem]:
    """Turn pydantic's error list into field paths a user recognises (`spec.replicas`) and
    reasons in the words of the Kubernetes checks (no pydantic phrasing, no docs URL)."""
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"] if part != "function-after")
        problems.append(FieldProblem(path=path, reason=_reason(item)))
    return problems


def iter_lines(documents: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    for document in documents:
        yield orjson.dumps(document).decode()

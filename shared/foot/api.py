"""Wire types of the API front door (`foot.api.apply` / `foot.api.delete`, and HTTP)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from foot.errors import FieldProblem, FootError, InvalidObjectError
from foot.objects import FrozenModel

Outcome = Literal["created", "configured", "unchanged", "deleted", "not-found", "rejected"]


class ObjectRef(FrozenModel):
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


class FieldError(FrozenModel):
    path: str
    reason: str


class ApiError(FrozenModel):
    code: str
    """Machine-readable: Invalid, NotFound, Conflict, Unavailable, Forbidden, Internal."""
    message: str
    fields: list[FieldError] = Field(default_factory=list)

    @classmethod
    def from_exception(cls, exc: FootError) -> ApiError:
        problems: tuple[FieldProblem, ...] = ()
        if isinstance(exc, InvalidObjectError):
            problems = tuple(exc.problems)
        return cls(
            code=exc.code,
            message=exc.message,
            fields=[FieldError(path=p.path, reason=p.reason) for p in problems],
        )


class ObjectResult(FrozenModel):
    ref: ObjectRef
    outcome: Outcome
    error: ApiError | None = None
    generation: int | None = None


class ApiRequest(FrozenModel):
    objects: list[dict[str, Any]]
    """Documents to apply, or (for delete) documents or references with kind and name."""


class ApiReply(FrozenModel):
    results: list[ObjectResult] = Field(default_factory=list)
    error: ApiError | None = None
    """Set when the request as a whole could not be handled."""

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.error is None for r in self.results)


def ref_of(document: dict[str, Any]) -> ObjectRef:
    """Best-effort reference to a (possibly invalid) document, for error reports."""
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return ObjectRef(
        api_version=str(document.get("apiVersion") or ""),
        kind=str(document.get("kind") or ""),
        name=str(metadata.get("name") or ""),
        namespace=metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None,
    )

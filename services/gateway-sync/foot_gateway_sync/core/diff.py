"""Desired vs actual APISIX objects -> the writes, in an order APISIX accepts.

Only managed objects (label `managed-by: foot`) are ever compared, written or
deleted. Order: PUT upstreams (new or changed), PUT routes (which may now use
them), DELETE routes no longer wanted, DELETE upstreams no longer wanted (after
every route that used them has been rewritten or deleted). A route whose
traffic-split names an upstream that would not exist is refused here, because
APISIX does not check those ids and would answer 500s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from foot_gateway_sync.core.desired import (
    ROUTES,
    UPSTREAMS,
    ObjectKey,
    is_managed,
    referenced_upstreams,
)

SERVER_FIELDS = frozenset({"create_time", "update_time"})
"""Written by APISIX itself, never compared."""
SERVER_DEFAULTS: Mapping[str, frozenset[str]] = {
    UPSTREAMS: frozenset({"type", "hash_on", "scheme", "pass_host"}),
    ROUTES: frozenset({"priority", "status"}),
}
"""Top-level fields APISIX fills in with defaults (FOOT always sets them anyway)."""


@dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["PUT", "DELETE"]
    resource: str
    id: str
    body: Mapping[str, Any] | None = None
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.method} {self.resource}/{self.id} ({self.reason})"


def covers(actual: Any, desired: Any) -> bool:
    """`actual` holds everything `desired` says (defaults APISIX added inside are tolerated)."""
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            name in actual and covers(actual[name], value) for name, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(covers(a, d) for a, d in zip(actual, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(actual, bool):
        return type(desired) is type(actual) and desired == actual
    return bool(actual == desired)


def drifted(resource: str, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """Whether `actual` differs from `desired` in anything FOOT decides (a manual edit, an
    older desired state): a field changed or removed, a field or plugin added."""
    allowed = set(desired) | SERVER_FIELDS | SERVER_DEFAULTS.get(resource, frozenset())
    if set(actual) - allowed:
        return True
    if set(actual.get("plugins", {})) != set(desired.get("plugins", {})):
        return True
    if actual.get("labels") != desired.get("labels"):
        return True
    return not covers(actual, desired)


@dataclass(frozen=True, slots=True)
class Plan:
    operations: tuple[Operation, ...]
    problems: tuple[str, ...] = ()
    """Objects left alone, and why (an unmanaged object in the way, a dangling reference)."""


def phases(operations: tuple[Operation, ...]) -> list[tuple[Operation, ...]]:
    """`operations` (in `plan`'s order) cut into runs of one method on one resource: the
    writes inside a run do not depend on each other and may be sent at once; the runs must
    follow each other in order."""
    runs: list[list[Operation]] = []
    for operation in operations:
        if runs and (runs[-1][0].method, runs[-1][0].resource) == (
            operation.method,
            operation.resource,
        ):
            runs[-1].append(operation)
        else:
            runs.append([operation])
    return [tuple(run) for run in runs]


def plan(
    desired: Mapping[ObjectKey, Mapping[str, Any]],
    actual: Mapping[ObjectKey, Mapping[str, Any]],
) -> Plan:
    """The writes that turn `actual` (one APISIX instance) into `desired`.

    `actual` may hold unmanaged objects: they are never touched, and a desired object
    whose id an unmanaged one already uses is left out (with a problem), as is a route
    that would then reference an upstream that does not exist.
    """
    problems: list[str] = []
    managed = {key: body for key, body in actual.items() if is_managed(body)}
    blocked = {key for key in desired if key in actual and not is_managed(actual[key])}
    problems += [
        f"{resource}/{object_id} exists in APISIX without the managed-by: foot label; "
        "FOOT leaves it alone"
        for resource, object_id in sorted(blocked)
    ]
    upstreams_after = {i for (r, i) in desired if r == UPSTREAMS and (r, i) not in blocked} | {
        i for (r, i) in actual if r == UPSTREAMS
    }
    for (resource, object_id), body in sorted(desired.items()):
        if resource != ROUTES or (resource, object_id) in blocked:
            continue
        missing = referenced_upstreams(body) - upstreams_after
        if missing:
            blocked.add((resource, object_id))
            problems.append(
                f"route {object_id} would reference missing upstream(s) "
                f"{', '.join(sorted(missing))}; not written"
            )

    def puts(resource: str) -> list[Operation]:
        ops = []
        for (kind, object_id), body in sorted(desired.items()):
            if kind != resource or (kind, object_id) in blocked:
                continue
            current = actual.get((kind, object_id))
            if current is None:
                ops.append(Operation("PUT", kind, object_id, body, "missing"))
            elif drifted(kind, body, current):
                ops.append(Operation("PUT", kind, object_id, body, "changed"))
        return ops

    def deletes(resource: str) -> list[Operation]:
        return [
            Operation("DELETE", kind, object_id, None, "not wanted")
            for (kind, object_id) in sorted(managed)
            if kind == resource and (kind, object_id) not in desired
        ]

    operations = [*puts(UPSTREAMS), *puts(ROUTES), *deletes(ROUTES), *deletes(UPSTREAMS)]
    return Plan(tuple(operations), tuple(problems))

"""A work's status from what the member answered or reported (pure).

Each function returns the updated work, or None when nothing a reader cares about changed
(so a burst of identical observations writes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from foot.kinds.works import ManifestStatus, Work, WorkCondition, WorkHealth, WorkStatus
from foot.manifests import identity, observed_status
from foot.object_health import worst

Identity = tuple[str, str, str | None, str]
MISSING: Any = None
"""An observation of an object that is gone from the member."""


def _condition(  # noqa: PLR0917 - a condition's fields, in their usual order
    previous: Sequence[WorkCondition],
    kind: str,
    status: Literal["True", "False", "Unknown"],
    reason: str,
    message: str,
    now: datetime,
) -> WorkCondition:
    old = next((c for c in previous if c.type == kind), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    return WorkCondition(
        type=kind, status=status, reason=reason, message=message, last_transition_time=since
    )


def _with_conditions(
    conditions: Sequence[WorkCondition], *updates: WorkCondition
) -> list[WorkCondition]:
    replaced = {c.type: c for c in conditions}
    for update in updates:
        replaced[update.type] = update
    return [replaced[key] for key in sorted(replaced)]


def _health(manifests: Sequence[ManifestStatus]) -> WorkHealth:
    if any(not m.applied for m in manifests):
        return "Unknown" if all(not m.applied for m in manifests) else "Progressing"
    return worst([m.health for m in manifests])


_COMPARED = tuple(name for name in WorkStatus.model_fields if name != "observed_at")
"""What changes a reader's view (not the observation time)."""


def _changed(work: Work, status: WorkStatus) -> Work | None:
    old = work.status
    if all(getattr(status, name) == getattr(old, name) for name in _COMPARED):
        return None
    return work.model_copy(update={"status": status})


def applied(
    work: Work, manifests_hash: str, statuses: Sequence[ManifestStatus], *, now: datetime
) -> Work | None:
    """The work after an apply of `manifests_hash` answered `statuses` (one per manifest);
    None when the spec moved on meanwhile (its own apply will follow) or nothing changed."""
    if work.spec.manifests_hash != manifests_hash:
        return None
    conflicts = [s.conflict for s in statuses if s.conflict]
    errors = [f"{s.kind} {s.name}: {s.error}" for s in statuses if s.error]
    if conflicts:
        applied_condition = _condition(
            work.status.conditions, "Applied", "False", "Conflict", "; ".join(conflicts), now
        )
    elif errors:
        applied_condition = _condition(
            work.status.conditions, "Applied", "False", "ApplyFailed", "; ".join(errors), now
        )
    else:
        applied_condition = _condition(
            work.status.conditions, "Applied", "True", "Applied", "every manifest applied", now
        )
    health, available = _availability(work, statuses, now)
    status = WorkStatus(
        applied_hash=manifests_hash,
        manifests=list(statuses),
        conditions=_with_conditions(work.status.conditions, applied_condition, available),
        health=health,
        last_applied_trace=work.metadata.traceparent or work.status.last_applied_trace,
        observed_at=now,
    )
    return _changed(work, status)


def _availability(
    work: Work, statuses: Sequence[ManifestStatus], now: datetime
) -> tuple[WorkHealth, WorkCondition]:
    """The work's health over `statuses` and its Available condition (True when Healthy)."""
    health = _health(statuses)
    available = _condition(
        work.status.conditions,
        "Available",
        "True" if health == "Healthy" else "False",
        health,
        "",
        now,
    )
    return health, available


def unavailable(work: Work, message: str, *, now: datetime) -> Work | None:
    """The member could not be reached for an apply (it is retried)."""
    condition = _condition(
        work.status.conditions, "Applied", "False", "MemberUnavailable", message, now
    )
    status = work.status.model_copy(
        update={"conditions": _with_conditions(work.status.conditions, condition)}
    )
    return _changed(work, status)


def observed(
    work: Work, objects: Mapping[Identity, dict[str, Any] | None], *, now: datetime
) -> tuple[Work | None, bool]:
    """The work with what the member's watch reported for its objects (`objects` holds only
    what was seen; None: deleted). Returns (updated work or None, whether a manifest went
    missing and must be applied again)."""
    if work.status.applied_hash != work.spec.manifests_hash:
        return None, False
    statuses = list(work.status.manifests)
    missing = False
    for index, manifest in enumerate(work.spec.manifests):
        key = identity(manifest)
        if key not in objects or index >= len(statuses) or not statuses[index].applied:
            continue
        obj = objects[key]
        if obj is None:
            statuses[index] = statuses[index].model_copy(
                update={"applied": False, "health": "Unknown", "error": "deleted in the member"}
            )
            missing = True
        else:
            statuses[index] = observed_status(statuses[index], obj)
    health, available = _availability(work, statuses, now)
    status = work.status.model_copy(
        update={
            "manifests": statuses,
            "health": health,
            "conditions": _with_conditions(work.status.conditions, available),
            "observed_at": now,
            "applied_hash": None if missing else work.status.applied_hash,
        }
    )
    return _changed(work, status), missing


def rendered_condition(work: Work, error: str | None, *, now: datetime) -> Work | None:
    """Record whether the latest binding/override state could be rendered for this cluster."""
    condition = _condition(
        work.status.conditions,
        "Rendered",
        "False" if error else "True",
        "OverrideFailed" if error else "Rendered",
        error or "",
        now,
    )
    status = work.status.model_copy(
        update={"conditions": _with_conditions(work.status.conditions, condition)}
    )
    return _changed(work, status)

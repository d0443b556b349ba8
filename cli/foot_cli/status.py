"""Templates' status over every member cluster, as the dispatcher aggregates it.

The template belongs to the scheduler and its aggregated status to the dispatcher (one
writer per object), so the CLI reads both: `foot get KIND NAME -o yaml` shows the
aggregated status as the template's `status`, and `foot describe` lists it per cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from foot.bus import Bus
from foot.catalog import AGGREGATED_STATUS, TEMPLATES
from foot.errors import FootError
from foot.kinds import KindInfo
from foot.kinds.works import AggregatedStatus
from foot.objects import KubeObject


async def aggregated_status(bus: Bus, template_key: str) -> AggregatedStatus | None:
    try:
        store = await bus.kv(AGGREGATED_STATUS.name)
        entry = await store.get(template_key)
    except FootError:
        return None  # no dispatcher has run yet: no status
    if entry is None or entry.value is None:
        return None
    return AggregatedStatus.model_validate_json(entry.value)


def status_document(status: AggregatedStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"resource"})


async def with_status(bus: Bus, info: KindInfo, objects: Sequence[KubeObject]) -> list[KubeObject]:
    """Templates with their aggregated status as `status` (other kinds unchanged)."""
    if info.bucket != TEMPLATES.name:
        return list(objects)
    result = []
    for obj in objects:
        status = await aggregated_status(bus, info.key(obj.namespace, obj.name))
        if status is not None and "status" in type(obj).model_fields:
            result.append(obj.model_copy(update={"status": status_document(status)}))
        else:
            result.append(obj)
    return result


def status_lines(status: AggregatedStatus | None) -> list[str]:
    """The `Status:` section of `foot describe`."""
    if status is None:
        return ["Status:       <not dispatched yet>"]
    ready = "-" if status.ready_replicas is None else str(status.ready_replicas)
    desired = "-" if status.replicas is None else str(status.replicas)
    applied = "applied" if status.applied else "not applied"
    lines = [f"Status:       {status.health}, {applied}, ready {ready}/{desired}", "Clusters:"]
    if not status.clusters:
        lines.append("  (none)")
    for cluster in status.clusters:
        replicas = (
            ""
            if cluster.replicas is None
            else f" ready {cluster.ready_replicas or 0}/{cluster.replicas}"
        )
        state = "applied" if cluster.applied else "not applied"
        notes = " (leaving)" if cluster.leaving else ""
        if not cluster.reachable:
            notes += " (cluster not ready: last reported figures)"
        lines.append(f"  {cluster.cluster:<24} {cluster.health:<12} {state}{replicas}{notes}")
        lines += [f"    Conflict: {conflict}" for conflict in cluster.conflicts]
        lines += [f"    Error:    {error}" for error in cluster.errors]
    return lines

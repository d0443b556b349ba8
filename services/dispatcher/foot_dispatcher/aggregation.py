"""Aggregation: each template's status over all its clusters, in `aggregated-status`.

The `aggregate` queue's reconciler, keyed by binding and added after a short delay, so a
burst of work changes (a rollout to 100 clusters changes 100 works) is folded once. The
record is keyed by the template (the template itself belongs to the scheduler). It is also
where a binding's intent is dropped once nothing it names waits to be stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pydantic import ValidationError

from foot.bus import KvStore
from foot.kinds.works import AggregatedStatus, ClusterWorkSummary
from foot.objects import utc_now
from foot_dispatcher.core.lifecycle import aggregate
from foot_dispatcher.core.render import work_key
from foot_dispatcher.mirrors import template_key
from foot_dispatcher.parts import DispatchParts

log = logging.getLogger(__name__)


class Aggregation:
    """Writes aggregated status records (see the module docstring)."""

    def __init__(
        self,
        *,
        parts: DispatchParts,
        bucket: KvStore,
        render_errors: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._parts = parts
        self._bucket = bucket
        self._render_errors = render_errors
        self._records: dict[str, AggregatedStatus] = {}
        """Record key (the template's) -> the record stored."""

    async def resume(self) -> None:
        """Read the records stored; aggregate again those of bindings gone meanwhile."""
        for entry in await self._bucket.entries():
            if entry.value is None:
                continue
            try:
                record = AggregatedStatus.model_validate_json(entry.value)
            except ValidationError:
                continue
            self._records[entry.key] = record
            if record.binding not in self._parts.mirrors.bindings:
                self._parts.queues.aggregate.add(record.binding)

    async def aggregate(self, binding_key: str) -> None:
        await self._parts.synced()
        await self._parts.intents.uncover(binding_key)
        binding = self._parts.mirrors.bindings.get(binding_key)
        works = self._parts.works.binding_view(binding_key)
        record_key = template_key(binding) if binding is not None else None
        if record_key is None:
            record_key = next(
                (k for k, r in self._records.items() if r.binding == binding_key), None
            )
        if record_key is None:
            return
        if binding is None:
            if not works:
                await self._bucket.delete(record_key)
                self._records.pop(record_key, None)
            return
        status = aggregate(
            binding_key,
            binding.spec.resource,
            frozenset(t.name for t in binding.spec.clusters),
            works,
            now=utc_now(),
            unreachable=self._parts.mirrors.unreachable,
        )
        unrendered = [
            ClusterWorkSummary(cluster=name, work=work_key(name, binding_key), errors=[error])
            for name, error in self._render_errors.get(binding_key, {}).items()
            if name not in works
        ]
        if unrendered:
            clusters = sorted([*status.clusters, *unrendered], key=lambda c: c.cluster)
            status = status.model_copy(update={"clusters": clusters, "applied": False})
        old = self._records.get(record_key)
        if old is not None and old.model_copy(update={"observed_at": None}) == status.model_copy(
            update={"observed_at": None}
        ):
            return
        await self._bucket.put(record_key, status.model_dump_json(by_alias=True).encode())
        self._records[record_key] = status
        if binding.spec.graceful_evictions:
            # A target's copy may just have become ready: the evicted copies may go now.
            self._parts.queues.render.add(binding_key)

"""Render: what a binding wants in each cluster, and what becomes of the works it left.

The `render` queue's reconciler. It renders one work per target cluster (the pure
`core.render`), stores the works that changed (pull works, suspended ones, and push works
back to what is applied) or stages them (push works to apply, once the binding's intent
covers them), and decides the fate of the works of clusters the binding left (purge mode,
`core.lifecycle.removal`). Works to act on go to their cluster's lane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from opentelemetry import trace

from foot.kinds.bindings import ResourceBinding
from foot.kinds.works import Work
from foot.objects import KubeObject, utc_now
from foot.telemetry import extract_context, tracer
from foot_dispatcher.core import workstatus
from foot_dispatcher.core.lifecycle import removal, replacement_ready, work_applied
from foot_dispatcher.core.render import (
    RenderedWork,
    dependency_keys,
    desired_work,
    render,
    work_key,
)
from foot_dispatcher.mirrors import template_key
from foot_dispatcher.parts import DispatchParts
from foot_dispatcher.works import WorkChange, split_work_key

log = logging.getLogger(__name__)

RENDER_WRITE_BATCH = 32
"""Works stored at once by one render (each is its own key)."""


def change_of(binding: ResourceBinding, rendered: RenderedWork, now: datetime) -> WorkChange:
    """The change a render makes to one cluster's work (None: nothing to write)."""

    def change(current: Work | None) -> Work | None:
        desired = desired_work(binding, rendered, current, traceparent=binding.metadata.traceparent)
        base = desired or current
        if base is None:
            return None
        return workstatus.rendered_condition(base, None, now=now) or desired

    return change


class Renderer:
    """Renders bindings into works (see the module docstring)."""

    def __init__(self, *, parts: DispatchParts) -> None:
        self._parts = parts
        self.errors: dict[str, dict[str, str]] = {}
        """Binding key -> cluster -> why its work could not be rendered (last render)."""

    async def render(self, binding_key: str) -> None:
        await self._parts.synced()
        binding = self._parts.mirrors.bindings.get(binding_key)
        parent = binding.metadata.traceparent if binding is not None else None
        context = extract_context({"traceparent": parent}) if parent else None
        with tracer().start_as_current_span(
            "dispatch", context=context, kind=trace.SpanKind.INTERNAL
        ) as span:
            span.set_attribute("foot.binding", binding_key)
            if binding is None:
                await self._binding_gone(binding_key)
                return
            await self._render_binding(binding_key, binding)

    async def _binding_gone(self, binding_key: str) -> None:
        self.errors.pop(binding_key, None)
        for key in self._parts.works.staged_keys(binding_key):
            self._parts.works.unstage(key)
        await self._parts.intents.sweep(binding_key)
        now = utc_now()
        for _cluster, (key, work) in sorted(self._parts.works.binding_works(binding_key).items()):
            decision = removal(work, None, now=now, target_ready=False)
            if decision.action == "forget":
                await self._parts.works.delete(key)
            else:
                await self._mark_deleting(key)
        self._parts.queues.aggregate_soon(binding_key)

    async def _render_binding(self, binding_key: str, binding: ResourceBinding) -> None:
        key_of_template = template_key(binding)
        template = self._parts.mirrors.templates.get(key_of_template) if key_of_template else None
        now = utc_now()
        if template is not None:
            await self._render_works(binding_key, binding, template, now)

        targets = {t.name for t in binding.spec.clusters}
        for key in self._parts.works.staged_keys(binding_key):
            if split_work_key(key)[0] not in targets:
                self._parts.works.unstage(key)  # left before it was applied (if it is being
                # applied, the write that follows brings the binding back here)
        works = self._parts.works.binding_works(binding_key)
        ready = replacement_ready(
            binding,
            {name: work for name, (_, work) in works.items()},
            self._parts.mirrors.unreachable,
        )
        for name, (key, work) in sorted(works.items()):
            if name in targets or work.spec.deleting:
                continue
            decision = removal(work, binding, now=now, target_ready=ready)
            if decision.action == "delete":
                log.info("removing %s from %s: %s", binding_key, name, decision.reason)
                await self._mark_deleting(key)
            elif decision.recheck_at is not None:
                self._parts.queues.render_at(binding_key, decision.recheck_at)
        await self._parts.intents.sweep(binding_key)
        self._parts.queues.aggregate_soon(binding_key)

    async def _render_works(
        self, binding_key: str, binding: ResourceBinding, template: KubeObject, now: datetime
    ) -> None:
        """Render the binding's works; store or stage the ones that changed."""
        keys = dependency_keys(template)
        self._parts.mirrors.note_dependencies(binding_key, (key for key, _ in keys))
        templates = self._parts.mirrors.templates
        deps = {key: templates[key] for key, _ in keys if key in templates}
        result = render(
            binding,
            template,
            deps,
            list(self._parts.mirrors.overrides.values()),
            self._parts.mirrors.clusters,
        )
        pending, writes = self._sort_rendered(binding_key, binding, result.works, now)

        async def store(name: str, rendered: RenderedWork) -> None:
            key = work_key(name, binding_key)
            stored = await self._parts.works.put(key, change_of(binding, rendered, now))
            if stored is not None and (not work_applied(stored) or stored.spec.suspended):
                self._parts.queues.lane(name).add(key)

        # Works stored now are written a batch at a time (each is its own key).
        for start in range(0, len(writes), RENDER_WRITE_BATCH):
            async with asyncio.TaskGroup() as group:
                for name, rendered in writes[start : start + RENDER_WRITE_BATCH]:
                    group.create_task(store(name, rendered), name=f"store-work:{name}")
        if pending:
            await self._parts.intents.cover(binding_key, pending.values())
            for key, work in pending.items():
                self._parts.works.stage(key, work)
                self._parts.queues.lane(work.spec.cluster).add(key)
        self.errors[binding_key] = dict(result.errors)
        for name, error in sorted(result.errors.items()):
            log.warning("cannot render %s for %s: %s", binding_key, name, error)
            await self._parts.works.put(
                work_key(name, binding_key),
                lambda c, e=error: workstatus.rendered_condition(c, e, now=now) if c else None,  # type: ignore[misc]
            )
        if result.missing_dependencies:
            log.info(
                "%s references %s, which are not templates: not propagated",
                binding_key,
                ", ".join(result.missing_dependencies),
            )

    def _sort_rendered(
        self,
        binding_key: str,
        binding: ResourceBinding,
        works: Mapping[str, RenderedWork],
        now: datetime,
    ) -> tuple[dict[str, Work], list[tuple[str, RenderedWork]]]:
        """(push works to apply, staged once an intent covers them; works to store now)."""
        pending: dict[str, Work] = {}
        writes: list[tuple[str, RenderedWork]] = []
        for name, rendered in sorted(works.items()):
            key = work_key(name, binding_key)
            cluster = self._parts.mirrors.clusters.get(name)
            if cluster is None or cluster.spec.sync_mode == "Pull":
                writes.append((name, rendered))  # stored first, then delivered
                continue
            staged = self._parts.works.staged(key)
            current = staged or self._parts.works.get(key)
            updated = change_of(binding, rendered, now)(current)
            if updated is None:
                if staged is not None:
                    pending[key] = staged  # still to apply: keep it covered
                elif current is not None and (not work_applied(current) or current.spec.suspended):
                    self._parts.queues.lane(name).add(key)
            elif not updated.spec.suspended and not work_applied(updated):
                pending[key] = updated
            else:
                self._parts.works.unstage(key)  # suspended, or back to what is applied: store that
                writes.append((name, rendered))
        return pending, writes

    async def _mark_deleting(self, key: str) -> None:
        def deleting(current: Work | None) -> Work | None:
            if current is None or current.spec.deleting:
                return None
            return current.model_copy(
                update={"spec": current.spec.model_copy(update={"deleting": True})}
            )

        stored = await self._parts.works.put(key, deleting)
        if stored is not None:
            self._parts.queues.lane(stored.spec.cluster).add(key)

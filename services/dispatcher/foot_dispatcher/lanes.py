"""Apply lanes and member watch: push works to their members, and what the members report.

Each member cluster has its own `apply:<cluster>` lane (`DispatchQueues.lane`: its own
workers, retry with backoff; `Members`: its own connection, token bucket and breaker), so
one slow or dead member never holds up the others. A lane applies a work (push: server-side
apply; pull: handed to `PullDelivery`), or purges it (delete the member's objects FOOT
manages, unless another work still wants them, then the work).

Once a push work is applied, the workload kinds it holds are listed and watched in its
member; what the member reports feeds the `status` queue, which folds it into the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace

from foot.errors import RetryableError
from foot.kinds.works import Work
from foot.kube.watch import watch_collection
from foot.manifests import MANAGED_SELECTOR, identity
from foot.object_health import WATCHED_KINDS
from foot.objects import utc_now
from foot.telemetry import extract_context, tracer
from foot_dispatcher.core import workstatus
from foot_dispatcher.core.lifecycle import work_applied
from foot_dispatcher.members import Member, Members
from foot_dispatcher.parts import DispatchParts
from foot_dispatcher.pull import PullDelivery
from foot_dispatcher.works import Identity, split_work_key

log = logging.getLogger(__name__)

Spawn = Callable[[str, Callable[[], Awaitable[None]]], object]
"""Starts a named, supervised task (`Supervisor.spawn`)."""


class ApplyLanes:
    """The lanes' reconciler (`apply`), and the member watches feeding `refresh_status`."""

    def __init__(
        self,
        *,
        parts: DispatchParts,
        members: Members,
        pull: PullDelivery,
        spawn: Spawn,
        watch_member_status: bool,
    ) -> None:
        self._parts = parts
        self._members = members
        self._pull = pull
        self._spawn = spawn
        self._watch_member_status = watch_member_status
        self._observed: dict[tuple[str, Identity], dict[str, Any] | None] = {}
        """(cluster, object) -> the object as its member last reported it (None: deleted)."""
        self.applies = 0
        """Works applied to push members."""

    # ---- apply ---------------------------------------------------------------------------

    async def apply(self, key: str) -> None:
        staged = self._parts.works.staged(key)
        work = staged or self._parts.works.get(key)
        if work is None:
            return
        name = work.spec.cluster
        cluster = self._parts.mirrors.clusters.get(name)
        if cluster is None:
            if work.spec.deleting:
                await self._parts.works.delete(key)  # the member left FOOT; nothing to reach
                self._parts.queues.render.add(split_work_key(key)[1])
            return  # applied when the cluster appears
        if cluster.spec.sync_mode == "Pull":
            if staged is not None:  # the member turned to pull mode: stored, then delivered
                stored_work = await self._store_staged(key, staged, lambda w: w)
                if stored_work is None:
                    return
                work = stored_work
            await self._pull.deliver(key, work)
        elif work.spec.deleting:
            await self._purge(key, work)
        elif not work.spec.suspended:
            await self._apply_push(key, work, staged)

    async def _apply_push(self, key: str, work: Work, staged: Work | None) -> None:
        name = work.spec.cluster
        member = await self._members.get(name)
        if work_applied(work):
            self._watch_member(member, work)
            return
        parent = work.metadata.traceparent
        context = extract_context({"traceparent": parent}) if parent else None
        try:
            with member.guarded():
                await member.limiter.acquire()
                # One rollout is one trace: the member apply joins the binding's trace.
                with tracer().start_as_current_span(
                    f"apply {name}", context=context, kind=trace.SpanKind.CLIENT
                ):
                    statuses = await member.applier.apply_all(
                        work.spec.manifests, work.spec.conflict_resolution
                    )
        except RetryableError as exc:
            message = exc.message
            if staged is not None:  # shown as waiting for its member from now on
                await self._store_staged(
                    key, staged, lambda w: workstatus.unavailable(w, message, now=utc_now()) or w
                )
            else:
                await self._parts.works.put(
                    key, lambda c: workstatus.unavailable(c, message, now=utc_now()) if c else None
                )
            raise
        if any(s.error and (" 401 " in s.error or " 403 " in s.error) for s in statuses):
            await self._members.forget(name)  # credential rotated? read it again next time
            raise RetryableError(f"member {name} refused FOOT's credential")
        self.applies += 1
        manifests_hash = work.spec.manifests_hash
        if staged is not None:  # one write: the spec and what the member answered
            stored = await self._store_staged(
                key,
                staged,
                lambda w: workstatus.applied(w, manifests_hash, statuses, now=utc_now()) or w,
            )
        else:
            stored = await self._parts.works.put(
                key,
                lambda c: (
                    workstatus.applied(c, manifests_hash, statuses, now=utc_now()) if c else None
                ),
            )
        if stored is not None:
            self._watch_member(member, stored)
            self._fold_observed_again(key, stored)
        self._parts.queues.aggregate_soon(split_work_key(key)[1])
        refused = [f"{s.kind} {s.name}: {s.error}" for s in statuses if s.error]
        if refused:
            # Shown on the work; tried again with backoff, as a refusal may pass (a NodePort
            # someone else holds, a kind not served yet). A conflict (Abort) is a decision
            # and waits for a change of the binding instead.
            raise RetryableError(f"member {name} refused {'; '.join(refused)}")

    async def _store_staged(
        self, key: str, staged: Work, finish: Callable[[Work], Work]
    ) -> Work | None:
        """Store a staged work as `finish` makes it, whatever is stored now; then it is no
        longer staged (unless a newer render staged another meanwhile)."""
        stored = await self._parts.works.put(key, lambda _current: finish(staged))
        if not self._parts.works.unstage(key, only=staged):
            # Staged again or dropped while being applied: the binding's render looks again.
            self._parts.queues.render.add(split_work_key(key)[1])
        return stored

    async def _purge(self, key: str, work: Work) -> None:
        member = await self._members.get(work.spec.cluster)
        for manifest in reversed(work.spec.manifests):
            if self._parts.works.wanted_elsewhere(key, work.spec.cluster, manifest):
                continue
            with member.guarded():
                await member.limiter.acquire()
                removed = await member.applier.remove(manifest)
            if not removed:
                log.info("left %s/%s alone: FOOT does not manage it", work.spec.cluster, manifest)
        await self._parts.works.delete(key)
        self._parts.queues.render.add(split_work_key(key)[1])

    # ---- member status -------------------------------------------------------------------

    def _fold_observed_again(self, key: str, work: Work) -> None:
        """Fold what the member's watch last reported into a work just written with its
        apply's answer: that answer may be older than a report that came while the apply
        was in flight (a kubelet marking the replicas ready; the report was dropped then, as
        the work was not applied yet), and the watch sends nothing more until the object
        changes again. The work would show 0 ready replicas for good."""
        cluster = work.spec.cluster
        if any((cluster, identity(m)) in self._observed for m in work.spec.manifests):
            self._parts.queues.status.add(key)

    def _watch_member(self, member: Member, work: Work) -> None:
        if not self._watch_member_status:
            return
        for manifest in work.spec.manifests:
            api_version, kind, _, _ = identity(manifest)
            if (api_version, kind) not in WATCHED_KINDS or (api_version, kind) in member.watched:
                continue
            member.watched.add((api_version, kind))
            self._spawn(
                f"watch:{member.name}:{kind}",
                lambda m=member, a=api_version, k=kind: self._watch(m, a, k),  # type: ignore[misc]
            )

    async def _watch(self, member: Member, api_version: str, kind: str) -> None:
        path = await member.applier.collection_path(api_version, kind)

        def on_event(event: str, obj: dict[str, Any]) -> None:
            metadata = obj.get("metadata") or {}
            ident: Identity = (
                api_version,
                kind,
                metadata.get("namespace"),
                str(metadata.get("name")),
            )
            self._observed[(member.name, ident)] = None if event == "DELETED" else obj
            for key in self._parts.works.works_with(member.name, ident):
                self._parts.queues.status.add(key)

        await watch_collection(member.kube, path, on_event, label_selector=MANAGED_SELECTOR)

    async def refresh_status(self, key: str) -> None:
        """The `status` queue's reconciler: fold what the member reports into the work."""
        work = self._parts.works.get(key)
        if work is None or work.spec.deleting:
            return
        cluster = work.spec.cluster
        objects = {
            ident: self._observed[(cluster, ident)]
            for ident in (identity(m) for m in work.spec.manifests)
            if (cluster, ident) in self._observed
        }
        missing = False

        def fold(current: Work | None) -> Work | None:
            nonlocal missing
            if current is None:
                return None
            updated, missing = workstatus.observed(current, objects, now=utc_now())
            return updated

        stored = await self._parts.works.put(key, fold)
        if missing and stored is not None:
            # Deleted in the member behind FOOT's back: apply again.
            self._parts.queues.lane(cluster).add(key)
        self._parts.queues.aggregate_soon(split_work_key(key)[1])

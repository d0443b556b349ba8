"""The works cache: the dispatcher's copy of its works, the staged ones, and their indexes.

The dispatcher is the works' only writer: it reads them once at start and keeps its copy
from its own writes (a write that finds another revision re-reads the key). A push work is
first *staged* (desired, in memory only) and stored with its first apply's answer; a staged
work counts wherever a stored one does (who else has an object, what a binding's works
are), so every index here covers both. Every change goes through `remember`, `forget`,
`stage` and `unstage`, which keep the indexes in step.

It reaches the bucket through `WorksBucket`, the part of `foot.bus.kv.KvStore` it uses, so
it can run on an in-memory bucket in unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from foot.bus.kv import Entry, Versioned
from foot.errors import ConflictError
from foot.kinds.works import Work
from foot.manifests import identity
from foot.runtime.locks import KeyedLocks
from foot.runtime.mirror import decode_entry

WRITE_ATTEMPTS = 8
"""Writes of one key that may find another revision before `put` gives up."""

Identity = tuple[str, str, str | None, str]
"""(apiVersion, kind, namespace, name) of an object in a member."""

WorkChange = Callable[[Work | None], Work | None]
"""What a write makes of the current work (None: nothing to write)."""


class WorksBucket(Protocol):
    """What the cache needs of the works bucket (`foot.bus.kv.KvStore` has it)."""

    name: str

    async def read(self, key: str, decode: Callable[[bytes], Work]) -> Versioned[Work] | None: ...

    async def update_with(
        self,
        key: str,
        change: Callable[[Versioned[Work] | None], Work | None],
        *,
        decode: Callable[[bytes], Work],
        encode: Callable[[Work], bytes],
        known: Versioned[Work] | None,
        attempts: int,
        seal: Callable[[Work], bool],
    ) -> Versioned[Work] | None: ...

    async def delete(self, key: str, revision: int | None = None) -> None: ...


def split_work_key(key: str) -> tuple[str, str]:
    """(cluster, binding key) of a work key."""
    cluster, _, binding_key = key.partition(".")
    return cluster, binding_key


def encode_work(work: Work) -> bytes:
    """The stored form (the bucket revision is not part of the value)."""
    if work.metadata.revision:
        work = work.model_copy(
            update={"metadata": work.metadata.model_copy(update={"revision": 0})}
        )
    return work.model_dump_json(by_alias=True, exclude_none=True).encode()


def carries_secret(work: Work) -> bool:
    """A work holding a Secret is stored sealed (never in plain text in the bucket)."""
    return any(
        m.get("kind") == "Secret" and m.get("apiVersion") == "v1" for m in work.spec.manifests
    )


class WorksCache:
    """Works by key, staged works, and the indexes over both (see the module docstring)."""

    def __init__(self, bucket: WorksBucket) -> None:
        self.bucket = bucket
        self._works: dict[str, Work] = {}
        """Work key -> newest copy known (the informer's or this process's own write)."""
        self._revisions: dict[str, int] = {}
        """Work key -> bucket revision of that copy (what the next write expects)."""
        self._staged: dict[str, Work] = {}
        """Work key -> desired push work not stored yet (stored with its first apply's answer)."""
        self._staged_of_binding: dict[str, set[str]] = {}
        self._works_of_binding: dict[str, set[str]] = {}
        self._works_of_cluster: dict[str, set[str]] = {}
        self._object_works: dict[tuple[str, Identity], set[str]] = {}
        """(cluster, object) -> keys of the works (stored or staged) that have it."""
        self._locks = KeyedLocks()

    # ---- reading -------------------------------------------------------------------------

    def get(self, key: str) -> Work | None:
        """The stored work of `key` (as this process knows it)."""
        return self._works.get(key)

    def staged(self, key: str) -> Work | None:
        return self._staged.get(key)

    def current(self, key: str) -> Work | None:
        """The staged work of `key`, else the stored one."""
        return self._staged.get(key) or self._works.get(key)

    def revision(self, key: str) -> int:
        """Bucket revision of the stored copy (0: none known)."""
        return self._revisions.get(key, 0)

    def items(self) -> list[tuple[str, Work]]:
        """Every stored work (a copy of the list: safe to change the cache meanwhile)."""
        return list(self._works.items())

    def keys_of_cluster(self, cluster: str) -> set[str]:
        """Keys of the stored works for `cluster` (a copy)."""
        return set(self._works_of_cluster.get(cluster, ()))

    def staged_keys(self, binding_key: str) -> list[str]:
        """Keys of the binding's staged works (a copy)."""
        return list(self._staged_of_binding.get(binding_key, ()))

    def has_staged(self, binding_key: str) -> bool:
        return binding_key in self._staged_of_binding

    def works_with(self, cluster: str, ident: Identity) -> set[str]:
        """Keys of the works (stored or staged) that have object `ident` in `cluster`."""
        return set(self._object_works.get((cluster, ident), ()))

    def binding_works(self, binding_key: str) -> dict[str, tuple[str, Work]]:
        """Cluster -> (key, work) of the binding's stored works."""
        found = {}
        for key in self._works_of_binding.get(binding_key, set()):
            work = self._works.get(key)
            if work is not None:
                found[work.spec.cluster] = (key, work)
        return found

    def binding_view(self, binding_key: str) -> dict[str, tuple[str, Work]]:
        """The binding's works, the staged ones in place of what is stored."""
        found = self.binding_works(binding_key)
        for key in self._staged_of_binding.get(binding_key, ()):
            work = self._staged[key]
            found[work.spec.cluster] = (key, work)
        return found

    def identities(self, key: str) -> set[Identity]:
        """The objects of the staged and the stored work of `key`."""
        return {
            identity(m)
            for work in (self._staged.get(key), self._works.get(key))
            if work is not None
            for m in work.spec.manifests
        }

    def wanted_elsewhere(self, key: str, cluster: str, manifest: dict[str, Any]) -> bool:
        """Another live work for the same cluster has the same object (a shared dependency)."""
        for other in self._object_works.get((cluster, identity(manifest)), set()):
            work = self.current(other)
            if other != key and work is not None and not work.spec.deleting:
                return True
        return False

    def on_entry(self, entry: Entry) -> None:
        """An entry of the works bucket's replay at start (what is already known is skipped;
        one that fails to decode is logged and skipped, by `decode_entry`)."""
        if not self.is_news(entry.key, entry.revision, deleted=entry.deleted):
            return
        if entry.deleted or entry.value is None:
            self.forget(entry.key)
            return
        work = decode_entry(entry.key, entry.value, Work.from_json, "work")
        if work is not None:
            self.remember(entry.key, work, entry.revision)

    def is_news(self, key: str, revision: int, *, deleted: bool) -> bool:
        """Whether a bucket entry tells this cache something it does not know already."""
        if self._revisions.get(key, 0) >= revision:
            return False  # our own write, already known
        # A write of ours in flight updates the cache itself.
        return deleted or not self._locks.locked(key)

    # ---- keeping the indexes in step -----------------------------------------------------

    def remember(self, key: str, work: Work, revision: int) -> None:
        """`work` is stored under `key` at `revision`."""
        old = self._works.get(key)
        self._works[key] = work
        self._revisions[key] = revision
        cluster, binding_key = split_work_key(key)
        self._works_of_binding.setdefault(binding_key, set()).add(key)
        self._works_of_cluster.setdefault(cluster, set()).add(key)
        if old is None or old.spec.manifests_hash != work.spec.manifests_hash:
            self._unlink(key, old, work, self._staged.get(key))
            self._link(key, work)

    def forget(self, key: str) -> None:
        """Nothing is stored under `key` (any more)."""
        old = self._works.pop(key, None)
        self._revisions.pop(key, None)
        cluster, binding_key = split_work_key(key)
        self._works_of_binding.get(binding_key, set()).discard(key)
        self._works_of_cluster.get(cluster, set()).discard(key)
        self._unlink(key, old, self._staged.get(key))

    def stage(self, key: str, work: Work) -> None:
        """`work` is to be applied, then stored with the member's answer."""
        previous = self._staged.get(key)
        self._staged[key] = work
        self._staged_of_binding.setdefault(split_work_key(key)[1], set()).add(key)
        self._unlink(key, previous, work, self._works.get(key))
        self._link(key, work)

    def unstage(self, key: str, only: Work | None = None) -> bool:
        """Drop the staged work of `key` (only if it is `only`, when given); True if dropped."""
        previous = self._staged.get(key)
        if previous is None or (only is not None and previous is not only):
            return False
        del self._staged[key]
        binding_key = split_work_key(key)[1]
        keys = self._staged_of_binding.get(binding_key)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._staged_of_binding[binding_key]
        self._unlink(key, previous, self._works.get(key))
        return True

    def _link(self, key: str, work: Work) -> None:
        """Index the objects of a work (stored or staged) by (cluster, identity)."""
        cluster = work.spec.cluster
        for manifest in work.spec.manifests:
            self._object_works.setdefault((cluster, identity(manifest)), set()).add(key)

    def _unlink(self, key: str, old: Work | None, *keep: Work | None) -> None:
        """Drop the index entries of `old`'s objects that none of `keep` has."""
        if old is None:
            return
        kept = {identity(m) for work in keep if work is not None for m in work.spec.manifests}
        for manifest in old.spec.manifests:
            ident = identity(manifest)
            if ident not in kept:
                self._object_works.get((old.spec.cluster, ident), set()).discard(key)

    # ---- revision-checked writes ---------------------------------------------------------

    async def refresh(self, key: str) -> None:
        """Read `key` again from the bucket."""
        self._take(key, await self.bucket.read(key, Work.from_json))

    def _take(self, key: str, version: Versioned[Work] | None) -> None:
        """What the bucket holds under `key`, as read."""
        if version is None:
            self.forget(key)
        else:
            self.remember(key, version.value, version.revision)

    async def put(self, key: str, change: WorkChange) -> Work | None:
        """Store `change(current)` with optimistic concurrency (None from `change`: nothing
        to write); re-read and try again when someone (our other path) wrote in between."""
        async with self._locks.hold(key):
            current = self._works.get(key)
            known = None if current is None else Versioned(current, self._revisions.get(key, 0))
            seen = [known]  # the versions `change` was made over: the cache's, then each read

            def change_over(version: Versioned[Work] | None) -> Work | None:
                if version is not seen[-1]:  # read again after a conflict: cache it
                    self._take(key, version)
                    seen.append(version)
                return change(None if version is None else version.value)

            try:
                written = await self.bucket.update_with(
                    key,
                    change_over,
                    decode=Work.from_json,
                    encode=encode_work,
                    known=known,
                    attempts=WRITE_ATTEMPTS,
                    seal=carries_secret,
                )
            except ConflictError as exc:
                await self.refresh(key)
                raise ConflictError(self.bucket.name, key, None) from exc
            if written is None:
                return None
            if written is not seen[-1]:  # a write, not the current version left as it is
                self.remember(key, written.value, written.revision)
            return written.value

    async def delete(self, key: str) -> None:
        """Delete the stored work of `key` at the revision known (ConflictError, after
        reading it again, when it moved on)."""
        async with self._locks.hold(key):
            current = self._works.get(key)
            if current is None:
                return
            try:
                await self.bucket.delete(key, revision=self._revisions.get(key, 0))
            except ConflictError:
                await self.refresh(key)
                raise
            self.forget(key)

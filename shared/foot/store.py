"""Typed access to stored objects: reads for everyone, writes for the owning service only."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from foot.api import Outcome
from foot.bus.connection import Bus
from foot.bus.kv import Entry
from foot.errors import AlreadyExistsError, ConflictError, PermanentError
from foot.kinds import KINDS, KindInfo
from foot.objects import KubeObject, utc_now
from foot.secrets import FORMAT_PREFIX as SEALED_PREFIX
from foot.telemetry import current_traceparent

WRITE_ATTEMPTS = 8


def decode(info: KindInfo, entry: Entry) -> KubeObject:
    """The stored object, with `metadata.revision` telling which revision it was read at."""
    assert entry.value is not None  # noqa: S101 - callers pass live entries only
    if entry.value.startswith(SEALED_PREFIX):
        raise PermanentError(
            f"{info.bucket}/{entry.key} is sealed and this process has no sealing key "
            "(secret_key_file)"
        )
    stored = info.model.model_validate_json(entry.value, by_alias=True)
    return stored.model_copy(
        update={"metadata": stored.metadata.model_copy(update={"revision": entry.revision})}
    )


class ObjectStore:
    """Objects of registered kinds in their buckets.

    `owner` is the service using the store; writes of kinds it does not own are
    refused, which is how "one writer per object" is kept in code, not just by
    convention.
    """

    def __init__(self, bus: Bus, owner: str) -> None:
        self.bus = bus
        self.owner = owner

    async def get(self, info: KindInfo, namespace: str | None, name: str) -> KubeObject | None:
        found = await self._entry(info, namespace, name)
        return None if found is None else decode(info, found)

    async def _entry(self, info: KindInfo, namespace: str | None, name: str) -> Entry | None:
        """The stored entry of `name`: read by its key, or found among the objects of its
        namespace for a kind whose keys do not hold the name (works)."""
        if info.stored_under is None:
            entry = await (await self.bus.kv(info.bucket)).get(info.key(namespace, name))
            return None if entry is None or entry.deleted else entry
        for entry, obj in await self._listed(info, namespace):
            if obj.name == name:
                return entry
        return None

    async def _listed(
        self, info: KindInfo, namespace: str | None
    ) -> list[tuple[Entry, KubeObject]]:
        store = await self.bus.kv(info.bucket)
        if info.stored_under is None:
            entries = await store.entries(info.pattern(namespace))
            return [(entry, decode(info, entry)) for entry in entries]
        # Keyed by the object they come from: a work of a cluster-scoped binding (key `_`)
        # is in `default`, so the namespace is the one the object itself names.
        listed = [(entry, decode(info, entry)) for entry in await store.entries(info.pattern())]
        return [(e, o) for e, o in listed if namespace is None or o.namespace == namespace]

    async def list(self, info: KindInfo, namespace: str | None = None) -> list[KubeObject]:
        objects = [obj for _, obj in await self._listed(info, namespace)]
        return sorted(objects, key=lambda o: (o.metadata.namespace or "", o.metadata.name))

    def _check_owner(self, info: KindInfo) -> None:
        if info.owner != self.owner:
            raise PermanentError(
                f"{info.kind} is owned by the {info.owner} service; {self.owner} may not write it"
            )

    async def apply(self, desired: KubeObject) -> tuple[Outcome, KubeObject]:
        """Create or update from a user's desired state.

        The stored uid, creation time and status are kept; `generation` moves
        only when the desired state changes. A concurrent writer makes us read
        again and retry.
        """
        info = KINDS.lookup(desired.api_version, desired.kind)
        self._check_owner(info)
        if info.stored_under is not None:
            raise PermanentError(
                f"{info.kind} objects are made by the {info.owner} service from the objects "
                "they come from; they are not applied"
            )
        store = await self.bus.kv(info.bucket)
        key = info.key(desired.metadata.namespace, desired.metadata.name)
        for _ in range(WRITE_ATTEMPTS):
            entry = await store.get(key)
            try:
                if entry is None or entry.deleted:
                    created = _stamp_new(desired)
                    revision = await store.create(key, created.to_json(), seal=info.sensitive)
                    return "created", _at_revision(created, revision)
                current = decode(info, entry)
                updated = _merge(current, desired)
                if updated is None:
                    return "unchanged", current
                revision = await store.update(
                    key, updated.to_json(), entry.revision, seal=info.sensitive
                )
                return "configured", _at_revision(updated, revision)
            except (ConflictError, AlreadyExistsError):
                continue
        raise ConflictError(info.bucket, key, None)

    async def delete(self, info: KindInfo, namespace: str | None, name: str) -> bool:
        """Delete; False when there was nothing to delete."""
        self._check_owner(info)
        entry = await self._entry(info, namespace, name)
        if entry is None:
            return False
        await (await self.bus.kv(info.bucket)).delete(entry.key)
        return True


def _at_revision(obj: KubeObject, revision: int) -> KubeObject:
    return obj.model_copy(
        update={"metadata": obj.metadata.model_copy(update={"revision": revision})}
    )


def _stamp_new(desired: KubeObject) -> KubeObject:
    metadata = desired.metadata.model_copy(
        update={
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "creation_timestamp": utc_now(),
            "revision": 0,
            "traceparent": current_traceparent(),
        }
    )
    return _without_status(desired).model_copy(update={"metadata": metadata})


def _without_status(obj: KubeObject) -> KubeObject:
    """Users do not write status; the owning service's controllers do."""
    if getattr(obj, "status", None) is None:
        return obj
    return obj.model_copy(update={"status": None})


def _merge(current: KubeObject, desired: KubeObject) -> KubeObject | None:
    """The next stored version, or None when nothing the user controls changed."""
    spec_changed = _canonical(desired.desired_state()) != _canonical(current.desired_state())
    labels_changed = (desired.metadata.labels, desired.metadata.annotations) != (
        current.metadata.labels,
        current.metadata.annotations,
    )
    if not spec_changed and not labels_changed:
        return None
    metadata = current.metadata.model_copy(
        update={
            "labels": desired.metadata.labels,
            "annotations": desired.metadata.annotations,
            "generation": current.metadata.generation + (1 if spec_changed else 0),
            "traceparent": current_traceparent(),
        }
    )
    status = getattr(current, "status", None)
    updated = desired.model_copy(update={"metadata": metadata})
    if status is not None:
        updated = updated.model_copy(update={"status": status})
    return updated


def _canonical(state: dict[str, Any]) -> bytes:
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS)

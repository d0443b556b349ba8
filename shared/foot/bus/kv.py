"""Key-value buckets with optimistic concurrency: every write names the revision it expects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from foot.bus.errors import nats_errors
from foot.errors import AlreadyExistsError, ConflictError

WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
"""JetStream's error codes for an expected-last-sequence mismatch."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored value; `value is None` means the key was deleted at this revision."""

    key: str
    value: bytes | None
    revision: int

    @property
    def deleted(self) -> bool:
        return self.value is None


class KvStore:
    """A JetStream key-value bucket with typed errors instead of transport exceptions."""

    def __init__(self, kv: KeyValue, name: str) -> None:
        self._kv = kv
        self.name = name

    async def get(self, key: str) -> Entry | None:
        with nats_errors(f"{self.name}/{key}: get"):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
        return Entry(key=key, value=entry.value, revision=entry.revision or 0)

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; AlreadyExistsError when it is present (and not deleted)."""
        with nats_errors(f"{self.name}/{key}: create"):
            try:
                return await self._kv.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise AlreadyExistsError(f"{self.name}/{key} already exists") from exc

    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Replace the value only if the stored revision is `revision`; else ConflictError."""
        with nats_errors(f"{self.name}/{key}: update"):
            try:
                return await self._kv.update(key, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise ConflictError(self.name, key, revision) from exc

    async def put(self, key: str, value: bytes) -> int:
        """Unconditional write, for values only this process ever writes."""
        with nats_errors(f"{self.name}/{key}: put"):
            return await self._kv.put(key, value)

    async def delete(self, key: str, revision: int | None = None) -> None:
        """Delete (optionally only at `revision`, else ConflictError)."""
        with nats_errors(f"{self.name}/{key}: delete"):
            try:
                await self._kv.delete(key, last=revision)
            except nats.js.errors.APIError as exc:
                if exc.err_code in WRONG_LAST_SEQUENCE:
                    raise ConflictError(self.name, key, revision) from exc
                raise

    async def entries(self, pattern: str = ">") -> list[Entry]:
        """A consistent snapshot of the live keys matching `pattern` (NATS wildcards)."""
        return [entry async for entry in self._snapshot(pattern)]

    async def _snapshot(self, pattern: str) -> AsyncIterator[Entry]:
        async with self.watch(pattern) as events:
            async for entry in events:
                if entry is None:
                    return
                if not entry.deleted:
                    yield entry

    @contextlib.asynccontextmanager
    async def watch(self, pattern: str = ">") -> AsyncIterator[AsyncIterator[Entry | None]]:
        """Current values of matching keys, then every change; `None` marks "caught up".

        The first phase replays the latest value per key (so a restarted
        reconciler sees everything), the second streams changes as they land.
        """
        setup = asyncio.ensure_future(self._kv.watch(pattern))
        try:
            with nats_errors(f"{self.name}: watch {pattern}"):
                watcher = await asyncio.shield(setup)
        except asyncio.CancelledError:
            # Cancelled half-way (e.g. a stop right after start): nats-py has already
            # subscribed and started heartbeat tasks, so finish and undo the setup.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await (await setup).stop()  # type: ignore[no-untyped-call]
            raise

        async def events() -> AsyncIterator[Entry | None]:
            async for raw in watcher:
                if raw is None:
                    yield None
                    continue
                deleted = raw.operation in {KV_DEL, KV_PURGE}
                yield Entry(
                    key=raw.key,
                    value=None if deleted else raw.value,
                    revision=raw.revision or 0,
                )

        try:
            yield events()
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, asyncio.CancelledError):
                await watcher.stop()  # type: ignore[no-untyped-call]

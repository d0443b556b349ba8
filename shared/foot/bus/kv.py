"""Key-value buckets with optimistic concurrency: every write names the revision it expects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from foot.bus.errors import nats_errors
from foot.errors import AlreadyExistsError, ConflictError, PermanentError
from foot.secrets import FORMAT_PREFIX as SEALED_PREFIX
from foot.secrets import SecretBox

WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
"""JetStream's error codes for an expected-last-sequence mismatch."""
UPDATE_ATTEMPTS = 5
"""Writes `update_with` tries (reading again after each conflict) before it gives up."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Versioned(Generic[T]):
    """A decoded value and the bucket revision it was read (or written) at."""

    value: T
    revision: int


class _Unread:
    """`update_with` without a known current value: it reads one."""


UNREAD = _Unread()


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
    """A JetStream key-value bucket with typed errors instead of transport exceptions.

    Values holding secrets (a Secret template, a work that carries one) are written with
    `seal=True`: the bucket then holds AES-GCM ciphertext bound to `<bucket>/<key>`, and
    every read through a store whose bus has the installation's key opens it again, so
    readers never need to know which values were sealed.
    """

    def __init__(
        self,
        kv: KeyValue,
        name: str,
        box: Callable[[], SecretBox | None] = lambda: None,
        *,
        js: JetStreamContext,
    ) -> None:
        self._kv = kv
        self._js = js
        self.name = name
        self._box = box

    def _open(self, key: str, value: bytes | None) -> bytes | None:
        if value is None or not value.startswith(SEALED_PREFIX):
            return value
        box = self._box()
        if box is None:
            return value  # still sealed: a reader holding its own SecretBox opens it
        return box.open(value, context=f"{self.name}/{key}")

    def _sealed(self, key: str, value: bytes, seal: bool) -> bytes:
        if not seal:
            return value
        box = self._box()
        if box is None:
            raise PermanentError(
                f"{self.name}/{key} must be stored sealed and this process has no sealing key "
                "(secret_key_file)"
            )
        return box.seal(value, context=f"{self.name}/{key}")

    async def get(self, key: str) -> Entry | None:
        with nats_errors(f"{self.name}/{key}: get"):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
        return Entry(key=key, value=self._open(key, entry.value), revision=entry.revision or 0)

    async def create(self, key: str, value: bytes, *, seal: bool = False) -> int:
        """Store a new key; AlreadyExistsError when it is present (and not deleted)."""
        stored = self._sealed(key, value, seal)
        with nats_errors(f"{self.name}/{key}: create"):
            try:
                return await self._kv.create(key, stored)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise AlreadyExistsError(f"{self.name}/{key} already exists") from exc

    async def update(self, key: str, value: bytes, revision: int, *, seal: bool = False) -> int:
        """Replace the value only if the stored revision is `revision`; else ConflictError."""
        stored = self._sealed(key, value, seal)
        with nats_errors(f"{self.name}/{key}: update"):
            try:
                return await self._kv.update(key, stored, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError as exc:
                raise ConflictError(self.name, key, revision) from exc

    async def read(self, key: str, decode: Callable[[bytes], T]) -> Versioned[T] | None:
        """The decoded value of `key` and its revision; None when there is none."""
        entry = await self.get(key)
        if entry is None or entry.value is None:
            return None
        return Versioned(decode(entry.value), entry.revision)

    async def update_with(
        self,
        key: str,
        change: Callable[[Versioned[T] | None], T | None],
        *,
        decode: Callable[[bytes], T],
        encode: Callable[[T], bytes],
        known: Versioned[T] | _Unread | None = UNREAD,
        attempts: int = UPDATE_ATTEMPTS,
        seal: bool | Callable[[T], bool] = False,
    ) -> Versioned[T] | None:
        """Write `change(current)` at the revision `current` was read at; on a conflict read
        again and apply `change` again, `attempts` times at most (then ConflictError).

        `current` is None when the key does not exist (the write then creates it). `change`
        returns None when nothing is to be written: the current version is returned as is.
        `known`: a current version the caller already holds (a cache's), so the first try
        needs no read. `seal`: whether the value is stored sealed, or what decides it for each
        value written (a work is sealed when it carries a Secret). Returns the version written.
        """
        current = await self.read(key, decode) if isinstance(known, _Unread) else known
        for attempt in range(1, attempts + 1):
            changed = change(current)
            if changed is None:
                return current
            body = encode(changed)
            sealed = seal(changed) if callable(seal) else seal
            try:
                if current is None:
                    revision = await self.create(key, body, seal=sealed)
                else:
                    revision = await self.update(key, body, current.revision, seal=sealed)
            except (ConflictError, AlreadyExistsError) as exc:
                if attempt == attempts:
                    if isinstance(exc, ConflictError):
                        raise
                    raise ConflictError(self.name, key, None) from exc
                current = await self.read(key, decode)
                continue
            return Versioned(changed, revision)
        raise ConflictError(self.name, key, None)  # attempts < 1

    async def put(self, key: str, value: bytes, *, seal: bool = False) -> int:
        """Unconditional write, for values only this process ever writes."""
        stored = self._sealed(key, value, seal)
        with nats_errors(f"{self.name}/{key}: put"):
            return await self._kv.put(key, stored)

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

    async def _last_revision(self, pattern: str) -> int:
        """Revision of the newest entry (value or deletion) whose key matches `pattern`;
        0 when there is none."""
        with nats_errors(f"{self.name}: last revision of {pattern}"):
            try:
                message = await self._js.get_last_msg(
                    f"KV_{self.name}", f"$KV.{self.name}.{pattern}"
                )
            except nats.js.errors.NotFoundError:
                return 0
        return message.seq or 0

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

        "Caught up" is decided here, not by nats-py's own marker: that one follows the
        per-message pending count, which under concurrent writes can read 0 before the
        replay is over (nats.py #842/#995, nats-server #4824), so a snapshot could miss
        keys. Instead the bucket's last revision matching `pattern` is read once the
        watch's consumer exists; the replay (each key's last entry as of the consumer's
        creation, then every later change) is delivered in revision order, so once an
        entry at or past that revision arrives, every key as of the read has been seen.
        Read before the consumer instead, a key written between the two would be replayed
        past that revision, after "caught up": a snapshot would miss it.
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
        try:
            caught_up_at = await self._last_revision(pattern)
        except BaseException:
            with contextlib.suppress(nats.errors.Error, TimeoutError, asyncio.CancelledError):
                await watcher.stop()  # type: ignore[no-untyped-call]
            raise

        async def events() -> AsyncIterator[Entry | None]:
            caught_up = caught_up_at == 0
            if caught_up:
                yield None
            async for raw in watcher:
                if raw is None:
                    continue  # nats-py's marker: see above
                deleted = raw.operation in {KV_DEL, KV_PURGE}
                revision = raw.revision or 0
                yield Entry(
                    key=raw.key,
                    value=None if deleted else self._open(raw.key, raw.value),
                    revision=revision,
                )
                if not caught_up and revision >= caught_up_at:
                    caught_up = True
                    yield None

        try:
            yield events()
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError, asyncio.CancelledError):
                await watcher.stop()  # type: ignore[no-untyped-call]

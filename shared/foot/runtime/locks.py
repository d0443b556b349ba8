"""Per-key locks that exist only while someone holds or waits for them.

A service that serialises writes per key (one work, one cluster) would otherwise keep one
`asyncio.Lock` per key it ever wrote: tens of thousands of long-lived objects the cyclic
collector scans again and again, for keys that are rarely contended.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class KeyedLocks:
    """`async with locks.hold(key): ...` serialises the holders of one key."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Keys held or waited for now."""
        return len(self._entries)

    def locked(self, key: str) -> bool:
        """Someone holds `key` now."""
        entry = self._entries.get(key)
        return entry is not None and entry.lock.locked()

    def hold(self, key: str) -> _Hold:
        return _Hold(self._entries, key)


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Hold:
    __slots__ = ("_entries", "_entry", "_key")

    def __init__(self, entries: dict[str, _Entry], key: str) -> None:
        self._entries = entries
        self._key = key
        self._entry: _Entry | None = None

    async def __aenter__(self) -> None:
        entry = self._entries.get(self._key)
        if entry is None:
            entry = self._entries[self._key] = _Entry()
        entry.users += 1
        self._entry = entry
        try:
            await entry.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        assert self._entry is not None  # noqa: S101 - entered before exiting
        self._entry.lock.release()
        self._leave()

    def _leave(self) -> None:
        entry = self._entry
        assert entry is not None  # noqa: S101 - set in __aenter__
        entry.users -= 1
        if entry.users == 0 and self._entries.get(self._key) is entry:
            del self._entries[self._key]

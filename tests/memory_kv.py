"""An in-memory key-value bucket with `foot.bus.kv.KvStore`'s semantics and error types.

For unit tests of code written against (a Protocol subset of) `KvStore`, without NATS. It
follows JetStream's rules as `KvStore` exposes them: one revision sequence per bucket, a
deletion is a marker with its own revision, `create` succeeds on a deleted key,
`update(revision=0)` expects a key never written, `delete(revision=0 or None)` is
unconditional; `read` and `update_with` are `KvStore`'s own, over these. `seal=True` writes
are stored as given and their keys noted in `sealed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from foot.bus.kv import UPDATE_ATTEMPTS, Entry, KvStore, Versioned
from foot.errors import AlreadyExistsError, ConflictError

T = TypeVar("T")


def subject_matches(pattern: str, key: str) -> bool:
    """NATS wildcard matching: `*` one token, `>` the rest (one token or more)."""
    wanted = pattern.split(".")
    tokens = key.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


class MemoryKv:
    """A bucket in memory (see the module docstring)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.revision = 0
        """Revision of the newest write (value or deletion) to any key."""
        self._values: dict[str, bytes | None] = {}
        """Key -> its value, None once deleted."""
        self._last: dict[str, int] = {}
        """Key -> revision of its newest write (value or deletion)."""
        self.sealed: set[str] = set()
        """Keys whose newest value was written with `seal=True`."""
        self.writes = 0
        """Writes that were stored (creates, updates, puts, deletions)."""

    def _write(self, key: str, value: bytes | None, *, seal: bool = False) -> int:
        self.revision += 1
        self.writes += 1
        self._values[key] = value
        self._last[key] = self.revision
        if seal:
            self.sealed.add(key)
        else:
            self.sealed.discard(key)
        return self.revision

    async def get(self, key: str) -> Entry | None:
        value = self._values.get(key)
        if value is None:
            return None
        return Entry(key=key, value=value, revision=self._last[key])

    async def create(self, key: str, value: bytes, *, seal: bool = False) -> int:
        if self._values.get(key) is not None:
            raise AlreadyExistsError(f"{self.name}/{key} already exists")
        return self._write(key, value, seal=seal)

    async def update(self, key: str, value: bytes, revision: int, *, seal: bool = False) -> int:
        if self._last.get(key, 0) != revision:
            raise ConflictError(self.name, key, revision)
        return self._write(key, value, seal=seal)

    async def read(self, key: str, decode: Callable[[bytes], T]) -> Versioned[T] | None:
        return await KvStore.read(cast("KvStore", self), key, decode)

    async def update_with(
        self,
        key: str,
        change: Callable[[Versioned[T] | None], T | None],
        *,
        decode: Callable[[bytes], T],
        encode: Callable[[T], bytes],
        known: Versioned[T] | None,
        attempts: int = UPDATE_ATTEMPTS,
        seal: bool | Callable[[T], bool] = False,
    ) -> Versioned[T] | None:
        """`KvStore.update_with`'s own loop, run over this bucket's reads and writes."""
        return await KvStore.update_with(
            cast("KvStore", self),
            key,
            change,
            decode=decode,
            encode=encode,
            known=known,
            attempts=attempts,
            seal=seal,
        )

    async def put(self, key: str, value: bytes, *, seal: bool = False) -> int:
        return self._write(key, value, seal=seal)

    async def delete(self, key: str, revision: int | None = None) -> None:
        if revision and self._last.get(key, 0) != revision:
            raise ConflictError(self.name, key, revision)
        self._write(key, None)

    async def entries(self, pattern: str = ">") -> list[Entry]:
        """The live keys matching `pattern`, in revision order (as a replay gives them)."""
        live = [
            Entry(key=key, value=value, revision=self._last[key])
            for key, value in self._values.items()
            if value is not None and subject_matches(pattern, key)
        ]
        return sorted(live, key=lambda entry: entry.revision)

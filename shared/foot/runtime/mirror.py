"""Typed mirrors of buckets: each entry decoded once into its model, bad entries skipped.

A `Mirror` listens to an informer and keeps `items` (bucket key -> model). Whoever needs
to react registers `on_change(key, before, after)`: `before` is the model held until now
(None: new key), `after` the one held from now on (None: deleted). An entry that does not
decode is logged once here and ignored: the model held before stays, nobody is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import orjson
from pydantic import ValidationError

from foot.bus import Entry, Informer
from foot.errors import FootError

log = logging.getLogger(__name__)

T = TypeVar("T")
ChangeCallback = Callable[[str, T | None, T | None], None]
DECODE_ERRORS = (ValidationError, FootError, KeyError, TypeError, orjson.JSONDecodeError)
"""What a decoder raises for an entry that is not a valid model."""


def decode_entry(key: str, value: bytes, decode: Callable[[bytes], T], what: str) -> T | None:
    """The model of one entry's value; None, logged here, when it does not decode. The one
    place a bad entry is reported: `Mirror` uses it, and so does a bucket's only writer that
    keeps its copy from its own writes (it needs each entry's revision, which a `Mirror`
    does not keep)."""
    try:
        return decode(value)
    except DECODE_ERRORS as exc:
        # The validation message says it all: no traceback.
        log.error("%s %s does not parse, ignored: %s", what, key, exc)  # noqa: TRY400
        return None


class Mirror(Generic[T]):
    """The models of a bucket's entries (see the module docstring)."""

    def __init__(
        self,
        informer: Informer,
        decode: Callable[[bytes], T],
        what: str,
        items: dict[str, T] | None = None,
    ) -> None:
        self.informer = informer
        self.decode = decode
        self.what = what
        """What an entry is, for the log ("template", "cluster", ...)."""
        self.items: dict[str, T] = {} if items is None else items
        """The models by bucket key (`items`: the dict to keep them in, a service's own)."""
        self._callbacks: list[ChangeCallback[T]] = []
        informer.listen(self._on_entry)

    def on_change(self, callback: ChangeCallback[T]) -> None:
        self._callbacks.append(callback)

    @property
    def synced(self) -> bool:
        """The bucket's initial state has been replayed."""
        return self.informer.synced.is_set()

    def get(self, key: str) -> T | None:
        return self.items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def _on_entry(self, entry: Entry) -> None:
        before = self.items.get(entry.key)
        if entry.deleted or entry.value is None:
            self.items.pop(entry.key, None)
            after = None
        else:
            after = decode_entry(entry.key, entry.value, self.decode, self.what)
            if after is None:
                return
            self.items[entry.key] = after
        for callback in self._callbacks:
            callback(entry.key, before, after)

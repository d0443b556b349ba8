"""The cyclic garbage collector for a process whose heap is mostly long-lived caches.

A service that keeps every work (or binding, or template) parsed in memory holds millions of
container objects that live for hours. CPython's generational collector scans each of them
again in every collection of the generation it sits in: measured in the dispatcher with 60,000
works, a second-generation collection took 1.5-1.7 s (0.85 µs per object), and collections
of the older generations grew with the cache until one burst of applies ran 30 % slower.

`LongLivedHeap` keeps the collector off what lives long:

* every `freeze_every_seconds` (from the event loop) whatever is in the heap is frozen:
  moved, without being scanned, where no collection looks. A young collection would have
  scanned it once more only to find it alive: in the dispatcher's benchmark that was
  ~36 objects per work applied, 7-8 % of its CPU, and pauses of 40-90 ms (each young
  collection walks 50,000 objects) that showed in p99 latency;
* should the loop not get to freeze for long, young collections still run once
  `young_threshold` new objects pile up, and their survivors are frozen the same way;
* what freezing keeps alive is garbage in reference cycles (refcounting frees the rest the
  moment it is dropped). A full collection (everything thawed, collected, frozen again) runs
  every `full_every_seconds`, logged with what it found and its length; in the dispatcher's
  benchmark (30,000 works applied, a partitioned member) the cycles kept were ~2,000 objects
  more than with young collections.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class LongLivedHeap:
    """Install once per process (`install`), run `freezes_on_timer` and `full_collections`
    as background tasks."""

    def __init__(
        self,
        young_threshold: int,
        full_every_seconds: float,
        freeze_every_seconds: float = 0.0,
    ) -> None:
        self.young_threshold = young_threshold
        self.full_every_seconds = full_every_seconds
        self.freeze_every_seconds = freeze_every_seconds
        """0: no timer, only the survivors of young collections are frozen."""
        self.freezes = 0
        """Freezes so far (on the timer or after a young collection)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._installed = False

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Freeze what exists now (modules, settings, the caches loaded at start) and freeze
        the survivors of every young collection from now on (`freezes_on_timer` is the
        timer's task)."""
        if self._installed:
            return
        self._loop = loop
        gc.freeze()
        # Older generations only ever hold what a young collection just promoted (frozen
        # right after), so their thresholds never matter; keep them from firing.
        gc.set_threshold(self.young_threshold, 1_000_000, 1_000_000)
        gc.callbacks.append(self._after_collection)
        self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._after_collection)
            self._installed = False

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 0 or self._loop is None:
            return
        # Not inside the collector's callback: from the event loop, right after.
        try:
            self._loop.call_soon_threadsafe(self._freeze)
        except RuntimeError:  # the loop is closed: the process is ending
            return

    def _freeze(self) -> None:
        gc.freeze()
        self.freezes += 1

    async def freezes_on_timer(self) -> None:
        """Every `freeze_every_seconds` (never when 0): freeze the heap as it is."""
        await _every(self.freeze_every_seconds, self._freeze)

    def full_collection(self) -> tuple[int, float]:
        """Thaw everything, collect, freeze again; returns (unreachable objects found,
        seconds taken)."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        return found, time.perf_counter() - started

    async def full_collections(self) -> None:
        """Every `full_every_seconds` (never when 0): a full collection, logged."""
        await _every(self.full_every_seconds, self._logged_full_collection)

    def _logged_full_collection(self) -> None:
        found, took = self.full_collection()
        log.info(
            "full garbage collection: %d unreachable objects, %.0f ms, %d objects kept",
            found,
            took * 1000,
            gc.get_freeze_count(),
        )


async def _every(seconds: float, action: Callable[[], None]) -> None:
    """Call `action` every `seconds` until cancelled (never when 0)."""
    if seconds <= 0:
        await asyncio.Event().wait()  # nothing to do; ends when cancelled
    while True:
        await asyncio.sleep(seconds)
        action()

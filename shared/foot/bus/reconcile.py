"""Level-triggered reconciliation over watched buckets, like client-go's informer + workqueue.

`Informer` mirrors a bucket (or a key pattern of it) into a local cache and
tells its `ReconcileQueue`s which keys changed. The queue hands each key to one
worker at a time and collapses bursts: a key added while it is already queued
is not queued twice, and a key added while it is being reconciled is queued
once more afterwards. The reconciler reads the *current* value (from the
cache), so whatever burst happened, the last state is always reconciled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from foot.backoff import Backoff
from foot.bus.kv import Entry, KvStore
from foot.errors import FootError

__all__ = ["Informer", "ReconcileQueue", "Reconciler", "TerminalError"]

log = logging.getLogger(__name__)

Reconciler = Callable[[str], Awaitable[None]]


class TerminalError(FootError):
    """Raised by a reconciler for a failure that retrying cannot mend: the key is not
    retried (it comes back only when it is added again, e.g. by a change)."""

    retryable = False


class ReconcileQueue:
    """A keyed work queue: deduplicating, one worker per key at a time, retry with backoff.

    Delayed adds keep the earliest time asked for. `add_after` is work still to do (it
    counts for `len` and `wait_idle`); `wake_after` is a reminder to look again at a known
    moment (a toleration running out) and does not count as pending work.
    """

    def __init__(
        self,
        name: str,
        reconcile: Reconciler,
        *,
        workers: int = 4,
        backoff: Backoff | None = None,
        on_outcome: Callable[[str, float], None] | None = None,
    ) -> None:
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self._backoff = backoff or Backoff()
        self._on_outcome = on_outcome
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._delayed: dict[str, _Delayed] = {}
        self._delayed_pending = 0
        """How many of `_delayed` are pending work (kept, not counted, per reconcile)."""
        self._shutting_down = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.reconciles = 0

    def add(self, key: str) -> None:
        """Ask for `key` to be reconciled (soon, once, however often it is asked)."""
        if self._shutting_down:
            return
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._idle.clear()
        self._ready.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        """Reconcile `key` in `delay` seconds, or earlier if an earlier time is pending."""
        self._delay(key, delay, pending=True)

    def wake_after(self, key: str, delay: float) -> None:
        """Reconcile `key` again in `delay` seconds (the earliest such time wins), without
        counting it as pending work meanwhile."""
        self._delay(key, delay, pending=False)

    def _delay(self, key: str, delay: float, *, pending: bool) -> None:
        if self._shutting_down:
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        existing = self._delayed.get(key)
        if existing is not None:
            if existing.when <= when:
                if pending and not existing.pending:
                    existing.pending = True
                    self._delayed_pending += 1
                    self._idle.clear()
                return
            self._drop_delayed(key)
            pending = pending or existing.pending
        self._delayed[key] = _Delayed(when, loop.call_at(when, self._fire_delayed, key), pending)
        if pending:
            self._delayed_pending += 1
            self._idle.clear()

    def _drop_delayed(self, key: str) -> bool:
        delayed = self._delayed.pop(key, None)
        if delayed is None:
            return False
        delayed.handle.cancel()
        if delayed.pending:
            self._delayed_pending -= 1
        return True

    def _fire_delayed(self, key: str) -> None:
        self._drop_delayed(key)
        self.add(key)
        self._update_idle()

    def forget(self, key: str) -> None:
        """Drop any delayed add of `key` (it is gone) and its count of failures."""
        self._drop_delayed(key)
        self._failures.pop(key, None)
        self._update_idle()

    def expedite(self) -> None:
        """Reconcile now every key waiting out its backoff, its failures forgotten (what
        they failed on is back)."""
        for key in list(self._delayed):
            if key in self._failures:
                self._drop_delayed(key)
                del self._failures[key]
                self.add(key)

    def __len__(self) -> int:
        return len(self._queued) + self._delayed_pending

    async def run(self) -> None:
        """Run the workers until cancelled or `shut_down()`."""
        async with asyncio.TaskGroup() as group:
            for index in range(self._workers):
                group.create_task(self._worker(), name=f"reconcile:{self.name}:{index}")

    async def _worker(self) -> None:
        while True:
            key = await self._ready.get()
            if key == "" and self._shutting_down:
                return
            self._queued.discard(key)
            self._processing.add(key)
            started = time.perf_counter()
            outcome = "ok"
            try:
                await self._reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except TerminalError as exc:
                outcome = "error"
                self._failures.pop(key, None)
                log.error("reconcile %s %s failed, not retried: %s", self.name, key, exc)  # noqa: TRY400
            except Exception as exc:  # noqa: BLE001 - every other failure is retried with backoff
                outcome = "error"
                self._retry_later(key, exc)
            finally:
                self.reconciles += 1
                self._processing.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
                if self._on_outcome is not None:
                    self._on_outcome(outcome, time.perf_counter() - started)
                self._update_idle()

    def _retry_later(self, key: str, exc: Exception) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self._backoff.delay(failures)
        level = logging.ERROR if isinstance(exc, FootError) and not exc.retryable else 30
        log.log(
            level,
            "reconcile %s %s failed (%d in a row), again in %.2fs: %s",
            self.name,
            key,
            failures,
            delay,
            exc,
        )
        self.add_after(key, delay)

    def _update_idle(self) -> None:
        if not self._queued and not self._processing and not self._delayed_pending:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until nothing is queued, delayed by `add_after` or being reconciled."""
        await self._idle.wait()

    def shut_down(self) -> None:
        """Stop accepting keys; workers finish their current key and return."""
        self._shutting_down = True
        for delayed in self._delayed.values():
            delayed.handle.cancel()
        self._delayed.clear()
        self._delayed_pending = 0
        for _ in range(self._workers):
            self._ready.put_nowait("")


@dataclass(slots=True)
class _Delayed:
    when: float
    handle: asyncio.TimerHandle
    pending: bool
    """From `add_after` (work to do), not only `wake_after` (a reminder)."""


class Informer:
    """Mirrors a bucket into memory and notifies queues of every changed key.

    With `mirror=False` it only notifies (`get` and `values` then know nothing): for
    listeners that keep their own parsed copy, so each value is not held twice.
    With `follow=False` it stops once synced: for the bucket's own writer, which reads what
    is stored once at start and keeps its copy from its own writes after that.
    """

    def __init__(
        self, store: KvStore, pattern: str = ">", *, mirror: bool = True, follow: bool = True
    ) -> None:
        self.store = store
        self.pattern = pattern
        self.mirror = mirror
        self.follow = follow
        self._cache: dict[str, Entry] = {}
        self._queues: list[ReconcileQueue] = []
        self._listeners: list[Callable[[Entry], None]] = []
        self.synced = asyncio.Event()

    def notify(self, queue: ReconcileQueue) -> None:
        self._queues.append(queue)

    def listen(self, listener: Callable[[Entry], None]) -> None:
        """Call `listener` with every change (after the cache is updated)."""
        self._listeners.append(listener)

    def get(self, key: str) -> Entry | None:
        return self._cache.get(key)

    def values(self) -> list[Entry]:
        return list(self._cache.values())

    async def run(self) -> None:
        """Watch forever (or until synced, without `follow`); `synced` is set once the
        initial state has been replayed."""
        async with self.store.watch(self.pattern) as events:
            async for entry in events:
                if entry is None:
                    self.synced.set()
                    if not self.follow:
                        return
                    continue
                if entry.deleted:
                    self._cache.pop(entry.key, None)
                elif self.mirror:
                    self._cache[entry.key] = entry
                for listener in self._listeners:
                    listener(entry)
                for queue in self._queues:
                    queue.add(entry.key)

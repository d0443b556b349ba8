"""LongLivedHeap: new objects frozen on a timer without being scanned, survivors of young
collections frozen too; full collections on a timer find the garbage cycles freezing kept."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

import pytest

from foot.runtime.collector import LongLivedHeap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def heap() -> Iterator[LongLivedHeap]:
    thresholds = gc.get_threshold()
    heap = LongLivedHeap(young_threshold=1_000, full_every_seconds=0.05)
    yield heap
    heap.uninstall()
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_survivors_of_young_collections_are_frozen(heap: LongLivedHeap) -> None:
    heap.install(asyncio.get_running_loop())
    assert gc.get_threshold() == (1_000, 1_000_000, 1_000_000)
    frozen_at_start = gc.get_freeze_count()
    kept = [[n] for n in range(5_000)]  # long-lived: survives young collections
    await asyncio.sleep(0)  # the freeze runs from the loop after each young collection
    await asyncio.sleep(0)
    assert heap.freezes >= 1
    assert gc.get_freeze_count() >= frozen_at_start + 4_000
    assert gc.get_objects(2) == []  # the oldest generation is never filled again
    del kept


async def test_the_timer_freezes_new_objects_without_a_collection() -> None:
    thresholds = gc.get_threshold()
    heap = LongLivedHeap(young_threshold=1_000_000, full_every_seconds=0, freeze_every_seconds=0.01)
    heap.install(asyncio.get_running_loop())
    task = asyncio.create_task(heap.freezes_on_timer())
    try:
        collections_before = [generation["collections"] for generation in gc.get_stats()]
        frozen_before = gc.get_freeze_count()
        kept = [[n] for n in range(5_000)]
        async with asyncio.timeout(5):
            while gc.get_freeze_count() < frozen_before + 5_000:  # noqa: ASYNC110 - the timer's effect
                await asyncio.sleep(0.01)
        assert heap.freezes >= 1
        assert [generation["collections"] for generation in gc.get_stats()] == collections_before
        del kept
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        heap.uninstall()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_a_full_collection_finds_cycles_that_were_frozen(heap: LongLivedHeap) -> None:
    heap.install(asyncio.get_running_loop())
    first, second = Node(), Node()
    first.other, second.other = second, first
    gc.freeze()  # as if a young collection had just promoted them
    del first, second
    found, took = heap.full_collection()
    assert found >= 2
    assert took >= 0
    assert gc.get_freeze_count() > 0  # what is alive is frozen again


async def test_full_collections_run_on_their_timer(
    heap: LongLivedHeap, caplog: pytest.LogCaptureFixture
) -> None:
    heap.install(asyncio.get_running_loop())
    caplog.set_level("INFO", logger="foot.runtime.collector")

    def logged() -> list[str]:
        return [
            r.getMessage() for r in caplog.records if "full garbage collection" in r.getMessage()
        ]

    task = asyncio.create_task(heap.full_collections())
    async with asyncio.timeout(10):  # each takes as long as the test process's heap needs
        while len(logged()) < 2:  # noqa: ASYNC110 - polling the log is the point
            await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "unreachable objects" in logged()[0]


async def test_no_full_collections_when_the_interval_is_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heap = LongLivedHeap(young_threshold=1_000, full_every_seconds=0)
    caplog.set_level("INFO", logger="foot.runtime.collector")
    task = asyncio.create_task(heap.full_collections())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [r for r in caplog.records if "full garbage collection" in r.getMessage()]

"""Bus semantics on a real nats-server (Foundation acceptance 3)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest

from foot.bus import Bus, Consumer, ConsumerSpec, Delivery, Informer, ReconcileQueue, StreamSpec
from foot.bus.consumer import ATTEMPTS_HEADER, ERROR_CODE_HEADER, ERROR_HEADER, SUBJECT_HEADER
from foot.catalog import DEAD_LETTERS, BucketSpec
from foot.errors import AlreadyExistsError, ConflictError, PermanentError
from support import eventually

JOBS = StreamSpec(name="TEST_JOBS", subjects=("test.jobs.>",), description="test jobs")


@contextlib.asynccontextmanager
async def running(consumer: Consumer) -> AsyncIterator[Consumer]:
    await consumer.subscribe()
    task = asyncio.create_task(consumer.run(), name="test-consumer")
    try:
        yield consumer
    finally:
        await consumer.drain(deadline_seconds=2)
        await task


def spec(durable: str, **overrides: object) -> ConsumerSpec:
    values: dict[str, object] = {
        "stream": JOBS.name,
        "durable": durable,
        "filter_subject": "test.jobs.>",
        "backoff_seconds": (0.05,),
        "fetch_timeout_seconds": 0.2,
    }
    values |= overrides
    return ConsumerSpec(**values)  # type: ignore[arg-type]


async def test_handler_that_crashes_gets_the_message_again(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    attempts: list[int] = []
    done = asyncio.Event()

    async def crash_first(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt == 1:
            raise RuntimeError("crashed mid-message")
        done.set()

    async with running(Consumer(bus, spec("crashy"), crash_first)) as consumer:
        await bus.publish("test.jobs.a", b"payload", msg_id="job-1")
        await asyncio.wait_for(done.wait(), 10)
        await eventually(lambda: consumer.stats.handled == 1)
    assert attempts == [1, 2]
    assert consumer.stats.retried == 1


async def test_duplicate_message_id_is_delivered_once(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    seen: list[bytes] = []

    async def record(delivery: Delivery) -> None:
        seen.append(delivery.data)

    first = await bus.publish("test.jobs.a", b"one", msg_id="same-id")
    second = await bus.publish("test.jobs.a", b"one-again", msg_id="same-id")
    third = await bus.publish("test.jobs.a", b"two", msg_id="other-id")
    assert second.duplicate
    assert not first.duplicate
    assert not third.duplicate
    async with running(Consumer(bus, spec("dedupe"), record)) as consumer:
        await eventually(lambda: consumer.stats.handled == 2)
        await asyncio.sleep(0.3)  # a third delivery would have arrived by now
    assert seen == [b"one", b"two"]


async def test_stale_revision_raises_conflict(bus: Bus) -> None:
    store = await bus.declare_bucket(BucketSpec(name="test_kv", owner="test", description="t"))
    first = await store.create("thing", b"v1")
    second = await store.update("thing", b"v2", revision=first)
    with pytest.raises(ConflictError) as conflict:
        await store.update("thing", b"v3-from-stale-reader", revision=first)
    assert conflict.value.retryable
    assert conflict.value.expected_revision == first
    with pytest.raises(AlreadyExistsError):
        await store.create("thing", b"again")
    with pytest.raises(ConflictError):
        await store.delete("thing", revision=first)
    current = await store.get("thing")
    assert current is not None
    assert (current.value, current.revision) == (b"v2", second)


async def test_burst_of_changes_collapses_and_last_state_wins(bus: Bus) -> None:
    store = await bus.declare_bucket(BucketSpec(name="test_burst", owner="test", description="t"))
    informer = Informer(store)
    reconciled: list[int] = []
    burst_written = asyncio.Event()

    async def reconcile(key: str) -> None:
        entry = informer.get(key)
        assert entry is not None
        assert entry.value is not None
        reconciled.append(orjson.loads(entry.value)["n"])
        # The first reconcile is still busy while the whole burst lands (as a slow one
        # would be): every change meanwhile must collapse into one more reconcile.
        await burst_written.wait()

    queue = ReconcileQueue("burst", reconcile, workers=2)
    informer.notify(queue)
    changes = 1000
    async with asyncio.TaskGroup() as group:
        watch = group.create_task(informer.run(), name="test-informer")
        work = group.create_task(queue.run(), name="test-queue")
        await asyncio.wait_for(informer.synced.wait(), 5)
        for n in range(1, changes + 1):
            await store.put("hot-key", orjson.dumps({"n": n}))
        await eventually(lambda: informer.get("hot-key") is not None and bool(reconciled))
        await eventually(
            lambda: orjson.loads(informer.get("hot-key").value or b"{}")["n"] == changes  # type: ignore[union-attr]
        )
        burst_written.set()
        await eventually(lambda: reconciled[-1] == changes)
        await queue.wait_idle()
        watch.cancel()
        work.cancel()
    assert reconciled[-1] == changes
    # One reconcile started during the burst, one (or, if the informer saw the last change
    # only after that one began, two) for everything that came after it.
    assert len(reconciled) <= 3, f"{len(reconciled)} reconciles for {changes} changes"
    assert reconciled == sorted(reconciled), "a key is never reconciled by two workers at once"


async def test_failed_reconcile_is_retried_with_backoff(bus: Bus) -> None:
    failures_left = Counter({"k": 3})
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def flaky(key: str) -> None:
        calls.append(loop.time())
        if failures_left[key] > 0:
            failures_left[key] -= 1
            raise RuntimeError("member cluster said no")

    queue = ReconcileQueue("flaky", flaky, workers=1)
    async with asyncio.TaskGroup() as group:
        work = group.create_task(queue.run(), name="test-queue")
        queue.add("k")
        await eventually(lambda: len(calls) == 4)
        await queue.wait_idle()
        work.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert gaps == sorted(gaps), f"backoff grows: {gaps}"
    assert gaps[0] >= 0.04


async def test_poison_message_is_dead_lettered_with_its_error(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    attempts: list[int] = []

    async def always_fails(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise ValueError("cannot parse this payload")

    dead = await bus.js.pull_subscribe(
        "foot.dlq.poisoned", durable="dlq-reader", stream=DEAD_LETTERS.name
    )
    consumer = Consumer(bus, spec("poisoned", max_attempts=3), always_fails)
    async with running(consumer):
        await bus.publish("test.jobs.poison", b"\x00garbage", msg_id="poison-1")
        letters = await dead.fetch(1, timeout=10)
    assert attempts == [1, 2, 3]
    letter = letters[0]
    assert letter.data == b"\x00garbage"
    headers = letter.headers or {}
    assert "cannot parse this payload" in headers[ERROR_HEADER]
    assert headers[ERROR_CODE_HEADER] == "ValueError"
    assert headers[SUBJECT_HEADER] == "test.jobs.poison"
    assert headers[ATTEMPTS_HEADER] == "3"
    await letter.ack()
    await dead.unsubscribe()


async def test_permanent_error_skips_the_retries(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    attempts: list[int] = []

    async def refuses(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise PermanentError("spec.replicas: must not be negative")

    consumer = Consumer(bus, spec("refuser", max_attempts=5), refuses)
    async with running(consumer):
        await bus.publish("test.jobs.bad", b"{}", msg_id="bad-1")
        await eventually(lambda: consumer.stats.dead_lettered == 1)
    assert attempts == [1]


async def test_concurrency_is_bounded(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    running_now = 0
    peak = 0
    finished = 0

    async def slow(_: Delivery) -> None:
        nonlocal running_now, peak, finished
        running_now += 1
        peak = max(peak, running_now)
        await asyncio.sleep(0.05)
        running_now -= 1
        finished += 1

    for n in range(40):
        await bus.publish("test.jobs.n", b"x", msg_id=f"n-{n}")
    async with running(Consumer(bus, spec("bounded", concurrency=4), slow)):
        await eventually(lambda: finished == 40)
    assert peak == 4


async def test_handler_slower_than_the_ack_wait_is_not_redelivered(bus: Bus) -> None:
    await bus.declare_stream(JOBS)
    attempts: list[int] = []

    async def slow(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await asyncio.sleep(2.5)  # 2.5 times the ack wait: only keep-alives prevent redelivery

    async with running(Consumer(bus, spec("slowpoke", ack_wait_seconds=1.0), slow)) as consumer:
        await bus.publish("test.jobs.slow", b"payload", msg_id="slow-1")
        await eventually(lambda: consumer.stats.handled == 1, within=10)
        await asyncio.sleep(1.5)  # a redelivery would have started by now
    assert attempts == [1]


async def test_an_informer_without_a_mirror_notifies_and_keeps_nothing(bus: Bus) -> None:
    spec = BucketSpec(name="test_nomirror", owner="test", description="t")
    store = await bus.declare_bucket(spec)
    await store.put("before", b"1")
    informer = Informer(store, mirror=False)
    seen: list[tuple[str, bytes | None]] = []
    informer.listen(lambda entry: seen.append((entry.key, entry.value)))
    watch = asyncio.create_task(informer.run(), name="test-informer")
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await store.put("after", b"2")
        await store.delete("before")
        await eventually(lambda: len(seen) == 3)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    assert seen == [("before", b"1"), ("after", b"2"), ("before", None)]
    assert informer.get("after") is None
    assert informer.values() == []


async def test_an_informer_that_does_not_follow_stops_once_synced(bus: Bus) -> None:
    spec = BucketSpec(name="test_nofollow", owner="test", description="t")
    store = await bus.declare_bucket(spec)
    await store.put("before", b"1")
    informer = Informer(store, follow=False)
    seen: list[str] = []
    informer.listen(lambda entry: seen.append(entry.key))
    await asyncio.wait_for(informer.run(), 5)  # returns: the replay is all it reads
    assert informer.synced.is_set()
    await store.put("after", b"2")
    assert seen == ["before"]
    assert [e.key for e in informer.values()] == ["before"]


async def test_snapshots_taken_during_writes_hold_every_key_written_before(bus: Bus) -> None:
    """nats-py's own "caught up" marker can come early while other keys are being written;
    a snapshot must still hold every key that existed when it was asked for."""
    spec = BucketSpec(name="test_snapshot", owner="test", description="t")
    store = await bus.declare_bucket(spec)
    before = {f"base.{i}" for i in range(300)}
    await asyncio.gather(*(store.put(key, b"v") for key in before))
    stop = asyncio.Event()

    async def churn() -> None:
        for round_ in itertools.count():
            if stop.is_set():
                return
            await asyncio.gather(*(store.put(f"churn.{k}", b"%d" % round_) for k in range(20)))

    writer = asyncio.create_task(churn(), name="test-churn")
    try:
        for _ in range(30):
            seen = {entry.key for entry in await store.entries()}
            assert before <= seen, f"{len(before - seen)} keys missing from a snapshot"
            assert {e.key for e in await store.entries("base.>")} == before
    finally:
        stop.set()
        await writer


async def test_snapshots_taken_while_keys_are_rewritten_hold_every_one_of_them(bus: Bus) -> None:
    """A key rewritten as a snapshot starts (after the bucket's last revision is read, before
    the watch's replay is set up) is replayed past that revision: the snapshot must still
    wait for it, not end at the revision read and miss it."""
    spec = BucketSpec(name="test_rewrites", owner="test", description="t")
    store = await bus.declare_bucket(spec)
    keys = {f"key.{i}" for i in range(20)}
    await asyncio.gather(*(store.put(key, b"0") for key in keys))
    stop = asyncio.Event()

    async def rewrite() -> None:
        for round_ in itertools.count(1):
            if stop.is_set():
                return
            await asyncio.gather(*(store.put(key, b"%d" % round_) for key in sorted(keys)))

    writer = asyncio.create_task(rewrite(), name="test-rewrite")
    try:
        for _ in range(50):
            seen = {entry.key for entry in await store.entries()}
            assert keys <= seen, f"{len(keys - seen)} keys missing from a snapshot"
    finally:
        stop.set()
        await writer


async def test_a_watch_is_caught_up_at_once_when_nothing_matches_and_after_the_replay(
    bus: Bus,
) -> None:
    spec = BucketSpec(name="test_caughtup", owner="test", description="t")
    store = await bus.declare_bucket(spec)
    assert await store.entries("nothing.>") == []
    await store.put("old.a", b"1")
    await store.put("old.b", b"2")
    await store.delete("old.b")
    await store.put("new.c", b"3")  # newer than every "old." key: not waited for
    async with store.watch("old.>") as events:
        replay = []
        async with asyncio.timeout(5):
            async for entry in events:
                if entry is None:
                    break
                replay.append((entry.key, entry.value))
    assert replay == [("old.a", b"1"), ("old.b", None)]

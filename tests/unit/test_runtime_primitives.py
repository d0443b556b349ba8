"""The shared primitives services are built on, without any server: the one backoff, the
reconcile queue's delayed adds and terminal errors, `update_with`, the wire error map, the
admin server's routes, the typed bucket mirror and the cluster mirror."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from foot.backoff import Backoff
from foot.bus.kv import Entry, KvStore, Versioned
from foot.bus.reconcile import Informer, ReconcileQueue, TerminalError
from foot.errors import AlreadyExistsError, ConflictError, NotFoundError
from foot.health import ClusterHealthEvent
from foot.runtime.admin import AdminServer, error_response
from foot.runtime.clusters import ClusterMirror
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.mirror import Mirror
from foot.runtime.settings import AdminTokens
from foot.runtime.wire import http_status
from foot_testenv.gateway_objects import cluster
from support import eventually


def test_backoff_doubles_from_the_base_to_the_cap() -> None:
    backoff = Backoff(base_seconds=0.5, max_seconds=10.0)
    assert [backoff.delay(n) for n in (0, 1, 2, 3, 5, 6, 10_000)] == [
        0.5, 0.5, 1.0, 2.0, 8.0, 10.0, 10.0,
    ]  # fmt: skip


def test_backoff_delays_count_failures_and_start_over_after_a_reset() -> None:
    delays = Backoff(0.5, 2.0).delays()
    assert [delays.next() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    delays.reset()
    assert delays.next() == 0.5


def test_one_status_map_for_every_error_code() -> None:
    assert http_status("AlreadyExists") == 409
    assert http_status("Conflict") == 409
    assert http_status("Invalid") == 422
    assert http_status("NotFound") == 404
    assert http_status("Unavailable") == 503
    assert http_status("Internal") == 500
    assert error_response(AlreadyExistsError("x exists")).status == 409


@contextlib.asynccontextmanager
async def recording_queue() -> AsyncIterator[tuple[ReconcileQueue, list[str]]]:
    """A running one-worker queue whose reconcile records each key it is given, in order."""
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)

    queue = ReconcileQueue("unit", reconcile, workers=1)
    runner = asyncio.create_task(queue.run())
    try:
        yield queue, seen
    finally:
        queue.shut_down()
        await runner


async def test_a_delayed_add_keeps_the_earliest_time() -> None:
    async with recording_queue() as (queue, seen):
        queue.add_after("a", 60.0)
        queue.add_after("a", 0.05)  # earlier: wins
        queue.add_after("a", 30.0)  # later: ignored
        await eventually(lambda: len(seen) >= 1, within=2.0)
        await asyncio.sleep(0.1)
        assert seen == ["a"]
        assert len(queue) == 0


async def test_a_wake_up_is_not_pending_work_and_can_be_forgotten() -> None:
    async with recording_queue() as (queue, seen):
        queue.wake_after("later", 60.0)
        await asyncio.wait_for(queue.wait_idle(), timeout=1.0)  # a reminder is not work
        assert len(queue) == 0
        queue.wake_after("soon", 0.05)
        queue.wake_after("gone", 0.05)
        queue.forget("gone")
        await eventually(lambda: len(seen) >= 1, within=2.0)
        await asyncio.sleep(0.1)
        assert seen == ["soon"]


async def test_a_terminal_error_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    async def reconcile(key: str) -> None:
        calls.append(key)
        raise TerminalError(f"{key} can never work")

    queue = ReconcileQueue("unit", reconcile, workers=1, backoff=Backoff(0.01, 0.01))
    runner = asyncio.create_task(queue.run())
    try:
        queue.add("doomed")
        await asyncio.wait_for(queue.wait_idle(), timeout=1.0)
        await asyncio.sleep(0.1)
        assert calls == ["doomed"]
        assert len(queue) == 0
        assert "not retried" in caplog.text
    finally:
        queue.shut_down()
        await runner


@dataclass
class _Stored:
    value: bytes
    revision: int


class MemoryKv:
    """The part of nats-py's KeyValue `KvStore` uses for get/create/update."""

    def __init__(self) -> None:
        self.data: dict[str, _Stored] = {}
        self.revision = 0
        self.interfere: list[bytes] = []
        """Values another writer stores right after each of our next reads."""

    async def get(self, key: str) -> Any:
        stored = self.data.get(key)
        if stored is None:
            raise KeyNotFoundError
        found = _Stored(stored.value, stored.revision)
        if self.interfere:
            self._write(key, self.interfere.pop(0))
        return found

    def _write(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.data[key] = _Stored(value, self.revision)
        return self.revision

    async def create(self, key: str, value: bytes) -> int:
        if key in self.data:
            raise KeyWrongLastSequenceError
        return self._write(key, value)

    async def update(self, key: str, value: bytes, last: int) -> int:
        if self.data[key].revision != last:
            raise KeyWrongLastSequenceError
        return self._write(key, value)


def _store(memory: MemoryKv) -> KvStore:
    return KvStore(cast("KeyValue", memory), "unit", js=cast("Any", None))


def _add_one(current: Versioned[int] | None) -> int:
    return (current.value if current is not None else 0) + 1


async def test_update_with_creates_then_changes_at_the_revision_read() -> None:
    memory = MemoryKv()
    store = _store(memory)
    codec: dict[str, Any] = {"decode": int, "encode": lambda n: str(n).encode()}
    assert await store.update_with("k", _add_one, **codec) == Versioned(1, 1)
    assert await store.update_with("k", _add_one, **codec) == Versioned(2, 2)
    unchanged = await store.update_with("k", lambda _: None, **codec)
    assert unchanged == Versioned(2, 2)


async def test_update_with_reads_again_after_a_conflict_and_gives_up_in_the_end() -> None:
    memory = MemoryKv()
    store = _store(memory)
    codec: dict[str, Any] = {"decode": int, "encode": lambda n: str(n).encode()}
    await store.update_with("k", _add_one, **codec)
    memory.interfere = [b"10"]  # another writer lands between our read and our write
    assert await store.update_with("k", _add_one, **codec) == Versioned(11, 3)
    memory.interfere = [b"20", b"30", b"40"]
    with pytest.raises(ConflictError):
        await store.update_with("k", _add_one, attempts=3, **codec)


async def test_update_with_starts_from_a_known_version_without_reading() -> None:
    memory = MemoryKv()
    store = _store(memory)
    codec: dict[str, Any] = {"decode": int, "encode": lambda n: str(n).encode()}
    await store.update_with("k", _add_one, **codec)
    memory.interfere = [b"99"]  # would show if update_with read first
    assert await store.update_with("k", _add_one, known=Versioned(1, 1), **codec) == Versioned(2, 2)


async def test_the_admin_server_takes_routes_and_guards_every_path_but_the_probes() -> None:
    problems: list[str] = []
    admin = AdminServer(
        "unit",
        "127.0.0.1",
        0,
        AdminTokens(admin="a-token-long-enough"),
        metrics=ServiceMetrics("unit-admin"),
        readiness_problems=lambda: list(problems),
    )

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"hello": True})

    async def missing(_: web.Request) -> web.Response:
        return error_response(NotFoundError("nothing here"))

    admin.add_route("GET", "/admin/hello", hello)
    admin.add_route("POST", "/other/missing", missing)
    auth = {"Authorization": "Bearer a-token-long-enough"}
    async with TestClient(TestServer(admin.app)) as http:
        assert (await http.get("/readyz")).status == 200
        problems.append("not synced")
        assert (await http.get("/readyz")).status == 503
        assert (await http.get("/admin/hello")).status == 401
        allowed = await http.get("/admin/hello", headers=auth)
        assert await allowed.json() == {"hello": True}
        # A route outside /admin and /api is guarded as well: only the probes are open.
        assert (await http.post("/other/missing")).status == 401
        assert (await http.post("/other/missing", headers=auth)).status == 404


def _informer() -> Informer:
    return Informer(cast("KvStore", None))


def test_a_mirror_decodes_once_skips_bad_entries_and_reports_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    informer = _informer()
    mirror = Mirror(informer, lambda data: int(orjson.loads(data)["n"]), "counter")
    changes: list[tuple[str, int | None, int | None]] = []
    mirror.on_change(lambda key, before, after: changes.append((key, before, after)))
    feed = informer._listeners[0]  # what the informer calls for each change
    feed(Entry("a", b'{"n": 1}', 1))
    feed(Entry("a", b'{"n": 2}', 2))
    feed(Entry("a", b"not json", 3))
    feed(Entry("b", b'{"m": 1}', 4))
    assert mirror.items == {"a": 2}  # the bad entries left what was there
    feed(Entry("a", None, 5))
    assert changes == [("a", None, 1), ("a", 1, 2), ("a", 2, None)]
    assert "counter a does not parse, ignored" in caplog.text
    assert "counter b does not parse, ignored" in caplog.text
    assert not mirror.synced


def _health(name: str, ready: str, sequence: int) -> ClusterHealthEvent:
    return ClusterHealthEvent.model_validate(
        {
            "cluster": name,
            "ready": ready,
            "reason": "ProbeFailed",
            "observedAt": "2026-01-01T00:00:00Z",
            "sequence": sequence,
        }
    )


def test_the_cluster_mirror_keys_by_name_and_keeps_the_newest_health() -> None:
    informer = _informer()
    members = ClusterMirror(informer)
    seen: list[tuple[str, bool, bool]] = []
    members.on_cluster(lambda name, before, after: seen.append((name, bool(before), bool(after))))
    heard: list[int] = []
    members.on_health(lambda event, _traceparent: heard.append(event.sequence))
    feed = informer._listeners[0]
    feed(Entry("clusters.m1", cluster("m1").to_json(), 1))
    members.hear(_health("m1", "False", 2))
    members.hear(_health("m1", "True", 1))  # older than what was heard: ignored
    assert heard == [2]
    assert members.heard["m1"].sequence == 2
    feed(Entry("clusters.m1", None, 2))
    assert seen == [("m1", False, True), ("m1", True, False)]
    assert members.clusters == {}
    assert members.heard == {}  # a cluster that joins again counts its events anew
    members.hear(_health("m1", "True", 1))
    assert heard == [2, 1]

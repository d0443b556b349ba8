"""Settings, log redaction and the reconcile queue, without any server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from foot.backoff import Backoff
from foot.bus.reconcile import ReconcileQueue
from foot.errors import RetryableError
from foot.redaction import redact
from foot.runtime.locks import KeyedLocks
from foot.runtime.logs import JsonFormatter
from foot.runtime.metrics import ServiceMetrics
from foot.runtime.settings import ServiceSettings, SettingsError
from foot.runtime.supervisor import Supervisor
from support import eventually


def test_settings_report_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOT_ADMIN_PORT", "70000")
    with pytest.raises(SettingsError) as refused:
        ServiceSettings.load(["--nats-url", "http://wrong", "--log-level", "LOUD"])
    where = [p.path for p in refused.value.problems]
    assert where == [
        "nats_url (FOOT_NATS_URL / --nats-url)",
        "admin_port (FOOT_ADMIN_PORT / --admin-port)",
        "log_level (FOOT_LOG_LEVEL / --log-level)",
    ]


def test_a_nats_ca_goes_with_a_tls_url_and_a_readable_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SettingsError) as plain:
        ServiceSettings.load(["--nats-url", "nats://u:pw@hub:4222", "--nats-ca-file", str(ca)])
    assert "nats_ca_file is given, so nats_url must be a tls:// URL" in plain.value.message
    assert "pw" not in plain.value.message
    with pytest.raises(SettingsError) as missing:
        ServiceSettings.load(["--nats-url", "tls://hub:4222", "--nats-ca-file", "/nowhere.crt"])
    assert "nats_ca_file /nowhere.crt is not a readable file" in missing.value.message
    loaded = ServiceSettings.load(["--nats-url", "tls://hub:4222", "--nats-ca-file", str(ca)])
    assert loaded.nats_ca_file == ca


def test_credentials_in_a_url_are_redacted() -> None:
    line = "cannot connect to NATS at tls://agent-north:s3cret@hub.example:4222: refused"
    assert redact(line) == ("cannot connect to NATS at tls://[REDACTED]@hub.example:4222: refused")
    assert redact("nats://s3cret-token@hub:4222") == "nats://[REDACTED]@hub:4222"  # token auth
    assert redact("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_settings_come_from_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOT_NATS_URL", "nats://env:4222")
    monkeypatch.setenv("FOOT_CONSUMER_CONCURRENCY", "8")
    loaded = ServiceSettings.load(["--nats-url", "nats://flag:4222"])
    assert loaded.nats_url == "nats://flag:4222"
    assert loaded.consumer_concurrency == 8


def test_every_setting_is_documented() -> None:
    undocumented = [n for n, f in ServiceSettings.model_fields.items() if not f.description]
    assert undocumented == []


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ('{"token": "s3cr3t-t0ken-value"}', "s3cr3t-t0ken-value"),
        ("password=hunter22", "hunter22"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLWJ5dGVz here", "eyJhbGci"),
    ],
)
def test_secrets_are_redacted_from_log_lines(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[REDACTED]" in redact(line)


def test_json_log_lines_carry_the_trace() -> None:
    formatter = JsonFormatter("scheduler")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "placed %s", ("web",), None)
    with TracerProvider().get_tracer("test").start_as_current_span("work"):
        entry = json.loads(formatter.format(record))
    assert entry["message"] == "placed web"
    assert entry["service"] == "scheduler"
    assert len(entry["trace_id"]) == 32


async def test_queue_runs_one_worker_per_key_and_requeues_dirty_keys() -> None:
    active: set[str] = set()
    overlaps = 0
    calls: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        nonlocal overlaps
        overlaps += key in active
        active.add(key)
        calls.append(key)
        if len(calls) == 1:
            await release.wait()
        active.discard(key)

    queue = ReconcileQueue("unit", reconcile, workers=4)
    async with asyncio.TaskGroup() as group:
        work = group.create_task(queue.run())
        queue.add("a")
        await eventually(lambda: calls == ["a"])
        for _ in range(50):
            queue.add("a")  # while "a" is being reconciled: once more afterwards, not 50 times
        queue.add("b")
        await eventually(lambda: "b" in calls)
        release.set()
        await queue.wait_idle()
        queue.shut_down()
        await work
    assert sorted(calls) == ["a", "a", "b"]
    assert overlaps == 0


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base_seconds=0.1, max_seconds=1.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 9)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


async def test_cancel_all_cancels_again_a_task_that_lost_its_cancel() -> None:
    # Python 3.11 can drop a cancel (wait_for returning a result from the same loop turn);
    # this task stands in for that by swallowing the first one and waiting again.
    supervisor = Supervisor("test", ServiceMetrics("test"))
    swallowed = asyncio.Event()

    async def loses_one_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()

    task = supervisor.spawn("loses-one-cancel", loses_one_cancel)
    await asyncio.sleep(0)
    await asyncio.wait_for(supervisor.cancel_all(), 3)
    assert swallowed.is_set()
    assert task.cancelled()


async def test_a_cancel_turned_into_an_error_is_not_restarted() -> None:
    # A TaskGroup on 3.11 may raise a child's error instead of the CancelledError.
    supervisor = Supervisor("test", ServiceMetrics("test"))
    runs = 0

    async def fails_when_cancelled() -> None:
        nonlocal runs
        runs += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("a write failed while the group was being cancelled") from None

    task = supervisor.spawn("fails-when-cancelled", fails_when_cancelled)
    await asyncio.sleep(0)
    await asyncio.wait_for(supervisor.cancel_all(), 3)
    assert task.done()
    assert runs == 1
    assert supervisor.metrics.task_restarts.labels("fails-when-cancelled")._value.get() == 0


async def test_cancel_all_gives_up_on_a_task_that_will_not_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor("test", ServiceMetrics("test"))
    release = asyncio.Event()

    async def refuses_to_end() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = supervisor.spawn("stubborn", refuses_to_end)
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="foot.runtime.supervisor"):
        await asyncio.wait_for(supervisor.cancel_all(deadline_seconds=0.3), 3)
    assert not task.done()
    assert "test:stubborn" in caplog.text
    release.set()
    await task


async def test_keyed_locks_serialise_one_key_and_forget_it_when_free() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(hold("a", "first"))
    second = asyncio.create_task(hold("a", "second"))
    other = asyncio.create_task(hold("b", "other"))
    await asyncio.sleep(0.01)
    assert locks.locked("a")
    assert locks.locked("b")
    assert order == ["first in", "other in"]  # the second waits for the first; b is free
    assert len(locks) == 2
    release.set()
    await asyncio.gather(first, second, other)
    assert order.index("first out") < order.index("second in")
    assert len(locks) == 0  # nobody holds or waits: nothing kept
    assert not locks.locked("a")


async def test_a_waiter_cancelled_on_a_keyed_lock_leaves_nothing_behind() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def hold() -> None:
        async with locks.hold("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert len(locks) == 0
    async with locks.hold("a"):  # still usable
        assert locks.locked("a")


async def test_expedite_runs_now_what_waits_out_a_backoff() -> None:
    attempts: dict[str, int] = {}

    async def reconcile(key: str) -> None:
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] == 1:
            raise RetryableError("member gone")

    queue = ReconcileQueue("unit", reconcile, workers=2, backoff=Backoff(60.0, 60.0))
    async with asyncio.TaskGroup() as group:
        work = group.create_task(queue.run())
        queue.add("a")
        queue.add("b")
        queue.add_after("later", 60.0)  # not a failure: left as it is
        await eventually(lambda: attempts == {"a": 1, "b": 1})
        queue.expedite()
        await eventually(lambda: attempts == {"a": 2, "b": 2})
        assert len(queue) == 1  # "later" still waits
        queue.shut_down()
        await work

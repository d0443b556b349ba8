"""Staged shutdown and crashes of a real service process (Foundation acceptances 3 and 5)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from foot.bus import Bus, KvStore
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import spawn
from support import eventually

WORKER = Path(__file__).parent / "workers" / "slow_worker.py"
MESSAGES = 40


class Worker:
    """One run of the slow worker as a separate process."""

    def __init__(self, nats: EmbeddedNats, log: Path, *flags: str) -> None:
        argv: list[str | Path] = [
            sys.executable,
            WORKER,
            "--nats-url",
            nats.url,
            "--admin-port",
            "0",
        ]
        argv += flags
        self.process: subprocess.Popen[bytes] = spawn(argv, log_path=log)
        self.log = log

    async def exit_code(self, within: float) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), within)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers(nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


async def done_keys(bus: Bus) -> dict[str, int]:
    store: KvStore = await bus.kv("slow_done")
    return {e.key: int(e.value or b"0") for e in await store.entries()}


async def publish_work(bus: Bus, count: int) -> None:
    from integration.workers.slow_worker import WORK

    await bus.declare_stream(WORK)
    for n in range(count):
        await bus.publish(f"slow.work.{n}", f"m{n}".encode(), msg_id=f"work-{n}")


async def wait_for_done(bus: Bus, at_least: int, within: float = 30.0) -> dict[str, int]:
    seen: dict[str, int] = {}

    async def poll() -> None:
        nonlocal seen
        async with asyncio.timeout(within):
            while True:
                try:
                    seen = await done_keys(bus)
                except Exception:  # noqa: BLE001 - the bucket appears when the worker starts
                    seen = {}
                if len(seen) >= at_least:
                    return
                await asyncio.sleep(0.05)

    await poll()
    return seen


async def test_sigterm_finishes_in_flight_work_and_loses_nothing(
    bus: Bus, nats_server: EmbeddedNats, workers: list[Worker], tmp_path: Path
) -> None:
    await publish_work(bus, MESSAGES)
    first = Worker(nats_server, tmp_path / "first.log", "--handler-seconds", "0.3")
    workers.append(first)
    await wait_for_done(bus, at_least=6)
    first.process.send_signal(signal.SIGTERM)
    assert await first.exit_code(within=5) == 0
    after_first = await done_keys(bus)
    assert len(after_first) < MESSAGES, "the worker stopped taking new work"
    log = first.log.read_text()
    assert "stopping: no new work" in log
    assert "handed back unfinished" not in log, "in-flight work finished within the deadline"

    second = Worker(nats_server, tmp_path / "second.log", "--handler-seconds", "0.05")
    workers.append(second)
    final = await wait_for_done(bus, at_least=MESSAGES)
    assert sorted(final) == sorted(f"m{n}" for n in range(MESSAGES))
    assert all(attempt == 1 for attempt in final.values()), "nothing needed a redelivery"
    second.process.send_signal(signal.SIGTERM)
    assert await second.exit_code(within=5) == 0


async def test_work_past_the_deadline_is_handed_back_not_lost(
    bus: Bus, nats_server: EmbeddedNats, workers: list[Worker], tmp_path: Path
) -> None:
    await publish_work(bus, 8)
    slow = Worker(
        nats_server,
        tmp_path / "slow.log",
        "--handler-seconds",
        "30",
        "--shutdown-deadline-seconds",
        "0.5",
    )
    workers.append(slow)
    await eventually(lambda: "started in" in slow.log.read_text(), within=10)
    await asyncio.sleep(0.5)  # let it fetch and start handling
    slow.process.send_signal(signal.SIGTERM)
    assert await slow.exit_code(within=5) == 0
    assert "handed back unfinished at the deadline" in slow.log.read_text()

    quick = Worker(nats_server, tmp_path / "quick.log", "--handler-seconds", "0.01")
    workers.append(quick)
    final = await wait_for_done(bus, at_least=8)
    assert len(final) == 8
    assert max(final.values()) >= 2, "the cancelled messages came again"


async def test_process_killed_mid_message_gets_it_again(
    bus: Bus, nats_server: EmbeddedNats, workers: list[Worker], tmp_path: Path
) -> None:
    await publish_work(bus, 10)
    doomed = Worker(nats_server, tmp_path / "doomed.log", "--handler-seconds", "1")
    workers.append(doomed)
    await wait_for_done(bus, at_least=1)
    doomed.kill()  # SIGKILL: no staged shutdown, messages in flight are never acknowledged
    survivor = Worker(nats_server, tmp_path / "survivor.log", "--handler-seconds", "0.05")
    workers.append(survivor)
    final = await wait_for_done(bus, at_least=10)
    assert len(final) == 10
    assert max(final.values()) >= 2, "messages the dead worker held were delivered again"

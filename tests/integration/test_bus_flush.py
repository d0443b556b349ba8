"""The bus's flush on a real nats-server: the server has read everything sent before it.

nats-py's own `flush()` writes its PING ahead of the commands still queued for its flusher
task, so its PONG can come back before the server has read a SUB just made (another
connection's request then found no responder under CPU load). These tests watch what the
client writes to its socket, which shows the order without depending on timing.
"""

from __future__ import annotations

from collections.abc import Iterable

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from foot.bus import Bus
from foot.bus.connection import flush_in_order

OPERATIONS = {b"SUB", b"UNSUB", b"PUB", b"HPUB", b"PING", b"PONG"}


def record_writes(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The protocol operations (`SUB`, `PING`, ...) the client writes from now on, in order."""
    transport = client._transport
    assert transport is not None
    operations: list[bytes] = []
    write, writelines = transport.write, transport.writelines

    def note(chunk: bytes) -> None:
        for line in bytes(chunk).split(b"\r\n"):
            operation = line.split(b" ")[0]
            if operation in OPERATIONS:  # not a payload line
                operations.append(operation)

    def recording_write(payload: bytes) -> None:
        note(payload)
        write(payload)

    def recording_writelines(payload: Iterable[bytes]) -> None:
        chunks = list(payload)
        for chunk in chunks:
            note(chunk)
        writelines(chunks)

    monkeypatch.setattr(transport, "write", recording_write)
    monkeypatch.setattr(transport, "writelines", recording_writelines)
    return operations


async def ignore(_msg: Msg) -> None:
    return None


async def test_serve_returns_once_its_subscription_went_out_before_the_flush(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations = record_writes(bus.client, monkeypatch)
    await bus.serve("test.flush.serve", ignore)
    assert operations == [b"SUB", b"PING"]


async def test_flush_follows_every_command_queued_before_it(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bus.client.subscribe("test.flush.raw", cb=ignore)  # queued, not written yet
    await bus.client.publish("test.flush.raw", b"queued")
    operations = record_writes(bus.client, monkeypatch)
    await bus.flush()
    assert operations == [b"SUB", b"PUB", b"PING"]


async def test_flush_in_order_on_a_closed_connection_says_so(bus: Bus) -> None:
    await bus.client.close()
    with pytest.raises(nats.errors.ConnectionClosedError):
        await flush_in_order(bus.client)

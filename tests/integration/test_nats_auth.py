"""NATS authentication and authorization on a real nats-server, as `foot up` and the test
fixtures run it: no connection without a user; a pull agent's user fenced to its own
cluster's subjects, its own inbox, and no JetStream at all."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from foot.bus import Bus
from foot.catalog import BUCKETS, WORKS, work_sync_subject
from foot.errors import PermanentError
from foot.natsauth import (
    AGENT_SUBJECT_FAMILIES,
    CLI_IDENTITY,
    CLI_INBOX_PREFIX,
    SERVICES,
    NatsAuthHome,
    agent_inbox_prefix,
)
from foot.runtime.settings import default_home
from foot_cli.natsserver import EmbeddedNats
from support import agent_credentials, eventually, harness_credentials

DENIED_WITHIN_SECONDS = 2.0


class Recorder:
    """A raw client that keeps the server's permission refusals (they arrive as async
    errors, not as exceptions of the call that caused them)."""

    def __init__(self) -> None:
        self.client = Client()
        self.errors: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())

    def refused(self, verb: str, subject: str) -> bool:
        return any(
            "permissions violation" in e and verb in e and subject.lower() in e for e in self.errors
        )


@pytest.fixture
async def alpha_agent(nats_server: EmbeddedNats, tmp_path: Path) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    await recorder.client.connect(
        nats_server.url,
        user_credentials=str(agent_credentials(tmp_path, "alpha")),
        inbox_prefix=agent_inbox_prefix("alpha"),
        error_cb=recorder.on_error,
        allow_reconnect=False,
    )
    yield recorder
    await recorder.client.close()


async def test_an_unauthenticated_connection_is_refused(nats_server: EmbeddedNats) -> None:
    with pytest.raises(PermanentError, match="refused this client"):
        await Bus.connect(nats_server.url, "anonymous", connect_timeout=2)


async def test_foot_up_defaults_refuse_strangers_and_keep_every_key_private(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    auth = NatsAuthHome(home).ensure()  # what `foot up` does before starting NATS
    with EmbeddedNats(data_dir=home / "nats", auth=auth) as server:
        with pytest.raises(PermanentError, match="refused this client"):
            await Bus.connect(server.url, "anonymous", connect_timeout=2)
        for identity in (*SERVICES, CLI_IDENTITY):
            async with await Bus.connect(
                server.url, identity, credentials_file=auth.creds(identity)
            ) as bus:
                assert bus.connected
        # A user of another installation (the test run's own) is refused too.
        with pytest.raises(PermanentError, match="refused this client"):
            await Bus.connect(server.url, "other", credentials_file=harness_credentials())
    files = [p for p in auth.folder.iterdir() if p.is_file()]
    assert {p.suffix for p in files} >= {".nk", ".creds", ".jwt", ".conf"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_an_agent_cannot_publish_or_subscribe_on_another_clusters_subjects(
    alpha_agent: Recorder, bus: Bus
) -> None:
    # The harness listens on every subject of cluster beta: nothing of alpha's arrives.
    heard: list[str] = []

    async def hear(msg: Msg) -> None:
        heard.append(msg.subject)

    await bus.subscribe("foot.>", hear)
    agent = alpha_agent.client
    for family in AGENT_SUBJECT_FAMILIES:
        subject = f"{family}.beta"
        await agent.publish(subject, b"forged")
        await agent.subscribe(subject)
    for wildcard in ("foot.>", "foot.works.>", ">", "_INBOX.>", f"{agent_inbox_prefix('beta')}.>"):
        await agent.subscribe(wildcard)
    await agent.flush()

    await eventually(
        lambda: all(
            alpha_agent.refused("publish", f"{f}.beta")
            and alpha_agent.refused("subscription", f"{f}.beta")
            for f in AGENT_SUBJECT_FAMILIES
        ),
        within=DENIED_WITHIN_SECONDS * 5,
    )
    for wildcard in ("foot.>", "foot.works.>", ">", "_INBOX.>", "_INBOX_beta.>"):
        assert alpha_agent.refused("subscription", wildcard), (wildcard, alpha_agent.errors)
    # A delivery to beta reaches none of alpha's (refused) subscriptions.
    await bus.notify("foot.works.deliver.beta", b"beta's works")
    await asyncio.sleep(0.2)
    assert all(s.endswith(".beta") for s in heard)
    assert [s for s in heard if "alpha" in s] == []
    assert not [s for s in heard if s != "foot.works.deliver.beta"], heard


async def test_an_agent_uses_its_own_subjects_and_inbox(alpha_agent: Recorder, bus: Bus) -> None:
    async def answer(msg: Msg) -> None:
        await msg.respond(b"alpha's works")

    # The bus's serve returns once the server has the subscription (a raw nats-py flush does
    # not promise it: its PING can overtake the SUB, see foot.bus.connection.flush_in_order).
    await bus.serve(work_sync_subject("alpha"), answer)
    reply = await alpha_agent.client.request(work_sync_subject("alpha"), b"", timeout=5)
    assert reply.data == b"alpha's works"
    assert reply.subject.startswith(agent_inbox_prefix("alpha") + ".")
    assert alpha_agent.errors == []


async def test_an_agent_cannot_read_the_works_or_any_bucket(
    alpha_agent: Recorder, bus: Bus
) -> None:
    works = await bus.kv(WORKS.name)
    await works.put("beta.default.web", b"beta's manifests")
    js = alpha_agent.client.jetstream(timeout=DENIED_WITHIN_SECONDS)
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await js.key_value(WORKS.name)
    for bucket in BUCKETS:
        await alpha_agent.client.subscribe(f"$KV.{bucket.name}.>")
    await alpha_agent.client.publish(
        f"$JS.API.DIRECT.GET.KV_{WORKS.name}.$KV.{WORKS.name}.beta.default.web", b""
    )
    await alpha_agent.client.flush()
    # The refusals arrive in the order sent (the subscriptions', then the direct get's), each
    # as it is read: wait for the last one too, not only for those before it.
    await eventually(
        lambda: (
            all(alpha_agent.refused("subscription", f"$KV.{b.name}.>") for b in BUCKETS)
            and alpha_agent.refused("publish", f"$JS.API.DIRECT.GET.KV_{WORKS.name}")
        ),
        within=DENIED_WITHIN_SECONDS * 5,
    )
    assert alpha_agent.refused("publish", "$JS.API.STREAM.INFO.KV_works")
    assert alpha_agent.refused("publish", f"$JS.API.DIRECT.GET.KV_{WORKS.name}")


async def test_a_service_cannot_read_the_replies_of_the_cli_or_of_an_agent(
    nats_server: EmbeddedNats,
) -> None:
    service = Recorder()
    await service.client.connect(
        nats_server.url,
        user_credentials=str(NatsAuthHome(default_home()).creds("registry")),
        error_cb=service.on_error,
        allow_reconnect=False,
    )
    try:
        for inbox in (f"{CLI_INBOX_PREFIX}.>", f"{agent_inbox_prefix('alpha')}.>"):
            await service.client.subscribe(inbox)
        await service.client.flush()
        await eventually(
            lambda: (
                service.refused("subscription", f"{CLI_INBOX_PREFIX}.>")
                and service.refused("subscription", "_INBOX_alpha.>")
            ),
            within=DENIED_WITHIN_SECONDS * 5,
        )
    finally:
        await service.client.close()


async def test_the_cli_reads_buckets_but_cannot_write_purge_or_delete_them(
    nats_server: EmbeddedNats, bus: Bus
) -> None:
    works = await bus.kv(WORKS.name)
    await works.put("alpha.default.web", b"alpha's manifests")
    cli = Recorder()
    await cli.client.connect(
        nats_server.url,
        user_credentials=str(NatsAuthHome(default_home()).creds(CLI_IDENTITY)),
        inbox_prefix=CLI_INBOX_PREFIX,
        error_cb=cli.on_error,
        allow_reconnect=False,
    )
    try:
        # Reads work: the bucket, one key, a watch (an ephemeral ordered consumer).
        js = cli.client.jetstream(timeout=DENIED_WITHIN_SECONDS * 2)
        kv = await js.key_value(WORKS.name)
        assert (await kv.get("alpha.default.web")).value == b"alpha's manifests"
        watch = await js.subscribe(f"$KV.{WORKS.name}.>", ordered_consumer=True)
        first = await watch.next_msg(timeout=DENIED_WITHIN_SECONDS * 2)
        assert first.data == b"alpha's manifests"
        await watch.unsubscribe()
        stream = f"KV_{WORKS.name}"
        writes = (
            f"$KV.{WORKS.name}.alpha.default.web",
            f"$JS.API.STREAM.PURGE.{stream}",
            f"$JS.API.STREAM.DELETE.{stream}",
            f"$JS.API.STREAM.UPDATE.{stream}",
            f"$JS.API.STREAM.MSG.DELETE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.dispatcher",
            f"$JS.API.CONSUMER.DELETE.{stream}.dispatcher",
            "$JS.API.STREAM.CREATE.stolen",
        )
        for subject in writes:
            await cli.client.publish(subject, b"{}")
        await cli.client.flush()
        await eventually(
            lambda: all(cli.refused("publish", subject) for subject in writes),
            within=DENIED_WITHIN_SECONDS * 5,
        )
        entry = await works.get("alpha.default.web")
        assert entry is not None
        assert entry.value == b"alpha's manifests"
    finally:
        await cli.client.close()

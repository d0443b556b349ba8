"""The works channel between the dispatcher and a pull agent, pure: sealed both ways, bound
to its cluster, subject and purpose, fresh, and never replayed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from foot.agent_channel import (
    MAX_SKEW_SECONDS,
    WIRE_PREFIX,
    AgentChannel,
    AgentRecord,
    ChannelKeys,
    ChannelRefusedError,
    HubChannel,
    Purpose,
    ReplayGuard,
    agent_key,
)
from foot.catalog import work_deliver_subject, work_status_subject
from foot.kinds.works import (
    DeliveryMessage,
    StatusMessage,
    Work,
    WorkDelivery,
    WorkStatusReport,
)
from foot.registry_api import agent_key as registry_agent_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECRET_VALUE = "s3cr3t-db-password"
KEY_A = agent_key("token-of-a")


def work(cluster: str = "a") -> Work:
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()},
    }
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": f"db-secret.{cluster}", "namespace": "shop"},
            "spec": {
                "cluster": cluster,
                "binding": {"apiVersion": "v1", "kind": "Secret", "name": "db"},
                "manifests": [secret],
                "manifestsHash": "h1",
            },
        }
    )


def delivery(cluster: str = "a") -> WorkDelivery:
    return WorkDelivery(key=f"{cluster}.shop.db-secret", work=work(cluster))


def report(cluster: str = "a") -> WorkStatusReport:
    return WorkStatusReport(key=f"{cluster}.shop.db-secret", manifests_hash="h1")


def ends(
    cluster: str = "a", key: bytes = KEY_A, agent_id: str = "agent-1"
) -> tuple[HubChannel, AgentChannel]:
    return (
        HubChannel(cluster, key, max_skew_seconds=MAX_SKEW_SECONDS),
        AgentChannel(cluster, key, agent_id, max_skew_seconds=MAX_SKEW_SECONDS),
    )


def plain_forms(value: str) -> list[bytes]:
    once = base64.b64encode(value.encode())
    return [value.encode(), once, base64.b64encode(once)]


def test_the_agent_key_is_the_one_the_registry_derives() -> None:
    assert registry_agent_key("t") == agent_key("t")
    assert len(KEY_A) == 32
    record = AgentRecord.model_validate_json(
        b'{"cluster": "a", "agent_key": "' + KEY_A.hex().encode() + b'"}'
    )
    assert record.key() == KEY_A
    with pytest.raises(ValueError, match="must be 32 bytes"):
        AgentRecord(cluster="a", agent_key="abcd").key()


def test_every_message_round_trips_and_carries_no_plain_content() -> None:
    hub, agent = ends()
    sealed = hub.seal_delivery(delivery(), now=T0)
    assert sealed.startswith(WIRE_PREFIX)
    for form in plain_forms(SECRET_VALUE):
        assert form not in sealed
    assert b"db-secret" not in sealed
    opened = agent.open_delivery(sealed, now=T0 + timedelta(seconds=1))
    assert opened == DeliveryMessage(sent_at=T0, delivery=delivery())

    request, payload = agent.sync_request(now=T0)
    assert hub.open_sync_request(payload, now=T0) == request
    reply = hub.seal_sync_reply(request, [delivery()], now=T0)
    for form in plain_forms(SECRET_VALUE):
        assert form not in reply
    assert agent.open_sync_reply(reply, request, now=T0).deliveries == [delivery()]

    status = agent.seal_status(report(), now=T0)
    assert b"db-secret" not in status
    message = hub.open_status(status, now=T0)
    assert message.report == report()
    assert (message.agent_id, message.sequence) == ("agent-1", request.sequence + 1)


def test_tampering_with_any_byte_is_refused() -> None:
    hub, agent = ends()
    small = WorkStatusReport(key="a.x", manifests_hash="h")
    sealed = agent.seal_status(small, now=T0)
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(ChannelRefusedError, match=r"not sealed|forged or tampered"):
            hub.open_status(bytes(tampered), now=T0)
    for cut in (sealed[:-1], sealed[: len(WIRE_PREFIX) + 20], sealed + b"x"):
        with pytest.raises(ChannelRefusedError, match=r"truncated|forged or tampered"):
            hub.open_status(cut, now=T0)
    # Untouched, it still opens: the refusals were the tampering's.
    assert hub.open_status(sealed, now=T0).report == small

    delivered = hub.seal_delivery(delivery(), now=T0)
    body = len(WIRE_PREFIX)
    for index in (body, body + 11, body + 12, len(delivered) // 2, len(delivered) - 1):
        tampered = bytearray(delivered)
        tampered[index] ^= 0x80
        with pytest.raises(ChannelRefusedError, match="forged or tampered"):
            agent.open_delivery(bytes(tampered), now=T0)


def test_an_unsigned_message_is_refused_as_such() -> None:
    hub, agent = ends()
    plain = report().model_dump_json(by_alias=True).encode()
    with pytest.raises(ChannelRefusedError, match=r"foot\.works\.status\.a: .*not sealed"):
        hub.open_status(plain, now=T0)
    with pytest.raises(ChannelRefusedError, match="not sealed"):
        agent.open_delivery(delivery().model_dump_json(by_alias=True).encode(), now=T0)
    with pytest.raises(ChannelRefusedError, match="not sealed"):
        hub.open_sync_request(b"", now=T0)


def test_another_clusters_key_or_a_wrong_key_is_refused() -> None:
    _, agent_b = ends("b", agent_key("token-of-b"))
    hub_a, agent_a = ends("a")
    # B's agent reports on A's subject: B's key is not A's.
    message = StatusMessage(agent_id="agent-1", sequence=1, sent_at=T0, report=report())
    forged = agent_b.keys.seal(Purpose.STATUS, work_status_subject("a"), message)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        hub_a.open_status(forged, now=T0)
    # The same token for two clusters still gives each its own keys.
    _, same_token_other_cluster = ends("b", KEY_A)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        hub_a.open_status(same_token_other_cluster.seal_status(report(), now=T0), now=T0)
    wrong_key_hub, _ = ends("a", agent_key("guessed"))
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        agent_a.open_delivery(wrong_key_hub.seal_delivery(delivery(), now=T0), now=T0)


def test_a_message_moved_to_another_subject_or_purpose_is_refused() -> None:
    hub, agent = ends()
    keys = ChannelKeys("a", KEY_A)
    request, sync_payload = agent.sync_request(now=T0)
    status = agent.seal_status(report(), now=T0)
    delivered = hub.seal_delivery(delivery(), now=T0)
    reply = hub.seal_sync_reply(request, [delivery()], now=T0)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        hub.open_status(sync_payload, now=T0)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        hub.open_sync_request(status, now=T0)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        agent.open_delivery(reply, now=T0)
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        agent.open_sync_reply(delivered, request, now=T0)
    # Same key and purpose, another subject (another cluster's deliveries).
    with pytest.raises(ChannelRefusedError, match=r"foot\.works\.deliver\.b: forged or tampered"):
        keys.open(Purpose.DELIVER, work_deliver_subject("b"), delivered, DeliveryMessage)
    # A hub -> agent message reflected back to the hub does not open either.
    with pytest.raises(ChannelRefusedError, match="forged or tampered"):
        hub.open_status(delivered, now=T0)


def test_too_old_or_from_the_future_is_refused() -> None:
    hub, agent = ends()
    late = T0 + timedelta(seconds=MAX_SKEW_SECONDS + 1)
    early = T0 - timedelta(seconds=MAX_SKEW_SECONDS + 1)
    delivered = hub.seal_delivery(delivery(), now=T0)
    with pytest.raises(ChannelRefusedError, match=r"too old \(sent 61\.0s ago, at most 60s"):
        agent.open_delivery(delivered, now=late)
    with pytest.raises(ChannelRefusedError, match="in the future"):
        agent.open_delivery(delivered, now=early)
    assert agent.open_delivery(delivered, now=T0 + timedelta(seconds=MAX_SKEW_SECONDS))
    with pytest.raises(ChannelRefusedError, match="too old"):
        hub.open_status(agent.seal_status(report(), now=T0), now=late)
    request, payload = agent.sync_request(now=T0)
    with pytest.raises(ChannelRefusedError, match="in the future"):
        hub.open_sync_request(payload, now=early)
    reply = hub.seal_sync_reply(request, [], now=T0)
    with pytest.raises(ChannelRefusedError, match="too old"):
        agent.open_sync_reply(reply, request, now=late)


def test_a_replayed_report_or_request_is_refused() -> None:
    hub, agent = ends()
    first = agent.seal_status(report(), now=T0)
    second = agent.seal_status(report(), now=T0)
    # Out of order (concurrent workers) is fine; each only once.
    hub.open_status(second, now=T0)
    hub.open_status(first, now=T0)
    for again in (first, second):
        with pytest.raises(ChannelRefusedError, match="replayed"):
            hub.open_status(again, now=T0 + timedelta(seconds=1))
    _, payload = agent.sync_request(now=T0)
    hub.open_sync_request(payload, now=T0)
    with pytest.raises(ChannelRefusedError, match="replayed"):
        hub.open_sync_request(payload, now=T0)
    # A new agent process (another id) counts on its own.
    _, restarted = ends(agent_id="agent-2")
    hub.open_status(restarted.seal_status(report(), now=T0), now=T0)


def test_a_sync_reply_answers_only_its_own_request() -> None:
    hub, agent = ends()
    old, _ = agent.sync_request(now=T0)
    new, _ = agent.sync_request(now=T0)
    stale = hub.seal_sync_reply(old, [delivery()], now=T0)
    with pytest.raises(ChannelRefusedError, match="answers another request"):
        agent.open_sync_reply(stale, new, now=T0)


def test_the_replay_guard_has_a_window_and_forgets_idle_agents() -> None:
    guard = ReplayGuard(max_skew_seconds=10, window=4)
    for sequence in range(1, 20):
        guard.accept("s", "x", sequence, T0)
    with pytest.raises(ChannelRefusedError, match="more than 4 behind 19"):
        guard.accept("s", "x", 15, T0)
    with pytest.raises(ChannelRefusedError, match="seen already"):
        guard.accept("s", "x", 17, T0)
    guard.accept("s", "x", 25, T0)
    guard.accept("s", "x", 22, T0)  # out of order, within the window
    assert len(guard) == 1
    # Idle for longer than 2 * skew + 1: forgotten (its old messages are too old by then).
    guard.accept("s", "y", 1, T0 + timedelta(seconds=22))
    assert len(guard) == 1


def test_deriving_keys_is_done_once_per_cluster() -> None:
    keys = ChannelKeys("a", KEY_A)
    assert keys.same_key(KEY_A)
    assert not keys.same_key(agent_key("other"))
    assert "hidden" in repr(keys)
    assert KEY_A.hex() not in repr(keys)
    with pytest.raises(ValueError, match="32 bytes"):
        ChannelKeys("a", b"short")


def test_a_sealed_message_of_another_shape_is_refused_by_field() -> None:
    hub, _ = ends()
    keys = ChannelKeys("a", KEY_A)
    wrong_shape = keys.seal(Purpose.STATUS, work_status_subject("a"), report())
    with pytest.raises(ChannelRefusedError, match=r"malformed StatusMessage \(agentId, "):
        hub.open_status(wrong_shape, now=T0)

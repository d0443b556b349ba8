"""The works channel between the dispatcher and a pull agent: sealed and authenticated.

NATS permissions fence an agent to its own cluster's subjects, but every service's user may
read and publish `foot.>`. So nothing on `foot.works.*.<cluster>` is readable or forgeable
without the cluster's agent key:

Keys
    The agent key K is HMAC-SHA256(bootstrap token, "foot-agent-key-v1") (`agent_key`):
    the agent derives it from its token, the registry keeps it sealed in the
    `cluster-agents` bucket (`AgentRecord`), and the dispatcher mirrors that bucket. From K
    one AES-256-GCM key per purpose is derived with HKDF-SHA256 (no salt,
    info = `<purpose label> 0x00 <cluster>`), once per cluster (`ChannelKeys`):

    ===========================  ===========  ==========================================
    label                        direction    messages
    ===========================  ===========  ==========================================
    foot-works-deliver-v1        hub -> agent  `DeliveryMessage` on foot.works.deliver.C
    foot-works-sync-reply-v1     hub -> agent  `SyncReply` to a sync request
    foot-works-sync-v1           agent -> hub  `SyncRequest` on foot.works.sync.C
    foot-works-status-v1         agent -> hub  `StatusMessage` on foot.works.status.C
    ===========================  ===========  ==========================================

    A message sealed for one purpose never opens as another, nor with another cluster's
    key (another token, and the cluster in the info).

Wire format
    ``b"foot-channel-v1:" + nonce (12 random bytes) + AES-GCM(JSON of the message) + tag``,
    raw bytes (no base64: a sync reply holds every work of a cluster and NATS limits a
    message's size). The associated data is the subject the message is meant for,
    `foot.works.<family>.<cluster>` (a sync reply: the sync subject with ` reply`), so a
    message moved to another subject or cluster does not open. A message without the
    prefix is "not sealed" (an unsigned one is refused as such); every refusal is a
    `ChannelRefusedError` naming the reason, never key material.

Freshness and replay
    Every message carries `sentAt`; outside `max_skew_seconds` of the receiver's clock
    (either way: clocks of two machines) it is refused as too old or from the future.
    Agent -> hub messages also carry the agent process's id and a sequence that increases
    by one per message; the hub refuses a sequence it has seen from that agent id, or one
    more than `REPLAY_WINDOW` behind the highest (`ReplayGuard`: reports of the agent's
    concurrent workers may arrive out of order, within the window). An agent id not heard
    from for `2 * max_skew + 1` seconds is forgotten: its messages are too old by then. A
    sync reply names the request it answers (agent id and sequence), so an old reply is
    no answer to a new request. Deliveries carry no sequence (the dispatcher resends them):
    the agent keeps the newest `sentAt` per work and drops an older delivery of it.
    Limits: the replay state lives in the receiver's memory, so a message captured less
    than `max_skew_seconds` before a dispatcher's restart may be replayed once to it, and
    an acknowledgement (`{"ok": true}`) is not sealed: a forged one only delays a report
    until the dispatcher's next resend.

Pure: no I/O; the caller passes the time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ValidationError

from foot.catalog import work_deliver_subject, work_status_subject, work_sync_subject
from foot.errors import PermanentError
from foot.kinds.works import (
    DeliveryMessage,
    StatusMessage,
    SyncReply,
    SyncRequest,
    WorkDelivery,
    WorkStatusReport,
)
from foot.objects import FrozenModel
from foot.secrets import KEY_BYTES, NONCE_BYTES, hkdf_key

AGENT_KEY_CONTEXT = b"foot-agent-key-v1"
WIRE_PREFIX = b"foot-channel-v1:"
TAG_BYTES = 16
MAX_SKEW_SECONDS = 60.0
"""Default: how far a message's `sentAt` may be from the receiver's clock."""
REPLAY_WINDOW = 4096
"""How far behind an agent's highest sequence a message may arrive (out of order)."""

M = TypeVar("M", bound=BaseModel)


def agent_key(bootstrap_token: str) -> bytes:
    """The per-cluster key both sides derive from the bootstrap token (HMAC-SHA256)."""
    return hmac.new(bootstrap_token.encode(), AGENT_KEY_CONTEXT, hashlib.sha256).digest()


class AgentRecord(FrozenModel):
    """What the registry keeps per pull cluster in `cluster-agents` (sealed as a whole); the
    dispatcher reads it for the cluster's agent key."""

    cluster: str
    """Cluster name."""
    agent_key: str
    """Hex of the agent key (`agent_key`)."""

    def key(self) -> bytes:
        """The agent key's bytes (ValueError when the hex is malformed)."""
        key = bytes.fromhex(self.agent_key)
        if len(key) != KEY_BYTES:
            raise ValueError(f"must be {KEY_BYTES} bytes, got {len(key)}")
        return key


class ChannelRefusedError(PermanentError):
    """A works-channel message was refused: not sealed, forged or tampered, for another
    cluster or subject, too old, replayed, or malformed. The message names the reason and
    never holds key material or the message's content."""


class Purpose(StrEnum):
    """HKDF labels: one key per purpose and direction."""

    DELIVER = "foot-works-deliver-v1"
    SYNC_REPLY = "foot-works-sync-reply-v1"
    SYNC = "foot-works-sync-v1"
    STATUS = "foot-works-status-v1"


def sync_reply_subject(cluster: str) -> str:
    """What a sync reply is bound to (it travels on the agent's inbox, named at random)."""
    return f"{work_sync_subject(cluster)} reply"


class ChannelKeys:
    """One cluster's purpose keys, derived once from its agent key."""

    def __init__(self, cluster: str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an agent key is {KEY_BYTES} bytes, got {len(key)}")
        self.cluster = cluster
        self._aeads = {purpose: AESGCM(_derive(key, purpose, cluster)) for purpose in Purpose}
        self._fingerprint = hashlib.sha256(b"foot-agent-key-id\x00" + key).digest()

    def same_key(self, key: bytes) -> bool:
        """Whether these keys were derived from `key` (a record written again, unchanged)."""
        candidate = hashlib.sha256(b"foot-agent-key-id\x00" + key).digest()
        return hmac.compare_digest(candidate, self._fingerprint)

    def __repr__(self) -> str:
        return f"ChannelKeys({self.cluster!r}, <keys hidden>)"

    def seal(self, purpose: Purpose, subject: str, message: BaseModel) -> bytes:
        """`message` as JSON, encrypted and authenticated for `subject`."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        plaintext = message.model_dump_json(by_alias=True).encode()
        return (
            WIRE_PREFIX + nonce + self._aeads[purpose].encrypt(nonce, plaintext, subject.encode())
        )

    def open(self, purpose: Purpose, subject: str, data: bytes, model: type[M]) -> M:
        """The message sealed for `subject`, or ChannelRefusedError."""
        if not data.startswith(WIRE_PREFIX):
            raise ChannelRefusedError(f"{subject}: the message is not sealed (unsigned)")
        raw = data[len(WIRE_PREFIX) :]
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise ChannelRefusedError(f"{subject}: the sealed message is truncated")
        try:
            plaintext = self._aeads[purpose].decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject.encode()
            )
        except InvalidTag:
            raise ChannelRefusedError(
                f"{subject}: forged or tampered (does not open with cluster "
                f"{self.cluster}'s agent key for this subject)"
            ) from None
        try:
            return model.model_validate_json(plaintext)
        except ValidationError as exc:
            # Sealed with the right key, yet not this message: a bug or another version.
            fields = ", ".join(".".join(map(str, e["loc"])) or "(message)" for e in exc.errors())
            raise ChannelRefusedError(f"{subject}: malformed {model.__name__} ({fields})") from None


def _derive(key: bytes, purpose: Purpose, cluster: str) -> bytes:
    return hkdf_key(key, info=purpose.value.encode() + b"\x00" + cluster.encode())


def check_fresh(subject: str, sent_at: datetime, now: datetime, max_skew_seconds: float) -> None:
    """ChannelRefusedError unless `sent_at` is within `max_skew_seconds` of `now`."""
    age = (now - sent_at).total_seconds()
    if age > max_skew_seconds:
        raise ChannelRefusedError(
            f"{subject}: too old (sent {age:.1f}s ago, at most {max_skew_seconds:g}s accepted)"
        )
    if -age > max_skew_seconds:
        raise ChannelRefusedError(
            f"{subject}: sent {-age:.1f}s in the future (at most {max_skew_seconds:g}s of "
            "clock skew accepted)"
        )


@dataclass(slots=True)
class _Heard:
    highest: int
    seen: set[int] = field(default_factory=set)
    last: datetime | None = None


class ReplayGuard:
    """Which (agent id, sequence) pairs were accepted lately (see the module docstring)."""

    def __init__(self, *, max_skew_seconds: float, window: int = REPLAY_WINDOW) -> None:
        self.window = window
        self.forget_after_seconds = 2 * max_skew_seconds + 1
        self._agents: dict[str, _Heard] = {}
        self._next_sweep: datetime | None = None

    def __len__(self) -> int:
        return len(self._agents)

    def accept(self, subject: str, agent_id: str, sequence: int, now: datetime) -> None:
        """Record the pair, or ChannelRefusedError when it was seen or is too far behind."""
        self._sweep(now)
        heard = self._agents.get(agent_id)
        if heard is None:
            heard = self._agents[agent_id] = _Heard(highest=sequence)
        elif sequence in heard.seen:
            raise ChannelRefusedError(
                f"{subject}: replayed (sequence {sequence} of agent {agent_id} seen already)"
            )
        elif sequence <= heard.highest - self.window:
            raise ChannelRefusedError(
                f"{subject}: replayed or too late (sequence {sequence} of agent {agent_id} is "
                f"more than {self.window} behind {heard.highest})"
            )
        heard.seen.add(sequence)
        heard.last = now
        if sequence > heard.highest:
            heard.highest = sequence
            if len(heard.seen) > 2 * self.window:  # amortized: once per `window` messages
                floor = sequence - self.window
                heard.seen = {s for s in heard.seen if s > floor}

    def _sweep(self, now: datetime) -> None:
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + timedelta(seconds=self.forget_after_seconds)
        for agent_id, heard in list(self._agents.items()):
            if heard.last is not None and (now - heard.last).total_seconds() > (
                self.forget_after_seconds
            ):
                del self._agents[agent_id]


class HubChannel:
    """The dispatcher's end of one cluster's channel."""

    def __init__(self, cluster: str, key: bytes, *, max_skew_seconds: float) -> None:
        self.cluster = cluster
        self.keys = ChannelKeys(cluster, key)
        self.max_skew_seconds = max_skew_seconds
        self.guard = ReplayGuard(max_skew_seconds=max_skew_seconds)

    def seal_delivery(self, delivery: WorkDelivery, *, now: datetime) -> bytes:
        return self.keys.seal(
            Purpose.DELIVER,
            work_deliver_subject(self.cluster),
            DeliveryMessage(sent_at=now, delivery=delivery),
        )

    def open_sync_request(self, data: bytes, *, now: datetime) -> SyncRequest:
        subject = work_sync_subject(self.cluster)
        request = self.keys.open(Purpose.SYNC, subject, data, SyncRequest)
        self._from_agent(subject, request.agent_id, request.sequence, request.sent_at, now)
        return request

    def seal_sync_reply(
        self, request: SyncRequest, deliveries: list[WorkDelivery], *, now: datetime
    ) -> bytes:
        reply = SyncReply(
            sent_at=now,
            agent_id=request.agent_id,
            sequence=request.sequence,
            deliveries=deliveries,
        )
        return self.keys.seal(Purpose.SYNC_REPLY, sync_reply_subject(self.cluster), reply)

    def open_status(self, data: bytes, *, now: datetime) -> StatusMessage:
        subject = work_status_subject(self.cluster)
        message = self.keys.open(Purpose.STATUS, subject, data, StatusMessage)
        self._from_agent(subject, message.agent_id, message.sequence, message.sent_at, now)
        return message

    def _from_agent(
        self, subject: str, agent_id: str, sequence: int, sent_at: datetime, now: datetime
    ) -> None:
        check_fresh(subject, sent_at, now, self.max_skew_seconds)
        self.guard.accept(subject, agent_id, sequence, now)


class AgentChannel:
    """The agent's end: seals what it sends (one sequence per process), opens what the
    hub sends."""

    def __init__(self, cluster: str, key: bytes, agent_id: str, *, max_skew_seconds: float) -> None:
        self.cluster = cluster
        self.agent_id = agent_id
        self.keys = ChannelKeys(cluster, key)
        self.max_skew_seconds = max_skew_seconds
        self.sequence = 0
        """The last sequence sent."""

    def _next(self) -> int:
        self.sequence += 1
        return self.sequence

    def open_delivery(self, data: bytes, *, now: datetime) -> DeliveryMessage:
        subject = work_deliver_subject(self.cluster)
        message = self.keys.open(Purpose.DELIVER, subject, data, DeliveryMessage)
        check_fresh(subject, message.sent_at, now, self.max_skew_seconds)
        return message

    def sync_request(self, *, now: datetime) -> tuple[SyncRequest, bytes]:
        request = SyncRequest(agent_id=self.agent_id, sequence=self._next(), sent_at=now)
        return request, self.keys.seal(Purpose.SYNC, work_sync_subject(self.cluster), request)

    def open_sync_reply(self, data: bytes, request: SyncRequest, *, now: datetime) -> SyncReply:
        subject = sync_reply_subject(self.cluster)
        reply = self.keys.open(Purpose.SYNC_REPLY, subject, data, SyncReply)
        if (reply.agent_id, reply.sequence) != (request.agent_id, request.sequence):
            raise ChannelRefusedError(
                f"{subject}: answers another request (sequence {reply.sequence} of agent "
                f"{reply.agent_id}, not {request.sequence} of {request.agent_id})"
            )
        check_fresh(subject, reply.sent_at, now, self.max_skew_seconds)
        return reply

    def seal_status(self, report: WorkStatusReport, *, now: datetime) -> bytes:
        message = StatusMessage(
            agent_id=self.agent_id, sequence=self._next(), sent_at=now, report=report
        )
        return self.keys.seal(Purpose.STATUS, work_status_subject(self.cluster), message)

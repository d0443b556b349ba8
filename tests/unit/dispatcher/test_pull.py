"""Pull delivery's handlers without NATS: what is published and answered for each agent
message, with the works on an in-memory bucket and the agent's side of the channel."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

import orjson
import pytest
from nats.aio.msg import Msg

from foot.agent_channel import MAX_SKEW_SECONDS, AgentChannel, AgentRecord, agent_key
from foot.bus import Bus, Entry, Informer, ReconcileQueue
from foot.catalog import work_deliver_subject
from foot.kinds.clusters import Cluster
from foot.kinds.works import Work, WorkStatusReport
from foot.objects import utc_now
from foot.runtime.mirror import Mirror
from foot_dispatcher.pull import PullDelivery
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.works import WorksCache
from memory_kv import MemoryKv

EDGE, HQ = "edge", "hq"
KEY = agent_key("edge-token")
PULL_WORK = f"{EDGE}.work.foot.dev.ResourceBinding.shop.db"
PUSH_WORK = f"{HQ}.work.foot.dev.ResourceBinding.shop.db"


def cluster(name: str, mode: str) -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"syncMode": mode},
        }
    )


def work(name: str) -> Work:
    return Work.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "Work",
            "metadata": {"name": f"db.{name}", "namespace": "shop"},
            "spec": {
                "cluster": name,
                "binding": {"apiVersion": "v1", "kind": "Secret", "name": "db"},
                "manifests": [
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "db", "namespace": "shop"},
                        "data": {"password": "cGFzc3dvcmQ="},
                    }
                ],
                "manifestsHash": "h1",
            },
        }
    )


class FakeBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def notify(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))


class FakeMsg:
    def __init__(self, subject: str, data: bytes) -> None:
        self.subject = subject
        self.data = data
        self.answers: list[bytes] = []

    async def respond(self, data: bytes) -> None:
        self.answers.append(data)


class FakeInformer:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def listen(self, listener: Any) -> None:
        self.listeners.append(listener)

    def put(self, key: str, value: bytes) -> None:
        for listener in self.listeners:
            listener(Entry(key=key, value=value, revision=1))


class Setup:
    def __init__(self) -> None:
        self.bus = FakeBus()
        self.works = WorksCache(MemoryKv("works"))
        self.lanes: dict[str, ReconcileQueue] = {}

        async def nothing(_key: str) -> None:
            return None

        def new_lane(name: str) -> ReconcileQueue:
            return ReconcileQueue(f"apply:{name}", nothing)

        self.queues = DispatchQueues(
            render=ReconcileQueue("render", nothing),
            status=ReconcileQueue("status", nothing),
            aggregate=ReconcileQueue("aggregate", nothing),
            new_lane=new_lane,
            aggregate_delay_seconds=0,
        )
        self.pull = PullDelivery(
            cast(Bus, self.bus),
            self.works,
            self.queues,
            {EDGE: cluster(EDGE, "Pull"), HQ: cluster(HQ, "Push")},
            resend_seconds=60,
            max_skew_seconds=MAX_SKEW_SECONDS,
        )
        self.informer = FakeInformer()
        self.pull.listen_agents(
            Mirror(cast(Informer, self.informer), AgentRecord.model_validate_json, "agent")
        )
        self.agent = AgentChannel(EDGE, KEY, "agent-1", max_skew_seconds=MAX_SKEW_SECONDS)

    def register(self) -> None:
        record = AgentRecord(cluster=EDGE, agent_key=KEY.hex())
        self.informer.put(EDGE, orjson.dumps(record.model_dump()))

    async def status(self, cluster: str, payload: bytes) -> dict[str, Any]:
        msg = FakeMsg(f"foot.works.status.{cluster}", payload)
        await self.pull._on_status(cast(Msg, msg))
        (answer,) = msg.answers
        return dict(orjson.loads(answer))


@pytest.fixture
async def setup() -> Setup:
    made = Setup()
    for name in (EDGE, HQ):
        key = PULL_WORK if name == EDGE else PUSH_WORK
        await made.works.put(key, lambda _current, name=name: work(name))  # type: ignore[misc]
    return made


async def test_nothing_is_delivered_without_the_agent_key_until_it_appears(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    stored = setup.works.get(PULL_WORK)
    assert stored is not None
    with caplog.at_level(logging.WARNING):
        await setup.pull.deliver(PULL_WORK, stored)
        await setup.pull.deliver(PULL_WORK, stored)
    assert setup.bus.published == []
    assert [r.message for r in caplog.records].count(
        "no agent key known for pull cluster edge: its works wait until the registry has one "
        "(is the cluster registered?)"
    ) == 1
    assert len(setup.queues.lane(EDGE)) == 0
    setup.register()
    assert len(setup.queues.lane(EDGE)) == 1  # handed to its lane again
    await setup.pull.deliver(PULL_WORK, stored)
    ((subject, payload),) = setup.bus.published
    assert subject == work_deliver_subject(EDGE)
    assert b"cGFzc3dvcmQ=" not in payload
    assert setup.agent.open_delivery(payload, now=utc_now()).delivery.work == stored


async def test_a_status_is_stored_only_when_sealed_by_the_clusters_agent(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    setup.register()
    report = WorkStatusReport(key=PULL_WORK, manifests_hash="h1", error="member unreachable")
    with caplog.at_level(logging.WARNING):
        unsigned = await setup.status(EDGE, report.model_dump_json(by_alias=True).encode())
        wrong = AgentChannel(EDGE, agent_key("guess"), "x", max_skew_seconds=60)
        forged = await setup.status(EDGE, wrong.seal_status(report, now=utc_now()))
        stale = await setup.status(
            EDGE, setup.agent.seal_status(report, now=utc_now() - timedelta(minutes=5))
        )
        other = report.model_copy(update={"key": PUSH_WORK})
        elsewhere = await setup.status(EDGE, setup.agent.seal_status(other, now=utc_now()))
        pushed = await setup.status(HQ, setup.agent.seal_status(other, now=utc_now()))
    assert unsigned == {
        "ok": False,
        "error": "foot.works.status.edge: the message is not sealed (unsigned)",
    }
    assert "forged or tampered" in forged["error"]
    assert "too old" in stale["error"]
    assert elsewhere["error"] == f"work '{PUSH_WORK}' is not a work of cluster 'edge'"
    assert pushed["error"].startswith("cluster 'hq' is in Push mode")
    assert setup.pull.refusals == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5
    assert all(KEY.hex() not in w for w in warnings)
    for key in (PULL_WORK, PUSH_WORK):
        stored = setup.works.get(key)
        assert stored is not None
        assert stored.status.conditions == []  # nothing stored

    sealed = setup.agent.seal_status(report, now=utc_now())
    assert await setup.status(EDGE, sealed) == {"ok": True}
    stored = setup.works.get(PULL_WORK)
    assert stored is not None
    assert "member unreachable" in stored.model_dump_json()
    replayed = await setup.status(EDGE, sealed)
    assert "replayed" in replayed["error"]


async def test_a_sync_answers_a_sealed_request_with_a_sealed_reply(setup: Setup) -> None:
    setup.register()
    request, payload = setup.agent.sync_request(now=utc_now())
    msg = FakeMsg("foot.works.sync.edge", payload)
    await setup.pull._on_sync(cast(Msg, msg))
    (answer,) = msg.answers
    assert b"cGFzc3dvcmQ=" not in answer
    reply = setup.agent.open_sync_reply(answer, request, now=utc_now())
    assert [d.key for d in reply.deliveries] == [PULL_WORK]
    for subject, data in (("foot.works.sync.edge", b""), ("foot.works.sync.hq", payload)):
        refused = FakeMsg(subject, data)
        await setup.pull._on_sync(cast(Msg, refused))
        assert orjson.loads(refused.answers[0])["ok"] is False

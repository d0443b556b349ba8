"""Each document is checked once on its way in: by its owner, whose check counts whoever sends
to its subject; the front door checks only what it applies itself or cannot route."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from foot.api import ApiReply, ApiRequest, ObjectResult, ref_of
from foot.catalog import REJECTED, owner_apply_subject
from foot.kinds import KINDS
from foot.runtime import ingest as ingest_module
from foot.runtime.ingest import ApiIngest
from foot.runtime.metrics import ServiceMetrics

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}


@dataclass
class Reply:
    data: bytes


@dataclass
class RecordingBus:
    """Answers an owner's subject as an owner that created everything it was sent."""

    requests: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def request(self, subject: str, data: bytes, wait_seconds: float = 0) -> Reply:  # noqa: ARG002
        documents = ApiRequest.model_validate_json(data).objects
        self.requests.append((subject, documents))
        results = [ObjectResult(ref=ref_of(d), outcome="created") for d in documents]
        return Reply(ApiReply(results=results).model_dump_json(by_alias=True).encode())

    async def publish(self, subject: str, data: bytes) -> None:
        self.published.append((subject, orjson.loads(data)))


class CountingKinds:
    """The kind registry, recording the name of every document `parse` checks."""

    def __init__(self) -> None:
        self.checked: list[str] = []

    def parse(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        self.checked.append(str(ref_of(document).name))
        return KINDS.parse(document, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(KINDS, name)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the documents the ingest checked."""
    kinds = CountingKinds()
    monkeypatch.setattr(ingest_module, "KINDS", kinds)
    return kinds.checked


def ingest(owner: str) -> tuple[ApiIngest, RecordingBus]:
    bus = RecordingBus()
    return ApiIngest(bus, owner, ServiceMetrics(owner)), bus  # type: ignore[arg-type]


async def test_the_front_door_forwards_another_owners_documents_unchecked(
    checks: list[str],
) -> None:
    front, bus = ingest("registry")
    bad = copy.deepcopy(DEPLOYMENT)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["replicas"] = "x"
    reply = await front._front_apply(ApiRequest(objects=[DEPLOYMENT, bad]))
    assert bus.requests == [(owner_apply_subject("scheduler"), [DEPLOYMENT, bad])]
    assert checks == []  # the scheduler checks both (see the next test)
    assert [r.outcome for r in reply.results] == ["created", "created"]


async def test_the_owner_refuses_an_invalid_document_whoever_sends_it(checks: list[str]) -> None:
    owner, bus = ingest("scheduler")
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = 2**31
    reply = await owner._owner_apply(ApiRequest(objects=[bad]))
    assert checks == ["web"]
    error = reply.results[0].error
    assert reply.results[0].outcome == "rejected"
    assert error is not None
    assert [f.path for f in error.fields] == ["spec.replicas"]
    assert "32-bit" in error.fields[0].reason
    assert [subject for subject, _ in bus.published] == [REJECTED]


async def test_the_front_door_checks_what_it_cannot_route(checks: list[str]) -> None:
    front, bus = ingest("registry")
    unroutable: list[dict[str, Any]] = [
        {"metadata": {"name": "no-kind"}},
        {"apiVersion": "example.com/one", "kind": "Widget", "metadata": {"name": "bad-version"}},
    ]
    reply = await front._front_apply(ApiRequest(objects=unroutable))
    assert bus.requests == []
    assert checks == ["no-kind", "bad-version"]
    assert [r.outcome for r in reply.results] == ["rejected", "rejected"]
    assert [f.path for r in reply.results if r.error for f in r.error.fields] == [
        "apiVersion",
        "kind",
        "apiVersion",  # "one" is no version
    ]
    assert [subject for subject, _ in bus.published] == [REJECTED, REJECTED]

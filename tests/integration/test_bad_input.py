"""Bad inputs (issue 15's "Bad input" findings) against the real ingest over NATS and HTTP and
against the CLI's loader: each gets a clear Invalid answer naming the field and the reason, in
one error shape, and nothing invalid is stored."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from bad_input_support import deployment

from foot.api import ApiError, ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, TEMPLATES
from foot.errors import InvalidObjectError
from foot.runtime.settings import ServiceSettings
from foot.yamlsafe import load_documents
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_scheduler.service import SchedulerService
from support import stored_values

TOKEN = "t" * 32
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


def with_ports(name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    document = deployment(name)
    document["spec"]["template"]["spec"]["containers"][0]["ports"] = ports
    return document


def relabelled(name: str, labels: dict[str, str]) -> dict[str, Any]:
    document = deployment(name)
    document["metadata"]["labels"] = labels
    return document


DOCUMENT_CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "apps-v2",
        deployment("bad-v2") | {"apiVersion": "apps/v2"},
        [("kind", "is not served by Kubernetes 1.36")],
    ),
    (
        "unknown-kind",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad-widget"}},
        [("kind", "CustomResourceDefinition")],
    ),
    ("replicas-int32", deployment("bad-int32", replicas=2147483648), [("spec.replicas", "32-bit")]),
    ("replicas-1e12", deployment("bad-1e12", replicas=1e12), [("spec.replicas", "32-bit")]),
    ("replicas-string", deployment("bad-str", replicas="3"), [("spec.replicas", "an integer")]),
    (
        "label-key",
        relabelled("bad-label", {"bad key": "x", "app": "bad-label"}),
        [("metadata.labels", "key 'bad key'")],
    ),
    (
        "label-value",
        relabelled("bad-value", {"app": "-bad-"}),
        [("metadata.labels.app", "at most 63 characters")],
    ),
    (
        "selector-mismatch",
        deployment("bad-selector", selector={"matchLabels": {"app": "other"}}),
        [("spec.template.metadata.labels", "`selector` does not match template `labels`")],
    ),
    ("unknown-field", deployment("bad-field", replicaz=3), [("spec.replicaz", "unknown field")]),
    (
        "two-bad-ports",
        with_ports("bad-ports", [{"containerPort": 0}, {"containerPort": 70000}]),
        [
            ("spec.template.spec.containers.0.ports.0.containerPort", "from 1 to 65535"),
            ("spec.template.spec.containers.0.ports.1.containerPort", "from 1 to 65535"),
        ],
    ),
    (
        "three-bad-fields",
        deployment("bad-three", replicas="x", paused="no", minReadySeconds=2**40),
        [
            ("spec.replicas", "an integer"),
            ("spec.paused", "a boolean"),
            ("spec.minReadySeconds", "32-bit"),
        ],
    ),
]


@pytest.fixture
async def scheduler(nats_server: EmbeddedNats) -> AsyncIterator[SchedulerService]:
    values: dict[str, Any] = {
        "nats_url": nats_server.url,
        "admin_port": 0,
        "shutdown_deadline_seconds": 2.0,
    }
    async with (
        SchedulerService(ServiceSettings(**(values | {"admin_token": TOKEN}))) as owner,
        RegistryService(ServiceSettings(**values)),
    ):
        yield owner


async def answer_over(
    transport: str, scheduler: SchedulerService, bus: Bus, body: bytes
) -> tuple[int | str, dict[str, Any]]:
    """(HTTP status or NATS, the decoded answer) for one raw request body."""
    if transport == "nats":
        msg = await bus.request(API_APPLY, body)
        return "nats", orjson.loads(msg.data)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/yaml"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{scheduler.admin.url}/api/apply", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def assert_fields(error: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    parsed = ApiError.model_validate(error)
    assert parsed.code == "Invalid"
    assert parsed.fields, "a field error always names its fields"
    found = {f.path: f.reason for f in parsed.fields}
    for path, fragment in expected:
        assert path in found, (path, found)
        assert fragment in found[path], (path, found[path])
    text = orjson.dumps(error).decode()
    assert "pydantic" not in text
    assert "https://" not in text


async def assert_nothing_stored(nats_server: EmbeddedNats, name: str) -> None:
    stored = await stored_values(nats_server.url, TEMPLATES.name)
    assert not [key for key in stored if key.endswith(f".{name}")]


@pytest.mark.parametrize("transport", ["nats", "http"])
@pytest.mark.parametrize(
    ("document", "expected"),
    [pytest.param(d, e, id=i) for i, d, e in DOCUMENT_CASES],
)
async def test_a_bad_template_is_refused_with_every_problem(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    transport: str,
    document: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    if transport == "nats":
        body = orjson.dumps(ApiRequest(objects=[document]).model_dump(by_alias=True))
    else:
        body = yaml.safe_dump(document).encode()
    status, answer = await answer_over(transport, scheduler, bus, copy.deepcopy(body))
    assert status in ("nats", 422)
    reply = ApiReply.model_validate(answer)
    assert [r.outcome for r in reply.results] == ["rejected"]
    assert reply.results[0].error is not None
    assert_fields(reply.results[0].error.model_dump(by_alias=True), expected)
    await assert_nothing_stored(nats_server, document["metadata"]["name"])


BODY_CASES: list[tuple[str, str, bytes, str, str]] = [
    # (id, transport, body, field path, reason fragment)
    ("empty-http", "http", b"", "", "no objects in the request"),
    ("null-http", "http", b"null", "", "no objects in the request"),
    ("empty-nats", "nats", b"", "", "does not parse"),
    ("no-objects-nats", "nats", b'{"objects": []}', "objects", "no objects in the request"),
    ("null-objects-nats", "nats", b'{"objects": null}', "objects", "is required"),
    ("raw-null-nats", "nats", b"null", "", "must be a JSON object"),
    ("binary-http", "http", b"\x89PNG\r\n\x1a\n\x00\xff", "", "is not UTF-8"),
    ("binary-nats", "nats", b"\x89PNG\r\n\x1a\n\x00\xff", "", "is not UTF-8"),
    ("bomb-http", "http", BOMB.encode(), "", "aliases"),
    ("binary-tag-http", "http", b"kind: !!binary aGk=\n", "", "tag !!binary is not allowed"),
    ("custom-tag-http", "http", b"kind: !shell ls\n", "", "tag !shell is not allowed"),
    ("duplicate-key-http", "http", b"kind: A\nkind: B\n", "", "duplicate key 'kind' at line 2"),
    ("duplicate-key-nats", "nats", b'{"objects": [], "objects": []}', "", "duplicate key"),
    ("not-a-mapping-nats", "nats", b'{"objects": ["x"]}', "objects.0", "must be a mapping"),
    ("unknown-field-nats", "nats", b'{"objects": [{}], "x": 1}', "x", "unknown field"),
    ("deep-http", "http", b"[" * 500 + b"]" * 500, "", "nested deeper than 100"),
    ("deep-nats", "nats", b'{"objects": ' + b"[" * 500 + b"]" * 500 + b"}", "", "nested"),
    ("broken-yaml-http", "http", b"{not yaml: [", "", "does not parse"),
]


@pytest.mark.parametrize(
    ("transport", "body", "path", "fragment"),
    [pytest.param(t, b, p, f, id=i) for i, t, b, p, f in BODY_CASES],
)
async def test_a_bad_request_body_gets_one_clear_error(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    transport: str,
    body: bytes,
    path: str,
    fragment: str,
) -> None:
    before = await stored_values(nats_server.url, TEMPLATES.name)
    status, answer = await answer_over(transport, scheduler, bus, body)
    assert status in ("nats", 422)
    assert "error" in answer, answer
    assert_fields(answer["error"], [(path, fragment)])
    assert await stored_values(nats_server.url, TEMPLATES.name) == before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [pytest.param(b, f, id=i) for i, t, b, p, f in BODY_CASES if t == "http"],
)
def test_the_cli_loader_refuses_the_same_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidObjectError) as refused:
        load_documents(body, source="deploy.yaml")
    assert [fragment in p.reason for p in refused.value.problems] == [True]

"""The registry's request transport without NATS: decoding a request, a handler's error as
the reply (and its HTTP status, from the one map of `foot.runtime.wire`), and the admin API
route answering a body that is not a JSON object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from foot.api import ApiError
from foot.errors import AlreadyExistsError, FootError, NotFoundError, TransportError
from foot.registry_api import JoinRequest, RegistryReply
from foot_registry.routing import (
    NOT_AN_OBJECT_BODY,
    NOT_AN_OBJECT_REQUEST,
    DocumentHandler,
    error_reply,
    over_http,
    over_nats,
    parse,
    request_document,
)


def test_a_request_that_does_not_parse_is_invalid_with_its_fields() -> None:
    with pytest.raises(FootError) as caught:
        parse(JoinRequest, {"name": "east"}, "join request")
    error = ApiError.from_exception(caught.value)
    assert error.code == "Invalid"
    assert [(f.path, f.reason) for f in error.fields] == [
        ("", "give exactly one of kubeconfig and sealedKubeconfig")
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "does not parse: "),
        (b"", "does not parse: "),
        (b'{"name": "a", "name": "b"}', "duplicate key 'name'"),
        (b"null", NOT_AN_OBJECT_REQUEST),
        (b"[1]", NOT_AN_OBJECT_REQUEST),
        (b'"east"', NOT_AN_OBJECT_REQUEST),
    ],
)
def test_a_request_that_is_not_a_json_object_is_invalid(body: bytes, message: str) -> None:
    with pytest.raises(FootError) as caught:
        request_document(body, not_an_object=NOT_AN_OBJECT_REQUEST)
    error = ApiError.from_exception(caught.value)
    assert error.code == "Invalid"
    assert [field.path for field in error.fields] == [""]
    assert error.fields[0].reason.startswith(message)


async def test_over_nats_the_reply_is_the_handlers() -> None:
    async def joined(document: dict[str, Any]) -> RegistryReply:
        return RegistryReply(message=f"cluster {document['name']} joined")

    answer = await over_nats("join", joined)(b'{"name": "east"}')
    assert RegistryReply.model_validate_json(answer).message == "cluster east joined"
    with pytest.raises(FootError, match=NOT_AN_OBJECT_REQUEST):
        await over_nats("join", joined)(b"null")


@pytest.mark.parametrize(
    ("verb", "body", "field"),
    [
        ("join", b'{"name": "east", "kubeconfig": "apiVersion: v1"}', "kubeconfig"),
        ("unjoin", b'{"name": "east", "kubeconfig": "apiVersion: v1"}', "kubeconfig"),
        ("register", b'{"name": "north"}', "replyKey"),
    ],
)
async def test_over_nats_a_secret_in_the_clear_is_refused_before_the_handler(
    verb: str, body: bytes, field: str
) -> None:
    ran: list[dict[str, Any]] = []

    async def handler(document: dict[str, Any]) -> RegistryReply:
        ran.append(document)
        return RegistryReply()

    with pytest.raises(FootError) as caught:
        await over_nats(verb, handler)(body)
    error = ApiError.from_exception(caught.value)
    assert (error.code, [f.path for f in error.fields]) == ("Invalid", [field])
    assert "NATS" in error.fields[0].reason
    assert ran == []


def test_the_error_reply_carries_the_error() -> None:
    error = ApiError(code="NotFound", message="cluster 'east' is not joined")
    assert RegistryReply.model_validate_json(error_reply(error)).error == error


def failing_with(raised: FootError) -> DocumentHandler:
    async def failing(_: dict[str, Any]) -> RegistryReply:
        raise raised

    return failing


@pytest.fixture
async def http() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def joined(document: dict[str, Any]) -> RegistryReply:
        return RegistryReply(message=f"cluster {document['name']} joined")

    app = web.Application()
    app.router.add_post("/join", over_http(joined))
    app.router.add_post(
        "/exists", over_http(failing_with(AlreadyExistsError("cluster 'east' is joined")))
    )
    app.router.add_post("/missing", over_http(failing_with(NotFoundError("not joined"))))
    app.router.add_post("/down", over_http(failing_with(TransportError("cannot reach"))))
    app.router.add_post("/internal", over_http(failing_with(FootError("unexpected"))))
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "code", "status"),
    [
        ("/exists", "AlreadyExists", 409),
        ("/missing", "NotFound", 404),
        ("/down", "Unavailable", 503),
        ("/internal", "Internal", 500),
    ],
)
async def test_over_http_a_handlers_error_is_the_reply_with_its_status(
    http: TestClient[web.Request, web.Application], path: str, code: str, status: int
) -> None:
    response = await http.post(path, data=b"{}")
    assert response.status == status
    reply = RegistryReply.model_validate_json(await response.read())
    assert reply.error is not None
    assert reply.error.code == code


async def test_over_http_the_reply_is_the_handlers(
    http: TestClient[web.Request, web.Application],
) -> None:
    response = await http.post("/join", data=orjson.dumps({"name": "east"}))
    assert response.status == 200
    assert RegistryReply.model_validate_json(await response.read()).message == "cluster east joined"


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"null", NOT_AN_OBJECT_BODY), (b"[]", NOT_AN_OBJECT_BODY), (b"{", "does not parse: ")],
)
async def test_over_http_a_body_that_is_not_a_json_object_is_a_client_error(
    http: TestClient[web.Request, web.Application], body: bytes, message: str
) -> None:
    response = await http.post("/join", data=body)
    assert response.status == 422
    reply = RegistryReply.model_validate_json(await response.read())
    assert reply.error is not None
    assert reply.error.code == "Invalid"
    assert [field.path for field in reply.error.fields] == [""]
    assert reply.error.fields[0].reason.startswith(message)

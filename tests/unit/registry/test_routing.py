"""The registry's request transport without a server: decoding a request, a handler's
error as the reply, and the HTTP status of a failed reply."""

from __future__ import annotations

from typing import Any

import pytest

from foot.api import ApiError
from foot.errors import AlreadyExistsError, FootError, NotFoundError, TransportError
from foot.registry_api import JoinRequest, RegistryReply
from foot_registry.routing import handle, http_status, parse


def test_a_request_that_does_not_parse_is_invalid_with_its_fields() -> None:
    with pytest.raises(FootError) as caught:
        parse(JoinRequest, {"name": "east"}, "join request")
    error = ApiError.from_exception(caught.value)
    assert error.code == "Invalid"
    assert "kubeconfig" in [field.path for field in error.fields]


@pytest.mark.parametrize(
    ("raised", "code", "status"),
    [
        (AlreadyExistsError("cluster 'east' is already joined"), "AlreadyExists", 409),
        (NotFoundError("cluster 'east' is not joined"), "NotFound", 404),
        (TransportError("cannot reach the cluster"), "Unavailable", 503),
    ],
)
async def test_a_handlers_error_is_the_reply(raised: FootError, code: str, status: int) -> None:
    async def failing(_: dict[str, Any]) -> RegistryReply:
        raise raised

    reply = await handle(failing, {})
    assert reply.error is not None
    assert reply.error.code == code
    assert http_status(reply.error) == status

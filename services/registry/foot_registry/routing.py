"""The registry's requests on the wire: one handler per verb, answered on NATS
(request-reply through the runtime's `Service.serve`) and on the admin HTTP API (a route
added with `AdminServer.add_route`), and the agents' subjects.

A request's handler takes the decoded JSON object and returns the reply; a `FootError` it
raises becomes the reply's error, whose HTTP status is the one of `foot.runtime.wire`. The
agents' hellos and heartbeats are handed their NATS message as it comes (the hello's
answer and the heartbeat's check need the cluster named by the subject).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import nats.errors
from aiohttp import web
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from foot.api import ApiError
from foot.bus import Bus
from foot.catalog import AGENT_PREFIX
from foot.errors import FieldProblem, FootError, InvalidObjectError
from foot.objects import problems_from_validation
from foot.registry_api import RegistryReply, clear_secret_problems
from foot.runtime.admin import Handler
from foot.runtime.requests import RequestHandler
from foot.runtime.wire import http_status
from foot.yamlsafe import load_json

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
DocumentHandler = Callable[[dict[str, Any]], Awaitable[RegistryReply]]
"""Answers one request: its JSON object in, the reply out."""
MessageHandler = Callable[[Msg], Awaitable[None]]
Track = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs some work in a task of its own that the shutdown waits for (`InFlight.track`)."""
NOT_AN_OBJECT_REQUEST = "the request must be an object"
NOT_AN_OBJECT_BODY = "the body must be a JSON object"


def parse(model: type[M], document: dict[str, Any], what: str) -> M:
    """A request's object as `model`; its problems as an Invalid error."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidObjectError(what, problems_from_validation(exc)) from None


def request_document(body: bytes, *, not_an_object: str) -> dict[str, Any]:
    """The JSON object a request carries; Invalid (saying `not_an_object` for any other
    JSON value, `null` included) when it is not one."""
    # The one bounded loader (size, depth, duplicate keys), and a field problem for every
    # refusal: an error without fields is not a clear answer.
    document = load_json(body, source="request")
    if not isinstance(document, dict):
        raise InvalidObjectError("request", [FieldProblem("", not_an_object)])
    return document


def error_reply(error: ApiError) -> bytes:
    """A failed request's reply body (the NATS error envelope of `Service.serve`)."""
    return RegistryReply(error=error).to_json()


def over_nats(verb: str, handler: DocumentHandler) -> RequestHandler:
    """`handler` as a request-reply handler (`Service.serve`, answered with `error_reply`);
    a request that would put a secret on the bus in the clear is refused before it runs."""

    async def answer(body: bytes) -> bytes:
        document = request_document(body, not_an_object=NOT_AN_OBJECT_REQUEST)
        problems = clear_secret_problems(verb, document)
        if problems:
            raise InvalidObjectError(f"{verb} request", problems)
        return (await handler(document)).to_json()

    return answer


def over_http(handler: DocumentHandler) -> Handler:
    """`handler` as an admin API route: POST with the request's object, the reply back with
    the HTTP status of its error's code."""

    async def route(request: web.Request) -> web.Response:
        try:
            document = request_document(await request.read(), not_an_object=NOT_AN_OBJECT_BODY)
            reply = await handler(document)
        except FootError as exc:
            reply = RegistryReply(error=ApiError.from_exception(exc))
        status = 200 if reply.error is None else http_status(reply.error.code)
        return web.Response(body=reply.to_json(), status=status, content_type="application/json")

    return route


class AgentSubjects:
    """The pull agents' subjects: hellos (request-reply, answered by their handler) and
    heartbeats (plain messages); closed before the runtime's own stop."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    async def open(
        self, bus: Bus, *, on_heartbeat: MessageHandler, on_hello: MessageHandler, queue: str
    ) -> None:
        self._subscriptions.append(
            await bus.subscribe(f"{AGENT_PREFIX}.heartbeat.*", on_heartbeat, queue=queue)
        )
        self._subscriptions.append(
            await bus.serve(f"{AGENT_PREFIX}.register.*", on_hello, queue=queue)
        )

    async def close(self) -> None:
        for subscription in self._subscriptions:
            # The connection may be closing already: nothing is left to unsubscribe then.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await subscription.unsubscribe()
        self._subscriptions.clear()


class InFlight:
    """Work started on behalf of an agent's message (a status write) that the shutdown
    waits for, up to its deadline."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as a task of its own; `drain` waits for it."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, deadline_seconds: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=deadline_seconds)

"""The registry's request transport, in one place: requests over NATS (request-reply) and
the admin HTTP API, the agents' subjects, and the tasks answering them.

Every NATS subscription of the registry is made here (`serve`, `serve_messages`, and
the one raw `subscribe`, for heartbeats, which need no reply), so a later pass can move
them onto the runtime's request serving in one go. A request's handler takes the
decoded JSON object and returns the reply; a `FootError` becomes the reply's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from aiohttp import web
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError

from foot.api import ApiError
from foot.bus import Bus
from foot.errors import FootError, InvalidObjectError
from foot.objects import problems_from_validation
from foot.registry_api import RegistryReply

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
DocumentHandler = Callable[[dict[str, Any]], Awaitable[RegistryReply]]
"""Answers one request: its JSON object in, the reply out."""
MessageHandler = Callable[[Msg], Awaitable[None]]
Track = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs some work in a task of its own that the shutdown waits for (`RequestRouting.track`)."""
HTTP_STATUS = {"Invalid": 422, "NotFound": 404, "Conflict": 409, "AlreadyExists": 409}
"""HTTP status of a failed request by its error code (any other: 503)."""


def parse(model: type[M], document: dict[str, Any], what: str) -> M:
    """A request's object as `model`; its problems as an Invalid error."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidObjectError(what, problems_from_validation(exc)) from None


def http_status(error: ApiError | None) -> int:
    return HTTP_STATUS.get(error.code if error else "", 503)


async def handle(handler: DocumentHandler, document: dict[str, Any]) -> RegistryReply:
    try:
        return await handler(document)
    except FootError as exc:
        return RegistryReply(error=ApiError.from_exception(exc))


class RequestRouting:
    """The registry's subscriptions, HTTP routes and in-flight answers."""

    def __init__(self, routes: web.UrlDispatcher, shutdown_deadline_seconds: float) -> None:
        self.routes = routes
        self.shutdown_deadline_seconds = shutdown_deadline_seconds
        self._subscriptions: list[Subscription] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    def track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` as a task of its own; the shutdown waits for it (up to its deadline)."""
        task = asyncio.create_task(work, name=name)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def close(self) -> None:
        """Stop taking requests; give those under way until the shutdown deadline."""
        for subscription in self._subscriptions:
            with contextlib.suppress(FootError, Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.shutdown_deadline_seconds)

    # ---- NATS ----------------------------------------------------------------------------

    async def serve(self, bus: Bus, subject: str, handler: DocumentHandler, *, queue: str) -> None:
        """Answer requests on `subject`, each in a task of its own."""

        async def on_request(msg: Msg) -> None:
            self.track(self._answer(msg, handler), name=f"request:{subject}")

        self._subscriptions.append(await bus.serve(subject, on_request, queue=queue))

    async def _answer(self, msg: Msg, handler: DocumentHandler) -> None:
        try:
            document = orjson.loads(msg.data)
        except orjson.JSONDecodeError as exc:
            document = f"malformed JSON: {exc}"
        if isinstance(document, dict):
            reply = await handle(handler, document)
        else:
            message = document if isinstance(document, str) else "the request must be an object"
            reply = RegistryReply(error=ApiError(code="Invalid", message=message))
        with contextlib.suppress(Exception):
            await msg.respond(reply.to_json())

    async def serve_messages(
        self, bus: Bus, subject: str, handler: MessageHandler, *, queue: str
    ) -> None:
        """Requests on `subject` given to `handler` as they come (it responds itself)."""
        self._subscriptions.append(await bus.serve(subject, handler, queue=queue))

    async def subscribe(
        self, bus: Bus, subject: str, handler: MessageHandler, *, queue: str
    ) -> None:
        """Messages on `subject` that want no answer (the registry's one raw subscription)."""
        self._subscriptions.append(await bus.client.subscribe(subject, queue=queue, cb=handler))

    # ---- HTTP ----------------------------------------------------------------------------

    def post(self, path: str, handler: DocumentHandler) -> None:
        """The same handler on the admin API: POST `path` with the request's object."""
        self.routes.add_post(path, self._http(handler))

    def get(self, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        self.routes.add_get(path, handler)

    @staticmethod
    def _http(handler: DocumentHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            try:
                document = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                document = None
                reply = RegistryReply(
                    error=ApiError(code="Invalid", message=f"malformed JSON: {exc}")
                )
            if isinstance(document, dict):
                reply = await handle(handler, document)
            elif document is not None:
                reply = RegistryReply(
                    error=ApiError(code="Invalid", message="the body must be a JSON object")
                )
            status = 200 if reply.ok else http_status(reply.error)
            return web.Response(
                body=reply.to_json(), status=status, content_type="application/json"
            )

        return route

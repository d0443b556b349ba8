"""Request-reply serving on plain NATS: every request handled in a task of its own, tracked,
answered with the one error mapping (`foot.runtime.wire`), closed in the first stage of a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace

from foot.api import ApiError
from foot.bus.connection import Bus
from foot.errors import FootError
from foot.telemetry import extract_context, tracer

log = logging.getLogger(__name__)

RequestHandler = Callable[[bytes], Awaitable[bytes]]
"""Answers one request body with the reply body."""
ErrorReply = Callable[[ApiError], bytes]
"""The reply body that carries an error (each wire contract has its own envelope)."""


class Responder:
    """The request-reply subjects one service answers."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._subscriptions: list[Subscription] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closed = False

    async def serve(
        self,
        subject: str,
        handler: RequestHandler,
        *,
        error_reply: ErrorReply,
        queue: str = "",
        span: str = "request",
    ) -> None:
        """Answer requests on `subject` (NATS wildcards allowed) with `handler`; a FootError
        it raises is answered with `error_reply`. `span`: the trace span's name prefix."""
        if self._closed:
            return

        async def on_request(msg: Msg) -> None:
            # Handled in a task of its own so that a slow handler does not hold up the
            # subscription, and so that a stop can wait for requests in flight.
            task = asyncio.create_task(
                self._answer(msg, handler, error_reply, span), name=f"{span}:{subject}"
            )
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

        self._subscriptions.append(await self.bus.serve(subject, on_request, queue=queue))

    async def _answer(
        self, msg: Msg, handler: RequestHandler, error_reply: ErrorReply, span: str
    ) -> None:
        with tracer().start_as_current_span(
            f"{span} {msg.subject}",
            context=extract_context(msg.headers),
            kind=trace.SpanKind.SERVER,
        ):
            try:
                reply = await handler(msg.data)
            except FootError as exc:
                reply = error_reply(ApiError.from_exception(exc))
            # The asker may be gone (timed out) or the connection closing: nothing to do.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await msg.respond(reply)

    async def stop_taking_requests(self) -> None:
        self._closed = True
        for subscription in self._subscriptions:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await subscription.unsubscribe()
        self._subscriptions.clear()

    async def drain(self, deadline_seconds: float) -> None:
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=deadline_seconds)

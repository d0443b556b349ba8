"""Durable pull consumers: bounded concurrency, ack after the effect, retry, dead letters.

A message is acknowledged only after its handler returned, so a crash (of the
handler or of the whole process) means the message comes again. A handler
raising a retryable error (or any unexpected exception) gets the message again
after a backoff; a permanent error, or too many attempts, terminates it and
puts it on the dead-letter subject together with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api as js_api
from opentelemetry import trace

from foot.catalog import dead_letter_subject
from foot.errors import FootError, PermanentError, TransportError
from foot.telemetry import extract_context, tracer

if TYPE_CHECKING:
    from foot.bus.connection import Bus

log = logging.getLogger(__name__)

ERROR_HEADER = "Foot-Error"
ERROR_CODE_HEADER = "Foot-Error-Code"
SUBJECT_HEADER = "Foot-Original-Subject"
ATTEMPTS_HEADER = "Foot-Attempts"


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """How one durable consumer reads one stream."""

    stream: str
    durable: str
    """Durable name; also names the dead-letter subject `foot.dlq.<durable>`."""
    filter_subject: str
    concurrency: int = 16
    """Messages handled at once by this process."""
    max_attempts: int = 5
    """Deliveries before the message is dead-lettered."""
    ack_wait_seconds: float = 30.0
    """Unacknowledged for this long (e.g. the process died) means: deliver again."""
    backoff_seconds: tuple[float, ...] = (0.1, 0.5, 2.0, 5.0)
    """Delay before the n-th retry (the last one repeats)."""
    fetch_timeout_seconds: float = 0.5
    """Longest wait for new messages; bounds how quickly a stop takes effect."""

    def backoff(self, attempt: int) -> float:
        return self.backoff_seconds[min(attempt - 1, len(self.backoff_seconds) - 1)]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a handler sees it."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    attempt: int
    """1 for the first delivery, 2 for the first redelivery, ..."""
    stream_sequence: int


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass(slots=True)
class ConsumerStats:
    handled: int = 0
    retried: int = 0
    dead_lettered: int = 0


class _LazyHeartbeat:
    """Starts `keep_alive(msg)` as a task only if the handler outlives half the ack wait."""

    def __init__(
        self, keep_alive: Callable[[Msg], Coroutine[Any, Any, None]], msg: Msg, spec: ConsumerSpec
    ) -> None:
        self._keep_alive = keep_alive
        self._msg = msg
        self._name = f"heartbeat:{spec.durable}"
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(spec.ack_wait_seconds / 2, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._keep_alive(self._msg), name=self._name)

    def cancel(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


class Consumer:
    """Runs one durable pull consumer; `run()` until `stop()`."""

    def __init__(
        self,
        bus: Bus,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        on_outcome: Callable[[str, float], None] | None = None,
    ) -> None:
        self.bus = bus
        self.spec = spec
        self.handler = handler
        self._on_outcome = on_outcome
        self._slots = asyncio.Semaphore(spec.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._stopped_fetching = asyncio.Event()
        self.stats = ConsumerStats()
        self._span_name = f"handle {spec.durable}"

    async def subscribe(self) -> None:
        """Create the durable consumer if needed (idempotent)."""
        config = js_api.ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=self.spec.ack_wait_seconds,
            # The consumer decides when to give up (dead-letter with the error), not the server.
            max_deliver=-1,
            max_ack_pending=max(self.spec.concurrency * 4, 64),
            filter_subject=self.spec.filter_subject,
        )
        try:
            self._subscription = await self.bus.js.pull_subscribe(
                self.spec.filter_subject,
                durable=self.spec.durable,
                stream=self.spec.stream,
                config=config,
            )
        except nats.js.errors.APIError as exc:
            raise PermanentError(f"consumer {self.spec.durable}: {exc.description}") from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise TransportError(f"consumer {self.spec.durable}: {exc}") from exc

    async def run(self) -> None:
        """Fetch and dispatch until `stop()`; in-flight handlers keep running after it returns."""
        if not hasattr(self, "_subscription"):
            await self.subscribe()
        try:
            while not self._stopping.is_set():
                await self._slots.acquire()
                # Let handlers finishing in this same turn of the loop hand back their slots, so
                # the next fetch asks for a batch rather than one message per freed slot.
                await asyncio.sleep(0)
                free = 1
                while free < self.spec.concurrency and not self._slots.locked():
                    await self._slots.acquire()
                    free += 1
                messages = await self._fetch(free)
                for _ in range(free - len(messages)):
                    self._slots.release()
                for msg in messages:
                    task = asyncio.create_task(
                        self._handle(msg), name=f"consume:{self.spec.durable}:{msg.reply}"
                    )
                    self._in_flight.add(task)
                    task.add_done_callback(self._in_flight.discard)
        finally:
            # In-flight handlers still ack through the connection; the pull
            # subscription itself is done and would otherwise hold up a drain.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await self._subscription.unsubscribe()
            self._stopped_fetching.set()

    async def _fetch(self, batch: int) -> list[Msg]:
        if self._stopping.is_set():
            return []
        try:
            return await self._subscription.fetch(batch, timeout=self.spec.fetch_timeout_seconds)
        except nats.errors.TimeoutError:
            return []
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionDrainingError):
            self._stopping.set()
            return []
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("fetch on %s failed: %s", self.spec.durable, exc)
            await asyncio.sleep(self.spec.fetch_timeout_seconds)
            return []

    async def _handle(self, msg: Msg) -> None:
        started = time.perf_counter()
        outcome = "cancelled"
        try:
            outcome = await self._handle_with_heartbeat(msg)
        except asyncio.CancelledError:
            # Shutdown deadline passed: hand the message back at once for another consumer.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await msg.nak()
            raise
        finally:
            self._slots.release()
            if self._on_outcome is not None:
                self._on_outcome(outcome, time.perf_counter() - started)

    async def _handle_with_heartbeat(self, msg: Msg) -> str:
        metadata = msg.metadata
        attempt = metadata.num_delivered or 1
        delivery = Delivery(
            subject=msg.subject,
            data=msg.data,
            headers=msg.headers or {},
            attempt=attempt,
            stream_sequence=metadata.sequence.stream if metadata.sequence else 0,
        )
        if attempt > self.spec.max_attempts:
            # Earlier attempts never finished (the process died while handling).
            return await self._dead_letter(
                msg, delivery, f"gave up after {attempt - 1} attempts", None
            )
        # Most handlers finish long before the server would redeliver; only one that is
        # still running at half the ack wait gets a keep-alive task (a timer is far cheaper).
        heartbeat = _LazyHeartbeat(self._keep_alive, msg, self.spec)
        with tracer().start_as_current_span(
            self._span_name, context=extract_context(delivery.headers), kind=trace.SpanKind.CONSUMER
        ) as span:
            # Only what the name does not say already (each attribute costs microseconds).
            span.set_attribute("messaging.destination.name", delivery.subject)
            if attempt > 1:
                span.set_attribute("messaging.delivery.attempt", attempt)
            try:
                await self.handler(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any handler failure is classified below
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
                return await self._failed(msg, delivery, exc)
            finally:
                heartbeat.cancel()
        await self._ack(msg)
        self.stats.handled += 1
        return "ok"

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell the server we are still working on a long message, so it is not redelivered."""
        while True:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await msg.in_progress()
            await asyncio.sleep(self.spec.ack_wait_seconds / 2)

    async def _failed(self, msg: Msg, delivery: Delivery, exc: Exception) -> str:
        permanent = isinstance(exc, FootError) and not exc.retryable
        if permanent or delivery.attempt >= self.spec.max_attempts:
            reason = str(exc) if permanent else f"{exc} (after {delivery.attempt} attempts)"
            return await self._dead_letter(msg, delivery, reason, exc)
        delay = self.spec.backoff(delivery.attempt)
        log.warning(
            "handler %s failed on attempt %d, retrying in %.1fs: %s",
            self.spec.durable,
            delivery.attempt,
            delay,
            exc,
        )
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await msg.nak(delay=delay)
        self.stats.retried += 1
        return "retry"

    async def _dead_letter(
        self, msg: Msg, delivery: Delivery, reason: str, exc: Exception | None
    ) -> str:
        code = exc.code if isinstance(exc, FootError) else type(exc).__name__ if exc else "Gone"
        headers = {
            key: value for key, value in delivery.headers.items() if not key.startswith("Nats-")
        }
        headers |= {
            ERROR_HEADER: reason[:4000],
            ERROR_CODE_HEADER: code,
            SUBJECT_HEADER: delivery.subject,
            ATTEMPTS_HEADER: str(delivery.attempt),
        }
        # The dead letter must be durable before the original is terminated.
        await self.bus.publish(
            dead_letter_subject(self.spec.durable),
            delivery.data,
            msg_id=f"dlq:{self.spec.stream}:{delivery.stream_sequence}",
            headers=headers,
        )
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await msg.term()
        log.error(
            "message on %s dead-lettered by %s: %s", delivery.subject, self.spec.durable, reason
        )
        self.stats.dead_lettered += 1
        return "dead_letter"

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except (nats.errors.Error, TimeoutError) as exc:
            # The effect is durable; a lost ack only means one harmless redelivery.
            log.warning("ack on %s failed: %s", self.spec.durable, exc)

    # ---- staged stop ----------------------------------------------------------------------

    def stop_fetching(self) -> None:
        self._stopping.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def drain(self, deadline_seconds: float) -> int:
        """Stop fetching, let in-flight handlers finish up to the deadline, cancel the rest.

        Returns how many handlers had to be cancelled (their messages are handed back).
        """
        self.stop_fetching()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_seconds
        # A fetch already under way may still hand over messages; they are in-flight
        # work too, so wait for the fetch loop to notice the stop before counting.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._stopped_fetching.wait(),
                timeout=min(deadline_seconds, self.spec.fetch_timeout_seconds + 1.0),
            )
        pending = set(self._in_flight)
        still_running: set[asyncio.Task[None]] = set()
        if pending:
            remaining = max(0.0, deadline - loop.time())
            _, still_running = await asyncio.wait(pending, timeout=remaining)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.gather(*still_running, return_exceptions=True)
        return len(still_running)

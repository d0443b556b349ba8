"""The connection every service holds: NATS core for request-reply, JetStream for the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Self

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js import api as js_api
from opentelemetry import trace

from foot.bus.errors import nats_errors
from foot.bus.kv import KvStore
from foot.catalog import BUCKETS, STREAMS, BucketSpec, StreamSpec
from foot.errors import PermanentError, TransportError
from foot.redaction import redact
from foot.secrets import SecretBox
from foot.telemetry import inject_headers, tracer

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
QUEUE_WRITE_TIMEOUT_SECONDS = 10.0
"""How long the commands queued before a flush may take to reach the socket (nats-py's own
flush timeout, which then bounds the round trip after them)."""


class Bus:
    """A NATS connection with FOOT's conventions: trace headers, message ids, typed errors."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.js: JetStreamContext = client.jetstream()
        self.name = name
        self._buckets: dict[str, KvStore] = {}
        self._closing = False
        self._untrusted: asyncio.Future[Exception] | None = None
        """Set while connecting: the server's certificate failed verification, or the server
        refused our credentials."""
        self._last_error: Exception | None = None
        """The last error nats-py reported (why a connection attempt failed)."""
        self.secret_box: SecretBox | None = None
        """The installation's sealing key: sealed values are opened on read, and written
        sealed where the writer asks (see KvStore). Services install it at start."""

    def _secret_box(self) -> SecretBox | None:
        return self.secret_box

    @classmethod
    async def connect(
        cls,
        url: str,
        name: str,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
        drain_timeout: float = 5.0,
        ca_file: Path | None = None,
        credentials_file: Path | None = None,
        inbox_prefix: str | None = None,
        reconnect: bool = True,
    ) -> Self:
        """Connect, reconnecting forever afterwards (the caller's readiness reflects the state).

        `reconnect=False` (a command line's one-off connection) gives up at once: nats-py
        tries the server twice (it cannot be told once), then TransportError with the
        reason; a connection lost later is not re-established. The caller's command fails
        instead of waiting for a NATS that is not there.

        A `tls://` URL is verified against the system's CAs, or only `ca_file`'s when given.
        `credentials_file` is the NATS user's `.creds` file (see foot.natsauth); a server that
        refuses it (or its absence) is a configuration problem, reported at once.
        `inbox_prefix` replaces `_INBOX` for replies (a pull agent's own, see natsauth).
        """
        bus = cls(Client(), name)
        options = _credentials_options(credentials_file)
        if inbox_prefix is not None:
            options["inbox_prefix"] = inbox_prefix
        tls: dict[str, Any] = {}
        if ca_file is not None:
            try:
                tls["tls"] = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise PermanentError(f"cannot read the NATS CA file {ca_file}: {exc}") from exc
        untrusted = bus._untrusted = asyncio.get_running_loop().create_future()
        connecting: asyncio.Future[Any] = asyncio.ensure_future(
            bus.client.connect(
                servers=[url],
                name=name,
                # nats-py annotates these as int but uses them as float seconds;
                # sub-second reconnects matter for failover.
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                allow_reconnect=reconnect,
                max_reconnect_attempts=-1 if reconnect else 1,
                reconnect_time_wait=0.5 if reconnect else 0.01,  # type: ignore[arg-type]
                drain_timeout=drain_timeout,  # type: ignore[arg-type]
                disconnected_cb=bus._on_disconnect,
                reconnected_cb=bus._on_reconnect,
                error_cb=bus._on_error,
                **tls,
                **options,
            )
        )
        try:
            # nats-py retries forever, a certificate it cannot trust too; that one is a
            # configuration problem, reported at once.
            waited: set[asyncio.Future[Any]] = {connecting, untrusted}
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            # Without reconnecting, the refused attempt ends `connecting` too: the refusal
            # explains it better than the error it ends with.
            if not connecting.done() or (untrusted.done() and connecting.exception()):
                connecting.cancel()
                with contextlib.suppress(
                    asyncio.CancelledError, nats.errors.Error, OSError, TimeoutError
                ):
                    await connecting
                await bus.client.close()
                refusal = untrusted.result()
                if not isinstance(refusal, ssl.SSLCertVerificationError):
                    raise PermanentError(
                        f"NATS at {redact(url)} refused this client ({refusal}): give the "
                        "NATS user's .creds file (nats_credentials_file)"
                    )
                reason = refusal.verify_message
                raise PermanentError(
                    f"NATS at {redact(url)}: the server's certificate is not trusted ({reason}); "
                    "give the CA that signed it (nats_ca_file) and a tls:// URL"
                )
            connecting.result()
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            # Out of attempts, nats-py says only that: the last attempt's error says why.
            last = bus._last_error if isinstance(exc, nats.errors.NoServersError) else None
            cause = last or exc
            raise TransportError(f"cannot connect to NATS at {redact(url)}: {cause}") from cause
        finally:
            connecting.cancel()
            bus._untrusted = None
        bus.js = bus.client.jetstream(timeout=request_timeout)
        return bus

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS", extra={"nats_client": self.name})

    async def _on_reconnect(self) -> None:
        log.info("reconnected to NATS", extra={"nats_client": self.name})

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if (
            isinstance(exc, ssl.SSLCertVerificationError | nats.errors.AuthorizationError)
            or _is_auth_violation(exc)
        ) and (self._untrusted is not None and not self._untrusted.done()):
            self._untrusted.set_result(exc)
        log.warning("NATS error: %s", exc, extra={"nats_client": self.name})

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    async def close(self) -> None:
        if self.client.is_closed:
            return
        self._closing = True
        try:
            await self.client.drain()
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            log.warning("NATS drain failed, closing: %s", exc)
            await self.client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ---- declaration ---------------------------------------------------------------------

    async def declare(
        self,
        streams: Iterable[StreamSpec] = STREAMS,
        buckets: Iterable[BucketSpec] = BUCKETS,
    ) -> None:
        """Create streams and buckets if missing, update streams whose subjects changed."""
        for spec in streams:
            await self.declare_stream(spec)
        for bucket in buckets:
            await self.declare_bucket(bucket)

    async def declare_stream(self, spec: StreamSpec) -> None:
        config = js_api.StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            description=spec.description,
            max_age=spec.max_age_seconds,
            duplicate_window=spec.duplicate_window_seconds,
            storage=js_api.StorageType.FILE,
        )
        with nats_errors(f"stream {spec.name}"):
            try:
                info = await self.js.stream_info(spec.name)
            except nats.js.errors.NotFoundError:
                await self.js.add_stream(config)
                return
            if sorted(info.config.subjects or []) != sorted(spec.subjects):
                await self.js.update_stream(config)

    async def declare_bucket(self, spec: BucketSpec) -> KvStore:
        with nats_errors(f"bucket {spec.name}"):
            try:
                kv = await self.js.key_value(spec.name)
            except nats.js.errors.BucketNotFoundError:
                kv = await self.js.create_key_value(
                    bucket=spec.name, description=spec.description, history=spec.history
                )
        store = KvStore(kv, spec.name, self._secret_box, js=self.js)
        self._buckets[spec.name] = store
        return store

    async def kv(self, bucket: str) -> KvStore:
        """The store of a declared bucket (looked up once, then cached)."""
        store = self._buckets.get(bucket)
        if store is not None:
            return store
        with nats_errors(f"bucket {bucket}"):
            try:
                kv = await self.js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError as exc:
                raise PermanentError(f"bucket {bucket} does not exist (not declared yet)") from exc
        store = KvStore(kv, bucket, self._secret_box, js=self.js)
        self._buckets[bucket] = store
        return store

    # ---- messages ------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> js_api.PubAck:
        """Publish to a stream, waiting for the stream's acknowledgement.

        `msg_id` makes the publish idempotent within the stream's duplicate window.
        """
        # The span name carries the subject; attributes cost as much as the span itself here.
        with tracer().start_as_current_span(f"publish {subject}", kind=trace.SpanKind.PRODUCER):
            outgoing = inject_headers(dict(headers or {}))
            if msg_id is not None:
                outgoing[MSG_ID_HEADER] = msg_id
            with nats_errors(f"publish to {subject}"):
                return await self.js.publish(subject, payload, headers=outgoing)

    async def request(
        self,
        subject: str,
        payload: bytes,
        *,
        wait_seconds: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> Msg:
        """Core NATS request-reply (the API front door)."""
        with nats_errors(f"request on {subject}"):
            try:
                return await self.client.request(
                    subject,
                    payload,
                    timeout=wait_seconds,
                    headers=inject_headers(dict(headers or {})),
                )
            except nats.errors.NoRespondersError as exc:
                raise TransportError(f"nobody answers on {subject}; is FOOT running?") from exc

    async def serve(
        self,
        subject: str,
        handler: Callable[[Msg], Awaitable[None]],
        *,
        queue: str = "",
    ) -> Subscription:
        """Answer requests on a subject (a queue group shares the load between replicas).

        Returns once the server has the subscription, so a request sent right after
        (say, by a test or a caller that waits for readiness) finds a responder.
        """

        async def callback(msg: Msg) -> None:
            await handler(msg)

        with nats_errors(f"subscribe to {subject}"):
            subscription = await self.client.subscribe(subject, queue=queue, cb=callback)
            await flush_in_order(self.client)
        return subscription

    async def subscribe(
        self,
        subject: str,
        handler: Callable[[Msg], Awaitable[None]],
        *,
        queue: str = "",
    ) -> Subscription:
        """Plain NATS messages on a subject (events published with `notify`; nothing is
        acknowledged). Returns once the server has the subscription."""
        return await self.serve(subject, handler, queue=queue)

    async def notify(
        self, subject: str, payload: bytes, *, headers: dict[str, str] | None = None
    ) -> None:
        """Publish on plain NATS (no stream, no acknowledgement): for events whose next
        occurrence supersedes a lost one, such as a heartbeat."""
        outgoing = inject_headers(dict(headers or {}))
        with nats_errors(f"publish to {subject}"):
            await self.client.publish(subject, payload, headers=outgoing or None)

    async def flush(self) -> None:
        """Return once the server has read everything sent on this connection so far."""
        with nats_errors("flush"):
            await flush_in_order(self.client)


async def flush_in_order(client: Client) -> None:
    """A round trip to the server that follows every command this client sent before it.

    nats-py's `flush()` writes its PING straight to the socket, ahead of the commands still
    queued for its flusher task (the SUB of a subscription just made, say). The server can
    then answer PONG before it has read them, and a request another connection sends right
    after finds no responder (seen under CPU load). So the queue is written out first: a
    future put on the flusher's own queue is resolved once everything queued before it is
    on the socket; the PING, written after, follows it there.
    """
    queue = client._flush_queue  # noqa: SLF001 - nats-py offers no public way to wait for it
    flusher = client._flusher_task  # noqa: SLF001
    # Without a running flusher nats-py's flush() writes the queue out itself, in order.
    if queue is not None and flusher is not None and not flusher.done() and client.is_connected:
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(QUEUE_WRITE_TIMEOUT_SECONDS):
                await queue.put(written)
                await written
        except TimeoutError as exc:
            written.cancel()
            raise nats.errors.FlushTimeoutError from exc
    await client.flush()


def _credentials_options(credentials_file: Path | None) -> dict[str, Any]:
    if credentials_file is None:
        return {}
    if not credentials_file.is_file():
        raise PermanentError(f"the NATS credentials file {credentials_file} is missing")
    return {"user_credentials": str(credentials_file)}


def _is_auth_violation(exc: Exception) -> bool:
    """The server refused the connection's credentials (nats-py reports it as a plain error
    naming the violation)."""
    return isinstance(exc, nats.errors.Error) and "authorization violation" in str(exc).lower()


def header_map(msg: Msg) -> dict[str, Any]:
    return dict(msg.headers or {})


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise

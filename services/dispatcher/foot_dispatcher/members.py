"""Connections to push-mode member clusters: one client, applier and rate limit per cluster.

Each member has its own `KubeClient` (own connection pool and timeouts), token bucket and
breaker, so a slow or dead member only ever holds up its own applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from foot.backoff import Backoff
from foot.credentials import CredentialStore
from foot.errors import NotFoundError, RetryableError
from foot.kube import KubeClient, KubeTarget
from foot.kube.apply import MemberApplier
from foot.kube.errors import KubeUnavailableError

log = logging.getLogger(__name__)


class RateLimiter:
    """Token bucket: `rate` acquisitions per second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class MemberUnavailableError(RetryableError):
    """The member did not answer lately: its requests fail at once until the next probe."""

    def __init__(self, member: str, error: str) -> None:
        super().__init__(f"member {member} does not answer (last: {error})")


class Breaker:
    """Fails a member's requests at once while it does not answer at all.

    A request that gets no answer (timeout, connection refused or reset, TLS failure) opens
    the breaker: for `delay` every request fails at once with `MemberUnavailableError`, then
    one goes through as a probe (the others still fail at once). A probe that gets an answer
    of any status closes the breaker; one that does not doubles the delay, up to
    `max_seconds`. Without it every worker of a dead member's lane would wait out its timeout
    and open a new connection per retry (a TLS handshake on both sides, a burst of them at
    each round of timeouts), taking the event loop from the healthy members' applies.
    """

    def __init__(
        self,
        member: str,
        *,
        base_seconds: float,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = member
        self._backoff = Backoff(base_seconds=base_seconds, max_seconds=max_seconds)
        self._clock = clock
        self._unanswered = 0
        """Requests without an answer that counted: the first of an outage, then each probe."""
        self._retry_at = 0.0
        self._probing = False
        self.error: str | None = None
        """Why the breaker is open (None: closed)."""

    def admit(self) -> bool:
        """Let a request go (True: it is the probe), or raise MemberUnavailableError."""
        if self.error is None:
            return False
        if self._probing or self._clock() < self._retry_at:
            raise MemberUnavailableError(self.member, self.error)
        self._probing = True
        return True

    def answered(self, probe: bool) -> bool:
        """The member answered; True when that closed the breaker."""
        if probe:
            self._probing = False
        if self.error is None:
            return False
        self.error = None
        self._unanswered = 0
        return True

    def failed(self, probe: bool, error: str) -> None:
        """The member did not answer."""
        if probe:
            self._probing = False
        elif self.error is not None:
            return  # sent before the breaker opened: the same outage, seen again
        self._unanswered += 1
        self.error = error
        self._retry_at = self._clock() + self._backoff.delay(self._unanswered)

    def abandoned(self, probe: bool) -> None:
        """The request ended without an outcome (cancelled)."""
        if probe:
            self._probing = False


@dataclass(slots=True)
class Member:
    name: str
    kube: KubeClient
    applier: MemberApplier
    limiter: RateLimiter
    breaker: Breaker
    on_answering_again: Callable[[str], None] = lambda _name: None
    """Called when the member answers again after its breaker opened."""
    watched: set[tuple[str, str]] = field(default_factory=set)
    """(apiVersion, kind) collections watched for status."""

    @contextlib.contextmanager
    def guarded(self) -> Iterator[None]:
        """Around requests to the member: fail at once while it does not answer, and
        tell the breaker how the requests went."""
        probe = self.breaker.admit()
        try:
            yield
        except KubeUnavailableError as exc:
            if exc.status is None:  # no answer at all (429 and 5xx are answers)
                self.breaker.failed(probe, exc.message)
            elif self.breaker.answered(probe):
                self.on_answering_again(self.name)
            raise
        except BaseException:
            self.breaker.abandoned(probe)
            raise
        if self.breaker.answered(probe):
            self.on_answering_again(self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberLimits:
    """How each member connection is bounded."""

    timeout_seconds: float
    """Of one request to the member."""
    connect_timeout_seconds: float
    rate: float
    """Requests per second to one member (token bucket), and `burst` above it."""
    burst: int
    connection_limit: int
    """Open HTTP connections to one member."""
    breaker_base_seconds: float = 1.0
    """First wait of the circuit breaker once a member stops answering; doubles to the max."""
    breaker_max_seconds: float = 30.0


class Members:
    """Lazily opened member connections, from the registry's sealed credentials."""

    def __init__(
        self,
        credentials: CredentialStore,
        limits: MemberLimits,
        *,
        on_answering_again: Callable[[str], None] = lambda _name: None,
    ) -> None:
        self._credentials = credentials
        self._limits = limits
        self._on_answering_again = on_answering_again
        self._members: dict[str, Member] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def cached(self, name: str) -> Member | None:
        return self._members.get(name)

    async def get(self, name: str) -> Member:
        member = self._members.get(name)
        if member is not None:
            return member
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            member = self._members.get(name)
            if member is not None:
                return member
            try:
                credential = await self._credentials.get(name)
            except NotFoundError as exc:
                raise RetryableError(
                    f"no credential for member {name} yet (the registry stores it at join)"
                ) from exc
            kube = KubeClient(
                KubeTarget.from_credential(credential),
                timeout_seconds=self._limits.timeout_seconds,
                connect_timeout_seconds=self._limits.connect_timeout_seconds,
                connection_limit=self._limits.connection_limit,
                user_agent="foot-dispatcher",
            )
            member = Member(
                name=name,
                kube=kube,
                applier=MemberApplier(kube),
                limiter=RateLimiter(self._limits.rate, self._limits.burst),
                breaker=Breaker(
                    name,
                    base_seconds=self._limits.breaker_base_seconds,
                    max_seconds=self._limits.breaker_max_seconds,
                ),
                on_answering_again=self._on_answering_again,
            )
            self._members[name] = member
            return member

    async def forget(self, name: str) -> Member | None:
        """Drop a member's connection (credential rotated, cluster removed)."""
        member = self._members.pop(name, None)
        if member is not None:
            await member.kube.close()
        return member

    async def close(self) -> None:
        for name in list(self._members):
            await self.forget(name)

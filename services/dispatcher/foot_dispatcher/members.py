"""Connections to push-mode member clusters: one client, applier and rate limit per cluster.

Each member has its own `KubeClient` (own connection pool and timeouts) and token bucket,
so a slow or dead member only ever holds up its own applies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from foot.credentials import CredentialStore
from foot.errors import NotFoundError, RetryableError
from foot.kube import KubeClient, KubeTarget
from foot.kube.apply import MemberApplier

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


@dataclass(slots=True)
class Member:
    name: str
    kube: KubeClient
    applier: MemberApplier
    limiter: RateLimiter
    watched: set[tuple[str, str]] = field(default_factory=set)
    """(apiVersion, kind) collections watched for status."""


class Members:
    """Lazily opened member connections, from the registry's sealed credentials."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        rate: float,
        burst: int,
        connection_limit: int,
    ) -> None:
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._rate = rate
        self._burst = burst
        self._connection_limit = connection_limit
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
                timeout_seconds=self._timeout,
                connect_timeout_seconds=self._connect_timeout,
                connection_limit=self._connection_limit,
                user_agent="foot-dispatcher",
            )
            member = Member(
                name=name,
                kube=kube,
                applier=MemberApplier(kube),
                limiter=RateLimiter(self._rate, self._burst),
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

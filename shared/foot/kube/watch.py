"""List-and-watch of one collection in a member cluster (an informer without a cache).

`watch_collection` lists the collection, reports every object, then follows the watch
stream from the list's resourceVersion (with bookmarks). A dropped stream resumes from the
last resourceVersion seen; an expired one (410 Gone) lists again; an unreachable server is
retried with capped exponential backoff. It runs until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from foot.backoff import Backoff
from foot.errors import RetryableError
from foot.kube.client import KubeClient
from foot.kube.errors import KubeApiError
from foot.kube.target import KubeTarget

log = logging.getLogger(__name__)

GONE = 410
WATCH_TIMEOUT_SECONDS = 290
"""How long the server keeps one watch request open (it then ends it; we resume)."""

EventHandler = Callable[[str, dict[str, Any]], None]
"""Called with the event type (ADDED, MODIFIED, DELETED) and the object."""


class _ExpiredError(Exception):
    """The resourceVersion we resume from is too old: list again."""


async def watch_collection(
    kube: KubeClient,
    path: str,
    on_event: EventHandler,
    *,
    label_selector: str | None = None,
    first_backoff_seconds: float = 0.2,
    max_backoff_seconds: float = 10.0,
) -> None:
    """Report every object of the collection at `path`, then every change, forever."""
    params = {"labelSelector": label_selector} if label_selector else {}
    delays = Backoff(first_backoff_seconds, max_backoff_seconds).delays()
    resource_version: str | None = None
    async with _stream_session(kube.target) as session:
        while True:
            try:
                if resource_version is None:
                    listing = await kube.get(path, **params)
                    # Items of a list carry no kind/apiVersion of their own.
                    kind = str(listing.get("kind", "")).removesuffix("List")
                    for item in listing.get("items") or []:
                        item.setdefault("kind", kind)
                        item.setdefault("apiVersion", listing.get("apiVersion"))
                        on_event("ADDED", item)
                    resource_version = str(
                        (listing.get("metadata") or {}).get("resourceVersion", "")
                    )
                resource_version = await _follow(
                    session, kube, path, params, resource_version, on_event
                )
                delays.reset()
            except _ExpiredError:
                resource_version = None
            except (RetryableError, KubeApiError, aiohttp.ClientError, OSError) as exc:
                delay = delays.next()
                log.debug(
                    "watch %s on %s: %s; again in %.1fs", path, kube.target.server, exc, delay
                )
                await asyncio.sleep(delay)
                if isinstance(exc, KubeApiError) and exc.status == GONE:
                    resource_version = None


def _stream_session(target: KubeTarget) -> aiohttp.ClientSession:
    """A session of its own for the long-lived watch requests."""
    headers = {"Accept": "application/json", "User-Agent": "foot-watch"}
    if target.token is not None:
        headers["Authorization"] = f"Bearer {target.token.get_secret_value()}"
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=target.ssl_context(), limit=0), headers=headers
    )


async def _follow(  # noqa: PLR0917 - private helper of watch_collection
    session: aiohttp.ClientSession,
    kube: KubeClient,
    path: str,
    params: dict[str, str],
    resource_version: str,
    on_event: EventHandler,
) -> str:
    """Follow one watch request; returns the resourceVersion to resume from."""
    query = {
        **params,
        "watch": "1",
        "allowWatchBookmarks": "true",
        "resourceVersion": resource_version,
        "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
    }
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=10, sock_read=WATCH_TIMEOUT_SECONDS + 30
    )
    async with session.get(
        kube.target.server + path,
        params=query,
        timeout=timeout,
        server_hostname=kube.target.tls_server_name,
    ) as response:
        if response.status == GONE:
            raise _ExpiredError
        if response.status >= 300:  # noqa: PLR2004
            raise RetryableError(f"watch {path} answered {response.status}")
        async for line in response.content:
            if not line.strip():
                continue
            event = orjson.loads(line)
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == GONE:
                    raise _ExpiredError
                raise RetryableError(f"watch {path}: {obj.get('message')}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                resource_version = str(version)
            if kind != "BOOKMARK":
                on_event(str(kind), obj)
    return resource_version

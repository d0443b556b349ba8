"""A small raw Kubernetes HTTP client for tests and benchmarks.

It shows exactly what a server answers (status, headers, body) where typed
clients would translate or hide it, and works the same against simulated and
real clusters.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from foot_sim.simulator import ClusterEndpoint


@dataclass(frozen=True, slots=True)
class KubeResponse:
    status: int
    body: Any  # parsed JSON, or the text when the body is not JSON
    headers: Mapping[str, str]

    @property
    def json(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise TypeError(f"expected a JSON object, got {self.body!r}")
        return self.body


class KubeHttpClient:
    """`async with KubeHttpClient(endpoint) as kube: await kube.get("/api/v1/namespaces")`."""

    def __init__(
        self,
        endpoint: ClusterEndpoint,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        connection_limit: int = 100,
    ) -> None:
        self.endpoint = endpoint
        self._token = endpoint.token if token is None else token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeHttpClient:
        ssl_context: ssl.SSLContext | bool = True
        if self.endpoint.ca_path is not None:
            ssl_context = ssl.create_default_context(cafile=str(self.endpoint.ca_path))
        connector = aiohttp.TCPConnector(ssl=ssl_context, limit=self._connection_limit)
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        self._session = aiohttp.ClientSession(
            base_url=self.endpoint.server,
            connector=connector,
            headers=headers,
            timeout=self._timeout,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use KubeHttpClient as an async context manager")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> KubeResponse:
        send_headers = dict(headers or {})
        body = data
        if json is not None:
            body = orjson.dumps(json)
            send_headers.setdefault("Content-Type", content_type or "application/json")
        elif content_type is not None:
            send_headers["Content-Type"] = content_type
        async with self.session.request(
            method, path, data=body, params=params, headers=send_headers
        ) as response:
            raw = await response.read()
            parsed: Any
            try:
                parsed = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                parsed = raw.decode(errors="replace")
            return KubeResponse(response.status, parsed, dict(response.headers))

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> KubeResponse:
        return await self.request("GET", path, params=params)

    async def post(
        self, path: str, obj: Any, params: Mapping[str, str] | None = None
    ) -> KubeResponse:
        return await self.request("POST", path, json=obj, params=params)

    async def put(
        self, path: str, obj: Any, params: Mapping[str, str] | None = None
    ) -> KubeResponse:
        return await self.request("PUT", path, json=obj, params=params)

    async def patch(
        self, path: str, patch: Any, content_type: str, params: Mapping[str, str] | None = None
    ) -> KubeResponse:
        return await self.request(
            "PATCH", path, json=patch, content_type=content_type, params=params
        )

    async def apply(
        self, path: str, obj: Any, manager: str, *, force: bool = False
    ) -> KubeResponse:
        params = {"fieldManager": manager}
        if force:
            params["force"] = "true"
        return await self.patch(path, obj, "application/apply-patch+yaml", params)

    async def delete(self, path: str, options: Any = None) -> KubeResponse:
        return await self.request("DELETE", path, json=options)

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream watch events until the server ends the stream (or the caller stops iterating)."""
        query = {"watch": "1", **(params or {})}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.session.get(path, params=query, timeout=timeout) as response:
            if response.status != HTTPStatus.OK:
                raise RuntimeError(
                    f"watch {path} answered {response.status}: {await response.text()}"
                )
            async for line in response.content:
                if line.strip():
                    event: dict[str, Any] = orjson.loads(line)
                    yield event

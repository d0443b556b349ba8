"""A thin asyncio REST client for one Kubernetes API server.

FOOT speaks to many members at high rates (server-side apply of thousands of
works, probes every second), so it sends plain requests on its own keep-alive
connections (`foot.kube.http`) with orjson instead of a generated typed client;
tests check the results with kubernetes-asyncio.
Every failure is a FOOT error: `KubeUnavailableError` (retry), `KubeApiError` (don't).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson

from foot.kube.errors import KubeUnavailableError, error_for
from foot.kube.http import HttpConnectionPool, HttpTransportError
from foot.kube.target import KubeTarget

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class KubeResponse:
    status: int
    body: Any


class KubeClient:
    """`async with KubeClient(target) as kube: await kube.get("/api/v1/namespaces")`."""

    def __init__(
        self,
        target: KubeTarget,
        *,
        timeout_seconds: float = 10.0,
        connect_timeout_seconds: float | None = None,
        connection_limit: int = 32,
        user_agent: str = "foot",
    ) -> None:
        self.target = target
        self._timeout = timeout_seconds
        self._connect_timeout = connect_timeout_seconds or timeout_seconds
        self._connection_limit = connection_limit
        self._user_agent = user_agent
        self._pool: HttpConnectionPool | None = None

    def __repr__(self) -> str:
        return f"KubeClient({self.target.server})"

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._pool is not None:
            return
        headers = {"User-Agent": self._user_agent, "Accept": JSON}
        if self.target.token is not None:
            headers["Authorization"] = f"Bearer {self.target.token.get_secret_value()}"
        context = self.target.ssl_context()
        self._pool = HttpConnectionPool(
            self.target.server,
            ssl_context=context if isinstance(context, ssl.SSLContext) else None,
            server_hostname=self.target.tls_server_name,
            headers=headers,
            limit=self._connection_limit,
            connect_timeout_seconds=self._connect_timeout,
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = JSON,
        timeout_seconds: float | None = None,
        expect_json: bool = True,
    ) -> KubeResponse:
        """Send one request; 2xx answers return, others raise a FOOT error."""
        if self._pool is None:
            self.open()
        assert self._pool is not None  # noqa: S101 - opened just above
        server = self.target.server
        data = orjson.dumps(body) if body is not None else None
        try:
            response = await self._pool.request(
                method, path, params=dict(params) if params else None, body=data,
                content_type=content_type, timeout_seconds=timeout_seconds or self._timeout,
            )  # fmt: skip
        except TimeoutError as exc:
            raise KubeUnavailableError(server, f"{method} {path} timed out") from exc
        except ssl.SSLError as exc:
            raise KubeUnavailableError(server, f"TLS failed: {exc.__class__.__name__}") from exc
        except (HttpTransportError, OSError) as exc:
            raise KubeUnavailableError(server, f"{method} {path} failed: {exc}") from exc
        raw, status = response.body, response.status
        parsed: Any
        if expect_json or status >= 300:  # noqa: PLR2004
            try:
                parsed = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                parsed = raw.decode(errors="replace")
        else:
            parsed = raw.decode(errors="replace")
        if status >= 300:  # noqa: PLR2004
            raise error_for(server, status, parsed)
        return KubeResponse(status, parsed)

    async def get(self, path: str, **params: str) -> Any:
        return (await self.request("GET", path, params=params or None)).body

    async def create(self, path: str, body: Mapping[str, Any]) -> Any:
        return (await self.request("POST", path, body=body)).body

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return (await self.request("DELETE", path, body=body)).body

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return (await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)).body

    async def apply(
        self, path: str, body: Mapping[str, Any], *, field_manager: str, force: bool = False
    ) -> Any:
        """Server-side apply of `body` at `path` (the object's own URL)."""
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        response = await self.request(
            "PATCH", path, body=body, params=params, content_type=APPLY_PATCH
        )
        return response.body

    async def readyz(self, *, timeout_seconds: float) -> None:
        """Raise unless the server answers /readyz with 200 within the timeout."""
        await self.request("GET", "/readyz", timeout_seconds=timeout_seconds, expect_json=False)

    async def version(self) -> dict[str, Any]:
        body = await self.get("/version")
        return body if isinstance(body, dict) else {}

"""An aiohttp client of the APISIX Admin API v3.

X-API-KEY on every request (the key is never logged); v3 envelopes unwrapped
(`{"key","value"}`, `{"list","total"}`); a missing id is the 404
`{"message":"Key not found"}` shape and comes back as None/False; other errors
carry APISIX's `error_msg`. Connection failures, timeouts and 5xx answers are
retried with exponential backoff; 4xx answers are not (the same request would
fail the same way).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import aiohttp
import orjson

from foot.backoff import Backoff
from foot.errors import PermanentError, TransportError

log = logging.getLogger(__name__)

PREFIX = "/apisix/admin"
PAGE_SIZE = 500


class ApisixRejectedError(PermanentError):
    """APISIX refused the request (4xx); `status` and `body` say why."""

    def __init__(self, message: str, status: int, body: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ApisixUnavailableError(TransportError):
    """APISIX could not be reached, timed out, or answered 5xx (after every retry)."""


class ApisixClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        session: aiohttp.ClientSession,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.05,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = api_key
        self._session = session
        self._attempts = attempts
        # Uncapped: `attempts` (at most 10) bounds the longest wait.
        self._backoff = Backoff(backoff_seconds, math.inf)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    def __repr__(self) -> str:  # never the key
        return f"ApisixClient({self.url!r})"

    async def _request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        where = f"APISIX {self.url}: {method} {path}"
        data = orjson.dumps(body) if body is not None else None
        headers = {"X-API-KEY": self._key, "Content-Type": "application/json"}
        last: Exception | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._session.request(
                    method,
                    f"{self.url}{PREFIX}/{path}",
                    data=data,
                    headers=headers,
                    params=params,
                    timeout=self._timeout,
                ) as response:
                    raw = await response.read()
                    status = response.status
                    version = response.headers.get("X-API-VERSION")
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = exc
            else:
                try:
                    answer = orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError as exc:
                    raise ApisixRejectedError(
                        f"{where}: answer is not JSON ({status})", status, raw[:200]
                    ) from exc
                if status < 500:  # noqa: PLR2004
                    if version != "v3":
                        raise ApisixRejectedError(
                            f"{where}: not an APISIX Admin API v3 (X-API-VERSION {version!r})",
                            status,
                            answer,
                        )
                    return status, answer
                last = ApisixUnavailableError(f"{where}: {status} {_message(answer)}")
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff.delay(attempt))
        raise ApisixUnavailableError(f"{where}: {last}") from last

    @staticmethod
    def _check(where: str, status: int, answer: Any) -> None:
        if status >= 400:  # noqa: PLR2004
            raise ApisixRejectedError(f"{where}: {status} {_message(answer)}", status, answer)

    async def list(self, resource: str) -> dict[str, dict[str, Any]]:
        """Every object of `resource` by id (paged, so any number of them)."""
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            params = {"page": str(page), "page_size": str(PAGE_SIZE)}
            status, answer = await self._request("GET", resource, params=params)
            self._check(f"list {resource}", status, answer)
            items = answer.get("list") or [] if isinstance(answer, dict) else []
            for item in items:
                value = item.get("value") if isinstance(item, dict) else None
                if isinstance(value, dict) and "id" in value:
                    found[str(value["id"])] = value
            total = answer.get("total", 0) if isinstance(answer, dict) else 0
            if len(items) < PAGE_SIZE or page * PAGE_SIZE >= total:
                return found
            page += 1

    async def get(self, resource: str, object_id: str) -> dict[str, Any] | None:
        status, answer = await self._request("GET", f"{resource}/{object_id}")
        if status == 404:  # noqa: PLR2004 - {"message": "Key not found"}
            return None
        self._check(f"get {resource}/{object_id}", status, answer)
        value = answer.get("value") if isinstance(answer, dict) else None
        return value if isinstance(value, dict) else None

    async def put(self, resource: str, object_id: str, body: Any) -> dict[str, Any]:
        status, answer = await self._request("PUT", f"{resource}/{object_id}", body)
        self._check(f"put {resource}/{object_id}", status, answer)
        value = answer.get("value") if isinstance(answer, dict) else None
        return value if isinstance(value, dict) else dict(body)

    async def delete(self, resource: str, object_id: str) -> bool:
        """Delete; False when it was not there."""
        status, answer = await self._request("DELETE", f"{resource}/{object_id}")
        if status == 404:  # noqa: PLR2004
            return False
        self._check(f"delete {resource}/{object_id}", status, answer)
        return True


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("error_msg") or answer.get("message") or answer)
    return str(answer)

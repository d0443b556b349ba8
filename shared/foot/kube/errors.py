"""Kubernetes API failures as FOOT errors: retryable (429, 5xx, timeouts, refused) or not."""

from __future__ import annotations

from typing import Any

from foot.errors import PermanentError, RetryableError

TOO_MANY_REQUESTS = 429
SERVER_ERROR = 500
NOT_FOUND = 404
CONFLICT = 409


class KubeUnavailableError(RetryableError):
    """The API server could not be reached or answered 429/5xx; try again later."""

    def __init__(self, server: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{server}: {message}")
        self.server = server
        self.status = status
        """What it answered (429, 5xx; 409 for an object that kept changing while being
        applied); None when it did not answer at all (timeout, refused, TLS failure)."""


class KubeApiError(PermanentError):
    """The API server refused the request (4xx other than 429); its Status is kept."""

    def __init__(self, server: str, status: int, body: Any) -> None:
        self.server = server
        self.status = status
        self.body = body
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        detail = body.get("message", "") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{server}: {status} {self.reason or 'error'}: {detail}".rstrip(": "))

    @property
    def causes(self) -> list[dict[str, Any]]:
        """The `details.causes` of a Kubernetes Status (field, reason, message)."""
        if not isinstance(self.body, dict):
            return []
        causes = (self.body.get("details") or {}).get("causes") or []
        return [c for c in causes if isinstance(c, dict)]


class KubeNotFoundError(KubeApiError):
    """404 from the API server."""

    code = "NotFound"


class KubeConflictError(KubeApiError):
    """409: a conflict (resourceVersion moved on, field-manager conflict, already exists)."""

    code = "Conflict"


def error_for(server: str, status: int, body: Any) -> Exception:
    """The FOOT error for a non-2xx answer."""
    if status == TOO_MANY_REQUESTS or status >= SERVER_ERROR:
        message = body.get("message", "") if isinstance(body, dict) else str(body)[:200]
        return KubeUnavailableError(server, f"answered {status}: {message}".rstrip(": "), status)
    if status == NOT_FOUND:
        return KubeNotFoundError(server, status, body)
    if status == CONFLICT:
        return KubeConflictError(server, status, body)
    return KubeApiError(server, status, body)

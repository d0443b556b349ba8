"""FOOT's own error types.

Transport errors (NATS, Kubernetes, HTTP) are wrapped into these with the cause
chained, so callers decide on one question: is it worth trying again? Wire
codes (HTTP status, reply `code`) are assigned only at the edges, from
`FootError.code`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class FootError(Exception):
    """Base of every error FOOT raises on purpose."""

    retryable: bool = False
    code: str = "Internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryableError(FootError):
    """Trying again later may succeed (timeouts, lost connections, conflicts)."""

    retryable = True
    code = "Unavailable"


class PermanentError(FootError):
    """Trying again with the same input fails the same way."""

    code = "Invalid"


class ConflictError(RetryableError):
    """An optimistic-concurrency write lost: the stored revision moved on."""

    code = "Conflict"

    def __init__(self, bucket: str, key: str, expected_revision: int | None) -> None:
        super().__init__(
            f"{bucket}/{key}: stored revision is not {expected_revision}; read it again and retry"
        )
        self.bucket = bucket
        self.key = key
        self.expected_revision = expected_revision


class NotFoundError(PermanentError):
    """The object or key does not exist."""

    code = "NotFound"


class AlreadyExistsError(PermanentError):
    """A create found the key already present."""

    code = "AlreadyExists"


class TransportError(RetryableError):
    """A transport (NATS, Kubernetes API, HTTP) failed; the cause is chained."""

    code = "Unavailable"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One reason an input was refused, at a dotted path such as `spec.replicas`."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class InvalidObjectError(PermanentError):
    """An input object failed validation; every problem is listed at once."""

    code = "Invalid"

    def __init__(self, subject: str, problems: Iterable[FieldProblem]) -> None:
        self.problems: Sequence[FieldProblem] = tuple(problems)
        listing = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{subject} is invalid: {listing}")
        self.subject = subject

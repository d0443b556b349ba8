"""The one backoff of the project: a base delay doubling per failure, up to a cap.

No jitter: no user of it had any, and the retry schedules users see (logged delays,
`next_retry_at` of a storage claim) stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DOUBLINGS = 64
"""Beyond this many doublings every cap is reached anyway; bounding the exponent keeps a
long run of failures from overflowing the float."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """`delay(n)`: the wait after the n-th failure in a row (n >= 1): `base_seconds` after the
    first, doubling after each further one, never above `max_seconds`."""

    base_seconds: float = 0.05
    max_seconds: float = 30.0

    def delay(self, failures: int) -> float:
        doublings = min(max(failures - 1, 0), MAX_DOUBLINGS)
        return float(min(self.base_seconds * 2**doublings, self.max_seconds))

    def delays(self) -> DelaySequence:
        """The waits after the 1st, 2nd, ... failure, for a loop that counts nothing itself."""
        return DelaySequence(self)


class DelaySequence:
    """The successive waits of one `Backoff`: `next()` after each failure, `reset()` once a
    try went well."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return self.backoff.delay(self.failures)

    def reset(self) -> None:
        self.failures = 0

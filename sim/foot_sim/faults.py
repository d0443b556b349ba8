"""Fault modes a virtual cluster can be put into, and their parsing from admin requests."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class FaultMode(Enum):
    HEALTHY = "healthy"
    DOWN = "down"  # the listener is closed: connection refused
    PARTITIONED = "partitioned"  # connections are accepted, requests never answered
    SLOW = "slow"  # every request is delayed by latency_ms
    ERROR_RATE = "error-rate"  # a fraction of requests fail with 429 or 500


@dataclass(frozen=True, slots=True)
class Fault:
    mode: FaultMode = FaultMode.HEALTHY
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (429, 500)
    retry_after_seconds: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "latencyMs": self.latency_ms,
            "errorRate": self.error_rate,
            "errorCodes": list(self.error_codes),
            "retryAfterSeconds": self.retry_after_seconds,
        }

    @classmethod
    def from_json(cls, body: Any) -> Fault:
        """Parse an admin request body; raises ValueError with a readable reason."""
        if not isinstance(body, dict):
            raise TypeError("fault must be a JSON object")
        try:
            mode = FaultMode(body.get("mode", "healthy"))
        except ValueError:
            modes = ", ".join(m.value for m in FaultMode)
            raise ValueError(f"unknown fault mode {body.get('mode')!r}; one of {modes}") from None
        latency_ms = float(body.get("latencyMs", 0.0))
        error_rate = float(body.get("errorRate", 0.0))
        codes = tuple(int(c) for c in body.get("errorCodes", (429, 500)))
        retry_after = int(body.get("retryAfterSeconds", 1))
        if mode is FaultMode.SLOW and latency_ms <= 0:
            raise ValueError("slow needs latencyMs > 0")
        if mode is FaultMode.ERROR_RATE:
            if not 0.0 < error_rate <= 1.0:
                raise ValueError("error-rate needs 0 < errorRate <= 1")
            if not codes or any(c not in (429, 500) for c in codes):
                raise ValueError("errorCodes must be a non-empty list of 429 and/or 500")
        return cls(mode, latency_ms, error_rate, codes, retry_after)

"""Credentials out of text meant for people: log lines, error messages, printed URLs.

In the base layer because the bus (connection errors), the runtime (log formatters) and the
CLI all need it, and none of them may depend on another for it.
"""

from __future__ import annotations

import re

# Credentials must never reach a log line, whatever a library decides to print.
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1[REDACTED]"),
    (
        re.compile(r"(?i)((?:token|password|secret|key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{6,}"),
        r"\1[REDACTED]",
    ),
    (re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "[REDACTED]"),
    # user:password@ or token@ in a URL (NATS URLs carry agents' credentials this way)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@"), r"\1[REDACTED]@"),
)


def redact(text: str) -> str:
    """`text` with bearer tokens, JWTs, `key: value` secrets and URL credentials replaced."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text

"""Every JetStream stream and key-value bucket FOOT uses, declared in one place.

Services create them idempotently at start (`Bus.declare`), so any service can
start first. A bucket's owner is the only service that writes it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    max_age_seconds: float = 7 * 24 * 3600
    duplicate_window_seconds: float = 120.0
    """Publishes with the same message id inside this window are stored once."""


@dataclass(frozen=True, slots=True)
class BucketSpec:
    name: str
    owner: str
    description: str
    history: int = 1


EVENTS = StreamSpec(
    name="FOOT_EVENTS",
    subjects=("foot.events.>",),
    description="Things that are not state: health transitions, audit, rejected inputs, progress",
)
DEAD_LETTERS = StreamSpec(
    name="FOOT_DEAD_LETTERS",
    subjects=("foot.dlq.>",),
    description="Messages a consumer gave up on, with the error that stopped them",
    max_age_seconds=30 * 24 * 3600,
)
TEMPLATES = BucketSpec(
    name="templates",
    owner="scheduler",
    description="Resource templates (any Kubernetes object) submitted for placement",
)

STREAMS: tuple[StreamSpec, ...] = (EVENTS, DEAD_LETTERS)
BUCKETS: tuple[BucketSpec, ...] = (TEMPLATES,)

# Subjects of the API front door (plain request-reply, deliberately not captured by a stream).
API_APPLY = "foot.api.apply"
API_DELETE = "foot.api.delete"
REJECTED = "foot.events.rejected"


def owner_apply_subject(owner: str) -> str:
    return f"{API_APPLY}.{owner}"


def owner_delete_subject(owner: str) -> str:
    return f"{API_DELETE}.{owner}"


def dead_letter_subject(consumer: str) -> str:
    return f"foot.dlq.{consumer}"

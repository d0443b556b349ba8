"""Cluster health transitions: what the registry publishes the moment a cluster's Ready changes.

Subject `foot.events.health.<cluster>` (see `foot.catalog.health_subject`). The
scheduler (failover), gateway-sync (drain) and dispatcher react to them; the cluster
object in the `clusters` bucket records the same transition for anyone who starts later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from foot.objects import FrozenModel

ReadyStatus = Literal["True", "False", "Unknown"]


class ClusterHealthEvent(FrozenModel):
    """One transition of a cluster's Ready condition."""

    cluster: str = Field(min_length=1)
    """Name of the member cluster."""
    ready: ReadyStatus
    """Ready condition after the transition."""
    previous: ReadyStatus | None = None
    """Ready condition before it (None for a newly joined cluster)."""
    reason: str
    """Machine-readable reason, e.g. ProbeFailed, HeartbeatMissed, ProbeSucceeded."""
    message: str = ""
    """Human-readable detail (never a credential)."""
    observed_at: datetime
    """When the registry decided the transition (UTC)."""
    last_success_at: datetime | None = None
    """Last successful probe or heartbeat before the transition; detection time is
    `observed_at - last_success_at` at most."""
    sequence: int = Field(default=0, ge=0)
    """Per-cluster transition counter; consumers ignore an event older than one they saw."""

    def message_id(self) -> str:
        """De-duplication id for the bus (one publish per transition)."""
        return f"health:{self.cluster}:{self.sequence}:{self.ready}"

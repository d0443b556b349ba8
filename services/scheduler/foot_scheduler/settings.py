"""The scheduler's settings."""

from __future__ import annotations

from pydantic import Field

from foot.runtime.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    reconcile_workers: int = Field(default=32, ge=1, le=256)
    """Templates scheduled at once. Deciding is CPU work done one at a time anyway; the workers
    keep that many binding writes in flight (each with optimistic concurrency), so a burst
    (a failed cluster's bindings, a large apply) is not paced by one bus round trip each."""
    failover: bool = True
    """Cluster failover: replicas leave a cluster that is not Ready (after the policy's
    NoExecute toleration, or failover_toleration_seconds). False: they stay, as in Karmada
    with its Failover feature gate off; new replicas avoid such a cluster either way."""
    failover_toleration_seconds: int = Field(default=0, ge=0, le=86400)
    """How long replicas stay on a cluster that turned NotReady/Unknown when the policy has no
    toleration of its own for that (Karmada: 300). 0 moves them the moment the registry
    reports the transition. That is safe because the health event is already debounced: the
    registry only reports NotReady/Unknown after its own failure threshold of missed probes or
    heartbeats, so a second wait here would only add to the time a dead cluster's replicas
    are missing (the issue's goal: re-placed within 5 s). A policy that wants to ride out
    short outages says so with its own clusterTolerations (tolerationSeconds)."""

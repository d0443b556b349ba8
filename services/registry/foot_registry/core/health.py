"""Cluster health, pure: probe and heartbeat outcomes in, Ready transitions out.

Nothing here does I/O. The registry's health monitor feeds `observe` each probe result
(push) or heartbeat / missed lease (pull) and, when it returns an event, publishes it
and writes `with_health(cluster, event)`.

* an answered, good probe or heartbeat is `OK`; an answered one that says "not ready"
  is `NOT_READY` (Ready=False, taint not-ready); no answer is `UNREACHABLE`
  (Ready=Unknown, taint unreachable);
* `failure_threshold` consecutive failures turn Ready away from True (or from False to
  Unknown when the cluster stops answering altogether), `success_threshold`
  consecutive successes turn it True;
* probes overlap, so their results may arrive out of order: each carries the
  number of the probe, and a result older than one already counted is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from foot.health import ClusterHealthEvent, ReadyStatus
from foot.kinds.clusters import (
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    Cluster,
    ClusterCondition,
    Taint,
)

Source = Literal["probe", "heartbeat", "lease"]
SYSTEM_TAINTS = frozenset({TAINT_NOT_READY, TAINT_UNREACHABLE})


class Outcome(StrEnum):
    OK = "ok"
    NOT_READY = "not-ready"
    UNREACHABLE = "unreachable"


READY_OF: dict[Outcome, ReadyStatus] = {
    Outcome.OK: "True",
    Outcome.NOT_READY: "False",
    Outcome.UNREACHABLE: "Unknown",
}
REASONS: dict[tuple[Source, Outcome], str] = {
    ("probe", Outcome.OK): "ProbeSucceeded",
    ("probe", Outcome.NOT_READY): "ProbeFailed",
    ("probe", Outcome.UNREACHABLE): "Unreachable",
    ("heartbeat", Outcome.OK): "HeartbeatReceived",
    ("heartbeat", Outcome.NOT_READY): "AgentReportsNotReady",
    ("heartbeat", Outcome.UNREACHABLE): "HeartbeatMissed",
    ("lease", Outcome.UNREACHABLE): "HeartbeatMissed",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    failures: int
    successes: int


@dataclass(frozen=True, slots=True)
class Health:
    """What the registry tracks per cluster between observations."""

    cluster: str
    ready: ReadyStatus | None = None
    """Current Ready status (None: never decided)."""
    sequence: int = 0
    """Sequence of the last health event."""
    successes: int = 0
    failures: int = 0
    last_observation: int = -1
    """Number of the newest probe/heartbeat counted."""
    last_success_at: datetime | None = None

    @classmethod
    def from_cluster(cls, cluster: Cluster) -> Health:
        condition = cluster.status.condition("Ready")
        return cls(
            cluster=cluster.name,
            ready=condition.status if condition is not None else None,
            sequence=cluster.status.health_sequence,
            last_success_at=cluster.status.last_heartbeat_time,
        )


def tracked_health(known: Health | None, cluster: Cluster) -> Health:
    """The health to track for a cluster as the bucket shows it: what the registry knows,
    unless the bucket records a newer health event (the first sight of the cluster, or an
    event another registry recorded)."""
    if known is None or cluster.status.health_sequence > known.sequence:
        return Health.from_cluster(cluster)
    return known


def observe(
    health: Health,
    outcome: Outcome,
    *,
    number: int,
    now: datetime,
    thresholds: Thresholds,
    source: Source,
    message: str = "",
) -> tuple[Health, ClusterHealthEvent | None]:
    """Count one observation; return the new state and the transition it caused, if any."""
    if number <= health.last_observation:
        return health, None  # an older probe answering late
    if outcome is Outcome.OK:
        health = replace(
            health,
            successes=health.successes + 1,
            failures=0,
            last_observation=number,
            last_success_at=now,
        )
        due = health.successes >= thresholds.successes
    else:
        health = replace(health, failures=health.failures + 1, successes=0, last_observation=number)
        due = health.failures >= thresholds.failures
    target = READY_OF[outcome]
    if not due or health.ready == target:
        return health, None
    return transition(health, target, REASONS[(source, outcome)], message, now)


def transition(
    health: Health, target: ReadyStatus, reason: str, message: str, now: datetime
) -> tuple[Health, ClusterHealthEvent]:
    event = ClusterHealthEvent(
        cluster=health.cluster,
        ready=target,
        previous=health.ready,
        reason=reason,
        message=message,
        observed_at=now,
        last_success_at=health.last_success_at,
        sequence=health.sequence + 1,
    )
    return replace(health, ready=target, sequence=event.sequence), event


def system_taints(ready: ReadyStatus | None) -> tuple[str, ...]:
    if ready == "False":
        return (TAINT_NOT_READY,)
    if ready == "Unknown":
        return (TAINT_UNREACHABLE,)
    return ()


def with_taints(taints: list[Taint], ready: ReadyStatus | None, now: datetime) -> list[Taint]:
    """User taints kept; FOOT's system taints exactly those the Ready status calls for
    (NoSchedule; an existing one keeps its timeAdded)."""
    kept = [t for t in taints if t.key not in SYSTEM_TAINTS]
    existing = {t.key: t for t in taints if t.key in SYSTEM_TAINTS and t.effect == "NoSchedule"}
    kept.extend(
        existing.get(key) or Taint(key=key, effect="NoSchedule", time_added=now)
        for key in system_taints(ready)
    )
    return kept


def with_health(cluster: Cluster, event: ClusterHealthEvent) -> Cluster:
    """The cluster after a transition: Ready condition, system taints, event sequence."""
    if event.sequence <= cluster.status.health_sequence:
        return cluster  # already recorded (or a newer one is)
    condition = ClusterCondition(
        type="Ready",
        status=event.ready,
        reason=event.reason,
        message=event.message or None,
        last_transition_time=event.observed_at,
    )
    others = [c for c in cluster.status.conditions if c.type != "Ready"]
    status = cluster.status.model_copy(
        update={
            "conditions": [condition, *others],
            "health_sequence": event.sequence,
            "last_heartbeat_time": event.last_success_at or cluster.status.last_heartbeat_time,
        }
    )
    spec = cluster.spec.model_copy(
        update={"taints": with_taints(cluster.spec.taints, event.ready, event.observed_at)}
    )
    return cluster.model_copy(update={"status": status, "spec": spec})


def taints_in_line(cluster: Cluster) -> bool:
    """Whether the cluster's system taints match its Ready status (a user's apply of the
    spec may have dropped them; the registry puts them back)."""
    ready = cluster.status.condition("Ready")
    wanted = set(system_taints(ready.status if ready else None))
    have = {t.key for t in cluster.spec.taints if t.key in SYSTEM_TAINTS}
    return wanted == have

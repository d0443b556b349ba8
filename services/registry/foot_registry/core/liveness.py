"""How the registry hears from clusters, pure: probe timing, agents' messages, leases.

* push: the set of clusters to probe, the probe schedule (one probe per period, never
  a burst after falling behind), and what a failed probe means;
* pull: whether an agent's hello or heartbeat is accepted (signature, clock skew,
  replay), and when a missing heartbeat lapses the lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from foot.kinds.clusters import Cluster
from foot_registry.core.health import Health, Outcome, Thresholds


def clusters_to_probe(clusters: Mapping[str, Cluster]) -> set[str]:
    return {name for name, cluster in clusters.items() if cluster.spec.sync_mode == "Push"}


def next_probe(scheduled: float, period: float, now: float) -> tuple[float, float]:
    """When the probe after the one `scheduled` starts, and how long to wait for it.

    Probes start on a fixed grid `period` apart; one that fell behind (a busy loop)
    starts at once and the grid carries on from now: no burst of missed probes."""
    at = scheduled + period
    delay = at - now
    if delay < 0:
        return now, 0.0
    return at, delay


def failed_probe(*, answered: bool) -> Outcome:
    """An API server that answered (5xx, or an error) is up but not ready; no answer at
    all is unreachable."""
    return Outcome.NOT_READY if answered else Outcome.UNREACHABLE


def heartbeat_outcome(*, api_server_ready: bool) -> Outcome:
    return Outcome.OK if api_server_ready else Outcome.NOT_READY


def fresh(sent_at: datetime, now: datetime, max_skew_seconds: float) -> bool:
    """Whether a message's timestamp is close enough to the registry's clock."""
    return abs((now - sent_at).total_seconds()) <= max_skew_seconds


class HelloVerdict(StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN_AGENT = "unknown-agent"
    """Not registered, or not signed with the cluster's agent key."""
    CLOCK_OFF = "clock-off"


def judge_hello(
    *, signed: bool, sent_at: datetime, now: datetime, max_skew_seconds: float
) -> HelloVerdict:
    if not signed:
        return HelloVerdict.UNKNOWN_AGENT
    if not fresh(sent_at, now, max_skew_seconds):
        return HelloVerdict.CLOCK_OFF
    return HelloVerdict.ACCEPTED


class HeartbeatVerdict(StrEnum):
    ACCEPTED = "accepted"
    BAD_SIGNATURE = "bad-signature"
    STALE = "stale"
    """Too far from the registry's clock, or not newer than the last one accepted."""
    UNKNOWN_CLUSTER = "unknown-cluster"


def judge_heartbeat(
    *,
    signed: bool,
    sent_at: datetime,
    last_sent: datetime | None,
    known: bool,
    now: datetime,
    max_skew_seconds: float,
) -> HeartbeatVerdict:
    """Checked in this order: signature, freshness and replay, then whether the cluster is
    (still) one the registry knows."""
    if not signed:
        return HeartbeatVerdict.BAD_SIGNATURE
    if not fresh(sent_at, now, max_skew_seconds) or (
        last_sent is not None and sent_at <= last_sent
    ):
        return HeartbeatVerdict.STALE
    if not known:
        return HeartbeatVerdict.UNKNOWN_CLUSTER
    return HeartbeatVerdict.ACCEPTED


def lease_thresholds(thresholds: Thresholds) -> Thresholds:
    """A lapsed lease turns Ready Unknown at once (it already stands for several missed
    heartbeats); coming back still needs the usual successes."""
    return Thresholds(failures=1, successes=thresholds.successes)


def lease_lapsed(*, now: float, last_heartbeat: float, lease: float, health: Health | None) -> bool:
    """Whether a pull cluster's lease ran out and it is not already Unknown."""
    return now - last_heartbeat > lease and health is not None and health.ready != "Unknown"

"""How the registry hears from clusters, pure: the probe schedule, agents' hellos and
heartbeats, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from foot_registry.core.health import Health, Outcome, Thresholds
from foot_registry.core.liveness import (
    HeartbeatVerdict,
    HelloVerdict,
    clusters_to_probe,
    failed_probe,
    heartbeat_outcome,
    judge_heartbeat,
    judge_hello,
    lease_lapsed,
    lease_thresholds,
    next_probe,
)
from foot_registry.core.onboarding import new_cluster

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SKEW = 30.0


def test_only_push_clusters_are_probed() -> None:
    unplaced: dict[str, Any] = {"endpoint": None, "provider": None, "region": None,
                                "zone": None, "labels": {}, "annotations": {}}  # fmt: skip
    modes = {"a": "Push", "b": "Pull", "c": "Push"}
    clusters = {name: new_cluster(name, mode=mode, **unplaced) for name, mode in modes.items()}
    assert clusters_to_probe(clusters) == {"a", "c"}


def test_probes_keep_their_grid_and_never_burst_after_falling_behind() -> None:
    assert next_probe(10.0, 0.5, now=10.25) == (10.5, 0.25)
    assert next_probe(10.5, 0.5, now=10.5) == (11.0, 0.5)
    # A loop busy for two periods: the next probe at once, the grid restarts from now.
    assert next_probe(10.0, 0.5, now=11.2) == (11.2, 0.0)


def test_what_a_failed_probe_or_a_heartbeat_says() -> None:
    assert failed_probe(answered=True) is Outcome.NOT_READY
    assert failed_probe(answered=False) is Outcome.UNREACHABLE
    assert heartbeat_outcome(api_server_ready=True) is Outcome.OK
    assert heartbeat_outcome(api_server_ready=False) is Outcome.NOT_READY


def test_a_hello_needs_the_agent_key_and_a_close_clock() -> None:
    def judge(*, signed: bool, sent_at: datetime) -> HelloVerdict:
        return judge_hello(signed=signed, sent_at=sent_at, now=T0, max_skew_seconds=SKEW)

    assert judge(signed=True, sent_at=T0 - timedelta(seconds=SKEW)) is HelloVerdict.ACCEPTED
    assert judge(signed=True, sent_at=T0 + timedelta(seconds=31)) is HelloVerdict.CLOCK_OFF
    late = T0 + timedelta(hours=1)
    assert judge(signed=False, sent_at=late) is HelloVerdict.UNKNOWN_AGENT  # signature first


def test_heartbeats_are_checked_for_signature_then_replay_then_cluster() -> None:
    def judge(
        *, signed: bool = True, sent_at: datetime = T0, last: datetime | None = None,
        known: bool = True,
    ) -> HeartbeatVerdict:  # fmt: skip
        return judge_heartbeat(
            signed=signed, sent_at=sent_at, last_sent=last, known=known, now=T0,
            max_skew_seconds=SKEW,
        )  # fmt: skip

    earlier = T0 - timedelta(seconds=1)
    assert judge() is HeartbeatVerdict.ACCEPTED
    assert judge(last=earlier) is HeartbeatVerdict.ACCEPTED
    assert judge(last=T0) is HeartbeatVerdict.STALE  # a replay of the last one
    assert judge(sent_at=earlier, last=T0) is HeartbeatVerdict.STALE
    assert judge(sent_at=T0 - timedelta(minutes=1)) is HeartbeatVerdict.STALE
    assert judge(signed=False, last=T0, known=False) is HeartbeatVerdict.BAD_SIGNATURE
    assert judge(last=T0, known=False) is HeartbeatVerdict.STALE
    assert judge(known=False) is HeartbeatVerdict.UNKNOWN_CLUSTER


def test_a_lease_lapses_once_past_its_length_and_not_again_while_unknown() -> None:
    ready = Health(cluster="p", ready="True")
    assert not lease_lapsed(now=12.0, last_heartbeat=10.0, lease=2.0, health=ready)
    assert lease_lapsed(now=12.1, last_heartbeat=10.0, lease=2.0, health=ready)
    unknown = Health(cluster="p", ready="Unknown")
    assert not lease_lapsed(now=20.0, last_heartbeat=10.0, lease=2.0, health=unknown)
    assert not lease_lapsed(now=20.0, last_heartbeat=10.0, lease=2.0, health=None)
    assert lease_thresholds(Thresholds(failures=3, successes=2)) == Thresholds(1, 2)

"""Cluster health, pure: thresholds, late answers, transitions recorded on the cluster,
system taints, and which health the registry tracks for a cluster it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE, Cluster, Taint
from foot_registry.core.health import (
    Health,
    Outcome,
    Thresholds,
    observe,
    taints_in_line,
    tracked_health,
    with_health,
    with_taints,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TWO = Thresholds(failures=2, successes=2)


def run(health: Health, *outcomes: Outcome) -> tuple[Health, list[str]]:
    seen = []
    for outcome in outcomes:
        number = health.last_observation + 1
        health, event = observe(
            health, outcome, number=number, now=T0, thresholds=TWO, source="probe"
        )
        if event is not None:
            seen.append(f"{event.previous}->{event.ready}:{event.reason}")
    return health, seen


def test_failures_and_successes_need_their_thresholds() -> None:
    ready = Health(cluster="a", ready="True", sequence=1)
    _, seen = run(ready, Outcome.UNREACHABLE, Outcome.OK, Outcome.UNREACHABLE)
    assert seen == []  # never two failures in a row: no flapping
    health, seen = run(ready, Outcome.UNREACHABLE, Outcome.UNREACHABLE, Outcome.UNREACHABLE)
    assert seen == ["True->Unknown:Unreachable"]
    assert health.sequence == 2
    health, seen = run(health, Outcome.OK, Outcome.OK, Outcome.OK)
    assert seen == ["Unknown->True:ProbeSucceeded"]
    _, seen = run(ready, Outcome.NOT_READY, Outcome.NOT_READY, Outcome.UNREACHABLE)
    assert seen == ["True->False:ProbeFailed", "False->Unknown:Unreachable"]


def test_a_late_answer_of_an_older_probe_is_ignored() -> None:
    health = Health(cluster="a", ready="True", sequence=1)
    health, event = observe(health, Outcome.OK, number=5, now=T0, thresholds=TWO, source="probe")
    for late in (3, 4):
        health, event = observe(
            health, Outcome.UNREACHABLE, number=late, now=T0, thresholds=TWO, source="probe"
        )
        assert event is None
    assert health.failures == 0


def test_transition_recorded_with_condition_taints_and_sequence() -> None:
    cluster = Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "a"},
            "spec": {
                "syncMode": "Push",
                "taints": [{"key": "dedicated", "effect": "NoSchedule"}],
            },
        }
    )
    health = Health(cluster="a", ready="True", sequence=3, last_success_at=T0)
    _, seen_event = observe(
        health, Outcome.UNREACHABLE, number=1, now=T0 + timedelta(seconds=2),
        thresholds=Thresholds(1, 1), source="lease",
    )  # fmt: skip
    assert seen_event is not None
    assert seen_event.reason == "HeartbeatMissed"
    assert seen_event.message_id() == "health:a:4:Unknown"
    updated = with_health(cluster, seen_event)
    ready = updated.status.condition("Ready")
    assert ready is not None
    assert ready.status == "Unknown"
    assert updated.status.health_sequence == 4
    assert {t.key for t in updated.spec.taints} == {"dedicated", TAINT_UNREACHABLE}
    assert with_health(updated, seen_event) is updated  # recorded once


def test_system_taints_follow_ready_and_keep_their_time() -> None:
    user = Taint(key="x", effect="NoExecute")
    old = Taint(key=TAINT_NOT_READY, effect="NoSchedule", time_added=T0)
    assert with_taints([user, old], "False", T0 + timedelta(hours=1)) == [user, old]
    assert with_taints([user, old], "True", T0) == [user]
    unknown = with_taints([user, old], "Unknown", T0)
    assert [t.key for t in unknown] == ["x", TAINT_UNREACHABLE]


def test_the_bucket_wins_only_with_a_newer_health_event() -> None:
    cluster = Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "a"},
            "spec": {"syncMode": "Push"},
        }
    )
    first = Health(cluster="a", ready="True", sequence=1)
    _, event = observe(
        first, Outcome.NOT_READY, number=1, now=T0, thresholds=Thresholds(1, 1), source="probe"
    )
    assert event is not None
    recorded = with_health(cluster, event)
    assert tracked_health(None, recorded) == Health(cluster="a", ready="False", sequence=2)
    counting = Health(cluster="a", ready="False", sequence=2, failures=5, last_observation=9)
    assert tracked_health(counting, recorded) is counting  # the same event: counts kept
    stale = Health(cluster="a", ready="True", sequence=1, successes=1)
    assert tracked_health(stale, recorded).ready == "False"  # another registry's newer event
    assert taints_in_line(recorded)
    assert not taints_in_line(recorded.model_copy(update={"spec": cluster.spec}))

"""From decisions to bindings (pure): idempotent writes, graceful evictions, kept placements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from foot.kinds import KINDS
from foot.kinds.clusters import Cluster
from foot.kinds.policies import PropagationPolicy
from foot_scheduler.binding import Decision, next_binding, next_eviction_expiry
from foot_scheduler.core import ClusterSnapshot, ClusterView, schedule, workload_from_template
from foot_scheduler.core.snapshot import Readiness

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
TEMPLATE = KINDS.parse(
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
)
POLICY = KINDS.parse(
    {
        "apiVersion": "policy.foot.dev/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "failover": {"cluster": {"purgeMode": "Gracefully"}},
            "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided"}},
        },
    }
)


def view(name: str, heard: Readiness | None = None) -> ClusterView:
    cluster = KINDS.parse(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name},
            "spec": {"syncMode": "Push"},
            "status": {
                "apiEnablements": [
                    {"groupVersion": "apps/v1", "resources": [{"name": "d", "kind": "Deployment"}]}
                ],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert isinstance(cluster, Cluster)
    return ClusterView.from_cluster(cluster, heard)


def decide(snapshot: ClusterSnapshot, current: object = None) -> Decision:
    assert isinstance(POLICY, PropagationPolicy)
    from foot_scheduler.binding import previous_placement

    result = schedule(
        workload_from_template(TEMPLATE),
        POLICY.spec,
        snapshot,
        previous_placement(current),  # type: ignore[arg-type]
    )
    return Decision(POLICY, result, "Success", result.reason)


def test_same_decision_writes_nothing_and_failover_leaves_a_graceful_eviction() -> None:
    snapshot = ClusterSnapshot((view("a"), view("b")), NOW)
    first = next_binding(TEMPLATE, decide(snapshot), None, now=NOW, traceparent="00-t-s-01")
    assert first is not None
    assert {t.name: t.replicas for t in first.spec.clusters} == {"a": 2, "b": 2}
    assert first.metadata.name == "web-deployment"
    assert first.status.last_scheduled_trace == "00-t-s-01"
    again = next_binding(TEMPLATE, decide(snapshot, first), first, now=NOW, traceparent="x")
    assert again is None

    down = ClusterSnapshot((view("a", Readiness("False", NOW)), view("b")), NOW)
    later = NOW + timedelta(seconds=1)
    moved = next_binding(TEMPLATE, decide(down, first), first, now=later, traceparent="00-u-s-01")
    assert moved is not None
    assert {t.name: t.replicas for t in moved.spec.clusters} == {"b": 4}
    [eviction] = moved.spec.graceful_evictions
    assert (eviction.from_cluster, eviction.purge_mode) == ("a", "Graciously")
    assert next_eviction_expiry(moved) == later + timedelta(seconds=600)
    assert moved.metadata.generation == first.metadata.generation + 1
    assert moved.status.last_scheduled_trace == "00-u-s-01"

    # Once the grace period is over the eviction is dropped.
    expired = later + timedelta(seconds=601)
    final = next_binding(TEMPLATE, decide(down, moved), moved, now=expired, traceparent="z")
    assert final is not None
    assert final.spec.graceful_evictions == []
    assert final.status.last_scheduled_trace == "00-u-s-01"  # placement itself did not change


def test_nowhere_to_go_drops_the_targets_that_must_be_left() -> None:
    snapshot = ClusterSnapshot((view("a"), view("b")), NOW)
    first = next_binding(TEMPLATE, decide(snapshot), None, now=NOW, traceparent=None)
    assert first is not None
    gone = ClusterSnapshot((view("a", Readiness("Unknown", NOW)),), NOW)
    decision = decide(gone, first)
    assert decision.result is not None
    assert not decision.result.schedulable
    failed = Decision(decision.policy, decision.result, "NoClusterFit", "none fits")
    kept = next_binding(TEMPLATE, failed, first, now=NOW, traceparent=None)
    assert kept is not None
    assert kept.spec.clusters == []  # a is unreachable, b is gone: nothing may stay
    assert (kept.status.conditions[0].status, kept.status.conditions[0].reason) == (
        "False",
        "NoClusterFit",
    )


def test_nowhere_to_go_keeps_targets_that_are_still_valid() -> None:
    snapshot = ClusterSnapshot((view("a"), view("b")), NOW)
    first = next_binding(TEMPLATE, decide(snapshot), None, now=NOW, traceparent=None)
    assert first is not None
    no_result = Decision(POLICY, None, "DependentOverridesMissing", "waiting")  # type: ignore[arg-type]
    kept = next_binding(TEMPLATE, no_result, first, now=NOW, traceparent=None)
    assert kept is not None
    assert kept.spec.clusters == first.spec.clusters
    assert kept.status.conditions[0].reason == "DependentOverridesMissing"

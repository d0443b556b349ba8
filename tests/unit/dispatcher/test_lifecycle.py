"""Removal and aggregation (`core.lifecycle`): purge modes, replacement readiness, status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dispatcher_support import NOW, binding, work
from foot_cli.status import status_lines
from foot_dispatcher.core.lifecycle import aggregate, removal, replacement_ready


def eviction(mode: str, grace: int | None = None) -> dict[str, Any]:
    return {
        "fromCluster": "m1",
        "replicas": 2,
        "reason": "policy changed",
        "purgeMode": mode,
        "gracePeriodSeconds": grace,
        "createdAt": NOW.isoformat(),
    }


def test_removal_honours_purge_mode_and_preservation() -> None:
    old = work("m1")
    moved = binding({"m2": 2})
    assert removal(old, moved, now=NOW, target_ready=False).action == "delete"
    directly = binding({"m2": 2}, gracefulEvictions=[eviction("Immediately")])
    assert removal(old, directly, now=NOW, target_ready=False).action == "delete"
    never = binding({"m2": 2}, gracefulEvictions=[eviction("Never")])
    assert removal(old, never, now=NOW, target_ready=True).action == "keep"
    graceful = binding({"m2": 2}, gracefulEvictions=[eviction("Graciously", 60)])
    waiting = removal(old, graceful, now=NOW, target_ready=False)
    assert waiting.action == "keep"
    assert waiting.recheck_at == NOW + timedelta(seconds=60)
    assert removal(old, graceful, now=NOW, target_ready=True).action == "delete"
    late = NOW + timedelta(seconds=61)
    assert removal(old, graceful, now=late, target_ready=False).action == "delete"
    assert removal(old, binding({"m1": 2}), now=NOW, target_ready=False).action == "keep"
    assert removal(old, None, now=NOW, target_ready=False).action == "delete"
    kept = old.model_copy(
        update={"spec": old.spec.model_copy(update={"preserve_on_deletion": True})}
    )
    assert removal(kept, None, now=NOW, target_ready=False).action == "forget"


def test_replacement_ready_and_aggregate() -> None:
    bound = binding({"m2": 2, "m3": 2})
    works = {"m2": work("m2", ready=2), "m3": work("m3", ready=1, health="Progressing")}
    assert not replacement_ready(bound, works)
    works["m3"] = work("m3", ready=2)
    assert replacement_ready(bound, works)
    leaving = work("m1", ready=2)
    status = aggregate(
        "b",
        bound.spec.resource,
        frozenset({"m2", "m3"}),
        {name: (f"{name}.b", w) for name, w in {**works, "m1": leaving}.items()},
        now=NOW,
    )
    assert status.replicas == 4
    assert status.ready_replicas == 6, "a leaving cluster's ready replicas still serve"
    assert status.applied
    assert status.health == "Healthy"
    assert [(c.cluster, c.leaving, c.ready_replicas) for c in status.clusters] == [
        ("m1", True, 2),
        ("m2", False, 2),
        ("m3", False, 2),
    ]


def test_an_unreachable_cluster_keeps_its_last_figures_but_not_in_the_total() -> None:
    bound = binding({"m1": 2, "m2": 2})
    works = {"m1": work("m1", ready=2), "m2": work("m2", ready=2)}
    assert replacement_ready(bound, works)
    assert not replacement_ready(bound, works, frozenset({"m2"}))
    status = aggregate(
        "b",
        bound.spec.resource,
        frozenset({"m1", "m2"}),
        {name: (f"{name}.b", w) for name, w in works.items()},
        now=NOW,
        unreachable=frozenset({"m2"}),
    )
    assert [(c.cluster, c.reachable, c.health, c.ready_replicas) for c in status.clusters] == [
        ("m1", True, "Healthy", 2),
        ("m2", False, "Unknown", 2),
    ]
    assert (status.replicas, status.ready_replicas, status.health) == (4, 2, "Unknown")
    lines = status_lines(status)
    assert lines[0] == "Status:       Unknown, applied, ready 2/4"
    assert lines[3].split() == [
        "m2", "Unknown", "applied", "ready", "2/2", "(cluster", "not", "ready:", "last",
        "reported", "figures)",
    ]  # fmt: skip

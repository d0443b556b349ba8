"""Work status (`core.workstatus`): after an apply, an observation, an outage."""

from __future__ import annotations

from dispatcher_support import NOW, reported_deployment, work
from foot.kinds.works import WorkStatus
from foot_dispatcher.core import workstatus


def test_work_status_after_apply_observation_and_outage() -> None:
    fresh = work("m1")
    blank = fresh.model_copy(update={"status": WorkStatus()})
    statuses = list(fresh.status.manifests)
    applied_work = workstatus.applied(blank, blank.spec.manifests_hash, statuses, now=NOW)
    assert applied_work is not None
    assert applied_work.status.applied_hash == blank.spec.manifests_hash
    assert {c.type: c.status for c in applied_work.status.conditions} == {
        "Applied": "True",
        "Available": "True",
    }
    assert workstatus.applied(applied_work, blank.spec.manifests_hash, statuses, now=NOW) is None
    assert workstatus.applied(applied_work, "another-hash", statuses, now=NOW) is None
    conflicted = [statuses[0].model_copy(update={"applied": False, "conflict": "theirs"})]
    refused = workstatus.applied(
        blank, blank.spec.manifests_hash, conflicted + statuses[1:], now=NOW
    )
    assert refused is not None
    applied_condition = next(c for c in refused.status.conditions if c.type == "Applied")
    assert (applied_condition.status, applied_condition.reason) == ("False", "Conflict")
    ident = ("apps/v1", "Deployment", "shop", "web")
    ready = reported_deployment(generation=1, observed=1, ready=1)
    watched, missing = workstatus.observed(applied_work, {ident: ready}, now=NOW)
    assert watched is not None
    assert not missing
    assert watched.status.manifests[1].ready_replicas == 1
    assert watched.status.health == "Progressing"
    gone, missing = workstatus.observed(watched, {ident: None}, now=NOW)
    assert missing
    assert gone is not None
    assert gone.status.applied_hash is None, "applied again"
    down = workstatus.unavailable(applied_work, "timed out", now=NOW)
    assert down is not None
    assert next(c for c in down.status.conditions if c.type == "Applied").reason == (
        "MemberUnavailable"
    )
    assert workstatus.unavailable(down, "timed out", now=NOW) is None

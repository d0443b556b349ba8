"""The provisioning state machine, without any server: plans, resumption, retries, deletion."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.storage import CEPH_UNAVAILABLE, READY, ClaimResources, StorageClaimStatus
from foot_storage.core.access import target_clusters
from foot_storage.core.delivery import (
    CephFacts,
    ClusterKey,
    delivery_documents,
    references,
    stale_documents,
    withdrawal_documents,
)
from foot_storage.core.machine import (
    ProvisioningRecord,
    RunStep,
    Settled,
    StepResult,
    WaitUntil,
    decide,
    resources_of,
    retarget,
    start_deleting,
    status_of,
    step_done,
    step_failed,
)
from foot_storage.core.names import ceph_names
from storage_support import BLOCK_KEYS, NOW, delivered_block_claim, make_claim, make_record, run_all


def test_block_plan_runs_in_order_to_ready() -> None:
    record, ran = run_all(make_record(make_claim()))
    assert ran == [
        "crush-rule:host:*",
        "pool:3",
        "image:1073741824",
        "key:east",
        "key:west",
        "deliver:east,west",
    ]
    assert record.phase == "Ready"
    assert set(record.keys) == {"east", "west"}
    assert decide(record, NOW) == Settled()
    secrets = {"east": "db-ceph-east", "west": "db-ceph-west"}
    status = status_of(record, secrets=secrets, storage_class="foot-shop-db")
    assert (status.phase, status.completed_steps, status.total_steps) == ("Ready", 5, 5)
    assert status.secrets == secrets
    assert status.resources.pool == "foot-shop-db-01234567"
    assert status.clusters == ["east", "west"]


def test_filesystem_and_object_plans() -> None:
    _, ran = run_all(make_record(make_claim(type="filesystem")))
    assert ran[:2] == ["subvolume-group", "subvolume:1073741824"]
    _, ran = run_all(make_record(make_claim(type="object", quota={"maxObjects": 10})))
    assert ran[:3] == ["rgw-user", "bucket", "bucket-quota:1073741824:10"]
    assert ran[3:] == ["key:east", "key:west", "deliver:east,west"]


def test_a_restart_resumes_after_the_last_recorded_step_without_repeating() -> None:
    record = make_record(make_claim())
    for _ in range(3):  # crush rule, pool, image recorded; then "crash"
        decision = decide(record, NOW)
        assert isinstance(decision, RunStep)
        record = step_done(record, decision.step, StepResult())
    reloaded = ProvisioningRecord.model_validate_json(record.model_dump_json())
    _, ran = run_all(reloaded)
    assert ran == ["key:east", "key:west", "deliver:east,west"]


def test_transient_errors_back_off_then_resume_and_permanent_ones_fail() -> None:
    record = make_record(make_claim())
    step = decide(record, NOW)
    assert isinstance(step, RunStep)
    record = step_failed(record, step.step, retryable=True, message="timed out", now=NOW)
    record = step_failed(record, step.step, retryable=True, message="timed out", now=NOW)
    assert record.attempts == 2
    assert decide(record, NOW) == WaitUntil(NOW + timedelta(seconds=1.0))
    status = status_of(record, secrets={}, storage_class=None)
    assert status.retrying
    assert status.last_error == "timed out"
    later = NOW + timedelta(seconds=1.5)
    assert decide(record, later) == step
    record = step_done(record, step.step, StepResult())
    assert (record.attempts, record.next_retry_at) == (0, None)

    failed = step_failed(record, step.step, retryable=False, message="EINVAL", now=NOW)
    assert failed.phase == "Failed"
    assert failed.reason is not None
    assert "EINVAL" in failed.reason
    assert decide(failed, later) == Settled()
    # A new generation of the spec gets a fresh start.
    again = retarget(failed, generation=2, spec=failed.spec, clusters=failed.clusters)
    assert again.phase == "Provisioning"
    assert isinstance(decide(again, later), RunStep)


def test_backoff_is_capped() -> None:
    record = make_record(make_claim())
    step = decide(record, NOW)
    assert isinstance(step, RunStep)
    for _ in range(20):
        record = step_failed(record, step.step, retryable=True, message="down", now=NOW)
    assert record.next_retry_at == NOW + timedelta(seconds=10)


def test_access_changes_add_keys_redeliver_and_revoke() -> None:
    claim = make_claim()
    record, _ = run_all(make_record(claim))
    record = retarget(record, generation=2, spec=claim.spec, clusters=("north", "west"))
    assert record.phase == "Provisioning"
    record, ran = run_all(record)
    assert ran == ["key:north", "deliver:north,west", "revoke:east"]
    assert set(record.keys) == {"north", "west"}
    # East comes back: its key is made again.
    record = retarget(record, generation=3, spec=claim.spec, clusters=("east", "north", "west"))
    record, ran = run_all(record)
    assert ran == ["key:east", "deliver:east,north,west"]


def test_a_size_change_reruns_only_the_image_step() -> None:
    claim = make_claim()
    record, _ = run_all(make_record(claim))
    bigger = make_claim(size="2Gi")
    record = retarget(record, generation=2, spec=bigger.spec, clusters=record.clusters)
    record, ran = run_all(record)
    assert ran == ["image:2147483648"]


def test_type_cannot_change() -> None:
    record, _ = run_all(make_record(make_claim()))
    record = retarget(
        record, generation=2, spec=make_claim(type="object").spec, clusters=record.clusters
    )
    assert record.phase == "Failed"
    assert "spec.type cannot change" in (record.reason or "")


def test_deletion_follows_the_reclaim_policy() -> None:
    retained, _ = run_all(make_record(make_claim()))
    _, ran = run_all(start_deleting(retained))
    assert ran == ["withdraw", "await-unreferenced", "revoke:east", "revoke:west", "retain"]
    deleted, _ = run_all(make_record(make_claim(reclaimPolicy="Delete")))
    deleting = start_deleting(deleted)
    assert deleting.phase == "Deleting"
    finished, ran = run_all(deleting)
    assert ran[-3:] == ["delete-image", "delete-pool", "delete-crush-rule"]
    assert decide(finished, NOW) == Settled(forget=True)
    object_claim, _ = run_all(make_record(make_claim(type="object", reclaimPolicy="Delete")))
    _, ran = run_all(start_deleting(object_claim))
    assert ran[-2:] == ["delete-bucket", "delete-rgw-user"]


def test_deletion_errors_are_retried_even_when_permanent() -> None:
    record = start_deleting(run_all(make_record(make_claim(reclaimPolicy="Delete")))[0])
    step = decide(record, NOW)
    assert isinstance(step, RunStep)
    record = step_failed(record, step.step, retryable=False, message="EBUSY", now=NOW)
    assert record.phase == "Deleting"
    assert isinstance(decide(record, NOW), WaitUntil)


def test_names_are_deterministic_and_bounded() -> None:
    names = ceph_names("a-very-long-namespace-name", "and-a-very-long-claim-name", "ffff" * 8)
    assert names == ceph_names(
        "a-very-long-namespace-name", "and-a-very-long-claim-name", "ffff" * 8
    )
    assert len(names.bucket) <= 63
    assert names.client("East.1") == f"{names.base}.east-1"


def cluster(name: str, **labels: str) -> Cluster:
    parsed = KINDS.parse(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"syncMode": "Push", "apiEndpoint": "https://127.0.0.1:6443"},
        }
    )
    assert isinstance(parsed, Cluster)
    return parsed


def binding(kind: str, name: str, clusters: list[str]) -> ResourceBinding:
    return ResourceBinding.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": f"{name}-{kind.lower()}", "namespace": "shop"},
            "spec": {
                "resource": {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "namespace": "shop",
                    "name": name,
                },
                "clusters": [{"name": c} for c in clusters],
            },
        }
    )


def test_target_clusters_by_list_selector_and_placement() -> None:
    members = [cluster("east", tier="gold"), cluster("west", tier="gold"), cluster("north")]
    bindings = [binding("StatefulSet", "db", ["west", "north"]), binding("Deployment", "db", ["x"])]
    assert target_clusters(make_claim(), members, bindings) == ("east", "west")
    by_label = make_claim(access={"clusterSelector": {"matchLabels": {"tier": "gold"}}})
    assert target_clusters(by_label, members, bindings) == ("east", "west")
    placed = make_claim(
        access={"placedWith": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"}}
    )
    assert target_clusters(placed, members, bindings) == ("north", "west")
    assert target_clusters(placed, members, []) == ()


def test_delivery_puts_each_key_in_a_secret_of_its_own_and_no_key_in_any_policy() -> None:
    keys = BLOCK_KEYS
    record, documents = delivered_block_claim()
    parsed = [KINDS.parse(d) for d in documents]
    # Policies before the templates they place.
    assert [(p.kind, p.name) for p in parsed] == [
        ("PropagationPolicy", "foot-storage-db-ceph-east"),
        ("PropagationPolicy", "foot-storage-db-ceph-west"),
        ("ClusterOverridePolicy", "foot-storage-shop-db"),
        ("ClusterPropagationPolicy", "foot-storage-shop-db"),
        ("Secret", "db-ceph-east"),
        ("Secret", "db-ceph-west"),
        ("StorageClass", "foot-shop-db"),
    ]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    for cluster in ("east", "west"):
        secret = by_name[("Secret", f"db-ceph-{cluster}")]
        assert secret["metadata"]["namespace"] == "shop"
        assert base64.b64decode(secret["data"]["userKey"]).decode() == f"AQ-{cluster}-key"
        assert base64.b64decode(secret["data"]["userID"]).decode() == f"foot.{cluster}"
        policy = by_name[("PropagationPolicy", f"foot-storage-db-ceph-{cluster}")]
        (selector,) = policy["spec"]["resourceSelectors"]
        assert selector == {"apiVersion": "v1", "kind": "Secret", "namespace": "shop"} | {
            "name": f"db-ceph-{cluster}"
        }
        assert policy["spec"]["placement"]["clusterAffinity"]["clusterNames"] == [cluster]
    # No key (plain or base64) in any policy: the policies bucket is not sealed.
    policies = [d for d in documents if d["kind"].endswith("Policy")]
    text = json.dumps(policies)
    for key in keys.values():
        assert key.secret not in text
        assert base64.b64encode(key.secret.encode()).decode() not in text
    # One StorageClass name everywhere.
    storage_class = by_name[("StorageClass", "foot-shop-db")]
    assert storage_class["parameters"]["pool"] == record.names.pool
    assert storage_class["reclaimPolicy"] == "Retain"
    # (Each member's copy naming that member's Secret, through the dispatcher's override:
    # tests/cross/test_storage_delivery_overrides.py.)
    placement = by_name[("ClusterPropagationPolicy", "foot-storage-shop-db")]["spec"]["placement"]
    assert placement["clusterAffinity"]["clusterNames"] == ["east", "west"]
    assert "AQ-east" not in repr(keys)

    # Withdrawal names every delivered object; a member's work holding any of them counts.
    withdrawn = {(d["kind"], d["metadata"]["name"]) for d in withdrawal_documents(record)}
    assert withdrawn == {(p.kind, p.name) for p in parsed}
    for document in withdrawal_documents(record):
        KINDS.lookup(document["apiVersion"], document["kind"])
    assert references(record, [by_name[("Secret", "db-ceph-west")]])
    assert references(record, [storage_class])
    assert not references(record, [{"kind": "Secret", "metadata": {"name": "other"}}])


def test_a_cluster_losing_access_loses_its_secret_and_policy_only() -> None:
    record, _ = run_all(make_record(make_claim()))
    assert stale_documents(record, ("east", "west")) == []
    stale = {(d["kind"], d["metadata"]["name"]) for d in stale_documents(record, ("west",))}
    assert stale == {("Secret", "db-ceph-east"), ("PropagationPolicy", "foot-storage-db-ceph-east")}


def test_object_delivery_secrets_carry_endpoint_bucket_and_their_own_keys() -> None:
    record, _ = run_all(make_record(make_claim(type="object")))
    keys = {"east": ClusterKey("AK-east", "SK-east"), "west": ClusterKey("AK-west", "SK-west")}
    facts = CephFacts(cluster_id="fsid", rgw_endpoint="http://rgw:7480")
    documents = delivery_documents(record, ("east", "west"), keys, facts)
    assert [d["kind"] for d in documents] == ["PropagationPolicy"] * 2 + ["Secret"] * 2
    secret = documents[2]
    assert secret["metadata"]["name"] == "db-s3-east"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "endpoint": "http://rgw:7480",
        "bucket": record.names.bucket,
        "accessKey": "AK-east",
        "secretKey": "SK-east",
    }
    assert "SK-" not in json.dumps(documents[:2])


def batches(record: ProvisioningRecord) -> list[list[str]]:
    """Drive the machine as the shell does with concurrency: every runnable step at once,
    each recorded as it completes (here: in plan order)."""
    ran = []
    while isinstance(decision := decide(record, NOW), RunStep):
        ran.append([s.id for s in decision.steps])
        for step in decision.steps:
            sealed = f"sealed-{step.cluster}" if step.action in {"cephx-key", "s3-key"} else None
            record = step_done(record, step, StepResult(sealed_key=sealed, path="/volumes/x"))
    assert record.phase == "Ready"
    return ran


def test_independent_steps_run_together_dependent_ones_wait_for_their_record() -> None:
    # Block: keys need no pool; delivery needs the keys and the pool, not the image.
    assert batches(make_record(make_claim())) == [
        ["crush-rule:host:*", "key:east", "key:west"],
        ["pool:3"],
        ["image:1073741824", "deliver:east,west"],
    ]
    # Filesystem: a key's caps name the subvolume's path, so keys wait for it.
    assert batches(make_record(make_claim(type="filesystem"))) == [
        ["subvolume-group"],
        ["subvolume:1073741824"],
        ["key:east", "key:west"],
        ["deliver:east,west"],
    ]
    # Object: subuser keys need the user; delivery needs the bucket.
    assert batches(make_record(make_claim(type="object"))) == [
        ["rgw-user"],
        ["bucket", "key:east", "key:west"],
        ["bucket-quota:1073741824:0", "deliver:east,west"],
    ]


def test_a_revoke_waits_for_the_delivery_and_deletion_stays_in_sequence() -> None:
    claim = make_claim()
    record, _ = run_all(make_record(claim))
    record = retarget(record, generation=2, spec=claim.spec, clusters=("west",))
    assert batches(record) == [["deliver:west"], ["revoke:east"]]
    deleting = start_deleting(record)
    decision = decide(deleting, NOW)
    assert isinstance(decision, RunStep)
    assert decision.alongside == ()


def test_a_step_done_beside_a_failing_one_keeps_that_ones_retry() -> None:
    record = make_record(make_claim())
    decision = decide(record, NOW)
    assert isinstance(decision, RunStep)
    rule, east, _ = decision.steps
    record = step_failed(record, rule, retryable=True, message="timed out", now=NOW)
    record = step_done(record, east, StepResult(sealed_key="sealed-east"))
    assert (record.step, record.attempts, record.last_error) == (rule.id, 1, "timed out")
    assert isinstance(decide(record, NOW), WaitUntil)
    record = step_done(record, rule, StepResult())
    assert (record.attempts, record.next_retry_at, record.last_error) == (0, None, None)
    failed = step_failed(record, rule, retryable=False, message="EINVAL", now=NOW)
    assert step_done(failed, east, StepResult(sealed_key="x")).phase == "Failed"


# ---- Ceph unreachable, and what exists -------------------------------------------------------


HOUR = timedelta(hours=1)


def conditions(status: StorageClaimStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_ceph_unreachable_shows_a_condition_with_reason_message_and_since() -> None:
    record = make_record(make_claim())
    fresh = status_of(record, secrets={}, storage_class=None, now=NOW)
    assert conditions(fresh) == {
        "Ready": ("False", "Provisioning"),
        "CephUnavailable": ("Unknown", "NotContactedYet"),
    }
    decision = decide(record, NOW)
    assert isinstance(decision, RunStep)
    refused = (
        "dashboard GET /api/crush_rule/x: Ceph dashboard at http://127.0.0.1:9 does not answer"
    )
    record = step_failed(
        record, decision.step, retryable=True, message=refused, now=NOW, unavailable=True
    )
    later = NOW + timedelta(seconds=5)
    record = step_failed(
        record, decision.step, retryable=True, message=refused, now=later, unavailable=True
    )
    assert record.ceph_unavailable_since == NOW  # since the first attempt that missed
    status = status_of(record, secrets={}, storage_class=None, previous=fresh, now=later)
    assert conditions(status) == {
        "Ready": ("False", "CephUnavailable"),
        "CephUnavailable": ("True", "CephUnreachable"),
    }
    ceph = status.condition(CEPH_UNAVAILABLE)
    assert ceph is not None
    assert ceph.message == refused
    assert ceph.last_transition_time == NOW
    ready = status.condition(READY)
    assert ready is not None
    assert ready.message.startswith("waiting for Ceph to answer (attempt 2, next at ")
    assert ready.message.endswith(refused)
    assert ready.last_transition_time == NOW  # still False since the claim was made
    assert status.resources == ClaimResources()  # nothing exists on Ceph yet

    # Ceph answers again: the step is done and the condition clears.
    record = step_done(record, decision.step, StepResult())
    assert record.ceph_unavailable_since is None
    back = NOW + timedelta(seconds=30)
    status = status_of(record, secrets={}, storage_class=None, previous=status, now=back)
    assert conditions(status)["CephUnavailable"] == ("False", "CephAnswered")
    cleared = status.condition(CEPH_UNAVAILABLE)
    assert cleared is not None
    assert (cleared.message, cleared.last_transition_time) == ("", back)


def test_other_transient_errors_retry_without_saying_ceph_is_unreachable() -> None:
    record = make_record(make_claim())
    decision = decide(record, NOW)
    assert isinstance(decision, RunStep)
    record = step_failed(record, decision.step, retryable=True, message="HTTP 409", now=NOW)
    assert record.ceph_unavailable_since is None
    status = status_of(record, secrets={}, storage_class=None, now=NOW)
    assert conditions(status)["Ready"] == ("False", "Retrying")
    assert conditions(status)["CephUnavailable"] == ("Unknown", "NotContactedYet")


def test_ready_condition_and_kept_transition_times() -> None:
    record, _ = run_all(make_record(make_claim()))
    status = status_of(record, secrets={}, storage_class=None, now=NOW)
    assert conditions(status) == {
        "Ready": ("True", "Provisioned"),
        "CephUnavailable": ("False", "CephAnswered"),
    }
    again = status_of(record, secrets={}, storage_class=None, previous=status, now=NOW + HOUR)
    assert again == status  # nothing changed: nothing to write


def test_status_and_a_retained_deletion_name_only_what_was_created() -> None:
    record = make_record(make_claim())
    decision = decide(record, NOW)
    assert isinstance(decision, RunStep)
    record = step_done(record, decision.step, StepResult())  # the CRUSH rule, nothing else
    assert resources_of(record, None) == ClaimResources(crush_rule=record.names.crush_rule)
    deleting = start_deleting(record)
    assert resources_of(deleting, None) == ClaimResources(crush_rule=record.names.crush_rule)

    # Deleted before Ceph ever answered: no key to revoke, nothing kept, nothing to say.
    never = start_deleting(make_record(make_claim()))
    finished, ran = run_all(never)
    assert ran == ["withdraw", "await-unreferenced", "retain"]
    assert resources_of(finished, None) == ClaimResources()
    assert decide(finished, NOW) == Settled(forget=True)

    # Everything made, then deleted with Delete: what is removed is no longer named.
    made, _ = run_all(make_record(make_claim(reclaimPolicy="Delete")))
    assert made.created == ("crush_rule", "image", "pool")
    gone, _ = run_all(start_deleting(made))
    assert gone.created == ()
    assert resources_of(gone, None) == ClaimResources()


def test_records_written_before_created_was_kept_are_read_as_before() -> None:
    made, _ = run_all(make_record(make_claim(type="filesystem")))
    old = made.model_copy(update={"created": None})
    assert resources_of(old, None).subvolume == made.names.subvolume  # from its done steps
    older = start_deleting(made).model_copy(update={"created": None})
    assert resources_of(older, None).subvolume == made.names.subvolume
    untouched = make_record(make_claim(type="object")).model_copy(update={"created": None})
    assert resources_of(untouched, "http://rgw") == ClaimResources()
    assert resources_of(run_all(untouched)[0], "http://rgw") == ClaimResources(
        bucket=made.names.bucket, rgw_user=made.names.rgw_user, endpoint="http://rgw"
    )

"""The registry's pure parts: health transitions, taints, the join plan, agent messages,
status summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE, Cluster, Taint
from foot.kube.collect import enablements_from, summarize_nodes, summarize_resources
from foot.registry_api import Heartbeat, agent_key
from foot_registry.core.agents import agent_manifests
from foot_registry.core.health import Health, Outcome, Thresholds, observe, with_health, with_taints
from foot_registry.core.member_plan import CLUSTER_ROLE_RULES, member_objects

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


def test_join_plan_is_narrower_than_cluster_admin_and_owned_by_the_namespace() -> None:
    objects = member_objects("foot-system", "east", "uid-1")
    assert [o.body["kind"] for o in objects] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
    ]  # fmt: skip
    for obj in objects:
        assert obj.body["metadata"]["labels"]["cluster.foot.dev/joined-as"] == "east"
    for obj in objects[2:]:
        assert obj.body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    verbs = {v for rule in CLUSTER_ROLE_RULES for v in rule["verbs"]}
    assert not verbs & {"*", "escalate", "bind", "impersonate", "deletecollection"}


def test_heartbeat_signature_covers_every_field() -> None:
    key = agent_key("token-1")
    beat = Heartbeat(
        cluster="a", agent_id="x", sequence=1, sent_at=T0, api_server_ready=True
    ).signed(key)
    assert beat.verify(key)
    assert not beat.verify(agent_key("token-2"))
    forged = beat.model_copy(update={"api_server_ready": False})
    assert not forged.verify(key)
    assert not beat.model_copy(update={"cluster": "b"}).verify(key)


def test_agent_manifests_carry_the_token_only_in_the_secret() -> None:
    text = agent_manifests(
        cluster="a", nats_url="nats://hub:4222", bootstrap_token="t0k", image="i"
    )
    documents = list(yaml.safe_load_all(text))
    holders = [d["kind"] for d in documents if "t0k" in yaml.safe_dump(d)]
    assert holders == ["Secret"]
    deployment = documents[-1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["foot", "agent"]


def test_agent_manifests_mount_the_hub_nats_ca_when_given() -> None:
    plain = list(yaml.safe_load_all(agent_manifests(
        cluster="a", nats_url="tls://hub:4222", bootstrap_token="t0k", image="i"
    )))  # fmt: skip
    with_ca = list(yaml.safe_load_all(agent_manifests(
        cluster="a", nats_url="tls://hub:4222", bootstrap_token="t0k", image="i",
        nats_ca_pem="-----BEGIN CERTIFICATE-----\nCA\n",
    )))  # fmt: skip

    def parts(documents: list[dict[str, Any]]) -> tuple[set[str], dict[str, str], list[str]]:
        secret = next(d for d in documents if d["kind"] == "Secret")
        pod = documents[-1]["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}
        items = [i["path"] for i in pod["volumes"][0]["secret"]["items"]]
        return set(secret["stringData"]), env, items

    keys, env, items = parts(plain)
    assert "nats-ca.crt" not in keys
    assert "FOOT_AGENT_NATS_CA_FILE" not in env
    assert items == ["bootstrap-token"]
    keys, env, items = parts(with_ca)
    assert "nats-ca.crt" in keys
    assert env["FOOT_AGENT_NATS_CA_FILE"] == "/etc/foot-agent/nats-ca.crt"
    assert items == ["bootstrap-token", "nats-ca.crt"]


def node(ready: bool, cpu: str, memory: str, *, unschedulable: bool = False) -> dict[str, object]:
    return {
        "spec": {"unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(
    node_name: str | None, phase: str, cpu: str, init_cpu: str | None = None
) -> dict[str, object]:
    spec: dict[str, object] = {
        "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]
    }
    if node_name:
        spec["nodeName"] = node_name
    if init_cpu:
        spec["initContainers"] = [{"resources": {"requests": {"cpu": init_cpu}}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_resource_summary_from_nodes_and_pod_requests() -> None:
    nodes = [node(True, "4", "8Gi"), node(True, "2", "4Gi"), node(False, "8", "8Gi"),
             node(True, "16", "1Gi", unschedulable=True)]  # fmt: skip
    pods = [pod("n1", "Running", "500m"), pod("n1", "Running", "250m", init_cpu="1"),
            pod(None, "Pending", "2"), pod("n2", "Succeeded", "3")]  # fmt: skip
    assert summarize_nodes(nodes).model_dump() == {"total_num": 4, "ready_num": 3}
    summary = summarize_resources(nodes, pods)
    assert summary.allocatable == {"cpu": "6", "memory": "12Gi", "pods": "220"}
    assert summary.allocated == {"cpu": "1500m", "memory": "128Mi", "pods": "2"}
    assert summary.allocating == {"cpu": "2", "memory": "64Mi", "pods": "1"}


def test_enablements_leave_subresources_out() -> None:
    listing = {
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "kind": "Pod"},
            {"name": "pods/status", "kind": "Pod"},
            {"name": "configmaps", "kind": "ConfigMap"},
        ],
    }
    (enabled,) = enablements_from([listing])
    assert [r.name for r in enabled.resources] == ["configmaps", "pods"]


@pytest.mark.parametrize(("lease", "period"), [(1.0, 1.0), (0.5, 1.0)])
def test_lease_must_outlast_the_heartbeat_period(lease: float, period: float) -> None:
    from foot_registry.settings import RegistrySettings

    with pytest.raises(ValueError, match="heartbeat_lease_seconds"):
        RegistrySettings(heartbeat_lease_seconds=lease, heartbeat_period_seconds=period)

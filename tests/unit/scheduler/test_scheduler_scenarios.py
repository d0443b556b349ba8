"""Table-driven scenarios for the pure scheduling core, one YAML file per case.

Each file under `scenarios/` (FOOT's policy group) and `karmada/` (policies
exactly as Karmada's documentation writes them) holds:

    description: what the case shows
    now: optional ISO time (defaults to 2025-01-01T12:00:00Z)
    clusters: short cluster forms (name, labels, provider/region/zone/zones, taints,
              syncMode, resources: resourceSummary, apiEnablements: standard kinds if absent,
              ready/readySince: the Ready condition, heard: {status, since} a health event
              newer or older than the condition)
    failover: optional, false turns FOOT's cluster failover off (default on)
    defaultTolerationSeconds: optional, FOOT's default not-ready/unreachable toleration
    template: the resource template, as a user writes it
    policy: one PropagationPolicy/ClusterPropagationPolicy, or `policies:` a list to match from
    claimedBy: optional (kind, namespace, name) of the policy holding the template now
    overridePolicies: optional OverridePolicy/ClusterOverridePolicy list
    previous: optional {targets: {cluster: replicas}, affinityName}
    appHealth: optional {cluster: {healthy, since}}
    priorityClasses: optional {name: value}
    expect:
      policy: name of the claiming policy        unplaced: text in the unplaced reason
      claimReason: text in the claim's reason (match, preemption)
      schedulable: true/false                    reason: text in the result's reason
      targets: {cluster: replicas|null}          affinityName: group used
      verdicts: {cluster: {plugin, reason}}      (reason: a substring)
      rescheduleAt, evictions {cluster: {purgeMode, gracePeriodSeconds, replicasAfter}},
      suspended: [clusters], binding: {propagateDeps, conflictResolution,
      preserveResourcesOnDeletion}, overrides: {cluster: ["Kind/name#rule", ...]},
      priority: the workload's scheduling priority
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from foot.kinds import KINDS
from foot.kinds.clusters import Cluster
from foot.kinds.policies import (
    AnyOverridePolicy,
    AnyPropagationPolicy,
    ClusterOverridePolicy,
    ClusterPropagationPolicy,
    OverridePolicy,
    PropagationPolicy,
)
from foot_scheduler.core import (
    AppHealth,
    ClusterSnapshot,
    ClusterView,
    PreviousPlacement,
    ScheduleResult,
    TargetCluster,
    claim_template,
    override_plan,
    schedule,
    template_ref,
    workload_from_template,
)
from foot_scheduler.core.matching import schedule_priority
from foot_scheduler.core.snapshot import Readiness

HERE = Path(__file__).parent
SCENARIO_FILES = sorted([*HERE.glob("scenarios/*.yaml"), *HERE.glob("karmada/*.yaml")])
DEFAULT_NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

STANDARD_API_ENABLEMENTS = [
    {
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "kind": "Deployment"},
            {"name": "statefulsets", "kind": "StatefulSet"},
            {"name": "daemonsets", "kind": "DaemonSet"},
        ],
    },
    {"groupVersion": "batch/v1", "resources": [{"name": "jobs", "kind": "Job"}]},
    {
        "groupVersion": "v1",
        "resources": [
            {"name": "services", "kind": "Service"},
            {"name": "configmaps", "kind": "ConfigMap"},
            {"name": "secrets", "kind": "Secret"},
            {"name": "namespaces", "kind": "Namespace"},
        ],
    },
]
_SPEC_KEYS = (
    "syncMode",
    "apiEndpoint",
    "secretRef",
    "provider",
    "region",
    "zone",
    "zones",
    "taints",
    "resourceModels",
)


def cluster_document(short: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"syncMode": "Push", "apiEndpoint": f"https://{short['name']}:6443"}
    spec |= {key: short[key] for key in _SPEC_KEYS if key in short}
    status: dict[str, Any] = {
        "kubernetesVersion": "v1.31.0",
        "apiEnablements": short.get("apiEnablements", STANDARD_API_ENABLEMENTS),
        "conditions": [
            {
                "type": "Ready",
                "status": short.get("ready", "True"),
                **({"lastTransitionTime": short["readySince"]} if "readySince" in short else {}),
            }
        ],
    }
    if "resources" in short:
        status["resourceSummary"] = short["resources"]
    return {
        "apiVersion": "cluster.foot.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": short["name"], "labels": short.get("labels", {})},
        "spec": spec,
        "status": status,
    }


def _time(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path.name}: a scenario is a mapping"
    assert "expect" in loaded, f"{path.name}: says nothing about what to expect"
    return loaded


def run_scenario(scenario: Mapping[str, Any]) -> None:
    now = _time(scenario.get("now", DEFAULT_NOW))
    views = []
    failover = bool(scenario.get("failover", True))
    for short in scenario.get("clusters", []):
        parsed = KINDS.parse(cluster_document(short))
        assert isinstance(parsed, Cluster)
        heard = short.get("heard")
        readiness = Readiness(heard["status"], _time(heard["since"])) if heard else None
        views.append(ClusterView.from_cluster(parsed, readiness, failover=failover))
    snapshot = ClusterSnapshot.of(views, now)
    default_seconds = int(scenario.get("defaultTolerationSeconds", 0))
    template = KINDS.parse(scenario["template"])
    documents = scenario.get("policies") or [scenario["policy"]]
    policies: list[AnyPropagationPolicy] = []
    for document in documents:
        parsed_policy = KINDS.parse(document)
        assert isinstance(parsed_policy, PropagationPolicy | ClusterPropagationPolicy)
        policies.append(parsed_policy)
    expect = scenario["expect"]

    current = scenario.get("claimedBy")
    claim = claim_template(template_ref(template), policies, tuple(current) if current else None)
    if "unplaced" in expect:
        assert claim.policy is None, f"expected unplaced, claimed by {claim.policy}"
        assert expect["unplaced"] in claim.reason
        return
    assert claim.policy is not None, claim.reason
    if "policy" in expect:
        assert claim.policy.name == expect["policy"], claim.reason
    if "claimReason" in expect:
        assert expect["claimReason"] in claim.reason, claim.reason

    priority_class = claim.policy.spec.schedule_priority
    priority = schedule_priority(
        priority_class.priority_class_name if priority_class else None,
        scenario.get("priorityClasses", {}),
    )
    workload = workload_from_template(template, priority=priority)
    if "priority" in expect:
        assert workload.priority == expect["priority"]
    previous_spec = scenario.get("previous") or {}
    previous = PreviousPlacement(
        targets=tuple(
            TargetCluster(name, replicas)
            for name, replicas in sorted((previous_spec.get("targets") or {}).items())
        ),
        affinity_name=previous_spec.get("affinityName"),
    )
    health = {
        name: AppHealth(bool(item["healthy"]), _time(item["since"]))
        for name, item in (scenario.get("appHealth") or {}).items()
    }
    decide = functools.partial(
        schedule,
        workload,
        claim.policy.spec,
        snapshot,
        previous,
        health,
        default_toleration_seconds=default_seconds,
    )
    result = decide()
    check_result(result, expect)
    assert decide() == result, "same inputs, same answer"

    if "overrides" in expect:
        overrides: list[AnyOverridePolicy] = []
        for document in scenario.get("overridePolicies", []):
            parsed_override = KINDS.parse(document)
            assert isinstance(parsed_override, OverridePolicy | ClusterOverridePolicy)
            overrides.append(parsed_override)
        plan = override_plan(
            template_ref(template), [t.name for t in result.targets], overrides, snapshot
        )
        got = {
            cluster: [f"{s.policy_kind}/{s.policy_name}#{s.rule_index}" for s in steps]
            for cluster, steps in plan.items()
        }
        assert got == expect["overrides"]


def check_result(result: ScheduleResult, expect: Mapping[str, Any]) -> None:
    explain = f"{result.reason}\n" + "\n".join(
        f"  {v.cluster}: {v.plugin or 'ok'} {v.reason}" for v in result.verdicts
    )
    if "schedulable" in expect:
        assert result.schedulable is expect["schedulable"], explain
    if "targets" in expect:
        assert result.replicas() == expect["targets"], explain
    if "reason" in expect:
        assert expect["reason"] in result.reason, explain
    if "division" in expect:
        assert result.division == expect["division"], explain
    if "affinityName" in expect:
        assert result.affinity_name == expect["affinityName"], explain
    check_verdicts(result, expect.get("verdicts") or {})
    if "rescheduleAt" in expect:
        wanted_at = expect["rescheduleAt"]
        assert result.reschedule_at == (None if wanted_at is None else _time(wanted_at))
    if "evictions" in expect:
        check_evictions(result, expect["evictions"])
    if "suspended" in expect:
        assert list(result.suspended_clusters) == expect["suspended"]
    check_binding_fields(result, expect.get("binding") or {})


def check_verdicts(result: ScheduleResult, expected: Mapping[str, Any]) -> None:
    for cluster, wanted in expected.items():
        verdict = result.verdict(cluster)
        if "plugin" in wanted:
            assert verdict.plugin == wanted["plugin"], f"{cluster}: {verdict}"
        if "reason" in wanted:
            assert wanted["reason"] in verdict.reason, f"{cluster}: {verdict}"


def check_evictions(result: ScheduleResult, expected: Mapping[str, Any]) -> None:
    evictions = {e.cluster: e for e in result.evictions}
    assert set(evictions) == set(expected), result.evictions
    for cluster, wanted in expected.items():
        eviction = evictions[cluster]
        if "purgeMode" in wanted:
            assert eviction.purge_mode == wanted["purgeMode"], eviction
        if "gracePeriodSeconds" in wanted:
            assert eviction.grace_period_seconds == wanted["gracePeriodSeconds"], eviction
        if "replicasAfter" in wanted:
            assert eviction.replicas_after == wanted["replicasAfter"], eviction


def check_binding_fields(result: ScheduleResult, binding: Mapping[str, Any]) -> None:
    if "propagateDeps" in binding:
        assert result.propagate_deps is binding["propagateDeps"]
    if "conflictResolution" in binding:
        assert result.conflict_resolution == binding["conflictResolution"]
    if "preserveResourcesOnDeletion" in binding:
        assert result.preserve_resources_on_deletion is binding["preserveResourcesOnDeletion"]


@pytest.mark.parametrize(
    "path", SCENARIO_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in SCENARIO_FILES]
)
def test_scenario(path: Path) -> None:
    run_scenario(_load(path))


def test_there_are_scenarios_for_both_api_groups() -> None:
    groups = {p.parent.name for p in SCENARIO_FILES}
    assert groups == {"scenarios", "karmada"}
    for path in HERE.glob("karmada/*.yaml"):
        scenario = _load(path)
        for policy in scenario.get("policies") or [scenario["policy"]]:
            assert policy["apiVersion"] == "policy.karmada.io/v1alpha1", path.name

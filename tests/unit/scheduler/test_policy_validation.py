"""Invalid policies and clusters are refused at the door, every problem with its field path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from foot.kinds import KINDS
from foot.kinds.policies import ClusterPropagationPolicy, PropagationPolicy
from support import problems


def policy(placement: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}]}
    if placement is not None:
        body["placement"] = placement
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": body | spec,
    }


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "selector operator unknown",
        policy(
            {
                "clusterAffinity": {
                    "labelSelector": {"matchExpressions": [{"key": "env", "operator": "Equals"}]}
                }
            }
        ),
        "spec.placement.clusterAffinity.labelSelector.matchExpressions.0.operator",
        "'In', 'NotIn', 'Exists' or 'DoesNotExist'",
    ),
    (
        "values given with Exists",
        policy(
            {
                "clusterAffinity": {
                    "labelSelector": {
                        "matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]
                    }
                }
            }
        ),
        "spec.placement.clusterAffinity.labelSelector.matchExpressions.0.values",
        "must be empty for operator Exists",
    ),
    (
        "In without values",
        {
            **policy(),
            "spec": {
                "resourceSelectors": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]},
                    }
                ]
            },
        },
        "spec.resourceSelectors.0.labelSelector.matchExpressions.0.values",
        "at least one value for operator In",
    ),
    (
        "bad label key",
        policy({"clusterAffinity": {"labelSelector": {"matchLabels": {"-bad": "x"}}}}),
        "spec.placement.clusterAffinity.labelSelector.matchLabels",
        "not a qualified name",
    ),
    (
        "unknown cluster field",
        policy(
            {
                "clusterAffinity": {
                    "fieldSelector": {
                        "matchExpressions": [
                            {"key": "datacenter", "operator": "In", "values": ["x"]}
                        ]
                    }
                }
            }
        ),
        "spec.placement.clusterAffinity.fieldSelector.matchExpressions.0.key",
        "'provider', 'region' or 'zone'",
    ),
    (
        "field selector operator Exists",
        policy(
            {
                "clusterAffinity": {
                    "fieldSelector": {
                        "matchExpressions": [
                            {"key": "region", "operator": "Exists", "values": ["x"]}
                        ]
                    }
                }
            }
        ),
        "spec.placement.clusterAffinity.fieldSelector.matchExpressions.0.operator",
        "'In' or 'NotIn'",
    ),
    (
        "negative weight",
        policy(
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["a"]}, "weight": -1}
                        ]
                    },
                }
            }
        ),
        "spec.placement.replicaScheduling.weightPreference.staticWeightList.0.weight",
        "greater than or equal to 1",
    ),
    (
        "weights that do not add up",
        policy(
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["a"]}, "weight": 2**31 - 1},
                            {"targetCluster": {"clusterNames": ["b"]}, "weight": 2},
                        ]
                    },
                }
            }
        ),
        "spec.placement.replicaScheduling.weightPreference.staticWeightList",
        "weights add up to 2147483649",
    ),
    (
        "empty weight preference",
        policy(
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {"staticWeightList": []},
                }
            }
        ),
        "spec.placement.replicaScheduling.weightPreference",
        "give staticWeightList entries or dynamicWeight",
    ),
    (
        "unknown targetCluster shape",
        policy(
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {
                        "staticWeightList": [{"targetCluster": {"clusters": ["a"]}, "weight": 1}]
                    },
                }
            }
        ),
        "spec.placement.replicaScheduling.weightPreference.staticWeightList.0.targetCluster.clusters",
        "unknown field",
    ),
    (
        "unknown dynamic weight",
        policy(
            {
                "replicaScheduling": {
                    "replicaSchedulingType": "Divided",
                    "weightPreference": {"dynamicWeight": "FreeMemory"},
                }
            }
        ),
        "spec.placement.replicaScheduling.weightPreference.dynamicWeight",
        "'AvailableReplicas'",
    ),
    (
        "negative minGroups",
        policy({"spreadConstraints": [{"spreadByField": "cluster", "minGroups": -1}]}),
        "spec.placement.spreadConstraints.0.minGroups",
        "greater than or equal to 0",
    ),
    (
        "minGroups above maxGroups",
        policy(
            {"spreadConstraints": [{"spreadByField": "cluster", "minGroups": 3, "maxGroups": 2}]}
        ),
        "spec.placement.spreadConstraints.0.maxGroups",
        "maxGroups 2 is lower than minGroups 3",
    ),
    (
        "unknown spreadByField",
        policy({"spreadConstraints": [{"spreadByField": "rack"}]}),
        "spec.placement.spreadConstraints.0.spreadByField",
        "'cluster', 'region', 'zone' or 'provider'",
    ),
    (
        "spreadByField and spreadByLabel together",
        policy({"spreadConstraints": [{"spreadByField": "cluster", "spreadByLabel": "rack"}]}),
        "spec.placement.spreadConstraints.0",
        "cannot both be set",
    ),
    (
        "region spread without a cluster spread",
        policy({"spreadConstraints": [{"spreadByField": "region", "minGroups": 2}]}),
        "spec.placement.spreadConstraints",
        "needs a spreadByField: cluster constraint",
    ),
    (
        "affinity and affinities together",
        policy({"clusterAffinity": {}, "clusterAffinities": [{"affinityName": "a"}]}),
        "spec.placement",
        "cannot both be set",
    ),
    (
        "repeated affinity names",
        policy({"clusterAffinities": [{"affinityName": "a"}, {"affinityName": "a"}]}),
        "spec.placement.clusterAffinities",
        "repeated: a",
    ),
    (
        "toleration seconds without NoExecute",
        policy(
            {"clusterTolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}]}
        ),
        "spec.placement.clusterTolerations.0",
        "only allowed with effect NoExecute",
    ),
    (
        "unknown replicaSchedulingType",
        policy({"replicaScheduling": {"replicaSchedulingType": "Spread"}}),
        "spec.placement.replicaScheduling.replicaSchedulingType",
        "'Duplicated' or 'Divided'",
    ),
    (
        "negative failover toleration",
        policy(
            None,
            propagateDeps=True,
            failover={"application": {"decisionConditions": {"tolerationSeconds": -1}}},
        ),
        "spec.failover.application.decisionConditions.tolerationSeconds",
        "greater than or equal to 0",
    ),
    (
        "application failover without propagateDeps",
        policy(None, failover={"application": {}}),
        "spec",
        "needs propagateDeps: true",
    ),
    (
        "preemption without names",
        policy(None, preemption="Always"),
        "spec.preemption",
        "needs a name in every resourceSelector",
    ),
    (
        "no resource selectors",
        {**policy(), "spec": {"resourceSelectors": []}},
        "spec.resourceSelectors",
        "at least 1 item",
    ),
    (
        "unknown field",
        policy({"clusterAfinity": {"clusterNames": ["a"]}}),
        "spec.placement.clusterAfinity",
        "unknown field",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "reason"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_policy_is_refused_with_its_path(
    document: dict[str, Any], path: str, reason: str
) -> None:
    found = problems(document)
    assert path in found, found
    assert reason in found[path], found[path]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        policy(
            {
                "clusterAffinity": {
                    "fieldSelector": {
                        "matchExpressions": [{"key": "rack", "operator": "In", "values": ["a"]}]
                    }
                },
                "spreadConstraints": [{"spreadByField": "cluster", "minGroups": -2}],
            },
            priority="high",
        )
    )
    assert {
        "spec.placement.clusterAffinity.fieldSelector.matchExpressions.0.key",
        "spec.placement.spreadConstraints.0.minGroups",
        "spec.priority",
    } <= set(found)


def test_override_policy_problems_have_paths() -> None:
    found = problems(
        {
            "apiVersion": "policy.foot.dev/v1alpha1",
            "kind": "OverridePolicy",
            "metadata": {"name": "o"},
            "spec": {
                "overrideRules": [
                    {
                        "targetCluster": {
                            "fieldSelector": {
                                "matchExpressions": [
                                    {"key": "cloud", "operator": "In", "values": ["x"]}
                                ]
                            }
                        },
                        "overriders": {
                            "plaintext": [{"path": "spec/replicas", "operator": "replace"}],
                            "imageOverrider": [{"component": "Tag", "operator": "replace"}],
                            "commandOverrider": [
                                {"containerName": "c", "operator": "replace", "value": ["x"]}
                            ],
                            "labelsOverrider": [{"operator": "add", "value": {"a b": "c"}}],
                            "fieldOverrider": [
                                {
                                    "fieldPath": "/data/x",
                                    "json": [{"subPath": "/a", "operator": "add", "value": 1}],
                                    "yaml": [{"subPath": "/a", "operator": "add", "value": 1}],
                                }
                            ],
                        },
                    }
                ]
            },
        }
    )
    rule = "spec.overrideRules.0"
    assert set(found) >= {
        f"{rule}.targetCluster.fieldSelector.matchExpressions.0.key",
        f"{rule}.overriders.plaintext.0.path",
        f"{rule}.overriders.imageOverrider.0",
        f"{rule}.overriders.commandOverrider.0.operator",
        f"{rule}.overriders.labelsOverrider.0.value",
        f"{rule}.overriders.fieldOverrider.0",
    }, found
    assert "JSON pointer" in found[f"{rule}.overriders.plaintext.0.path"]


def test_both_api_groups_parse_to_the_same_model() -> None:
    for group in ("policy.foot.dev/v1alpha1", "policy.karmada.io/v1alpha1"):
        parsed = KINDS.parse(policy() | {"apiVersion": group})
        assert isinstance(parsed, PropagationPolicy)
        assert parsed.api_version == group
        assert parsed.spec.placement.division == "Duplicated"
    info = KINDS.lookup("policy.karmada.io/v1alpha1", "ClusterPropagationPolicy")
    assert info.model is ClusterPropagationPolicy
    assert not info.namespaced
    assert info.owner == "scheduler"
    assert info.bucket == "policies"


def test_cluster_scoped_policies_refuse_a_namespace() -> None:
    document = policy() | {"kind": "ClusterPropagationPolicy"}
    assert "metadata.namespace" in problems(document)


def test_invalid_clusters_are_refused_with_paths() -> None:
    found = problems(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "member1"},
            "spec": {
                "syncMode": "Sideways",
                "taints": [{"key": "k", "effect": "NoWay"}],
            },
            "status": {
                "resourceSummary": {"allocatable": {"cpu": "four"}},
                "conditions": [{"type": "Ready", "status": "Maybe"}],
            },
        }
    )
    assert {
        "spec.syncMode",
        "spec.taints.0.effect",
        "status.resourceSummary.allocatable.cpu",
        "status.conditions.0.status",
    } <= set(found), found
    assert "not a quantity" in found["status.resourceSummary.allocatable.cpu"]

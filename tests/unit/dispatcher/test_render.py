"""Rendering (`core.render`): one work per cluster, overrides by policy order, desired works."""

from __future__ import annotations

from dispatcher_support import binding, deployment, override, parse, render_app
from foot.manifests import BINDING_ANNOTATION, MANAGED_BY_LABEL
from foot_dispatcher.core.render import (
    binding_key,
    desired_work,
    ordered_policies,
    render,
    template_manifest,
)


def test_render_one_work_per_cluster_with_replicas_deps_and_marks() -> None:
    result = render_app([], {"m1": 2, "m2": 4})
    assert set(result.works) == {"m1", "m2"}
    m1 = result.works["m1"]
    assert [m["kind"] for m in m1.manifests] == ["ConfigMap", "Deployment"]
    workload = m1.manifests[1]
    assert workload["spec"]["replicas"] == 2
    assert result.works["m2"].manifests[1]["spec"]["replicas"] == 4
    assert workload["metadata"] == {
        "name": "web",
        "namespace": "shop",
        "labels": {"app": "web", MANAGED_BY_LABEL: "foot"},
        "annotations": {BINDING_ANNOTATION: "shop/web-deployment"},
    }
    assert "status" not in workload
    assert m1.manifests_hash != result.works["m2"].manifests_hash
    again = render_app([], {"m1": 2, "m2": 4})
    assert again.works["m1"].manifests_hash == m1.manifests_hash, "rendering is deterministic"
    no_deps = render_app([], {"m1": 2}, deps=False)
    assert [m["kind"] for m in no_deps.works["m1"].manifests] == ["Deployment"]


def test_per_cluster_image_override_and_policy_order() -> None:
    per_region = override(
        "OverridePolicy",
        "eu-images",
        {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "overrideRules": [
                {
                    "targetCluster": {"labelSelector": {"matchLabels": {"region": "eu"}}},
                    "overriders": {
                        "imageOverrider": [
                            {
                                "component": "Registry",
                                "operator": "replace",
                                "value": "eu.example.com",
                                "predicate": {"path": "/spec/template/spec/containers/0/image"},
                            }
                        ]
                    },
                }
            ],
        },
    )
    everywhere = override(
        "ClusterOverridePolicy",
        "all-tags",
        {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "overrideRules": [
                {
                    "overriders": {
                        "imageOverrider": [
                            {"component": "Tag", "operator": "replace", "value": "9"}
                        ],
                        "labelsOverrider": [{"operator": "add", "value": {"tier": "cluster"}}],
                    }
                }
            ],
        },
    )
    by_name = override(
        "OverridePolicy",
        "a-label",
        {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "overriders": {"labelsOverrider": [{"operator": "add", "value": {"tier": "named"}}]},
        },
    )
    manifest = template_manifest(parse(deployment()))
    assert [p.name for p in ordered_policies([by_name, per_region, everywhere], manifest)] == [
        "all-tags",
        "a-label",
        "eu-images",
    ]
    result = render_app([per_region, everywhere, by_name], {"m1": 1, "m2": 1})
    eu = result.works["m1"].manifests[1]["spec"]["template"]["spec"]["containers"]
    us = result.works["m2"].manifests[1]["spec"]["template"]["spec"]["containers"]
    assert eu[0]["image"] == "eu.example.com/shop/web:9"
    assert us[0]["image"] == "registry.example.com/shop/web:9"
    assert result.works["m1"].manifests[1]["metadata"]["labels"]["tier"] == "named"
    config = result.works["m1"].manifests[0]
    assert "tier" not in config["metadata"]["labels"], "a Deployment policy leaves the ConfigMap"
    assert result.works["m1"].overrides == (
        "ClusterOverridePolicy/all-tags",
        "OverridePolicy/shop/a-label",
        "OverridePolicy/shop/eu-images",
    )
    # an OverridePolicy of another namespace does not apply
    elsewhere = override(
        "OverridePolicy",
        "other",
        {"overriders": {"labelsOverrider": [{"operator": "add", "value": {"x": "y"}}]}},
        namespace="other",
    )
    untouched = render_app([elsewhere], {"m1": 1})
    assert "x" not in untouched.works["m1"].manifests[1]["metadata"]["labels"]


def test_an_override_that_does_not_fit_fails_that_cluster_only() -> None:
    broken = override(
        "OverridePolicy",
        "broken",
        {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "overrideRules": [
                {
                    "targetCluster": {"clusterNames": ["m2"]},
                    "overriders": {
                        "plaintext": [
                            {"path": "/spec/nothing/here", "operator": "replace", "value": 1}
                        ]
                    },
                }
            ],
        },
    )
    result = render_app([broken], {"m1": 1, "m2": 1})
    assert set(result.works) == {"m1"}
    assert "OverridePolicy shop/broken rule 0: /spec/nothing/here" in result.errors["m2"]


def test_missing_dependency_is_reported() -> None:
    template = parse(deployment())
    result = render(binding({"m1": 1}), template, {}, [], {})
    assert result.missing_dependencies == ("ConfigMap/web-config",)
    assert [m["kind"] for m in result.works["m1"].manifests] == ["Deployment"]


def test_desired_work_changes_only_when_the_spec_does() -> None:
    bound = binding({"m1": 1}, conflictResolution="Overwrite")
    rendered = render_app([], {"m1": 1}).works["m1"]
    first = desired_work(bound, rendered, None, traceparent=None)
    assert first is not None
    assert first.metadata.name == "web-deployment.m1"
    assert first.spec.conflict_resolution == "Overwrite"
    assert desired_work(bound, rendered, first, traceparent=None) is None
    suspended = binding({"m1": 1}, conflictResolution="Overwrite", suspendedClusters=["m1"])
    changed = desired_work(suspended, rendered, first, traceparent=None)
    assert changed is not None
    assert changed.spec.suspended
    assert changed.metadata.generation == 2
    assert binding_key(bound) == "work.foot.dev.ResourceBinding.shop.web-deployment"

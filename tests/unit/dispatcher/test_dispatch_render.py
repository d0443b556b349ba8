"""The dispatcher's pure core: overriders, rendering, dependencies, removal and aggregation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import AnyOverridePolicy, ImageOverrider, Overriders
from foot.kinds.works import ManifestStatus, Work, WorkHealth, WorkStatus
from foot.kube.errors import KubeUnavailableError
from foot.manifests import BINDING_ANNOTATION, MANAGED_BY_LABEL
from foot.object_health import interpret
from foot.objects import KubeObject
from foot_cli.status import status_lines
from foot_dispatcher.core import workstatus
from foot_dispatcher.core.deps import dependencies
from foot_dispatcher.core.lifecycle import aggregate, removal, replacement_ready
from foot_dispatcher.core.overriders import ImageReference, apply_overriders, override_image
from foot_dispatcher.core.pointer import OverrideError, apply_operation
from foot_dispatcher.core.render import (
    binding_key,
    dependency_keys,
    desired_work,
    ordered_policies,
    render,
    template_manifest,
)
from foot_dispatcher.members import Breaker, Member, MemberUnavailableError, RateLimiter

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def parse(document: dict[str, Any]) -> KubeObject:
    return KINDS.parse(document)


def deployment(**spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "containers": [
            {"name": "web", "image": "registry.example.com/shop/web:1.0", "command": ["serve"]},
            {"name": "side", "image": "busybox"},
        ],
        "volumes": [{"name": "conf", "configMap": {"name": "web-config"}}],
    }
    pod.update(spec.pop("pod", {}))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "web"},
            "uid": "u-1",
            "generation": 3,
            "revision": 7,
        },
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
            **spec,
        },
    }


def config_map(name: str = "web-config", data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "shop"},
        "data": data or {"app.yaml": "port: 80\nmode: prod\n"},
    }


def binding(clusters: dict[str, int | None], *, deps: bool = True, **spec: Any) -> ResourceBinding:
    return ResourceBinding.model_validate(
        {
            "apiVersion": "work.foot.dev/v1alpha1",
            "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": "shop"},
            "spec": {
                "resource": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "namespace": "shop",
                    "name": "web",
                    "hash": "h1",
                },
                "clusters": [{"name": n, "replicas": r} for n, r in sorted(clusters.items())],
                "propagateDeps": deps,
                **spec,
            },
        }
    )


def cluster(name: str, **labels: str) -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": "cluster.foot.dev/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"syncMode": "Push", "region": labels.get("region")},
        }
    )


def override(kind: str, name: str, spec: dict[str, Any], namespace: str = "shop") -> Any:
    metadata: dict[str, Any] = {"name": name}
    if kind == "OverridePolicy":
        metadata["namespace"] = namespace
    return parse(
        {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": kind,
            "metadata": metadata,
            "spec": spec,
        }
    )


# --- pointer and overriders ---------------------------------------------------------------


def test_json_patch_operations_follow_rfc_6902() -> None:
    doc = {"a": {"b": [1, 2]}}
    assert apply_operation(doc, "add", "/a/b/-", 3) == {"a": {"b": [1, 2, 3]}}
    assert apply_operation(doc, "add", "/a/b/0", 0) == {"a": {"b": [0, 1, 2]}}
    assert apply_operation(doc, "replace", "/a/b/1", 9) == {"a": {"b": [1, 9]}}
    assert apply_operation(doc, "remove", "/a/b", None) == {"a": {}}
    assert apply_operation(doc, "add", "/a/x~1y", 1)["a"]["x/y"] == 1
    assert doc == {"a": {"b": [1, 2]}}, "the input is never changed"
    with pytest.raises(OverrideError, match="/a/c does not exist, so it cannot be replaced"):
        apply_operation(doc, "replace", "/a/c", 1)
    with pytest.raises(OverrideError, match="/x does not exist"):
        apply_operation(doc, "add", "/x/y", 1)
    with pytest.raises(OverrideError, match="index 5 is out of range"):
        apply_operation(doc, "remove", "/a/b/5", None)


@pytest.mark.parametrize(
    ("image", "component", "operator", "value", "expected"),
    [
        ("nginx:1.27", "Registry", "add", "docker.io", "docker.io/nginx:1.27"),
        ("a.io/x/y:1", "Registry", "replace", "b.io", "b.io/x/y:1"),
        ("a.io/x/y:1", "Registry", "remove", None, "x/y:1"),
        ("a.io/x/y:1", "Registry", "add", "-eu", "a.io-eu/x/y:1"),
        ("localhost:5000/web:1", "Tag", "replace", "2", "localhost:5000/web:2"),
        ("web", "Tag", "add", "v2", "web:v2"),
        ("web:1", "Tag", "remove", None, "web"),
        ("a.io/x/y:1", "Repository", "replace", "z", "a.io/z:1"),
        ("web@sha256:" + "a" * 64, "Tag", "replace", "3", "web:3"),
    ],
)
def test_image_components(
    image: str, component: Any, operator: Any, value: str | None, expected: str
) -> None:
    overrider = ImageOverrider(component=component, operator=operator, value=value)
    assert override_image(image, overrider) == expected


def test_image_reference_round_trips() -> None:
    for image in ["nginx", "nginx:1", "a.io:443/x/y:z", "a.io/x@sha256:" + "b" * 64]:
        assert str(ImageReference.parse(image)) == image


def test_overriders_run_in_the_documented_order() -> None:
    manifest = template_manifest(parse(deployment()))
    overriders = Overriders.model_validate(
        {
            "imageOverrider": [{"component": "Tag", "operator": "replace", "value": "2.0"}],
            "commandOverrider": [{"containerName": "web", "operator": "add", "value": ["-v"]}],
            "argsOverrider": [{"containerName": "side", "operator": "add", "value": ["x"]}],
            "labelsOverrider": [{"operator": "add", "value": {"tier": "front"}}],
            "annotationsOverrider": [{"operator": "add", "value": {"note": "eu"}}],
            # plaintext runs last, so it sees (and can undo) what the label overrider did
            "plaintext": [{"path": "/metadata/labels/tier", "operator": "replace", "value": "x"}],
        }
    )
    result = apply_overriders(manifest, overriders)
    pod = result["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/shop/web:2.0"
    assert pod["containers"][1]["image"] == "busybox:2.0"
    assert pod["containers"][0]["command"] == ["serve", "-v"]
    assert pod["containers"][1]["args"] == ["x"]
    assert result["metadata"]["labels"] == {"app": "web", "tier": "x"}
    assert result["metadata"]["annotations"] == {"note": "eu"}
    removed = apply_overriders(
        result,
        Overriders.model_validate(
            {"commandOverrider": [{"containerName": "web", "operator": "remove", "value": ["-v"]}]}
        ),
    )
    assert removed["spec"]["template"]["spec"]["containers"][0]["command"] == ["serve"]


def test_field_overrider_edits_yaml_and_json_inside_strings() -> None:
    manifest = template_manifest(
        parse(config_map(data={"app.yaml": "port: 80\nmode: prod\n", "j": '{"a": [1]}'}))
    )
    result = apply_overriders(
        manifest,
        Overriders.model_validate(
            {
                "fieldOverrider": [
                    {
                        "fieldPath": "/data/app.yaml",
                        "yaml": [{"subPath": "/mode", "operator": "replace", "value": "eu"}],
                    },
                    {
                        "fieldPath": "/data/j",
                        "json": [{"subPath": "/a/-", "operator": "add", "value": 2}],
                    },
                ]
            }
        ),
    )
    assert result["data"]["app.yaml"] == "port: 80\nmode: eu\n"
    assert result["data"]["j"] == '{"a":[1,2]}'
    with pytest.raises(OverrideError, match=r"/data/j \(inside the document\): /b does not"):
        apply_overriders(
            manifest,
            Overriders.model_validate(
                {
                    "fieldOverrider": [
                        {
                            "fieldPath": "/data/j",
                            "json": [{"subPath": "/b", "operator": "remove"}],
                        }
                    ]
                }
            ),
        )


def test_command_overrider_for_a_missing_container_names_it() -> None:
    manifest = template_manifest(parse(deployment()))
    with pytest.raises(OverrideError, match="no container named 'db'"):
        apply_overriders(
            manifest,
            Overriders.model_validate(
                {"argsOverrider": [{"containerName": "db", "operator": "add", "value": ["x"]}]}
            ),
        )


# --- dependencies ------------------------------------------------------------------------


def test_dependencies_of_a_pod_template() -> None:
    manifest = template_manifest(
        parse(
            deployment(
                pod={
                    "serviceAccountName": "web-sa",
                    "imagePullSecrets": [{"name": "pull"}],
                    "volumes": [
                        {"name": "a", "configMap": {"name": "web-config"}},
                        {"name": "b", "secret": {"secretName": "tls"}},
                        {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                        {"name": "d", "projected": {"sources": [{"configMap": {"name": "p"}}]}},
                    ],
                    "containers": [
                        {
                            "name": "web",
                            "image": "web",
                            "env": [
                                {
                                    "name": "X",
                                    "valueFrom": {"secretKeyRef": {"name": "env", "key": "k"}},
                                }
                            ],
                            "envFrom": [{"configMapRef": {"name": "envcm"}}],
                        }
                    ],
                }
            )
        )
    )
    assert dependencies(manifest) == [
        ("ServiceAccount", "web-sa"),
        ("Secret", "env"),
        ("Secret", "pull"),
        ("Secret", "tls"),
        ("ConfigMap", "envcm"),
        ("ConfigMap", "p"),
        ("ConfigMap", "web-config"),
        ("PersistentVolumeClaim", "data"),
    ]
    assert dependencies(template_manifest(parse(config_map()))) == []


# --- rendering ---------------------------------------------------------------------------


def render_app(
    policies: list[AnyOverridePolicy], clusters: dict[str, int | None], **binding_spec: Any
) -> Any:
    template = parse(deployment())
    deps = {key: parse(config_map()) for key, _ in dependency_keys(template)}
    members = {
        "m1": cluster("m1", region="eu"),
        "m2": cluster("m2", region="us"),
        "m3": cluster("m3", region="us"),
    }
    return render(binding(clusters, **binding_spec), template, deps, policies, members)


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


# --- removal and aggregation -----------------------------------------------------------


def work(cluster_name: str, *, ready: int | None = None, health: WorkHealth = "Healthy") -> Work:
    rendered = render_app([], {cluster_name: 2}).works[cluster_name]
    made = desired_work(binding({cluster_name: 2}), rendered, None, traceparent=None)
    assert made is not None
    statuses = [
        ManifestStatus(
            api_version="v1",
            kind="ConfigMap",
            namespace="shop",
            name="web-config",
            applied=True,
            health="Healthy",
        ),
        ManifestStatus(
            api_version="apps/v1",
            kind="Deployment",
            namespace="shop",
            name="web",
            applied=True,
            health=health,
            replicas=2,
            ready_replicas=ready,
        ),
    ]
    return made.model_copy(
        update={
            "status": WorkStatus(
                applied_hash=made.spec.manifests_hash,
                manifests=statuses,
                health=health,
            )
        }
    )


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


# --- health ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "health", "ready"),
    [
        (
            {
                "kind": "Deployment",
                "metadata": {"generation": 2},
                "spec": {"replicas": 2},
                "status": {
                    "observedGeneration": 2,
                    "replicas": 2,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                    "availableReplicas": 2,
                },
            },
            "Healthy",
            2,
        ),
        (
            {
                "kind": "Deployment",
                "metadata": {"generation": 3},
                "spec": {"replicas": 2},
                "status": {
                    "observedGeneration": 2,
                    "replicas": 2,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                    "availableReplicas": 2,
                },
            },
            "Progressing",
            2,
        ),
        (
            {
                "kind": "Deployment",
                "metadata": {"generation": 1},
                "spec": {"replicas": 2},
                "status": {"conditions": [{"type": "Progressing", "status": "False"}]},
            },
            "Unhealthy",
            0,
        ),
        (
            {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 2}},
            "Progressing",
            0,
        ),
        (
            {
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 1},
                "status": {
                    "observedGeneration": 1,
                    "readyReplicas": 1,
                    "updatedReplicas": 1,
                    "currentRevision": "a",
                    "updateRevision": "a",
                },
            },
            "Healthy",
            1,
        ),
        (
            {
                "kind": "DaemonSet",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 3,
                    "numberReady": 2,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                },
            },
            "Progressing",
            2,
        ),
        (
            {"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            "Healthy",
            0,
        ),
        (
            {"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}},
            "Unhealthy",
            0,
        ),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}}, "Healthy", None),
        ({"kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}}, "Unhealthy", None),
        ({"kind": "ConfigMap"}, "Healthy", None),
    ],
)
def test_health_per_kind(obj: dict[str, Any], health: str, ready: int | None) -> None:
    observed = interpret(obj)
    assert observed.health == health
    assert observed.ready_replicas == ready


def test_service_endpoints_for_the_gateway() -> None:
    node_port = interpret(
        {
            "kind": "Service",
            "spec": {
                "type": "NodePort",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
            },
        }
    )
    assert node_port.health == "Healthy"
    assert node_port.service is not None
    assert node_port.service.ports[0].node_port == 30080
    waiting = interpret({"kind": "Service", "spec": {"type": "LoadBalancer", "ports": []}})
    assert waiting.health == "Progressing"
    ready = interpret(
        {
            "kind": "Service",
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.x"}]}},
        }
    )
    assert ready.health == "Healthy"
    assert ready.service is not None
    assert ready.service.load_balancer_ingress == ["10.0.0.1", "lb.x"]


# --- work status -------------------------------------------------------------------------


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
    ready = {
        "kind": "Deployment",
        "metadata": {"generation": 1},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 1,
            "availableReplicas": 1,
        },
    }
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


async def test_rate_limiter_spaces_acquisitions_after_the_burst() -> None:
    limiter = RateLimiter(rate=100.0, burst=5)
    started = time.monotonic()
    for _ in range(15):
        await limiter.acquire()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.09, "ten acquisitions beyond the burst at 100/s take 0.1 s"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_breaker_fails_fast_while_open_and_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker("m1", base_seconds=1.0, max_seconds=4.0, clock=clock)
    assert breaker.admit() is False  # closed: every request goes, none is a probe
    breaker.failed(False, "PATCH timed out")
    breaker.failed(False, "GET timed out")  # sent before it opened: the same outage
    with pytest.raises(MemberUnavailableError, match="member m1 does not answer"):
        breaker.admit()
    clock.now += 1.0
    assert breaker.admit() is True  # the probe
    with pytest.raises(MemberUnavailableError):
        breaker.admit()  # one probe at a time
    breaker.failed(True, "PATCH timed out")  # the wait doubles: 2 s
    clock.now += 1.5
    with pytest.raises(MemberUnavailableError):
        breaker.admit()
    clock.now += 0.5
    assert breaker.admit() is True
    breaker.failed(True, "refused")  # 4 s
    clock.now += 4.0
    assert breaker.admit() is True
    breaker.failed(True, "refused")  # capped at 4 s
    clock.now += 4.0
    assert breaker.admit() is True
    assert breaker.answered(True) is True  # closed by the answer
    assert breaker.error is None
    assert breaker.admit() is False
    assert breaker.answered(False) is False  # already closed
    breaker.failed(False, "refused")  # opens again with the base wait
    clock.now += 1.0
    assert breaker.admit() is True
    breaker.abandoned(True)  # cancelled: the next request may probe
    assert breaker.admit() is True


def why_open(member: Member) -> str | None:
    """The breaker's error, read afresh (not narrowed by an earlier assert)."""
    return member.breaker.error


async def test_a_guarded_request_tells_the_breaker_what_the_member_did() -> None:
    clock = Clock()
    back: list[str] = []
    member = Member(
        name="m1",
        kube=None,  # type: ignore[arg-type]  # not used by guarded()
        applier=None,  # type: ignore[arg-type]
        limiter=RateLimiter(rate=100.0, burst=5),
        breaker=Breaker("m1", base_seconds=1.0, max_seconds=4.0, clock=clock),
        on_answering_again=back.append,
    )
    with pytest.raises(KubeUnavailableError), member.guarded():
        raise KubeUnavailableError("https://m1", "answered 503", status=503)
    assert why_open(member) is None, "a 503 is an answer"
    with pytest.raises(KubeUnavailableError), member.guarded():
        raise KubeUnavailableError("https://m1", "PATCH /x timed out")
    assert why_open(member) == "https://m1: PATCH /x timed out"
    with pytest.raises(MemberUnavailableError), member.guarded():
        pytest.fail("not reached: the breaker is open")
    clock.now += 1.0
    with member.guarded():
        pass  # the probe gets an answer
    assert back == ["m1"]
    assert why_open(member) is None

"""Examples shared by the dispatcher's unit tests: templates, bindings, clusters, works."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.policies import AnyOverridePolicy
from foot.kinds.works import ManifestStatus, Work, WorkHealth, WorkStatus
from foot.objects import KubeObject
from foot_dispatcher.core.render import dependency_keys, desired_work, render

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


def reported_deployment(*, generation: int, observed: int, ready: int) -> dict[str, Any]:
    """A two-replica Deployment as a member reports it: both replicas updated, `ready` of them
    ready and available, the status written for generation `observed`."""
    return {
        "kind": "Deployment",
        "metadata": {"generation": generation},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": observed,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
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

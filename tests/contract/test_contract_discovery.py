"""Discovery, version, health and authentication, against each backend."""

from __future__ import annotations

from typing import Any

from foot_sim import ClusterEndpoint
from foot_sim.client import KubeHttpClient


def _resources(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in document["resources"]}


async def test_version_and_health_endpoints(kube: KubeHttpClient) -> None:
    version = await kube.get("/version")
    assert version.status == 200
    assert version.json["major"] == "1"
    assert version.json["gitVersion"].startswith("v1.")
    for path in ("/readyz", "/livez", "/healthz"):
        health = await kube.get(path)
        assert (health.status, health.body) == (200, "ok"), path


async def test_core_group_discovery(kube: KubeHttpClient) -> None:
    versions = await kube.get("/api")
    assert versions.json["kind"] == "APIVersions"
    assert versions.json["versions"] == ["v1"]
    core = await kube.get("/api/v1")
    assert core.json["kind"] == "APIResourceList"
    assert core.json["groupVersion"] == "v1"
    resources = _resources(core.json)
    configmaps = resources["configmaps"]
    assert (configmaps["kind"], configmaps["namespaced"], configmaps["singularName"]) == (
        "ConfigMap",
        True,
        "configmap",
    )
    assert "cm" in configmaps["shortNames"]
    assert {"create", "get", "list", "watch", "update", "patch", "delete"} <= set(
        configmaps["verbs"]
    )
    assert resources["namespaces"]["namespaced"] is False
    assert resources["nodes"]["namespaced"] is False
    for plural in ("secrets", "services", "serviceaccounts", "persistentvolumeclaims"):
        assert resources[plural]["namespaced"] is True
    assert resources["services/status"]["verbs"] == ["get", "patch", "update"]
    assert "configmaps/status" not in resources


async def test_named_group_discovery(kube: KubeHttpClient) -> None:
    groups = await kube.get("/apis")
    assert groups.json["kind"] == "APIGroupList"
    served = {g["name"]: g for g in groups.json["groups"]}
    for group in ("apps", "batch", "rbac.authorization.k8s.io", "storage.k8s.io"):
        assert served[group]["preferredVersion"]["groupVersion"] == f"{group}/v1"
    apps = _resources((await kube.get("/apis/apps/v1")).json)
    assert apps["deployments"]["kind"] == "Deployment"
    assert "deploy" in apps["deployments"]["shortNames"]
    assert apps["deployments/status"]["kind"] == "Deployment"
    scale = apps["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert {"statefulsets", "daemonsets", "statefulsets/status", "daemonsets/status"} <= set(apps)
    batch = _resources((await kube.get("/apis/batch/v1")).json)
    assert batch["jobs"]["namespaced"] is True
    storage = _resources((await kube.get("/apis/storage.k8s.io/v1")).json)
    assert storage["storageclasses"]["namespaced"] is False
    rbac = _resources((await kube.get("/apis/rbac.authorization.k8s.io/v1")).json)
    assert rbac["clusterroles"]["namespaced"] is False
    assert rbac["clusterrolebindings"]["namespaced"] is False
    assert rbac["roles"]["namespaced"] is True
    assert rbac["rolebindings"]["namespaced"] is True


async def test_unknown_path_is_not_found(kube: KubeHttpClient) -> None:
    missing = await kube.get("/apis/nothing.example.com/v1")
    assert missing.status == 404


async def test_wrong_token_is_unauthorized(endpoint: ClusterEndpoint) -> None:
    async with KubeHttpClient(endpoint, token="not-the-token") as stranger:
        for path in ("/api/v1/namespaces", "/api"):
            answer = await stranger.get(path)
            assert answer.status == 401
            assert answer.json["kind"] == "Status"
            assert answer.json["status"] == "Failure"
            assert answer.json["reason"] == "Unauthorized"
            assert answer.json["code"] == 401


async def test_anonymous_is_forbidden(endpoint: ClusterEndpoint) -> None:
    async with KubeHttpClient(endpoint, token="") as anonymous:
        listing = await anonymous.get("/api/v1/namespaces/default/configmaps")
        assert listing.status == 403
        assert listing.json["reason"] == "Forbidden"
        assert listing.json["details"] == {"kind": "configmaps"}
        assert (
            'User "system:anonymous" cannot list resource "configmaps"' in listing.json["message"]
        )
        assert (await anonymous.get("/api")).status == 403
        # Health and version are public, as on a real server.
        assert (await anonymous.get("/readyz")).status == 200
        assert (await anonymous.get("/version")).status == 200

"""Status and scale subresources, generation, every served kind and kubectl, on each backend."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from typing import Any

import pytest

from foot_sim import ClusterEndpoint
from foot_sim.client import KubeHttpClient
from support import member_deployment

MERGE = "application/merge-patch+json"


def _deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return member_deployment(name, [{"name": "app", "image": "app:1"}], replicas)


@pytest.fixture
def deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


async def test_status_write_changes_only_status(kube: KubeHttpClient, deployments: str) -> None:
    created = (await kube.post(deployments, _deployment("statused"))).json
    status_path = f"{deployments}/statused/status"
    wanted = dict(created)
    wanted["spec"] = {**created["spec"], "replicas": 9}
    wanted["metadata"] = {**created["metadata"], "labels": {"sneaky": "yes"}}
    wanted["status"] = {"replicas": 2, "readyReplicas": 1, "observedGeneration": 1}
    written = await kube.put(status_path, wanted)
    assert written.status == 200, written.body
    assert written.json["status"]["readyReplicas"] == 1
    assert written.json["spec"]["replicas"] == 2
    assert "sneaky" not in (written.json["metadata"].get("labels") or {})
    assert written.json["metadata"]["generation"] == 1
    assert int(written.json["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    fetched = (await kube.get(status_path)).json
    assert (fetched["kind"], fetched["status"]["readyReplicas"]) == ("Deployment", 1)


async def test_status_patch_is_recorded_with_subresource(
    kube: KubeHttpClient, deployments: str
) -> None:
    await kube.post(deployments, _deployment("patched-status"))
    patched = await kube.request(
        "PATCH",
        f"{deployments}/patched-status/status",
        json={"status": {"replicas": 2, "readyReplicas": 2}},
        content_type=MERGE,
        params={"fieldManager": "status-writer"},
    )
    assert patched.status == 200, patched.body
    entry = next(
        e for e in patched.json["metadata"]["managedFields"] if e["manager"] == "status-writer"
    )
    assert (entry["operation"], entry["subresource"]) == ("Update", "status")
    assert entry["fieldsV1"] == {"f:status": {"f:readyReplicas": {}, "f:replicas": {}}}


async def test_main_resource_writes_ignore_status(kube: KubeHttpClient, deployments: str) -> None:
    created = (await kube.post(deployments, _deployment("guarded"))).json
    await kube.patch(
        f"{deployments}/guarded/status", {"status": {"replicas": 2, "readyReplicas": 1}}, MERGE
    )
    current = (await kube.get(f"{deployments}/guarded")).json
    attempt = {**current, "status": {"readyReplicas": 99}}
    updated = (await kube.put(f"{deployments}/guarded", attempt)).json
    assert updated["status"]["readyReplicas"] == 1
    patched = (
        await kube.patch(f"{deployments}/guarded", {"status": {"readyReplicas": 42}}, MERGE)
    ).json
    assert patched["status"]["readyReplicas"] == 1
    assert created["metadata"]["uid"] == patched["metadata"]["uid"]


async def test_create_ignores_status_of_workloads(kube: KubeHttpClient, deployments: str) -> None:
    manifest = _deployment("born")
    manifest["status"] = {"readyReplicas": 5}
    created = (await kube.post(deployments, manifest)).json
    assert created.get("status", {}).get("readyReplicas") is None


async def test_generation_counts_spec_changes_only(kube: KubeHttpClient, deployments: str) -> None:
    path = f"{deployments}/generational"
    created = (await kube.post(deployments, _deployment("generational"))).json
    assert created["metadata"]["generation"] == 1
    relabelled = (await kube.patch(path, {"metadata": {"labels": {"x": "y"}}}, MERGE)).json
    assert relabelled["metadata"]["generation"] == 1
    await kube.patch(f"{path}/status", {"status": {"observedGeneration": 1}}, MERGE)
    scaled = (await kube.patch(path, {"spec": {"replicas": 3}}, MERGE)).json
    assert scaled["metadata"]["generation"] == 2
    same = (await kube.patch(path, {"spec": {"replicas": 3}}, MERGE)).json
    assert same["metadata"]["generation"] == 2
    assert same["metadata"]["resourceVersion"] == scaled["metadata"]["resourceVersion"]


async def test_configmaps_have_no_generation_bump_on_data_change(
    kube: KubeHttpClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await kube.post(path, {"metadata": {"name": "plain"}, "data": {"a": "1"}})).json
    changed = (await kube.patch(f"{path}/plain", {"data": {"a": "2"}}, MERGE)).json
    assert created["metadata"].get("generation") == changed["metadata"].get("generation")


async def test_scale_subresource(kube: KubeHttpClient, deployments: str) -> None:
    await kube.post(deployments, _deployment("scalable", replicas=2))
    scale = await kube.get(f"{deployments}/scalable/scale")
    assert scale.status == 200
    assert (scale.json["kind"], scale.json["apiVersion"]) == ("Scale", "autoscaling/v1")
    assert scale.json["spec"]["replicas"] == 2
    assert scale.json["status"]["selector"] == "app=scalable"
    rescaled = await kube.patch(f"{deployments}/scalable/scale", {"spec": {"replicas": 5}}, MERGE)
    assert rescaled.status == 200, rescaled.body
    assert rescaled.json["spec"]["replicas"] == 5
    deployment = (await kube.get(f"{deployments}/scalable")).json
    assert deployment["spec"]["replicas"] == 5
    assert deployment["metadata"]["generation"] == 2
    operations = [{"op": "replace", "path": "/spec/replicas", "value": 1}]
    shrunk = await kube.patch(
        f"{deployments}/scalable/scale", operations, "application/json-patch+json"
    )
    assert (shrunk.status, shrunk.json["spec"]["replicas"]) == (200, 1)
    negative = await kube.patch(f"{deployments}/scalable/scale", {"spec": {"replicas": -1}}, MERGE)
    assert (negative.status, negative.json["reason"]) == (422, "Invalid")


def _manifests(suffix: str) -> list[tuple[str, dict[str, Any]]]:
    """One minimal valid object per served kind, with the collection path (namespace as {ns})."""
    template = {
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "i:1"}]},
    }
    selector = {"matchLabels": {"app": "x"}}
    name = f"kind-{suffix}"
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    subjects = [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]
    return [
        ("/api/v1/namespaces", {"kind": "Namespace", "metadata": {"name": name}}),
        ("/api/v1/nodes", {"kind": "Node", "metadata": {"name": name}}),
        (
            "/api/v1/namespaces/{ns}/configmaps",
            {"kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}},
        ),
        (
            "/api/v1/namespaces/{ns}/secrets",
            {"kind": "Secret", "metadata": {"name": name}, "stringData": {"a": "b"}},
        ),
        (
            "/api/v1/namespaces/{ns}/services",
            {"kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}},
        ),
        (
            "/api/v1/namespaces/{ns}/serviceaccounts",
            {"kind": "ServiceAccount", "metadata": {"name": name}},
        ),
        (
            "/api/v1/namespaces/{ns}/persistentvolumeclaims",
            {
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ),
        (
            "/apis/storage.k8s.io/v1/storageclasses",
            {"kind": "StorageClass", "metadata": {"name": name}, "provisioner": "example.com/none"},
        ),
        (
            "/apis/apps/v1/namespaces/{ns}/deployments",
            {
                "kind": "Deployment",
                "metadata": {"name": name},
                "spec": {"selector": selector, "template": template},
            },
        ),
        (
            "/apis/apps/v1/namespaces/{ns}/statefulsets",
            {
                "kind": "StatefulSet",
                "metadata": {"name": name},
                "spec": {"selector": selector, "template": template, "serviceName": name},
            },
        ),
        (
            "/apis/apps/v1/namespaces/{ns}/daemonsets",
            {
                "kind": "DaemonSet",
                "metadata": {"name": name},
                "spec": {"selector": selector, "template": template},
            },
        ),
        (
            "/apis/batch/v1/namespaces/{ns}/jobs",
            {
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "i:1"}],
                        }
                    }
                },
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {"kind": "ClusterRole", "metadata": {"name": name}, "rules": []},
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": role_ref,
                "subjects": subjects,
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
            {"kind": "Role", "metadata": {"name": name}, "rules": []},
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
            {
                "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": role_ref,
                "subjects": subjects,
            },
        ),
    ]


async def test_every_served_kind_round_trips(kube: KubeHttpClient, namespace: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    for collection_template, manifest in _manifests(suffix):
        collection = collection_template.replace("{ns}", namespace)
        group_version = (
            collection.split("/namespaces/")[0]
            if "/namespaces/{ns}" in collection_template
            else None
        )
        api_version = (
            (group_version or collection.rsplit("/", 1)[0])
            .removeprefix("/api/")
            .removeprefix("/apis/")
        )
        body = {"apiVersion": api_version, **manifest}
        name = manifest["metadata"]["name"]
        created = await kube.post(collection, body)
        assert created.status == 201, (collection, created.body)
        assert (created.json["kind"], created.json["apiVersion"]) == (manifest["kind"], api_version)
        listed = await kube.get(collection, {"fieldSelector": f"metadata.name={name}"})
        assert listed.json["kind"] == f"{manifest['kind']}List"
        assert [i["metadata"]["name"] for i in listed.json["items"]] == [name]
        assert (await kube.get(f"{collection}/{name}")).status == 200
        deleted = await kube.delete(f"{collection}/{name}")
        assert deleted.status == 200, (collection, deleted.body)


async def test_service_gets_cluster_defaults(kube: KubeHttpClient, namespace: str) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]},
    }
    created = (await kube.post(f"/api/v1/namespaces/{namespace}/services", service)).json
    spec = created["spec"]
    assert (spec["type"], spec["sessionAffinity"]) == ("ClusterIP", "None")
    assert spec["ports"][0]["protocol"] == "TCP"
    assert spec["ports"][0]["targetPort"] == 80


async def test_kubectl_get_and_server_side_apply(endpoint: ClusterEndpoint, namespace: str) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is needed for this test"
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: via-kubectl\n  namespace: {namespace}\n"
        "data:\n  answer: '42'\n"
    )
    base = [kubectl, "--server", endpoint.server, "--token", endpoint.token]
    if endpoint.ca_path is not None:
        base += ["--certificate-authority", str(endpoint.ca_path)]
    environment = {**os.environ, "KUBECONFIG": os.devnull}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environment,
            timeout=60,
            check=False,
        )

    applied = await asyncio.to_thread(run, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    assert "serverside-applied" in applied.stdout
    listed = await asyncio.to_thread(run, "get", "configmaps", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    assert "via-kubectl" in listed.stdout
    value = await asyncio.to_thread(
        run, "get", "configmap", "via-kubectl", "-n", namespace, "-o", "jsonpath={.data.answer}"
    )
    assert value.stdout == "42"


async def test_inconsistent_workload_status_is_invalid(
    kube: KubeHttpClient, deployments: str
) -> None:
    await kube.post(deployments, _deployment("overcounted"))
    answer = await kube.patch(
        f"{deployments}/overcounted/status", {"status": {"replicas": 1, "readyReplicas": 2}}, MERGE
    )
    assert answer.status == 422
    status = answer.json
    assert (status["reason"], status["details"]["group"], status["details"]["kind"]) == (
        "Invalid",
        "apps",
        "Deployment",
    )
    assert status["message"].startswith(
        'Deployment.apps "overcounted" is invalid: status.readyReplicas'
    )
    (cause,) = status["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueInvalid", "status.readyReplicas")

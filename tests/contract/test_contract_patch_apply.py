"""Merge, strategic merge and JSON patches, and server-side apply, against each backend."""

from __future__ import annotations

from typing import Any

import pytest

from foot_sim.client import KubeHttpClient
from support import member_deployment

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _configmap(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["manager"]: entry for entry in obj["metadata"].get("managedFields", [])}


@pytest.fixture
def configmaps(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


@pytest.fixture
def deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


async def test_merge_patch_merges_and_null_deletes(kube: KubeHttpClient, configmaps: str) -> None:
    await kube.post(configmaps, _configmap("merged", {"keep": "1", "drop": "2", "change": "3"}))
    patched = await kube.patch(
        f"{configmaps}/merged", {"data": {"drop": None, "change": "30", "add": "4"}}, MERGE
    )
    assert patched.status == 200
    assert patched.json["data"] == {"keep": "1", "change": "30", "add": "4"}


async def test_patch_of_missing_object_is_not_found(kube: KubeHttpClient, configmaps: str) -> None:
    answer = await kube.patch(f"{configmaps}/absent", {"data": {"a": "b"}}, MERGE)
    assert answer.status == 404
    assert answer.json["details"] == {"name": "absent", "kind": "configmaps"}


async def test_patch_with_unknown_content_type_is_unsupported(
    kube: KubeHttpClient, configmaps: str
) -> None:
    await kube.post(configmaps, _configmap("typed", {"a": "1"}))
    answer = await kube.patch(f"{configmaps}/typed", {"data": {"a": "2"}}, "application/json")
    assert answer.status == 415
    assert (answer.json["reason"], answer.json["code"]) == ("UnsupportedMediaType", 415)


async def test_merge_patch_with_stale_resource_version_conflicts(
    kube: KubeHttpClient, configmaps: str
) -> None:
    created = (await kube.post(configmaps, _configmap("guarded", {"a": "1"}))).json
    stale = created["metadata"]["resourceVersion"]
    await kube.patch(f"{configmaps}/guarded", {"data": {"a": "2"}}, MERGE)
    answer = await kube.patch(
        f"{configmaps}/guarded", {"metadata": {"resourceVersion": stale}, "data": {"a": "3"}}, MERGE
    )
    assert answer.status == 409
    assert answer.json["reason"] == "Conflict"


async def test_strategic_merge_patch_merges_containers_by_name(
    kube: KubeHttpClient, deployments: str
) -> None:
    containers = [
        {
            "name": "app",
            "image": "app:1",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        },
        {"name": "sidecar", "image": "sidecar:1", "ports": [{"containerPort": 9000}]},
    ]
    await kube.post(deployments, member_deployment("strategic", containers))
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:2",
                            "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                        },
                        {"name": "sidecar", "ports": [{"containerPort": 9001}]},
                    ]
                }
            }
        }
    }
    patched = await kube.patch(f"{deployments}/strategic", patch, STRATEGIC)
    assert patched.status == 200, patched.body
    merged = {c["name"]: c for c in patched.json["spec"]["template"]["spec"]["containers"]}
    assert list(merged) == ["app", "sidecar"]
    assert merged["app"]["image"] == "app:2"
    assert [(e["name"], e["value"]) for e in merged["app"]["env"]] == [
        ("A", "1"),
        ("B", "20"),
        ("C", "3"),
    ]
    assert merged["sidecar"]["image"] == "sidecar:1"
    assert sorted(p["containerPort"] for p in merged["sidecar"]["ports"]) == [9000, 9001]
    assert patched.json["metadata"]["generation"] == 2


async def test_strategic_merge_patch_delete_directive(
    kube: KubeHttpClient, deployments: str
) -> None:
    containers = [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "sidecar:1"}]
    await kube.post(deployments, member_deployment("pruned", containers))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    patched = await kube.patch(f"{deployments}/pruned", patch, STRATEGIC)
    assert patched.status == 200, patched.body
    assert [c["name"] for c in patched.json["spec"]["template"]["spec"]["containers"]] == ["app"]


async def test_strategic_merge_patch_replaces_atomic_lists(
    kube: KubeHttpClient, deployments: str
) -> None:
    containers = [{"name": "app", "image": "app:1", "args": ["--a", "--b"]}]
    await kube.post(deployments, member_deployment("atomic", containers))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["--c"]}]}}}}
    patched = await kube.patch(f"{deployments}/atomic", patch, STRATEGIC)
    assert patched.json["spec"]["template"]["spec"]["containers"][0]["args"] == ["--c"]


async def test_json_patch_operations(kube: KubeHttpClient, configmaps: str) -> None:
    await kube.post(configmaps, _configmap("ops", {"a": "1", "b": "2"}))
    operations = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/b"},
        {"op": "add", "path": "/data/c", "value": "3"},
        {"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}},
    ]
    patched = await kube.patch(f"{configmaps}/ops", operations, JSON_PATCH)
    assert patched.status == 200, patched.body
    assert patched.json["data"] == {"a": "10", "c": "3"}
    assert patched.json["metadata"]["labels"] == {"patched": "yes"}


async def test_json_patch_failed_test_is_invalid(kube: KubeHttpClient, configmaps: str) -> None:
    await kube.post(configmaps, _configmap("tested", {"a": "1"}))
    answer = await kube.patch(
        f"{configmaps}/tested", [{"op": "test", "path": "/data/a", "value": "2"}], JSON_PATCH
    )
    assert answer.status == 422
    assert (answer.json["reason"], answer.json["code"]) == ("Invalid", 422)


async def test_apply_creates_with_managed_fields(kube: KubeHttpClient, configmaps: str) -> None:
    config = _configmap("applied", {"a": "1"})
    config["metadata"]["labels"] = {"team": "blue"}
    created = await kube.apply(f"{configmaps}/applied", config, "manager-a")
    assert created.status == 201, created.body
    entry = _managers(created.json)["manager-a"]
    assert (entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "Apply",
        "v1",
        "FieldsV1",
    )
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:team": {}}}}
    again = await kube.apply(f"{configmaps}/applied", config, "manager-a")
    assert again.status == 200
    assert again.json["metadata"]["resourceVersion"] == created.json["metadata"]["resourceVersion"]


async def test_apply_conflict_between_managers(kube: KubeHttpClient, configmaps: str) -> None:
    path = f"{configmaps}/contested"
    await kube.apply(path, _configmap("contested", {"a": "1", "b": "1"}), "manager-a")
    answer = await kube.apply(path, _configmap("contested", {"a": "2"}), "manager-b")
    assert answer.status == 409
    status = answer.json
    assert (status["reason"], status["code"], status["status"]) == ("Conflict", 409, "Failure")
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "manager-a": .data.a'
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "manager-a"',
            "field": ".data.a",
        }
    ]


async def test_apply_conflicts_list_every_field(kube: KubeHttpClient, configmaps: str) -> None:
    path = f"{configmaps}/many"
    await kube.apply(path, _configmap("many", {"a": "1", "b": "1"}), "manager-a")
    answer = await kube.apply(path, _configmap("many", {"a": "2", "b": "2"}), "manager-b")
    assert answer.status == 409
    assert answer.json["message"].startswith(
        'Apply failed with 2 conflicts: conflicts with "manager-a":'
    )
    fields = sorted(cause["field"] for cause in answer.json["details"]["causes"])
    assert fields == [".data.a", ".data.b"]


async def test_apply_force_takes_ownership(kube: KubeHttpClient, configmaps: str) -> None:
    path = f"{configmaps}/forced"
    await kube.apply(path, _configmap("forced", {"a": "1", "b": "1"}), "manager-a")
    forced = await kube.apply(path, _configmap("forced", {"a": "2"}), "manager-b", force=True)
    assert forced.status == 200, forced.body
    assert forced.json["data"] == {"a": "2", "b": "1"}
    managers = _managers(forced.json)
    assert managers["manager-a"]["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert managers["manager-b"]["fieldsV1"] == {"f:data": {"f:a": {}}}


async def test_apply_same_value_shares_ownership(kube: KubeHttpClient, configmaps: str) -> None:
    path = f"{configmaps}/shared"
    await kube.apply(path, _configmap("shared", {"a": "1"}), "manager-a")
    shared = await kube.apply(path, _configmap("shared", {"a": "1"}), "manager-b")
    assert shared.status == 200
    managers = _managers(shared.json)
    assert (
        managers["manager-a"]["fieldsV1"]
        == managers["manager-b"]["fieldsV1"]
        == {"f:data": {"f:a": {}}}
    )


async def test_apply_removes_fields_the_manager_stops_applying(
    kube: KubeHttpClient, configmaps: str
) -> None:
    path = f"{configmaps}/shrinking"
    await kube.apply(path, _configmap("shrinking", {"a": "1", "b": "2"}), "manager-a")
    shrunk = await kube.apply(path, _configmap("shrinking", {"a": "1"}), "manager-a")
    assert shrunk.json["data"] == {"a": "1"}


async def test_apply_keeps_fields_another_manager_still_owns(
    kube: KubeHttpClient, configmaps: str
) -> None:
    path = f"{configmaps}/co-owned"
    await kube.apply(path, _configmap("co-owned", {"a": "1", "b": "2"}), "manager-a")
    await kube.apply(path, _configmap("co-owned", {"b": "2"}), "manager-b")
    shrunk = await kube.apply(path, _configmap("co-owned", {"a": "1"}), "manager-a")
    assert shrunk.json["data"] == {"a": "1", "b": "2"}


async def test_apply_conflicts_with_an_update_manager(
    kube: KubeHttpClient, configmaps: str
) -> None:
    await kube.post(
        configmaps, _configmap("updated", {"a": "1"}), params={"fieldManager": "creator"}
    )
    answer = await kube.apply(f"{configmaps}/updated", _configmap("updated", {"a": "2"}), "applier")
    assert answer.status == 409
    assert (
        answer.json["message"]
        == 'Apply failed with 1 conflict: conflict with "creator" using v1: .data.a'
    )
    (cause,) = answer.json["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldManagerConflict", ".data.a")


async def test_update_takes_ownership_without_conflict(
    kube: KubeHttpClient, configmaps: str
) -> None:
    path = f"{configmaps}/taken"
    await kube.apply(path, _configmap("taken", {"a": "1", "b": "1"}), "manager-a")
    patched = await kube.request(
        "PATCH",
        path,
        json={"data": {"a": "9"}},
        content_type=MERGE,
        params={"fieldManager": "editor"},
    )
    assert patched.status == 200
    managers = _managers(patched.json)
    assert managers["editor"]["operation"] == "Update"
    assert managers["editor"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert managers["manager-a"]["fieldsV1"] == {"f:data": {"f:b": {}}}


async def test_apply_associative_list_conflict_path(kube: KubeHttpClient, deployments: str) -> None:
    path = f"{deployments}/listed"
    first = member_deployment("listed", [{"name": "app", "image": "app:1"}])
    created = await kube.apply(path, first, "deployer")
    assert created.status == 201, created.body
    fields = _managers(created.json)["deployer"]["fieldsV1"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert container == {".": {}, "f:image": {}, "f:name": {}}
    second = member_deployment("listed", [{"name": "app", "image": "app:2"}])
    answer = await kube.apply(path, second, "intruder")
    assert answer.status == 409
    fields_in_conflict = {cause["field"] for cause in answer.json["details"]["causes"]}
    assert '.spec.template.spec.containers[name="app"].image' in fields_in_conflict


async def test_apply_without_field_manager_is_invalid(
    kube: KubeHttpClient, configmaps: str
) -> None:
    answer = await kube.patch(
        f"{configmaps}/nomanager",
        _configmap("nomanager", {"a": "1"}),
        "application/apply-patch+yaml",
    )
    assert answer.status == 422
    assert answer.json["reason"] == "Invalid"
    assert answer.json["details"]["kind"] == "PatchOptions"
    (cause,) = answer.json["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueRequired", "fieldManager")


async def test_apply_yaml_body(kube: KubeHttpClient, configmaps: str) -> None:
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  greeting: hello\n"
    )
    answer = await kube.request(
        "PATCH",
        f"{configmaps}/from-yaml",
        data=manifest,
        content_type="application/apply-patch+yaml",
        params={"fieldManager": "yaml-writer"},
    )
    assert answer.status == 201, answer.body
    assert answer.json["data"] == {"greeting": "hello"}

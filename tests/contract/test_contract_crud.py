"""Create, get, update, delete and their failure Status shapes, against each backend."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio.client.exceptions import ApiException

from foot_sim.client import KubeHttpClient, KubeResponse
from support import member_deployment


def _configmap(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": data or {"key": "value"},
    }


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return member_deployment(name, [{"name": "app", "image": "registry.example/app:1"}], replicas)


async def _created_configmap(
    kube: KubeHttpClient, namespace: str, name: str
) -> tuple[str, dict[str, Any]]:
    """Create ConfigMap `name` in `namespace`: its path and the object as created."""
    created = await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap(name))
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}", created.json


def _assert_failure(answer: KubeResponse, code: int, reason: str) -> dict[str, Any]:
    assert answer.status == code, answer.body
    status = answer.json
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert (status["reason"], status["code"]) == (reason, code)
    assert status["message"]
    return status


async def test_create_then_get_round_trip(kube: KubeHttpClient, namespace: str) -> None:
    created = await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("settings"))
    assert created.status == 201
    metadata = created.json["metadata"]
    assert (created.json["kind"], created.json["apiVersion"]) == ("ConfigMap", "v1")
    assert metadata["namespace"] == namespace
    assert uuid.UUID(metadata["uid"])
    assert metadata["creationTimestamp"].endswith("Z")
    assert int(metadata["resourceVersion"]) > 0
    fetched = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/settings")
    assert fetched.status == 200
    assert fetched.json["metadata"]["uid"] == metadata["uid"]
    assert fetched.json["metadata"]["resourceVersion"] == metadata["resourceVersion"]
    assert fetched.json["data"] == {"key": "value"}


async def test_get_not_found(kube: KubeHttpClient, namespace: str) -> None:
    missing = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/absent")
    status = _assert_failure(missing, 404, "NotFound")
    assert status["details"] == {"name": "absent", "kind": "configmaps"}
    assert status["message"] == 'configmaps "absent" not found'


async def test_get_not_found_names_the_group(kube: KubeHttpClient, namespace: str) -> None:
    missing = await kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/absent")
    status = _assert_failure(missing, 404, "NotFound")
    assert status["details"] == {"name": "absent", "group": "apps", "kind": "deployments"}
    assert status["message"] == 'deployments.apps "absent" not found'


async def test_create_twice_is_already_exists(kube: KubeHttpClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert (await kube.post(path, _configmap("twice"))).status == 201
    again = await kube.post(path, _configmap("twice"))
    status = _assert_failure(again, 409, "AlreadyExists")
    assert status["details"] == {"name": "twice", "kind": "configmaps"}
    assert status["message"] == 'configmaps "twice" already exists'


async def test_create_without_name_is_invalid(kube: KubeHttpClient, namespace: str) -> None:
    nameless = _configmap("x")
    del nameless["metadata"]["name"]
    answer = await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", nameless)
    status = _assert_failure(answer, 422, "Invalid")
    assert status["details"]["kind"] == "ConfigMap"
    (cause,) = status["details"]["causes"]
    assert (cause["reason"], cause["field"]) == ("FieldValueRequired", "metadata.name")


@pytest.mark.parametrize("bad_name", ["Upper_Case", "trailing-dash-", "has space"])
async def test_create_with_invalid_name_is_invalid(
    kube: KubeHttpClient, namespace: str, bad_name: str
) -> None:
    answer = await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap(bad_name))
    status = _assert_failure(answer, 422, "Invalid")
    assert status["details"]["name"] == bad_name
    assert status["details"]["kind"] == "ConfigMap"
    assert "group" not in status["details"]
    causes = status["details"]["causes"]
    assert {(c["reason"], c["field"]) for c in causes} == {("FieldValueInvalid", "metadata.name")}
    assert status["message"].startswith(
        f'ConfigMap "{bad_name}" is invalid: metadata.name: Invalid value'
    )


async def test_invalid_grouped_kind_names_its_group(kube: KubeHttpClient, namespace: str) -> None:
    answer = await kube.post(
        f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment("Bad_Name")
    )
    status = _assert_failure(answer, 422, "Invalid")
    assert (status["details"]["group"], status["details"]["kind"]) == ("apps", "Deployment")
    assert status["message"].startswith('Deployment.apps "Bad_Name" is invalid: metadata.name')


async def test_create_with_wrong_kind_for_url_is_bad_request(
    kube: KubeHttpClient, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "wrong"},
        "stringData": {"a": "b"},
    }
    answer = await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", secret)
    _assert_failure(answer, 400, "BadRequest")


async def test_create_in_missing_namespace_is_not_found(kube: KubeHttpClient) -> None:
    answer = await kube.post(
        "/api/v1/namespaces/no-such-namespace/configmaps", _configmap("orphan")
    )
    status = _assert_failure(answer, 404, "NotFound")
    assert status["details"] == {"name": "no-such-namespace", "kind": "namespaces"}
    assert status["message"] == 'namespaces "no-such-namespace" not found'


async def test_update_with_stale_resource_version_conflicts(
    kube: KubeHttpClient, namespace: str
) -> None:
    path, created = await _created_configmap(kube, namespace, "contended")
    first = {**created, "data": {"key": "first"}}
    assert (await kube.put(path, first)).status == 200
    stale = {**created, "data": {"key": "second"}}
    answer = await kube.put(path, stale)
    status = _assert_failure(answer, 409, "Conflict")
    assert status["details"] == {"name": "contended", "kind": "configmaps"}
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "contended": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


async def test_update_bumps_resource_version_and_no_op_does_not(
    kube: KubeHttpClient, namespace: str
) -> None:
    path, created = await _created_configmap(kube, namespace, "versioned")
    changed = (await kube.put(path, {**created, "data": {"key": "changed"}})).json
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert changed["metadata"]["uid"] == created["metadata"]["uid"]
    assert changed["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    unchanged = (await kube.put(path, changed)).json
    assert unchanged["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]


async def test_update_of_missing_object_is_not_found(kube: KubeHttpClient, namespace: str) -> None:
    answer = await kube.put(f"/api/v1/namespaces/{namespace}/configmaps/ghost", _configmap("ghost"))
    _assert_failure(answer, 404, "NotFound")


async def test_update_with_mismatched_name_is_bad_request(
    kube: KubeHttpClient, namespace: str
) -> None:
    path, created = await _created_configmap(kube, namespace, "named")
    renamed = {**created, "metadata": {**created["metadata"], "name": "other"}}
    answer = await kube.put(path, renamed)
    _assert_failure(answer, 400, "BadRequest")


async def test_resource_versions_increase_across_kinds(
    kube: KubeHttpClient, namespace: str
) -> None:
    first = (await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("one"))).json
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "two"},
        "stringData": {"k": "v"},
    }
    second = (await kube.post(f"/api/v1/namespaces/{namespace}/secrets", secret)).json
    third = (
        await kube.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment("three"))
    ).json
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, third)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_delete_answers_success_status(kube: KubeHttpClient, namespace: str) -> None:
    path, created = await _created_configmap(kube, namespace, "doomed")
    deleted = await kube.delete(path)
    assert deleted.status == 200
    assert (deleted.json["kind"], deleted.json["status"]) == ("Status", "Success")
    assert deleted.json["details"] == {
        "name": "doomed",
        "kind": "configmaps",
        "uid": created["metadata"]["uid"],
    }
    assert (await kube.get(path)).status == 404


async def test_delete_grouped_kind_names_the_group(kube: KubeHttpClient, namespace: str) -> None:
    await kube.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment("gone"))
    deleted = await kube.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/gone")
    assert deleted.status == 200
    assert (deleted.json["details"]["group"], deleted.json["details"]["kind"]) == (
        "apps",
        "deployments",
    )


async def test_delete_missing_object_is_not_found(kube: KubeHttpClient, namespace: str) -> None:
    answer = await kube.delete(f"/api/v1/namespaces/{namespace}/configmaps/never")
    status = _assert_failure(answer, 404, "NotFound")
    assert status["details"] == {"name": "never", "kind": "configmaps"}


async def test_delete_with_failed_uid_precondition_conflicts(
    kube: KubeHttpClient, namespace: str
) -> None:
    await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("guarded"))
    options = {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "preconditions": {"uid": str(uuid.uuid4())},
    }
    answer = await kube.delete(f"/api/v1/namespaces/{namespace}/configmaps/guarded", options)
    status = _assert_failure(answer, 409, "Conflict")
    assert status["details"] == {"name": "guarded", "kind": "ConfigMap"}
    assert "the UID in the precondition" in status["message"]
    assert (await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/guarded")).status == 200


async def test_delete_with_finalizer_marks_then_update_removes(
    kube: KubeHttpClient, namespace: str
) -> None:
    held = _configmap("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await kube.post(f"/api/v1/namespaces/{namespace}/configmaps", held)
    path = f"/api/v1/namespaces/{namespace}/configmaps/held"
    marked = await kube.delete(path)
    assert marked.status == 200
    assert marked.json["kind"] == "ConfigMap"
    assert marked.json["metadata"]["deletionTimestamp"]
    released = await kube.patch(
        path, {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )
    assert released.status == 200
    assert (await kube.get(path)).status == 404


async def test_new_namespace_is_active_with_kubernetes_finalizer(
    kube: KubeHttpClient, namespace: str
) -> None:
    fetched = (await kube.get(f"/api/v1/namespaces/{namespace}")).json
    assert fetched["status"]["phase"] == "Active"
    assert fetched["spec"]["finalizers"] == ["kubernetes"]
    assert "namespace" not in fetched["metadata"]


async def test_deployment_gets_server_defaults(kube: KubeHttpClient, namespace: str) -> None:
    bare = _deployment("defaults")
    del bare["spec"]["replicas"]
    created = (await kube.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", bare)).json
    spec = created["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    container = spec["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePolicy"] == "File"
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert created["metadata"]["generation"] == 1


async def test_kubernetes_asyncio_typed_round_trip(
    api_client: kube_client.ApiClient, namespace: str
) -> None:
    core = kube_client.CoreV1Api(api_client)
    body = kube_client.V1ConfigMap(metadata=kube_client.V1ObjectMeta(name="typed"), data={"a": "1"})
    created = await core.create_namespaced_config_map(namespace, body)
    assert created.metadata.uid
    fetched = await core.read_namespaced_config_map("typed", namespace)
    assert fetched.data == {"a": "1"}
    listed = await core.list_namespaced_config_map(namespace)
    assert [item.metadata.name for item in listed.items] == ["typed"]
    with pytest.raises(ApiException) as raised:
        await core.read_namespaced_config_map("missing", namespace)
    assert raised.value.status == 404
    await core.delete_namespaced_config_map("typed", namespace)

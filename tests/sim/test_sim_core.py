"""Unit tests of the simulator's pure core: selectors, patches, field ownership, quantities."""

from __future__ import annotations

from typing import Any

import pytest

from foot_sim.errors import ApiError
from foot_sim.kubelet import parse_quantity, pod_request
from foot_sim.managed import (
    changed_fields,
    format_path,
    from_fields_v1,
    object_field_set,
    record_update,
    server_side_apply,
    to_fields_v1,
)
from foot_sim.patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from foot_sim.resources import RESOURCES_BY_PATH
from foot_sim.selectors import labels_match, parse_field_selector, parse_label_selector
from foot_sim.validation import name_errors

NOW = "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2)", {"a": "2"}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("a>3", {"a": "4"}, True),
        ("a<3", {"a": "x"}, False),
        ("example.com/a=1,b", {"example.com/a": "1", "b": "z"}, True),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is matches


@pytest.mark.parametrize("selector", ["a=(", "=x", "a in (b c)", "a>x", "a b"])
def test_malformed_label_selector_is_bad_request(selector: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_label_selector(selector)
    assert raised.value.code == 400


def test_field_selector_rejects_unknown_fields_per_kind() -> None:
    assert parse_field_selector("type=Opaque", "Secret")[0].field == "type"
    with pytest.raises(ApiError, match="not a known field selector"):
        parse_field_selector("type=Opaque", "ConfigMap")


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    patch = {"a": "z", "c": {"f": None}, "h": [1]}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "h": [1]}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}}


def test_json_patch_follows_rfc_6902() -> None:
    doc = {"list": [1, 3], "a~b": {"c/d": 1}}
    result = json_patch(
        doc,
        [
            {"op": "add", "path": "/list/1", "value": 2},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "move", "from": "/a~0b/c~1d", "path": "/moved"},
            {"op": "copy", "from": "/moved", "path": "/copied"},
        ],
    )
    assert result == {"list": [1, 2, 3, 4], "a~b": {}, "moved": 1, "copied": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "remove", "path": "/missing"}])


def test_strategic_merge_patch_directives() -> None:
    original: dict[str, Any] = {
        "metadata": {"finalizers": ["a"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "x", "image": "1", "env": [{"name": "E", "value": "1"}]}
                    ],
                    "volumes": [{"name": "v1"}, {"name": "v2"}],
                }
            }
        },
    }
    patch = {
        "metadata": {"finalizers": ["b"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "x", "env": [{"name": "E", "$patch": "delete"}]}],
                    "volumes": [{"name": "v3"}, {"$patch": "replace"}],
                    "$setElementOrder/containers": [{"name": "x"}],
                }
            }
        },
    }
    merged = strategic_merge_patch(original, patch, "Deployment")
    pod = merged["spec"]["template"]["spec"]
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    assert pod["containers"] == [{"name": "x", "image": "1", "env": []}]
    assert pod["volumes"] == [{"name": "v3"}]


def test_field_set_round_trips_through_fields_v1() -> None:
    deployment = {
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]
                }
            },
        },
    }
    fields = object_field_set(deployment, "Deployment")
    encoded = to_fields_v1(fields)
    container = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert container["f:ports"]['k:{"containerPort":80,"protocol":"TCP"}'] == {
        ".": {},
        "f:containerPort": {},
    }
    assert "f:name" not in encoded["f:metadata"]
    assert from_fields_v1(encoded) == fields


def test_format_path_matches_structured_merge_diff() -> None:
    path = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:name")
    assert format_path(path) == '.spec.ports[port=80,protocol="TCP"].name'
    assert format_path(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def test_update_ownership_marks_new_maps() -> None:
    created = {"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}}
    fields = changed_fields(None, created, "ConfigMap")
    assert ("f:data",) in fields
    assert ("f:metadata", "f:labels") in fields
    entries = record_update(
        None, created, kind="ConfigMap", manager="m", api_version="v1", subresource="", now=NOW
    )
    assert entries[0]["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}},
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
    }


def _apply(live: dict[str, Any] | None, value: str, manager: str, *, force: bool) -> dict[str, Any]:
    return server_side_apply(
        live, {"data": {"a": value}}, kind="ConfigMap", manager=manager, force=force,
        api_version="v1", subresource="", now=NOW,
    )  # fmt: skip


def test_apply_conflict_and_force() -> None:
    live = _apply(None, "1", "one", force=False)
    with pytest.raises(ApiError) as raised:
        _apply(live, "2", "two", force=False)
    assert raised.value.code == 409
    assert raised.value.message == 'Apply failed with 1 conflict: conflict with "one": .data.a'
    forced = _apply(live, "2", "two", force=True)
    assert forced["data"] == {"a": "2"}
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["two"]


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1Ki", 1024.0),
        ("1.5Gi", 1.5 * 2**30),
        ("1e3", 1000.0),
        ("128M", 128e6),
        (3, 3.0),
    ],
)
def test_parse_quantity(quantity: str | int, value: float) -> None:
    assert parse_quantity(quantity) == pytest.approx(value)


def test_pod_request_sums_containers_and_falls_back_to_limits() -> None:
    template = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            ]
        }
    }
    request = pod_request(template)
    assert request.cpu == pytest.approx(1.25)
    assert request.memory == pytest.approx(64 * 2**20 + 2**30)


def test_name_rules_per_resource() -> None:
    namespaces = RESOURCES_BY_PATH[("", "v1", "namespaces")]
    services = RESOURCES_BY_PATH[("", "v1", "services")]
    roles = RESOURCES_BY_PATH[("rbac.authorization.k8s.io", "v1", "roles")]
    configmaps = RESOURCES_BY_PATH[("", "v1", "configmaps")]
    assert name_errors(configmaps, "a.b-c") == []
    assert name_errors(namespaces, "a.b") != []
    assert name_errors(services, "1abc") != []
    assert name_errors(roles, "system:controller:x") == []
    assert name_errors(roles, "a/b") != []

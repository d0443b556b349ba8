"""Objects: parsed and validated from documents (every problem with its path), loaded from
YAML/JSON, frozen; without any server."""

from __future__ import annotations

import pytest

from foot.errors import InvalidObjectError
from foot.kinds import KINDS
from foot.kinds.templates import Deployment
from foot.objects import load_documents
from support import problems


def deployment(**spec_overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": spec | spec_overrides,
    }


def test_a_valid_deployment_keeps_every_field_and_defaults_its_namespace() -> None:
    document = deployment(strategy={"type": "Recreate"})
    parsed = KINDS.parse(document)
    assert isinstance(parsed, Deployment)
    assert parsed.metadata.namespace == "default"
    dumped = parsed.to_dict()
    assert dumped["spec"]["strategy"] == {"type": "Recreate"}
    assert dumped["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = problems(
        deployment(
            replicas=-1,
            template={"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
        )
        | {"metadata": {"name": "Web!"}}
    )
    assert set(found) == {"metadata.name", "spec.replicas", "spec.template.spec.containers"}
    assert "greater than or equal to 0" in found["spec.replicas"]


def test_duplicate_container_names_are_refused() -> None:
    containers = [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
    found = problems(deployment(template=template))
    assert "repeated: a" in found["spec.template.spec.containers"]


def test_secret_data_must_be_base64() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    assert "base64" in problems(secret | {"data": {"password": "not base64!"}})["data"]
    assert KINDS.parse(secret | {"data": {"password": "aHVudGVyMg=="}}).kind == "Secret"


def test_cluster_scoped_kinds_refuse_a_namespace() -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "a", "namespace": "b"},
    }
    assert problems(namespace) == {"metadata.namespace": "Namespace is cluster-scoped"}


def test_unknown_kind_and_missing_type_are_named() -> None:
    # Custom resources are templates (tests/unit/scheduler/test_generic_templates.py); an
    # unknown kind in FOOT's own groups is a mistake.
    gizmo = {"apiVersion": "policy.foot.dev/v1alpha1", "kind": "Gizmo", "metadata": {"name": "g"}}
    assert "is not a kind FOOT knows" in problems(gizmo)["kind"]
    assert set(problems({"metadata": {"name": "x"}})) == {"apiVersion", "kind"}


def test_documents_load_from_multi_document_yaml_and_json() -> None:
    yaml_text = "a: 1\n---\n---\nb: 2\n"
    assert load_documents(yaml_text) == [{"a": 1}, {"b": 2}]
    assert load_documents('[{"a": 1}, {"b": 2}]') == [{"a": 1}, {"b": 2}]
    assert load_documents(b'{"a": 1}') == [{"a": 1}]


def test_documents_that_do_not_parse_are_refused() -> None:
    with pytest.raises(InvalidObjectError, match="does not parse"):
        load_documents("a: [1, 2", source="app.yaml")
    with pytest.raises(InvalidObjectError, match="must be a mapping"):
        load_documents("- 1\n- 2\n")


def test_objects_are_frozen() -> None:
    parsed = KINDS.parse(deployment())
    with pytest.raises(Exception, match="frozen"):
        parsed.metadata.name = "other"  # type: ignore[misc]

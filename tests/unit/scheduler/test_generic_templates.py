"""Custom resources (registered by their CRD) and Kubernetes kinds FOOT does not model are
accepted as resource templates."""

from __future__ import annotations

import pytest

from foot.errors import InvalidObjectError
from foot.kinds import KINDS
from foot.kinds.custom import custom_kind_checks
from foot.kinds.templates import GenericTemplate
from foot_scheduler.core import workload_from_template
from support import custom_resource_definition

CUSTOM = custom_kind_checks(
    [
        custom_resource_definition("example.com", "Widget"),
        custom_resource_definition("cert-manager.io", "ClusterIssuer", "Cluster"),
    ]
)


def test_a_custom_resource_is_a_namespaced_template_owned_by_the_scheduler() -> None:
    document = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"app": "w"}},
        "spec": {"size": 3, "nested": {"anything": [1, 2]}},
    }
    parsed = KINDS.parse(document, custom=CUSTOM)
    assert isinstance(parsed, GenericTemplate)
    assert parsed.namespace == "default"
    assert parsed.to_dict()["spec"] == document["spec"]
    info = KINDS.lookup("example.com/v1", "Widget")
    assert (info.owner, info.bucket, info.plural) == ("scheduler", "templates", "widgets")
    assert info.key("default", "w1") == "example.com.Widget.default.w1"
    workload = workload_from_template(parsed)
    assert workload.replicas is None
    assert workload.group_version_kind == ("example.com/v1", "Widget")


def test_cluster_scoped_kinds_are_recognised() -> None:
    issuer = KINDS.parse(
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"}},
        custom=CUSTOM,
    )
    assert issuer.namespace is None
    role = KINDS.lookup("rbac.authorization.k8s.io/v1", "ClusterRole")
    assert not role.namespaced
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "fast", "namespace": "default"},
                "provisioner": "csi.example.com",
            }
        )
    assert raised.value.problems[0].path == "metadata.namespace"


@pytest.mark.parametrize(
    ("api_version", "kind", "path"),
    [
        ("policy.foot.dev/v1alpha1", "PropagationPolicyy", "kind"),
        ("policy.karmada.io/v1alpha1", "Propagation", "kind"),
        ("cluster.foot.dev/v1alpha1", "Clusterr", "kind"),
        ("Example.com/v1", "Widget", "apiVersion"),
        ("example.com/one", "Widget", "apiVersion"),
        ("example.com/v1", "widget", "kind"),
    ],
)
def test_malformed_or_reserved_kinds_are_still_refused(
    api_version: str, kind: str, path: str
) -> None:
    """A malformed apiVersion is named as the field at fault; otherwise the kind is."""
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert [p.path for p in raised.value.problems] == [path]


def test_a_custom_resource_without_its_definition_is_refused_saying_how_to_register_it() -> None:
    document = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}}
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse(document)
    assert [p.path for p in raised.value.problems] == ["kind"]
    assert "CustomResourceDefinition" in raised.value.problems[0].reason


def test_a_custom_resource_is_checked_against_its_definition_schema() -> None:
    crd = custom_resource_definition(
        "example.com",
        "Gadget",
        spec_schema={
            "type": "object",
            "properties": {
                "size": {"type": "integer", "format": "int32"},
                "color": {"type": "string"},
            },
            "required": ["size"],
        },
    )
    custom = custom_kind_checks([crd])
    document = {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "labels": {"bad key": "x"}},
        "spec": {"size": 2**31, "colour": "red"},
    }
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse(document, custom=custom)
    found = {p.path: p.reason for p in raised.value.problems}
    assert set(found) == {"spec.size", "spec.colour", "metadata.labels"}
    assert "32-bit" in found["spec.size"]
    assert found["spec.colour"] == "unknown field"

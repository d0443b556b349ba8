"""Custom resources (and any kind FOOT does not model) are accepted as resource templates."""

from __future__ import annotations

import pytest

from foot.errors import InvalidObjectError
from foot.kinds import KINDS
from foot.kinds.templates import GenericTemplate
from foot_scheduler.core import workload_from_template


def test_a_custom_resource_is_a_namespaced_template_owned_by_the_scheduler() -> None:
    document = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"app": "w"}},
        "spec": {"size": 3, "nested": {"anything": [1, 2]}},
    }
    parsed = KINDS.parse(document)
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
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "ca"}}
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
            }
        )
    assert raised.value.problems[0].path == "metadata.namespace"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("policy.foot.dev/v1alpha1", "PropagationPolicyy"),
        ("policy.karmada.io/v1alpha1", "Propagation"),
        ("cluster.foot.dev/v1alpha1", "Clusterr"),
        ("Example.com/v1", "Widget"),
        ("example.com/one", "Widget"),
        ("example.com/v1", "widget"),
    ],
)
def test_malformed_or_reserved_kinds_are_still_refused(api_version: str, kind: str) -> None:
    with pytest.raises(InvalidObjectError) as raised:
        KINDS.parse({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    assert raised.value.problems[0].path == "kind"

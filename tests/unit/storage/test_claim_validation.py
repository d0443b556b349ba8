"""StorageClaim validation (acceptance 7): every problem refused with its field path."""

from __future__ import annotations

from typing import Any

import pytest

from foot.catalog import STORAGE_CLAIMS
from foot.kinds import KINDS
from foot.kinds.storage import StorageClaim, size_bytes
from support import problems


def claim(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "block",
        "size": "1Gi",
        "access": {"clusters": ["east", "west"]},
    }
    return {
        "apiVersion": "storage.foot.dev/v1alpha1",
        "kind": "StorageClaim",
        "metadata": {"name": "orders-db", "namespace": "shop"},
        "spec": base | spec,
    }


def test_a_valid_claim_gets_defaults() -> None:
    parsed = KINDS.parse(claim())
    assert isinstance(parsed, StorageClaim)
    assert parsed.spec.reclaim_policy == "Retain"
    assert parsed.spec.placement.failure_domain == "host"
    assert parsed.spec.placement.replicas == 3
    assert size_bytes(parsed.spec.size) == 2**30
    info = KINDS.lookup("storage.foot.dev/v1alpha1", "StorageClaim")
    assert (info.owner, info.bucket, info.namespaced) == ("storage", STORAGE_CLAIMS.name, True)
    assert KINDS.resolve("storageclaims") is info


def test_unknown_type_zero_size_and_unknown_failure_domain_name_their_fields() -> None:
    found = problems(
        claim(type="tape", size="0", placement={"failureDomain": "datacenter", "replicas": 0})
    )
    assert set(found) == {
        "spec.type",
        "spec.size",
        "spec.placement.failureDomain",
        "spec.placement.replicas",
    }
    assert "block" in found["spec.type"]
    assert "greater than zero" in found["spec.size"]
    assert "'osd', 'host', 'rack' or 'zone'" in found["spec.placement.failureDomain"]


@pytest.mark.parametrize(
    ("spec", "path", "reason"),
    [
        ({"size": "-1Gi"}, "spec.size", "greater than zero"),
        ({"size": "1.5"}, "spec.size", "whole number of bytes"),
        ({"size": "lots"}, "spec.size", "not a quantity"),
        ({"reclaimPolicy": "Recycle"}, "spec.reclaimPolicy", "'Retain' or 'Delete'"),
        ({"placement": {"deviceClass": "Fast SSD"}}, "spec.placement.deviceClass", "class"),
        ({"access": {}}, "spec.access", "exactly one"),
        (
            {
                "access": {
                    "clusters": ["a"],
                    "placedWith": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"},
                }
            },
            "spec.access",
            "clusters, placedWith",
        ),
        ({"access": {"clusters": ["a", "a"]}}, "spec.access", "twice"),
        ({"access": {"clusters": ["Not_A_Cluster"]}}, "spec.access.clusters.0", "subdomain"),
        ({"quota": {"maxObjects": 0}}, "spec.quota.maxObjects", "greater than or equal to 1"),
        ({"colour": "blue"}, "spec.colour", "unknown field"),
    ],
)
def test_each_invalid_field_is_named(spec: dict[str, Any], path: str, reason: str) -> None:
    found = problems(claim(**spec))
    assert path in found, found
    assert reason in found[path]


def test_a_missing_spec_part_is_named() -> None:
    document = claim()
    del document["spec"]["access"]
    del document["spec"]["type"]
    assert set(problems(document)) == {"spec.access", "spec.type"}

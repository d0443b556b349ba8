"""Storage service x dispatcher: the documents storage delivers for a claim, rendered per
member by the dispatcher's override code, give each member a StorageClass that names that
member's own Secret (cross-service, so not under unit/)."""

from __future__ import annotations

from foot.kinds import KINDS
from foot_dispatcher.core.render import override_manifest
from storage_support import delivered_block_claim


def test_each_members_storage_class_names_its_own_secret_after_the_override() -> None:
    _, documents = delivered_block_claim()
    parsed = [KINDS.parse(d) for d in documents]
    (storage_class,) = [d for d in documents if d["kind"] == "StorageClass"]
    assert storage_class["metadata"]["name"] == "foot-shop-db"
    override = next(p for p in parsed if p.kind == "ClusterOverridePolicy")
    for cluster in ("east", "west"):
        rendered, _ = override_manifest(storage_class, [override], cluster, None)  # type: ignore[list-item]
        parameters = rendered["parameters"]
        for role in ("provisioner", "controller-expand", "node-stage"):
            assert parameters[f"csi.storage.k8s.io/{role}-secret-name"] == f"db-ceph-{cluster}"
            assert parameters[f"csi.storage.k8s.io/{role}-secret-namespace"] == "shop"

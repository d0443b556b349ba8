"""What a claim delivers to member clusters, as ordinary FOOT API documents.

The storage service is one of the "other systems": it submits templates and
policies through FOOT's front door like anyone else.

* block / filesystem: a Secret `<claim>-ceph` (ceph-csi's `userID`/`userKey`) in
  the claim's namespace, and a ceph-csi StorageClass `foot-<namespace>-<claim>`;
* object: a Secret `<claim>-s3` with endpoint, bucket, access and secret key.

Each cluster has a key of its own, so the Secret template carries empty values
and one OverridePolicy rule per cluster puts that cluster's key in; a
ClusterPropagationPolicy sends the Secret (and StorageClass) to exactly the
clusters that have a key.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foot_storage.core.machine import ProvisioningRecord

CLAIM_LABEL = "storage.foot.dev/claim"
POLICY_API_VERSION = "policy.foot.dev/v1alpha1"
RBD_PROVISIONER = "rbd.csi.ceph.com"
CEPHFS_PROVISIONER = "cephfs.csi.ceph.com"


@dataclass(frozen=True, slots=True)
class ClusterKey:
    """One member cluster's credentials, in plain text (only ever in memory)."""

    user: str
    """cephx id without `client.` (block/filesystem) or S3 access key (object)."""
    secret: str
    """cephx key or S3 secret key."""

    def __repr__(self) -> str:
        return f"ClusterKey(user={self.user!r}, secret=<hidden>)"


@dataclass(frozen=True, slots=True)
class CephFacts:
    """What the delivered objects say about the Ceph cluster."""

    cluster_id: str
    """Ceph fsid (ceph-csi's clusterID)."""
    rgw_endpoint: str | None = None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_name(record: ProvisioningRecord) -> str:
    suffix = "s3" if record.spec.type == "object" else "ceph"
    return f"{record.name}-{suffix}"


def storage_class_name(record: ProvisioningRecord) -> str | None:
    if record.spec.type == "object":
        return None
    return f"foot-{record.namespace}-{record.name}"


def policy_name(record: ProvisioningRecord) -> str:
    return f"foot-storage-{record.namespace}-{record.name}"


def _labels(record: ProvisioningRecord) -> dict[str, str]:
    return {CLAIM_LABEL: record.name, "app.kubernetes.io/managed-by": "foot-storage"}


def _secret(record: ProvisioningRecord, facts: CephFacts) -> dict[str, Any]:
    if record.spec.type == "object":
        data = {
            "endpoint": _b64(facts.rgw_endpoint or ""),
            "bucket": _b64(record.names.bucket),
            "accessKey": "",
            "secretKey": "",
        }
    else:
        data = {"userID": "", "userKey": ""}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(record),
            "namespace": record.namespace,
            "labels": _labels(record),
        },
        "type": "Opaque",
        "data": data,
    }


def _storage_class(record: ProvisioningRecord, facts: CephFacts) -> dict[str, Any] | None:
    name = storage_class_name(record)
    if name is None:
        return None
    secret = secret_name(record)
    parameters: dict[str, str] = {"clusterID": facts.cluster_id}
    for role in ("provisioner", "controller-expand", "node-stage"):
        parameters[f"csi.storage.k8s.io/{role}-secret-name"] = secret
        parameters[f"csi.storage.k8s.io/{role}-secret-namespace"] = record.namespace
    if record.spec.type == "block":
        provisioner = RBD_PROVISIONER
        parameters |= {"pool": record.names.pool, "imageFeatures": "layering"}
    else:
        provisioner = CEPHFS_PROVISIONER
        parameters |= {"fsName": record.fs_name, "subvolumeGroup": record.subvolume_group}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": _labels(record)},
        "provisioner": provisioner,
        "parameters": parameters,
        "reclaimPolicy": record.spec.reclaim_policy,
        "allowVolumeExpansion": True,
    }


def _override_policy(record: ProvisioningRecord, keys: Mapping[str, ClusterKey]) -> dict[str, Any]:
    fields = ("accessKey", "secretKey") if record.spec.type == "object" else ("userID", "userKey")
    rules = [
        {
            "targetCluster": {"clusterNames": [cluster]},
            "overriders": {
                "plaintext": [
                    {"path": f"/data/{fields[0]}", "operator": "replace", "value": _b64(key.user)},
                    {
                        "path": f"/data/{fields[1]}",
                        "operator": "replace",
                        "value": _b64(key.secret),
                    },
                ]
            },
        }
        for cluster, key in sorted(keys.items())
    ]
    return {
        "apiVersion": POLICY_API_VERSION,
        "kind": "OverridePolicy",
        "metadata": {
            "name": policy_name(record),
            "namespace": record.namespace,
            "labels": _labels(record),
        },
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "v1", "kind": "Secret", "name": secret_name(record)}
            ],
            "overrideRules": rules,
        },
    }


def _propagation_policy(record: ProvisioningRecord, clusters: tuple[str, ...]) -> dict[str, Any]:
    selectors: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "namespace": record.namespace,
            "name": secret_name(record),
        }
    ]
    storage_class = storage_class_name(record)
    if storage_class is not None:
        selectors.append(
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "name": storage_class}
        )
    return {
        "apiVersion": POLICY_API_VERSION,
        "kind": "ClusterPropagationPolicy",
        "metadata": {"name": policy_name(record), "labels": _labels(record)},
        "spec": {
            "resourceSelectors": selectors,
            "placement": {
                "clusterAffinity": {"clusterNames": list(clusters)},
                "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
            },
        },
    }


def delivery_documents(
    record: ProvisioningRecord,
    clusters: tuple[str, ...],
    keys: Mapping[str, ClusterKey],
    facts: CephFacts,
) -> list[dict[str, Any]]:
    """Templates first, then the policies that place and override them.

    Only clusters that have a key are targeted (a key not yet made means no
    delivery to that cluster yet)."""
    missing = [c for c in clusters if c not in keys]
    if missing:
        raise ValueError(f"no key yet for cluster(s) {', '.join(missing)}")
    documents = [_secret(record, facts)]
    storage_class = _storage_class(record, facts)
    if storage_class is not None:
        documents.append(storage_class)
    documents += [
        _override_policy(record, {c: keys[c] for c in clusters}),
        _propagation_policy(record, clusters),
    ]
    return documents


def withdrawal_documents(record: ProvisioningRecord) -> list[dict[str, Any]]:
    """What to delete to withdraw a delivery: the placing policy first, then the rest."""
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": POLICY_API_VERSION,
            "kind": "ClusterPropagationPolicy",
            "metadata": {"name": policy_name(record)},
        },
        {
            "apiVersion": POLICY_API_VERSION,
            "kind": "OverridePolicy",
            "metadata": {"name": policy_name(record), "namespace": record.namespace},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name(record), "namespace": record.namespace},
        },
    ]
    storage_class = storage_class_name(record)
    if storage_class is not None:
        documents.append(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": storage_class},
            }
        )
    return documents


def references(record: ProvisioningRecord, manifests: list[Mapping[str, Any]]) -> bool:
    """Whether a member cluster's manifests still include what the claim delivered."""
    wanted: set[tuple[str, str | None, str]] = {("Secret", record.namespace, secret_name(record))}
    storage_class = storage_class_name(record)
    if storage_class is not None:
        wanted.add(("StorageClass", None, storage_class))
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        found = (manifest.get("kind"), metadata.get("namespace"), metadata.get("name"))
        if found in wanted:
            return True
    return False

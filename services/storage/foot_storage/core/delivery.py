"""What a claim delivers to member clusters, as ordinary FOOT API documents.

The storage service is one of the "other systems": it submits templates and
policies through FOOT's front door like anyone else.

Each member cluster has a key of its own, and a key only ever travels in a
Secret template of its own (templates holding Secrets are stored sealed),
placed on its one cluster by a PropagationPolicy of its own. No key is ever
written into a policy (policies are not sealed).

* block / filesystem: per cluster, a Secret `<claim>-ceph-<cluster>` (ceph-csi's
  `userID`/`userKey`) in the claim's namespace; one ceph-csi StorageClass
  `foot-<namespace>-<claim>` (the one name users' PVCs reference) on every target
  cluster, and a ClusterOverridePolicy that points each cluster's copy at that
  cluster's Secret (names only, never a key);
* object: per cluster, a Secret `<claim>-s3-<cluster>` with endpoint, bucket,
  access and secret key.

Policies are submitted before the templates they select (so a template is never
claimed by a broader policy in between, and the StorageClass never lands without
its override), and they pre-empt less specific policies.
A cluster that loses access loses its Secret template and policy (then its key).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from foot_storage.core.machine import ProvisioningRecord

CLAIM_LABEL = "storage.foot.dev/claim"
CLUSTER_LABEL = "storage.foot.dev/cluster"
POLICY_API_VERSION = "policy.foot.dev/v1alpha1"
RBD_PROVISIONER = "rbd.csi.ceph.com"
CEPHFS_PROVISIONER = "cephfs.csi.ceph.com"
SECRET_ROLES = ("provisioner", "controller-expand", "node-stage")
"""ceph-csi StorageClass parameters naming the Secret: csi.storage.k8s.io/<role>-secret-name."""


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


def secret_name(record: ProvisioningRecord, cluster: str) -> str:
    """The Secret holding `cluster`'s key, in the claim's namespace of that cluster."""
    suffix = "s3" if record.spec.type == "object" else "ceph"
    return f"{record.name}-{suffix}-{cluster}"


def secret_names(record: ProvisioningRecord, clusters: Iterable[str]) -> dict[str, str]:
    return {cluster: secret_name(record, cluster) for cluster in sorted(clusters)}


def storage_class_name(record: ProvisioningRecord) -> str | None:
    if record.spec.type == "object":
        return None
    return f"foot-{record.namespace}-{record.name}"


def policy_name(record: ProvisioningRecord) -> str:
    """The cluster-wide policies of the claim (the StorageClass's placement and override)."""
    return f"foot-storage-{record.namespace}-{record.name}"


def secret_policy_name(record: ProvisioningRecord, cluster: str) -> str:
    """The PropagationPolicy placing `cluster`'s Secret (in the claim's namespace)."""
    return f"foot-storage-{secret_name(record, cluster)}"


def _labels(record: ProvisioningRecord, cluster: str | None = None) -> dict[str, str]:
    labels = {CLAIM_LABEL: record.name, "app.kubernetes.io/managed-by": "foot-storage"}
    if cluster is not None:
        labels[CLUSTER_LABEL] = cluster
    return labels


def _secret(
    record: ProvisioningRecord, cluster: str, key: ClusterKey, facts: CephFacts
) -> dict[str, Any]:
    if record.spec.type == "object":
        data = {
            "endpoint": _b64(facts.rgw_endpoint or ""),
            "bucket": _b64(record.names.bucket),
            "accessKey": _b64(key.user),
            "secretKey": _b64(key.secret),
        }
    else:
        data = {"userID": _b64(key.user), "userKey": _b64(key.secret)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(record, cluster),
            "namespace": record.namespace,
            "labels": _labels(record, cluster),
        },
        "type": "Opaque",
        "data": data,
    }


def _secret_policy(record: ProvisioningRecord, cluster: str) -> dict[str, Any]:
    return {
        "apiVersion": POLICY_API_VERSION,
        "kind": "PropagationPolicy",
        "metadata": {
            "name": secret_policy_name(record, cluster),
            "namespace": record.namespace,
            "labels": _labels(record, cluster),
        },
        "spec": {
            "resourceSelectors": [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "namespace": record.namespace,
                    "name": secret_name(record, cluster),
                }
            ],
            "preemption": "Always",
            "placement": {
                "clusterAffinity": {"clusterNames": [cluster]},
                "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
            },
        },
    }


def _secret_parameter(role: str) -> str:
    return f"csi.storage.k8s.io/{role}-secret-name"


def _pointer(parameter: str) -> str:
    """JSON pointer to a StorageClass parameter (RFC 6901: '/' in a key is '~1')."""
    return "/parameters/" + parameter.replace("~", "~0").replace("/", "~1")


def _storage_class(record: ProvisioningRecord, facts: CephFacts) -> dict[str, Any] | None:
    name = storage_class_name(record)
    if name is None:
        return None
    parameters: dict[str, str] = {"clusterID": facts.cluster_id}
    for role in SECRET_ROLES:
        # Each cluster's copy names that cluster's Secret (the ClusterOverridePolicy); the
        # template's own value names no Secret that exists, so a copy that missed its
        # override fails clearly instead of using another cluster's key.
        parameters[_secret_parameter(role)] = f"{record.name}-unassigned"
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


def _storage_class_override(
    record: ProvisioningRecord, clusters: tuple[str, ...], storage_class: str
) -> dict[str, Any]:
    """Per cluster: the StorageClass names that cluster's Secret (a name, never a key)."""
    rules = [
        {
            "targetCluster": {"clusterNames": [cluster]},
            "overriders": {
                "plaintext": [
                    {
                        "path": _pointer(_secret_parameter(role)),
                        "operator": "replace",
                        "value": secret_name(record, cluster),
                    }
                    for role in SECRET_ROLES
                ]
            },
        }
        for cluster in clusters
    ]
    return _storage_class_policy_document(
        "ClusterOverridePolicy", record, storage_class, {"overrideRules": rules}
    )


def _storage_class_policy(
    record: ProvisioningRecord, clusters: tuple[str, ...], storage_class: str
) -> dict[str, Any]:
    return _storage_class_policy_document(
        "ClusterPropagationPolicy",
        record,
        storage_class,
        {
            "preemption": "Always",
            "placement": {
                "clusterAffinity": {"clusterNames": list(clusters)},
                "replicaScheduling": {"replicaSchedulingType": "Duplicated"},
            },
        },
    )


def _storage_class_policy_document(
    kind: str, record: ProvisioningRecord, storage_class: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """A policy of `kind` named after the record that selects its StorageClass; `spec`
    follows the selector."""
    return {
        "apiVersion": POLICY_API_VERSION,
        "kind": kind,
        "metadata": {"name": policy_name(record), "labels": _labels(record)},
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "name": storage_class}
            ],
            **spec,
        },
    }


def delivery_documents(
    record: ProvisioningRecord,
    clusters: tuple[str, ...],
    keys: Mapping[str, ClusterKey],
    facts: CephFacts,
) -> list[dict[str, Any]]:
    """Policies first, then the templates they place.

    Only clusters that have a key are targeted (a key not yet made means no
    delivery to that cluster yet)."""
    missing = [c for c in clusters if c not in keys]
    if missing:
        raise ValueError(f"no key yet for cluster(s) {', '.join(missing)}")
    clusters = tuple(sorted(clusters))
    documents = [_secret_policy(record, c) for c in clusters]
    storage_class = _storage_class(record, facts)
    if storage_class is not None:
        name = storage_class["metadata"]["name"]
        documents += [
            _storage_class_override(record, clusters, name),
            _storage_class_policy(record, clusters, name),
        ]
    documents += [_secret(record, c, keys[c], facts) for c in clusters]
    if storage_class is not None:
        documents.append(storage_class)
    return documents


def _secret_withdrawal(record: ProvisioningRecord, cluster: str) -> list[dict[str, Any]]:
    """A cluster's Secret template (its binding, work and member copy go with it), then the
    policy that placed it."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret_name(record, cluster), "namespace": record.namespace},
        },
        {
            "apiVersion": POLICY_API_VERSION,
            "kind": "PropagationPolicy",
            "metadata": {
                "name": secret_policy_name(record, cluster),
                "namespace": record.namespace,
            },
        },
    ]


def held_clusters(record: ProvisioningRecord) -> tuple[str, ...]:
    """Clusters that may hold something of the claim: those with a key, or delivered last."""
    return tuple(sorted(set(record.keys) | set(record.delivered or ())))


def stale_documents(record: ProvisioningRecord, clusters: tuple[str, ...]) -> list[dict[str, Any]]:
    """What to delete when delivering to `clusters`: the Secrets (and their policies) of
    clusters that had access and no longer do."""
    documents: list[dict[str, Any]] = []
    for cluster in held_clusters(record):
        if cluster not in clusters:
            documents += _secret_withdrawal(record, cluster)
    return documents


def withdrawal_documents(record: ProvisioningRecord) -> list[dict[str, Any]]:
    """What to delete to withdraw a whole delivery."""
    documents: list[dict[str, Any]] = []
    for cluster in held_clusters(record):
        documents += _secret_withdrawal(record, cluster)
    storage_class = storage_class_name(record)
    if storage_class is not None:
        documents += [
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": storage_class},
            },
            {
                "apiVersion": POLICY_API_VERSION,
                "kind": "ClusterPropagationPolicy",
                "metadata": {"name": policy_name(record)},
            },
            {
                "apiVersion": POLICY_API_VERSION,
                "kind": "ClusterOverridePolicy",
                "metadata": {"name": policy_name(record)},
            },
        ]
    return documents


def references(record: ProvisioningRecord, manifests: list[Mapping[str, Any]]) -> bool:
    """Whether a member cluster's manifests still include what the claim delivered."""
    wanted: set[tuple[str, str | None, str]] = {
        ("Secret", record.namespace, name)
        for name in secret_names(record, held_clusters(record)).values()
    }
    storage_class = storage_class_name(record)
    if storage_class is not None:
        wanted.add(("StorageClass", None, storage_class))
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        found = (manifest.get("kind"), metadata.get("namespace"), metadata.get("name"))
        if found in wanted:
            return True
    return False

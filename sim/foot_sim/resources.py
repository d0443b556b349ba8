"""The resource types the simulator serves, with what discovery and the store need to know.

Each entry mirrors what a real kube-apiserver advertises for that resource:
group/version, plural and kind, scope, short names, whether it has a `status`
(and `scale`) subresource, and which name validation rule applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class NameRule(Enum):
    """Which Kubernetes name validation a resource applies to metadata.name."""

    DNS1123_SUBDOMAIN = "subdomain"
    DNS1123_LABEL = "label"
    DNS1035_LABEL = "dns1035"
    PATH_SEGMENT = "path-segment"


ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    has_scale: bool = False
    # Workload kinds count spec changes in metadata.generation; the others leave it unset.
    tracks_generation: bool = False
    name_rule: NameRule = NameRule.DNS1123_SUBDOMAIN

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`configmaps` or `deployments.apps`, as the real server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        has_status=True,
        name_rule=NameRule.DNS1123_LABEL,
    ),
    ResourceType(
        "", "v1", "nodes", "node", "Node", namespaced=False, short_names=("no",), has_status=True
    ),
    ResourceType(
        "", "v1", "configmaps", "configmap", "ConfigMap", namespaced=True, short_names=("cm",)
    ),
    ResourceType("", "v1", "secrets", "secret", "Secret", namespaced=True),
    ResourceType(
        "",
        "v1",
        "services",
        "service",
        "Service",
        namespaced=True,
        short_names=("svc",),
        categories=("all",),
        has_status=True,
        name_rule=NameRule.DNS1035_LABEL,
    ),
    ResourceType(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        namespaced=True,
        short_names=("sa",),
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        namespaced=True,
        short_names=("pvc",),
        has_status=True,
    ),
    ResourceType(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        namespaced=False,
        short_names=("sc",),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        namespaced=True,
        short_names=("deploy",),
        categories=("all",),
        has_status=True,
        has_scale=True,
        tracks_generation=True,
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        namespaced=True,
        short_names=("sts",),
        categories=("all",),
        has_status=True,
        has_scale=True,
        tracks_generation=True,
    ),
    ResourceType(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        namespaced=True,
        short_names=("ds",),
        categories=("all",),
        has_status=True,
        tracks_generation=True,
    ),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        namespaced=True,
        categories=("all",),
        has_status=True,
        tracks_generation=True,
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        namespaced=False,
        name_rule=NameRule.PATH_SEGMENT,
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        namespaced=False,
        name_rule=NameRule.PATH_SEGMENT,
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        namespaced=True,
        name_rule=NameRule.PATH_SEGMENT,
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        namespaced=True,
        name_rule=NameRule.PATH_SEGMENT,
    ),
)

RESOURCES_BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCE_TYPES
}

NAMESPACES = RESOURCES_BY_PATH[("", "v1", "namespaces")]
NODES = RESOURCES_BY_PATH[("", "v1", "nodes")]


def group_versions() -> dict[str, list[str]]:
    """Every served group with its versions, core group under ''."""
    served: dict[str, list[str]] = {}
    for resource in RESOURCE_TYPES:
        versions = served.setdefault(resource.group, [])
        if resource.version not in versions:
            versions.append(resource.version)
    return served

"""Resource templates: ordinary Kubernetes objects submitted to FOOT for placement.

The scheduler owns them. A template keeps every field the user wrote (they
are applied to member clusters as they are), so models allow unknown fields;
the fields FOOT itself relies on (names, replicas, selectors, pod templates,
ports, data maps) are modelled. Every template is also checked against the
Kubernetes schemas of the pinned release (`foot.kinds.kube_schema`): a template
Kubernetes would refuse is refused at the door instead of failing later in every
member cluster, and a kind Kubernetes does not serve is refused unless a stored
CustomResourceDefinition registers it (`foot.kinds.custom`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from foot.catalog import TEMPLATES
from foot.errors import FieldProblem
from foot.kinds import KindInfo
from foot.kinds.kube_schema import KUBERNETES_RELEASE, kubernetes_problems, kubernetes_validator
from foot.objects import DNS1123_SUBDOMAIN, FrozenModel, KubeObject


class OpenModel(FrozenModel):
    """Frozen, camelCase, but keeps Kubernetes fields FOOT does not model."""

    model_config = ConfigDict(extra="allow")


class TemplateObject(KubeObject):
    model_config = ConfigDict(extra="allow")

    status: dict[str, Any] | None = None
    """Whatever status the submitter sent; FOOT never writes it (the template is the
    scheduler's object). Status aggregated from members lives in the dispatcher's
    `aggregated-status` bucket; `foot get ... -o yaml` shows it here."""


class LabelSelector(OpenModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    """Labels that must all be present with these values."""
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)
    """Set-based requirements (key, operator, values)."""


class Container(OpenModel):
    name: str
    """Container name, unique within the pod."""
    image: str = Field(min_length=1)
    """Image reference, `registry/repository:tag`."""


class PodSpec(OpenModel):
    containers: list[Container] = Field(min_length=1)
    """At least one container."""

    @field_validator("containers")
    @classmethod
    def _unique_names(cls, containers: list[Container]) -> list[Container]:
        names = [c.name for c in containers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"container names must be unique, repeated: {', '.join(duplicated)}")
        return containers


class PodTemplate(OpenModel):
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Labels and annotations of the pods."""
    spec: PodSpec


NonNegative = Annotated[int, Field(ge=0)]


class WorkloadSpec(OpenModel):
    replicas: NonNegative | None = None
    """Desired replicas across all clusters (divided or duplicated by the policy)."""
    selector: LabelSelector
    template: PodTemplate


class Deployment(TemplateObject):
    kind: Literal["Deployment"]
    spec: WorkloadSpec


class StatefulSetSpec(WorkloadSpec):
    service_name: str | None = None
    """Governing headless Service."""


class StatefulSet(TemplateObject):
    kind: Literal["StatefulSet"]
    spec: StatefulSetSpec


class DaemonSetSpec(OpenModel):
    selector: LabelSelector
    template: PodTemplate


class DaemonSet(TemplateObject):
    kind: Literal["DaemonSet"]
    spec: DaemonSetSpec


class JobSpec(OpenModel):
    template: PodTemplate
    parallelism: NonNegative | None = None
    """Pods running at once."""
    completions: NonNegative | None = None
    """Successful pods needed."""


class Job(TemplateObject):
    kind: Literal["Job"]
    spec: JobSpec


class ServicePort(OpenModel):
    port: int = Field(ge=1, le=65535)
    """Port the Service exposes."""
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    """Transport protocol."""
    node_port: int | None = Field(default=None, ge=1, le=65535)
    """Node port for NodePort/LoadBalancer Services."""


class ServiceSpec(OpenModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"] = "ClusterIP"
    """How the Service is exposed."""
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)


class Service(TemplateObject):
    kind: Literal["Service"]
    spec: ServiceSpec


def _all_base64(data: dict[str, str]) -> dict[str, str]:
    for key, value in data.items():
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(f"value of key {key!r} is not valid base64") from None
    return data


class ConfigMap(TemplateObject):
    kind: Literal["ConfigMap"]
    data: dict[str, str] = Field(default_factory=dict)
    """Text values; every value must be a string."""
    binary_data: Annotated[dict[str, str], AfterValidator(_all_base64)] = Field(
        default_factory=dict
    )
    """Binary values, base64-encoded."""


class Secret(TemplateObject):
    kind: Literal["Secret"]
    type: str = "Opaque"
    """Secret type."""
    data: Annotated[dict[str, str], AfterValidator(_all_base64)] = Field(default_factory=dict)
    """Values, base64-encoded."""
    string_data: dict[str, str] = Field(default_factory=dict)
    """Values in plain text (merged into data by the member cluster)."""


class ServiceAccount(TemplateObject):
    kind: Literal["ServiceAccount"]


class PersistentVolumeClaimSpec(OpenModel):
    access_modes: list[
        Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
    ] = Field(min_length=1)
    """How the volume may be mounted."""
    resources: dict[str, Any]
    """Requests (`storage`) and limits."""


class PersistentVolumeClaim(TemplateObject):
    kind: Literal["PersistentVolumeClaim"]
    spec: PersistentVolumeClaimSpec


class Namespace(TemplateObject):
    kind: Literal["Namespace"]
    namespaced: ClassVar[bool] = False


_TEMPLATES: tuple[tuple[str, type[TemplateObject], str, tuple[str, ...]], ...] = (
    ("apps/v1", Deployment, "deployments", ("deploy",)),
    ("apps/v1", StatefulSet, "statefulsets", ("sts",)),
    ("apps/v1", DaemonSet, "daemonsets", ("ds",)),
    ("batch/v1", Job, "jobs", ()),
    ("v1", Service, "services", ("svc",)),
    ("v1", ConfigMap, "configmaps", ("cm",)),
    ("v1", Secret, "secrets", ()),
    ("v1", ServiceAccount, "serviceaccounts", ("sa",)),
    ("v1", PersistentVolumeClaim, "persistentvolumeclaims", ("pvc",)),
    ("v1", Namespace, "namespaces", ("ns",)),
)


_FOOT_METADATA = frozenset({"revision", "traceparent"})
"""FOOT's own metadata fields (where it stored the object), which Kubernetes has not."""


class KubernetesCheck:
    """The Kubernetes API server's checks of one kind; the schema is loaded on first use."""

    def __init__(self, api_version: str, kind: str) -> None:
        self.api_version = api_version
        self.kind = kind

    def __call__(self, document: Mapping[str, Any]) -> list[FieldProblem]:
        validator = kubernetes_validator(self.api_version, self.kind)
        if validator is None:
            return [_not_served(self.api_version, self.kind)]
        metadata = document.get("metadata")
        if isinstance(metadata, Mapping) and _FOOT_METADATA & metadata.keys():
            stripped = {k: v for k, v in metadata.items() if k not in _FOOT_METADATA}
            document = {**document, "metadata": stripped}
        return kubernetes_problems(validator, document)


def _not_served(api_version: str, kind: str) -> FieldProblem:
    return FieldProblem(
        "kind",
        f"{kind} {api_version} is not served by Kubernetes {KUBERNETES_RELEASE} and no "
        "CustomResourceDefinition applied to FOOT registers it (apply the CRD first, "
        "then its resources)",
    )


def refuse_unregistered(document: Mapping[str, Any]) -> list[FieldProblem]:
    return [_not_served(str(document.get("apiVersion")), str(document.get("kind")))]


def template_kinds() -> list[KindInfo]:
    infos = []
    for api_version, model, plural, short_names in _TEMPLATES:
        kind = model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]
        infos.append(
            KindInfo(
                api_version=api_version,
                kind=kind,
                model=model,
                owner=TEMPLATES.owner,
                bucket=TEMPLATES.name,
                plural=plural,
                namespaced=model.namespaced,
                short_names=short_names,
                sensitive=model is Secret,
                check=KubernetesCheck(api_version, kind),
            )
        )
    return infos


# --- custom resources and other kinds FOOT does not model ----------------------------------

_RESERVED_GROUP_SUFFIXES = (".foot.dev", ".karmada.io")
"""FOOT's and Karmada's own API groups: an unknown kind there is a mistake, not a template."""
_VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "storage.k8s.io",
     "rbac.authorization.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io", "node.k8s.io",
     "admissionregistration.k8s.io", "apiregistration.k8s.io", "coordination.k8s.io",
     "discovery.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io"}
)  # fmt: skip
_CLUSTER_SCOPED_KINDS = frozenset(
    {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
     "PersistentVolume", "PriorityClass", "IngressClass", "RuntimeClass", "CSIDriver",
     "VolumeSnapshotClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
     "APIService", "Node", "PriorityLevelConfiguration", "FlowSchema"}
)  # fmt: skip
"""Kubernetes' cluster-scoped kinds; any other kind whose name starts with `Cluster` (the
convention of ClusterIssuer, ClusterSecretStore, ...) is taken as cluster-scoped too."""


class GenericTemplate(TemplateObject):
    """Any other Kubernetes object (a kind FOOT does not model, a custom resource): kept whole,
    placed by policy like every template; checked against the Kubernetes schema of its kind
    or the schema of the CustomResourceDefinition that registers it."""


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in set("aeiou"):
        return lower[:-1] + "ies"
    return lower + "s"


@functools.lru_cache(maxsize=1024)
def generic_template_kind(api_version: str, kind: str) -> KindInfo | None:
    """How FOOT handles an (apiVersion, kind) no model is registered for: as a resource template
    owned by the scheduler, when the apiVersion and kind are well formed and the group is not
    FOOT's or Karmada's own. Namespaced unless the kind is one of Kubernetes' cluster-scoped
    kinds or its name starts with `Cluster`."""
    group, _, version = api_version.rpartition("/")
    if not _VERSION.match(version) or not _KIND.match(kind):
        return None
    if group and (not DNS1123_SUBDOMAIN.match(group) or group.endswith(_RESERVED_GROUP_SUFFIXES)):
        return None
    cluster_scoped = kind in _CLUSTER_SCOPED_KINDS or (
        kind.startswith("Cluster") and group not in _BUILTIN_GROUPS
    )
    served = kubernetes_validator(api_version, kind) is not None
    return KindInfo(
        api_version=api_version,
        kind=kind,
        model=GenericTemplate if not cluster_scoped else ClusterScopedGenericTemplate,
        owner=TEMPLATES.owner,
        bucket=TEMPLATES.name,
        plural=_plural(kind),
        namespaced=not cluster_scoped,
        check=KubernetesCheck(api_version, kind) if served else refuse_unregistered,
    )


class ClusterScopedGenericTemplate(GenericTemplate):
    namespaced: ClassVar[bool] = False

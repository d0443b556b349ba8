"""Placement and override policies: Karmada's policy API, in FOOT's group and in Karmada's.

PropagationPolicy / ClusterPropagationPolicy say which resource templates go
to which clusters and how replicas are divided; OverridePolicy /
ClusterOverridePolicy say how a template is changed per cluster. The same
models accept `policy.foot.dev/v1alpha1` and, unchanged, Karmada's
`policy.karmada.io/v1alpha1`, so a Karmada user brings their YAML as it is.

Validation follows Karmada's admission webhook (pkg/util/validation) and CRD
schema, and reports every problem with its field path
(`spec.placement.spreadConstraints.0.maxGroups`). Selector matching lives here
too, because both the scheduler (placement) and the dispatcher (override
targets) need the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from foot.catalog import POLICIES
from foot.kinds import KindInfo
from foot.kinds.clusters import TAINT_NOT_READY, TAINT_UNREACHABLE
from foot.objects import DNS1123_SUBDOMAIN, FrozenModel, KubeObject

POLICY_GROUP = "policy.foot.dev"
KARMADA_POLICY_GROUP = "policy.karmada.io"
POLICY_API_VERSION = f"{POLICY_GROUP}/v1alpha1"
KARMADA_POLICY_API_VERSION = f"{KARMADA_POLICY_GROUP}/v1alpha1"
POLICY_API_VERSIONS = (POLICY_API_VERSION, KARMADA_POLICY_API_VERSION)

PolicyAPIVersion = Literal["policy.foot.dev/v1alpha1", "policy.karmada.io/v1alpha1"]

DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_FAILOVER_TOLERATION_SECONDS = 300
DEFAULT_GRACE_PERIOD_SECONDS = 600
INT32_MAX = 2**31 - 1

_QUALIFIED_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUALIFIED_NAME_MAX = 63

KARMADA_TAINT_NOT_READY = "cluster.karmada.io/not-ready"
KARMADA_TAINT_UNREACHABLE = "cluster.karmada.io/unreachable"
TAINT_KEY_ALIASES = {
    KARMADA_TAINT_NOT_READY: TAINT_NOT_READY,
    KARMADA_TAINT_UNREACHABLE: TAINT_UNREACHABLE,
}
"""Karmada's system taint keys, which Karmada users write in tolerations, and FOOT's keys the
registry puts on clusters: a toleration of the Karmada key tolerates FOOT's taint."""


def check_qualified_name(value: str) -> str:
    """A label key / affinity name: `[prefix/]name`, as Kubernetes checks it."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):  # noqa: PLR2004
        raise ValueError(f"{value!r}: the prefix before '/' must be a DNS subdomain")
    if not name or len(name) > _QUALIFIED_NAME_MAX or not _QUALIFIED_NAME_PART.match(name):
        raise ValueError(
            f"{value!r} is not a qualified name (alphanumerics, '-', '_' or '.', starting and "
            f"ending alphanumeric, at most {_QUALIFIED_NAME_MAX} characters, optional DNS prefix)"
        )
    return value


def check_label_value(value: str) -> str:
    if value and (len(value) > _QUALIFIED_NAME_MAX or not _QUALIFIED_NAME_PART.match(value)):
        raise ValueError(
            f"{value!r} is not a valid label value (alphanumerics, '-', '_' or '.', starting and "
            f"ending alphanumeric, at most {_QUALIFIED_NAME_MAX} characters)"
        )
    return value


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_qualified_name(key)
        check_label_value(value)
    return labels


def check_json_pointer(value: str) -> str:
    """RFC 6901: empty (the whole document) or '/'-separated tokens with ~0/~1 escapes."""
    if value and not value.startswith("/"):
        raise ValueError(f"{value!r} is not a JSON pointer: it must be empty or start with '/'")
    if re.search(r"~(?![01])", value):
        raise ValueError(f"{value!r} is not a JSON pointer: '~' must be followed by 0 or 1")
    return value


QualifiedName = Annotated[str, AfterValidator(check_qualified_name)]
Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
JsonPointer = Annotated[str, AfterValidator(check_json_pointer)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT32_MAX)]


# --- selectors ---------------------------------------------------------------------------


class LabelSelectorRequirement(FrozenModel):
    key: QualifiedName
    """Label key the requirement applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the label's value relates to `values`."""
    values: list[str] = Field(default_factory=list, validate_default=True)
    """Non-empty for In/NotIn; must be empty for Exists/DoesNotExist."""

    @field_validator("values")
    @classmethod
    def _values_fit_operator(cls, values: list[str], info: ValidationInfo) -> list[str]:
        operator = info.data.get("operator")
        if operator in {"In", "NotIn"} and not values:
            raise ValueError(f"must list at least one value for operator {operator}")
        if operator in {"Exists", "DoesNotExist"} and values:
            raise ValueError(f"must be empty for operator {operator}")
        for value in values:
            check_label_value(value)
        return values

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


class LabelSelector(FrozenModel):
    """Kubernetes' label selector; every requirement must hold (an empty selector matches all)."""

    match_labels: Labels = Field(default_factory=dict)
    """Labels that must be present with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)
    """Set-based requirements."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


ClusterField = Literal["provider", "region", "zone"]


class FieldSelectorRequirement(FrozenModel):
    key: ClusterField
    """Cluster field: provider, region or zone."""
    operator: Literal["In", "NotIn"]
    """Karmada accepts only In and NotIn for cluster fields."""
    values: list[str] = Field(min_length=1)
    """Field values compared against."""

    def matches(self, fields: Mapping[str, tuple[str, ...]]) -> bool:
        present = fields.get(self.key, ())
        hit = any(value in self.values for value in present)
        return hit if self.operator == "In" else not hit


class FieldSelector(FrozenModel):
    match_expressions: list[FieldSelectorRequirement] = Field(default_factory=list)
    """Every requirement must hold."""

    def matches(self, fields: Mapping[str, tuple[str, ...]]) -> bool:
        return all(requirement.matches(fields) for requirement in self.match_expressions)


class ClusterAffinity(FrozenModel):
    """Selects clusters; every part that is set must hold (nothing set: every cluster)."""

    label_selector: LabelSelector | None = None
    """Clusters whose labels match."""
    field_selector: FieldSelector | None = None
    """Clusters whose provider/region/zone match."""
    cluster_names: list[str] = Field(default_factory=list)
    """Only these clusters (when not empty)."""
    exclude: list[str] = Field(default_factory=list)
    """Never these clusters."""

    def rejection(
        self,
        name: str,
        labels: Mapping[str, str],
        fields: Mapping[str, tuple[str, ...]],
    ) -> str | None:
        """Why the cluster is not selected, or None when it is."""
        if name in self.exclude:
            return "excluded by exclude"
        if self.cluster_names and name not in self.cluster_names:
            return "not in clusterNames"
        if self.label_selector is not None and not self.label_selector.matches(labels):
            return "labels do not match labelSelector"
        if self.field_selector is not None and not self.field_selector.matches(fields):
            return "provider/region/zone do not match fieldSelector"
        return None

    def matches(
        self, name: str, labels: Mapping[str, str], fields: Mapping[str, tuple[str, ...]]
    ) -> bool:
        return self.rejection(name, labels, fields) is None


class ClusterAffinityTerm(ClusterAffinity):
    affinity_name: Annotated[str, Field(min_length=1, max_length=32)]
    """Name of this cluster group; the scheduler records which group it used."""

    @field_validator("affinity_name")
    @classmethod
    def _affinity_name_qualified(cls, value: str) -> str:
        return check_qualified_name(value)


class ResourceSelector(FrozenModel):
    api_version: str = Field(min_length=1)
    """API version of the selected templates, e.g. apps/v1."""
    kind: str = Field(min_length=1)
    """Kind of the selected templates, e.g. Deployment."""
    namespace: str | None = None
    """Namespace of the templates; a PropagationPolicy only ever selects its own namespace."""
    name: str | None = None
    """One template by name; when set, labelSelector is ignored."""
    label_selector: LabelSelector | None = None
    """Templates whose labels match."""


# --- placement ---------------------------------------------------------------------------


class Toleration(FrozenModel):
    key: str | None = None
    """Taint key; empty with operator Exists tolerates every taint."""
    operator: Literal["Equal", "Exists"] = "Equal"
    """Equal: value must match; Exists: any value."""
    value: str | None = None
    """Taint value to match with Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] | None = None
    """Effect tolerated; empty means every effect."""
    toleration_seconds: int | None = None
    """For NoExecute only: how long a placement may stay after the taint was added."""

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds is only allowed with effect NoExecute")
        return self

    def tolerates(self, key: str, value: str | None, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if not self.key:
            return True
        if self.key != key and TAINT_KEY_ALIASES.get(self.key) != key:
            return False
        return self.operator == "Exists" or (self.value or "") == (value or "")


SpreadField = Literal["cluster", "region", "zone", "provider"]


class SpreadConstraint(FrozenModel):
    spread_by_field: SpreadField | None = None
    """Group clusters by this field; `cluster` when neither this nor spreadByLabel is set."""
    spread_by_label: QualifiedName | None = None
    """Group clusters by the value of this label instead."""
    min_groups: NonNegativeInt = 0
    """Fewest groups to spread over (0 and unset mean 1)."""
    max_groups: NonNegativeInt = 0
    """Most groups to spread over (0: no limit)."""

    @field_validator("max_groups")
    @classmethod
    def _max_not_below_min(cls, max_groups: int, info: ValidationInfo) -> int:
        min_groups = info.data.get("min_groups", 0)
        if max_groups and max_groups < min_groups:
            raise ValueError(f"maxGroups {max_groups} is lower than minGroups {min_groups}")
        return max_groups

    @model_validator(mode="after")
    def _field_or_label(self) -> SpreadConstraint:
        if self.spread_by_field and self.spread_by_label:
            raise ValueError("spreadByField and spreadByLabel cannot both be set")
        return self

    @property
    def effective_min_groups(self) -> int:
        return max(self.min_groups, 1)

    @property
    def grouping(self) -> str:
        """`cluster`, `region`, `zone`, `provider` or `label:<key>`."""
        if self.spread_by_label:
            return f"label:{self.spread_by_label}"
        return self.spread_by_field or "cluster"


class StaticClusterWeight(FrozenModel):
    target_cluster: ClusterAffinity
    """The clusters this weight applies to."""
    weight: int = Field(ge=1, le=INT32_MAX)
    """Relative share of the replicas (at least 1)."""


class ClusterPreferences(FrozenModel):
    static_weight_list: list[StaticClusterWeight] = Field(default_factory=list)
    """Fixed weights per cluster (a cluster matched by several entries takes the highest)."""
    dynamic_weight: Literal["AvailableReplicas"] | None = None
    """Weights from how many replicas each cluster can still run; overrides staticWeightList."""

    @field_validator("static_weight_list")
    @classmethod
    def _weights_add_up(cls, weights: list[StaticClusterWeight]) -> list[StaticClusterWeight]:
        total = sum(entry.weight for entry in weights)
        if total > INT32_MAX:
            raise ValueError(f"weights add up to {total}, more than {INT32_MAX}")
        return weights

    @model_validator(mode="after")
    def _some_preference(self) -> ClusterPreferences:
        if not self.static_weight_list and self.dynamic_weight is None:
            raise ValueError("give staticWeightList entries or dynamicWeight: AvailableReplicas")
        return self


class ReplicaSchedulingStrategy(FrozenModel):
    replica_scheduling_type: Literal["Duplicated", "Divided"] = "Divided"
    """Duplicated: every cluster runs all replicas; Divided: the replicas are shared out."""
    replica_division_preference: Literal["Aggregated", "Weighted"] | None = None
    """For Divided: Aggregated (as few clusters as possible) or Weighted (the default)."""
    weight_preference: ClusterPreferences | None = None
    """For Weighted: static weights or dynamic (available replicas); equal weights if unset."""


class Placement(FrozenModel):
    cluster_affinity: ClusterAffinity | None = None
    """Which clusters may be used (every cluster when unset)."""
    cluster_affinities: list[ClusterAffinityTerm] | None = None
    """Ordered cluster groups: the first group that can hold the workload is used."""
    cluster_tolerations: list[Toleration] = Field(default_factory=list)
    """Cluster taints this workload tolerates."""
    spread_constraints: list[SpreadConstraint] = Field(default_factory=list)
    """How many cluster/region/zone/provider/label groups to spread over."""
    replica_scheduling: ReplicaSchedulingStrategy | None = None
    """How replicas are shared; Duplicated when unset (as Karmada)."""

    @field_validator("cluster_affinities")
    @classmethod
    def _affinity_names_unique(
        cls, terms: list[ClusterAffinityTerm] | None
    ) -> list[ClusterAffinityTerm] | None:
        names = [term.affinity_name for term in terms or []]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"affinityName must be unique, repeated: {', '.join(repeated)}")
        return terms

    @field_validator("spread_constraints")
    @classmethod
    def _spread_fields_consistent(
        cls, constraints: list[SpreadConstraint]
    ) -> list[SpreadConstraint]:
        fields = [c.spread_by_field or "cluster" for c in constraints if not c.spread_by_label]
        repeated = sorted({f for f in fields if fields.count(f) > 1})
        if repeated:
            raise ValueError(
                f"only one spread constraint per field, repeated: {', '.join(repeated)}"
            )
        labels = [c.spread_by_label for c in constraints if c.spread_by_label]
        repeated_labels = sorted({key for key in labels if labels.count(key) > 1})
        if repeated_labels:
            raise ValueError(
                f"only one spread constraint per label, repeated: {', '.join(repeated_labels)}"
            )
        if any(c.spread_by_field for c in constraints) and "cluster" not in fields:
            # Karmada's rule: grouping by region/zone/provider needs a cluster constraint too,
            # which says how many clusters to pick inside the chosen groups.
            raise ValueError(
                "a spreadByField constraint needs a spreadByField: cluster constraint as well"
            )
        return constraints

    @model_validator(mode="after")
    def _one_affinity_form(self) -> Placement:
        if self.cluster_affinity is not None and self.cluster_affinities is not None:
            raise ValueError("clusterAffinity and clusterAffinities cannot both be set")
        return self

    @property
    def scheduling_type(self) -> Literal["Duplicated", "Divided"]:
        if self.replica_scheduling is None:
            return "Duplicated"
        return self.replica_scheduling.replica_scheduling_type

    @property
    def division(self) -> Literal["Duplicated", "StaticWeighted", "DynamicWeighted", "Aggregated"]:
        """The replica division mode this placement asks for, defaults resolved."""
        strategy = self.replica_scheduling
        if strategy is None or strategy.replica_scheduling_type == "Duplicated":
            return "Duplicated"
        if strategy.replica_division_preference == "Aggregated":
            return "Aggregated"
        preference = strategy.weight_preference
        if preference is not None and preference.dynamic_weight == "AvailableReplicas":
            return "DynamicWeighted"
        return "StaticWeighted"


# --- the rest of a propagation policy ------------------------------------------------------

PurgeMode = Literal["Immediately", "Graciously", "Never", "Directly", "Gracefully"]
"""Karmada renamed Directly/Gracefully to Immediately/Graciously; both spellings are accepted."""


class DecisionConditions(FrozenModel):
    toleration_seconds: NonNegativeInt = DEFAULT_FAILOVER_TOLERATION_SECONDS
    """How long an application may stay unhealthy on a cluster before it is moved."""


class StatePreservationRule(FrozenModel):
    alias_label_name: QualifiedName
    """Label key the preserved value is passed under to the new cluster."""
    json_path: str = Field(min_length=1)
    """JSONPath into the object's status selecting the value to keep."""


class StatePreservation(FrozenModel):
    rules: list[StatePreservationRule] = Field(min_length=1)
    """What to carry over to the new cluster."""


class ApplicationFailoverBehavior(FrozenModel):
    decision_conditions: DecisionConditions = Field(default_factory=DecisionConditions)
    """When to fail over."""
    purge_mode: PurgeMode = "Graciously"
    """How the copy on the old cluster is removed."""
    grace_period_seconds: int | None = Field(default=None, gt=0, le=INT32_MAX)
    """For Graciously: longest wait for the new copy to become healthy (600 when unset)."""
    state_preservation: StatePreservation | None = None
    """State to carry over to the new cluster."""

    @model_validator(mode="after")
    def _grace_only_when_graceful(self) -> ApplicationFailoverBehavior:
        if self.grace_period_seconds is not None and self.purge_mode not in {
            "Graciously",
            "Gracefully",
        }:
            raise ValueError(
                f"gracePeriodSeconds only applies with purgeMode Graciously, not {self.purge_mode}"
            )
        return self

    @property
    def effective_grace_period_seconds(self) -> int:
        return self.grace_period_seconds or DEFAULT_GRACE_PERIOD_SECONDS


class ClusterFailoverBehavior(FrozenModel):
    purge_mode: PurgeMode = "Gracefully"
    """How the copy on a failed cluster is removed."""
    state_preservation: StatePreservation | None = None
    """State to carry over to the new cluster."""


class FailoverBehavior(FrozenModel):
    application: ApplicationFailoverBehavior | None = None
    """Move the application away from a cluster where it stays unhealthy."""
    cluster: ClusterFailoverBehavior | None = None
    """What to do with the application when its cluster fails."""


class SuspendClusters(FrozenModel):
    cluster_names: list[str] = Field(default_factory=list)
    """Clusters to which dispatching is held."""


class Suspension(FrozenModel):
    dispatching: bool | None = None
    """Hold dispatching to every cluster."""
    dispatching_on_clusters: SuspendClusters | None = None
    """Hold dispatching to these clusters only."""

    @model_validator(mode="after")
    def _all_or_some(self) -> Suspension:
        if (
            self.dispatching
            and self.dispatching_on_clusters
            and (self.dispatching_on_clusters.cluster_names)
        ):
            raise ValueError("dispatching cannot be combined with dispatchingOnClusters")
        return self


class SchedulePriority(FrozenModel):
    priority_class_source: Literal[
        "KubePriorityClass", "PodPriorityClass", "FederatedPriorityClass"
    ]
    """Where the priority class is looked up."""
    priority_class_name: str = Field(min_length=1)
    """Priority class whose value orders scheduling (higher first)."""


class PropagationSpec(FrozenModel):
    resource_selectors: list[ResourceSelector] = Field(min_length=1)
    """Templates this policy places; at least one (never "everything", for safety)."""
    association: bool = False
    """Deprecated spelling of propagateDeps."""
    propagate_deps: bool = False
    """Also place what the workload references (ConfigMaps, Secrets, ...) on the same clusters."""
    placement: Placement = Field(default_factory=Placement)
    """Where and how to place."""
    priority: int = Field(default=0, ge=-(2**31), le=INT32_MAX)
    """Explicit priority among matching policies (higher wins)."""
    preemption: Literal["Always", "Never"] = "Never"
    """Always: take templates already claimed by lower-priority policies."""
    dependent_overrides: list[str] = Field(default_factory=list)
    """OverridePolicies that must exist before this policy takes effect."""
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    """Which scheduler handles the templates."""
    failover: FailoverBehavior | None = None
    """Application/cluster failover behaviour; none when unset."""
    conflict_resolution: Literal["Abort", "Overwrite"] = "Abort"
    """What to do with an object that already exists in a member cluster and FOOT did not create."""
    activation_preference: Literal["Lazy"] | None = None
    """Lazy: policy changes apply only when the template itself changes next."""
    suspension: Suspension | None = None
    """Hold dispatching (placement decisions are still made)."""
    preserve_resources_on_deletion: bool | None = None
    """Keep the objects in member clusters when the template is deleted."""
    schedule_priority: SchedulePriority | None = None
    """Scheduling priority of the templates, from a priority class."""

    @model_validator(mode="after")
    def _karmada_rules(self) -> PropagationSpec:
        if (
            self.failover is not None
            and self.failover.application is not None
            and not (self.propagate_deps or self.association)
        ):
            raise ValueError(
                "failover.application needs propagateDeps: true, so dependencies move with it"
            )
        return self

    @field_validator("preemption")
    @classmethod
    def _preemption_needs_names(cls, preemption: str, info: ValidationInfo) -> str:
        selectors = info.data.get("resource_selectors") or []
        if preemption == "Always" and any(not s.name for s in selectors):
            raise ValueError(
                "preemption Always needs a name in every resourceSelector, so it cannot "
                "take templates by accident"
            )
        return preemption

    @property
    def propagates_dependencies(self) -> bool:
        return self.propagate_deps or self.association


class _PolicyObject(KubeObject):
    api_version: PolicyAPIVersion

    @property
    def is_karmada_format(self) -> bool:
        return self.api_version == KARMADA_POLICY_API_VERSION


class PropagationPolicy(_PolicyObject):
    kind: Literal["PropagationPolicy"]
    spec: PropagationSpec


class ClusterPropagationPolicy(_PolicyObject):
    kind: Literal["ClusterPropagationPolicy"]
    spec: PropagationSpec

    namespaced: ClassVar[bool] = False


AnyPropagationPolicy = PropagationPolicy | ClusterPropagationPolicy


# --- override policies ---------------------------------------------------------------------

OverriderOperator = Literal["add", "remove", "replace"]


class PlaintextOverrider(FrozenModel):
    path: JsonPointer
    """JSON pointer to the field, e.g. /spec/replicas."""
    operator: OverriderOperator
    """add, remove or replace."""
    value: Any = None
    """New value for add/replace; must be absent for remove."""

    @model_validator(mode="after")
    def _value_fits_operator(self) -> PlaintextOverrider:
        if self.operator == "remove" and self.value is not None:
            raise ValueError("value must be empty when operator is remove")
        return self


class ImagePredicate(FrozenModel):
    path: JsonPointer
    """JSON pointer to the image field to change."""


class ImageOverrider(FrozenModel):
    predicate: ImagePredicate | None = None
    """Which image field; every container image of known workload kinds when unset."""
    component: Literal["Registry", "Repository", "Tag"]
    """Part of `[registry/]repository[:tag]` to change."""
    operator: OverriderOperator
    """add, remove or replace."""
    value: str | None = None
    """New component; required for add and replace."""

    @model_validator(mode="after")
    def _value_fits_operator(self) -> ImageOverrider:
        if self.operator in {"add", "replace"} and not self.value:
            raise ValueError(f"value is required when operator is {self.operator}")
        return self


class CommandArgsOverrider(FrozenModel):
    container_name: str = Field(min_length=1)
    """Container whose command/args change."""
    operator: Literal["add", "remove"]
    """add appends the values; remove deletes matching items."""
    value: list[str] = Field(default_factory=list)
    """Items to append or remove."""


class LabelAnnotationOverrider(FrozenModel):
    operator: OverriderOperator
    """add, remove or replace."""
    value: dict[str, str] = Field(default_factory=dict)
    """Keys and values to add, remove or replace."""


class LabelsOverrider(LabelAnnotationOverrider):
    value: Labels = Field(default_factory=dict)
    """Labels to add, remove or replace (keys and values must be valid labels)."""


class PatchOperation(FrozenModel):
    sub_path: JsonPointer
    """JSON pointer inside the embedded document."""
    operator: OverriderOperator
    """add, remove or replace."""
    value: Any = None
    """New value for add/replace."""


class FieldOverrider(FrozenModel):
    field_path: JsonPointer
    """JSON pointer to a string field holding a JSON or YAML document, e.g. /data/config.yaml."""
    json_: list[PatchOperation] = Field(default_factory=list, alias="json")
    """Operations on a JSON document."""
    yaml: list[PatchOperation] = Field(default_factory=list)
    """Operations on a YAML document."""

    @model_validator(mode="after")
    def _json_or_yaml(self) -> FieldOverrider:
        if self.json_ and self.yaml:
            raise ValueError("set json or yaml operations, not both")
        return self


class Overriders(FrozenModel):
    plaintext: list[PlaintextOverrider] = Field(default_factory=list)
    """JSON-pointer patches."""
    image_overrider: list[ImageOverrider] = Field(default_factory=list)
    """Changes to image registry/repository/tag."""
    command_overrider: list[CommandArgsOverrider] = Field(default_factory=list)
    """Changes to container commands."""
    args_overrider: list[CommandArgsOverrider] = Field(default_factory=list)
    """Changes to container args."""
    labels_overrider: list[LabelsOverrider] = Field(default_factory=list)
    """Changes to the object's labels."""
    annotations_overrider: list[LabelAnnotationOverrider] = Field(default_factory=list)
    """Changes to the object's annotations."""
    field_overrider: list[FieldOverrider] = Field(default_factory=list)
    """Changes inside a JSON/YAML document held in a string field."""

    @property
    def is_empty(self) -> bool:
        return not any(
            (
                self.plaintext,
                self.image_overrider,
                self.command_overrider,
                self.args_overrider,
                self.labels_overrider,
                self.annotations_overrider,
                self.field_overrider,
            )
        )


class RuleWithCluster(FrozenModel):
    target_cluster: ClusterAffinity | None = None
    """Clusters the rule applies to (every cluster when unset)."""
    overriders: Overriders
    """What to change."""


class OverrideSpec(FrozenModel):
    resource_selectors: list[ResourceSelector] = Field(default_factory=list)
    """Templates to override (every template in scope when empty)."""
    override_rules: list[RuleWithCluster] = Field(default_factory=list)
    """Rules applied in order, each to its target clusters."""
    target_cluster: ClusterAffinity | None = None
    """Deprecated form: clusters for `overriders`."""
    overriders: Overriders = Field(default_factory=Overriders)
    """Deprecated form: one set of overriders."""

    @model_validator(mode="after")
    def _one_form(self) -> OverrideSpec:
        if self.override_rules and (
            self.target_cluster is not None or not self.overriders.is_empty
        ):
            raise ValueError("overrideRules cannot be combined with targetCluster/overriders")
        return self

    @property
    def rules(self) -> tuple[RuleWithCluster, ...]:
        """The rules, with the deprecated targetCluster/overriders form as one rule."""
        if self.override_rules:
            return tuple(self.override_rules)
        if self.overriders.is_empty:
            return ()
        return (RuleWithCluster(target_cluster=self.target_cluster, overriders=self.overriders),)


class OverridePolicy(_PolicyObject):
    kind: Literal["OverridePolicy"]
    spec: OverrideSpec


class ClusterOverridePolicy(_PolicyObject):
    kind: Literal["ClusterOverridePolicy"]
    spec: OverrideSpec

    namespaced: ClassVar[bool] = False


AnyOverridePolicy = OverridePolicy | ClusterOverridePolicy


# --- registration --------------------------------------------------------------------------

_POLICIES: tuple[tuple[type[_PolicyObject], str, str, tuple[str, ...]], ...] = (
    (PropagationPolicy, "PropagationPolicy", "propagationpolicies", ("pp",)),
    (ClusterPropagationPolicy, "ClusterPropagationPolicy", "clusterpropagationpolicies", ("cpp",)),
    (OverridePolicy, "OverridePolicy", "overridepolicies", ("op",)),
    (ClusterOverridePolicy, "ClusterOverridePolicy", "clusteroverridepolicies", ("cop",)),
)


def policy_kinds() -> list[KindInfo]:
    """Every policy kind, once in FOOT's group and once in Karmada's."""
    return [
        KindInfo(
            api_version=api_version,
            kind=kind,
            model=model,
            owner=POLICIES.owner,
            bucket=POLICIES.name,
            plural=plural,
            namespaced=model.namespaced,
            short_names=short_names,
        )
        for api_version in POLICY_API_VERSIONS
        for model, kind, plural, short_names in _POLICIES
    ]


def selected_cluster_fields(
    provider: str | None, region: str | None, zones: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """The provider/region/zone values a fieldSelector compares, as tuples (a cluster may
    span several zones)."""
    return {
        "provider": (provider,) if provider else (),
        "region": (region,) if region else (),
        "zone": tuple(zones),
    }

"""The scheduler's pure core: which policy claims a template, and where its replicas go.

No I/O, no clock, no randomness: every function takes immutable inputs (one
snapshot of the clusters per cycle, the workload, the policy, the previous
placement, "now") and returns an immutable answer, so the same inputs always
give the same placement. The service shell around it reads buckets, calls
`schedule` and writes bindings.

The pipeline follows Karmada's scheduler framework: filter plugins (affinity,
taints/tolerations, API enablement, application failover, capacity, static
weight membership) -> score plugins (keep existing placement, available
capacity, PreferNoSchedule) -> selection under spread constraints -> replica
division (Duplicated, static weights, available replicas, Aggregated), tried
per `clusterAffinities` group in order.
"""

from foot_scheduler.core.matching import (
    Claim,
    TemplateRef,
    claim_template,
    order_for_scheduling,
    override_plan,
    overrides_for,
    template_ref,
)
from foot_scheduler.core.result import (
    ClusterVerdict,
    Eviction,
    PreviousPlacement,
    ScheduleResult,
    TargetCluster,
)
from foot_scheduler.core.schedule import AppHealth, schedule
from foot_scheduler.core.snapshot import ClusterSnapshot, ClusterView
from foot_scheduler.core.workload import Workload, workload_from_template

__all__ = [
    "AppHealth",
    "Claim",
    "ClusterSnapshot",
    "ClusterVerdict",
    "ClusterView",
    "Eviction",
    "PreviousPlacement",
    "ScheduleResult",
    "TargetCluster",
    "TemplateRef",
    "Workload",
    "claim_template",
    "order_for_scheduling",
    "override_plan",
    "overrides_for",
    "schedule",
    "template_ref",
    "workload_from_template",
]

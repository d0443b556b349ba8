"""Every JetStream stream and key-value bucket FOOT uses, and the subjects it speaks on,
declared in one place.

Services create them idempotently at start (`Bus.declare`), so any service can
start first. A bucket's owner is the only service that writes it; the kind registry
(`foot.kinds`) takes each kind's owner and bucket from here. A contract, not bus code: it
imports nothing, so pure cores and the kind models may use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    description: str
    max_age_seconds: float = 7 * 24 * 3600
    duplicate_window_seconds: float = 120.0
    """Publishes with the same message id inside this window are stored once."""


@dataclass(frozen=True, slots=True)
class BucketSpec:
    name: str
    owner: str
    description: str
    history: int = 1


EVENTS = StreamSpec(
    name="FOOT_EVENTS",
    subjects=("foot.events.>",),
    description="Things that are not state: health transitions, audit, rejected inputs, progress",
)
DEAD_LETTERS = StreamSpec(
    name="FOOT_DEAD_LETTERS",
    subjects=("foot.dlq.>",),
    description="Messages a consumer gave up on, with the error that stopped them",
    max_age_seconds=30 * 24 * 3600,
)
TEMPLATES = BucketSpec(
    name="templates",
    owner="scheduler",
    description="Resource templates (any Kubernetes object) submitted for placement",
)

POLICIES = BucketSpec(
    name="policies",
    owner="scheduler",
    description="Propagation and override policies (FOOT's group and Karmada's), validated",
)
BINDINGS = BucketSpec(
    name="bindings",
    owner="scheduler",
    description="Placement decisions: which clusters get how many replicas of a template",
)
CLUSTERS = BucketSpec(
    name="clusters",
    owner="registry",
    description="Member clusters: spec, status, conditions and taints",
)
CLUSTER_CREDENTIALS = BucketSpec(
    name="cluster-credentials",
    owner="registry",
    description="Per-cluster credentials FOOT uses to reach members, sealed (never plain text)",
)
CLUSTER_AGENTS = BucketSpec(
    name="cluster-agents",
    owner="registry",
    description="Pull-mode agents: per-cluster bootstrap key (sealed, never the token itself)",
)
WORKS = BucketSpec(
    name="works",
    owner="dispatcher",
    description="Per-cluster manifests after overrides, with their applied state and status",
)
STORAGE_CLAIMS = BucketSpec(
    name="storage-claims",
    owner="storage",
    description="Storage claims (Ceph block, filesystem, object) with their provisioning status",
)
STORAGE_PROVISIONING = BucketSpec(
    name="storage-provisioning",
    owner="storage",
    description="Per claim: the Ceph objects created, steps done, per-cluster keys (sealed)",
)

AGGREGATED_STATUS = BucketSpec(
    name="aggregated-status",
    owner="dispatcher",
    description="Per template (keyed like it): status over every member cluster, from the works",
)
DISPATCH_INTENTS = BucketSpec(
    name="dispatch-intents",
    owner="dispatcher",
    description="Per binding: the clusters and objects being applied before their works are "
    "stored (what a restarted dispatcher checks for orphans)",
)
GATEWAY_ROUTES = BucketSpec(
    name="gateway-routes",
    owner="gateway-sync",
    description="GatewayRoutes: hosts/paths to a placed Service, load balancing, release strategy",
)

STREAMS: tuple[StreamSpec, ...] = (EVENTS, DEAD_LETTERS)
BUCKETS: tuple[BucketSpec, ...] = (
    TEMPLATES,
    POLICIES,
    BINDINGS,
    CLUSTERS,
    CLUSTER_CREDENTIALS,
    CLUSTER_AGENTS,
    WORKS,
    AGGREGATED_STATUS,
    DISPATCH_INTENTS,
    STORAGE_CLAIMS,
    STORAGE_PROVISIONING,
    GATEWAY_ROUTES,
)

# Subjects of the API front door (plain request-reply, deliberately not captured by a stream).
API_APPLY = "foot.api.apply"
API_DELETE = "foot.api.delete"
REJECTED = "foot.events.rejected"
HEALTH_PREFIX = "foot.events.health"
"""Cluster health transitions: `foot.events.health.<cluster>`, payload `ClusterHealthEvent`."""


REGISTRY_PREFIX = "foot.registry"
"""Registry requests (request-reply): `foot.registry.<verb>` with verb join, unjoin, register,
collect; the payload carries the cluster name."""
AGENT_PREFIX = "foot.agent"
"""Pull-mode agents: `foot.agent.register.<cluster>` (request-reply) and
`foot.agent.heartbeat.<cluster>` (plain publish); an agent's NATS user may use only these."""


def registry_subject(verb: str) -> str:
    return f"{REGISTRY_PREFIX}.{verb}"


def agent_register_subject(cluster: str) -> str:
    return f"{AGENT_PREFIX}.register.{cluster}"


def agent_heartbeat_subject(cluster: str) -> str:
    return f"{AGENT_PREFIX}.heartbeat.{cluster}"


def owner_apply_subject(owner: str) -> str:
    return f"{API_APPLY}.{owner}"


def owner_delete_subject(owner: str) -> str:
    return f"{API_DELETE}.{owner}"


def dead_letter_subject(consumer: str) -> str:
    return f"foot.dlq.{consumer}"


def health_subject(cluster: str) -> str:
    return f"{HEALTH_PREFIX}.{cluster}"


WORKS_PREFIX = "foot.works"
"""Pull delivery (core NATS, per cluster): the dispatcher publishes a cluster's works on
`foot.works.deliver.<cluster>`; the agent asks for all of them on `foot.works.sync.<cluster>`
(request-reply, at start and after a reconnect) and reports what it applied on
`foot.works.status.<cluster>` (request-reply: the answer means the status is stored)."""


def work_deliver_subject(cluster: str) -> str:
    return f"{WORKS_PREFIX}.deliver.{cluster}"


def work_sync_subject(cluster: str) -> str:
    return f"{WORKS_PREFIX}.sync.{cluster}"


def work_status_subject(cluster: str) -> str:
    return f"{WORKS_PREFIX}.status.{cluster}"

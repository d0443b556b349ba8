"""Onboarding, pure: what a join, a registration or an unjoin decides before (and after)
it talks to anyone.

* a cluster's name is a DNS label; a new Cluster object is parsed like any other;
* a push join records how FOOT holds its credential (its own ServiceAccount, or the
  kubeconfig's user as given) and the member namespace, for the unjoin to read;
* a joined cluster starts Ready=True ("Joined"), a registered one Ready=Unknown
  ("AwaitingAgent") until its agent's heartbeats decide;
* the unjoin cleans the member according to how the cluster was joined.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from foot.errors import FieldProblem, InvalidObjectError
from foot.health import ClusterHealthEvent
from foot.kinds import KINDS
from foot.kinds.clusters import CLUSTER_API_VERSION, Cluster
from foot.objects import check_label
from foot_registry.core.health import Health, transition, with_health

T = TypeVar("T")

CREDENTIAL_ANNOTATION = "cluster.foot.dev/credential"
NAMESPACE_ANNOTATION = "cluster.foot.dev/member-namespace"
GIVEN_CREDENTIAL = "given"
"""The credential annotation's value when FOOT uses the kubeconfig's own user."""
SERVICE_ACCOUNT_CREDENTIAL = "service-account"
"""... and when FOOT made a ServiceAccount of its own in the member."""
DEFAULT_MEMBER_NAMESPACE = "foot-system"
"""The member namespace of a push cluster whose annotation does not name one."""


def check_cluster_name(name: str) -> None:
    try:
        check_label(name)
    except ValueError as exc:
        raise InvalidObjectError("cluster", [FieldProblem("name", str(exc))]) from None


def new_cluster(
    name: str,
    *,
    mode: str,
    endpoint: str | None,
    provider: str | None,
    region: str | None,
    zone: str | None,
    labels: dict[str, str],
    annotations: dict[str, str],
    gateway_address: str | None = None,
) -> Cluster:
    document = {
        "apiVersion": CLUSTER_API_VERSION,
        "kind": "Cluster",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "syncMode": mode,
            "apiEndpoint": endpoint,
            "provider": provider,
            "region": region,
            "zone": zone,
            "gatewayAddress": gateway_address,
        },
    }
    parsed = KINDS.parse(document, source=f"cluster {name}")
    assert isinstance(parsed, Cluster)  # noqa: S101 - the kind registry maps Cluster here
    return parsed


def push_annotations(*, use_given_credential: bool, member_namespace: str) -> dict[str, str]:
    mode = GIVEN_CREDENTIAL if use_given_credential else SERVICE_ACCOUNT_CREDENTIAL
    return {CREDENTIAL_ANNOTATION: mode, NAMESPACE_ANNOTATION: member_namespace}


def given_token(token: T | None) -> T:
    """The kubeconfig user's token, when FOOT is to keep that user as its credential (it
    can only keep a token)."""
    if token is None:
        raise InvalidObjectError(
            "join request",
            [FieldProblem("kubeconfig", "useGivenCredential needs a token user")],
        )
    return token


def check_agent_nats_url(nats_url: str, *, ca_given: bool) -> None:
    """Agents given a NATS CA must reach NATS over TLS."""
    if ca_given and not nats_url.startswith("tls://"):
        reason = "must be a tls:// URL: agents are given a NATS CA (agent_nats_ca_file)"
        raise InvalidObjectError("register request", [FieldProblem("hubNatsUrl", reason)])


@dataclass(frozen=True, slots=True)
class FirstHealth:
    """A new cluster's first Ready decision: the registry's state, the event to publish,
    and the cluster to store with it recorded."""

    health: Health
    event: ClusterHealthEvent
    cluster: Cluster


def joined(cluster: Cluster, now: datetime) -> FirstHealth:
    """A push cluster whose credential was just shown to work: Ready, and heard from now."""
    health, event = transition(
        Health(cluster=cluster.name), "True", "Joined", "joined by the registry", now
    )
    health = replace(health, last_success_at=now)
    event = event.model_copy(update={"last_success_at": now})
    return FirstHealth(health, event, with_health(cluster, event))


def registered(cluster: Cluster, now: datetime) -> FirstHealth:
    """A pull cluster: Unknown until its agent connects and heartbeats."""
    health, event = transition(
        Health(cluster=cluster.name), "Unknown", "AwaitingAgent", "no agent has connected yet", now
    )
    return FirstHealth(health, event, with_health(cluster, event))


def stamped(cluster: Cluster, now: datetime) -> Cluster:
    """The cluster as first stored: generation 1, created now."""
    metadata = cluster.metadata.model_copy(update={"generation": 1, "creation_timestamp": now})
    return cluster.model_copy(update={"metadata": metadata})


class MemberCleanup(StrEnum):
    NONE = "none"
    """Pull clusters: the agent's manifests were applied by a person; nothing to remove."""
    FORGET_CREDENTIAL = "forget-credential"
    """Joined with its own credential: nothing was created in the member."""
    REMOVE_WITH_ADMIN = "remove-with-admin"
    """An admin kubeconfig came with the unjoin: remove every object of the join."""
    DELETE_NAMESPACE = "delete-namespace"
    """With FOOT's own token: delete the namespace (the rest is owned by it)."""


def member_cleanup(cluster: Cluster, *, admin_kubeconfig: bool) -> tuple[MemberCleanup, str]:
    """How an unjoin cleans the member, and the member namespace FOOT used there."""
    namespace = cluster.metadata.annotations.get(NAMESPACE_ANNOTATION, DEFAULT_MEMBER_NAMESPACE)
    if cluster.spec.sync_mode != "Push":
        return MemberCleanup.NONE, namespace
    mode = cluster.metadata.annotations.get(CREDENTIAL_ANNOTATION, SERVICE_ACCOUNT_CREDENTIAL)
    if mode == GIVEN_CREDENTIAL:
        return MemberCleanup.FORGET_CREDENTIAL, namespace
    if admin_kubeconfig:
        return MemberCleanup.REMOVE_WITH_ADMIN, namespace
    return MemberCleanup.DELETE_NAMESPACE, namespace

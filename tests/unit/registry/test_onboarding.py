"""Onboarding, pure: names, the new cluster and its first health, how an unjoin cleans
the member."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from foot.errors import InvalidObjectError
from foot.kinds.clusters import TAINT_UNREACHABLE, Cluster
from foot_registry.core.onboarding import (
    CREDENTIAL_ANNOTATION,
    NAMESPACE_ANNOTATION,
    MemberCleanup,
    check_agent_nats_url,
    check_cluster_name,
    given_token,
    joined,
    member_cleanup,
    new_cluster,
    push_annotations,
    registered,
    stamped,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cluster(mode: str, annotations: dict[str, str] | None = None) -> Cluster:
    return new_cluster(
        "east", mode=mode, endpoint="https://east:6443", provider=None, region="eu",
        zone=None, labels={"tier": "gold"}, annotations=annotations or {},
    )  # fmt: skip


def test_a_cluster_name_is_a_dns_label() -> None:
    check_cluster_name("east-1")
    with pytest.raises(InvalidObjectError) as caught:
        check_cluster_name("East_1")
    assert [p.path for p in caught.value.problems] == ["name"]


def test_a_new_cluster_is_parsed_like_any_other() -> None:
    made = cluster("Push")
    assert (made.spec.sync_mode, made.spec.api_endpoint, made.spec.region) == (
        "Push", "https://east:6443", "eu",
    )  # fmt: skip
    assert made.metadata.labels == {"tier": "gold"}
    first = stamped(made, T0)
    assert (first.metadata.generation, first.metadata.creation_timestamp) == (1, T0)


def test_a_join_starts_ready_and_a_registration_unknown() -> None:
    push = joined(cluster("Push"), T0)
    assert (push.event.ready, push.event.reason, push.event.sequence) == ("True", "Joined", 1)
    assert push.health.last_success_at == T0
    assert push.event.last_success_at == T0
    assert push.cluster.status.health_sequence == 1
    assert not push.cluster.spec.taints
    pull = registered(cluster("Pull"), T0)
    assert (pull.event.ready, pull.event.reason) == ("Unknown", "AwaitingAgent")
    assert pull.health.last_success_at is None
    assert [t.key for t in pull.cluster.spec.taints] == [TAINT_UNREACHABLE]


def test_the_credential_kept_and_the_agents_nats_url() -> None:
    assert push_annotations(use_given_credential=True, member_namespace="ns") == {
        CREDENTIAL_ANNOTATION: "given", NAMESPACE_ANNOTATION: "ns",
    }  # fmt: skip
    assert given_token("t0k") == "t0k"
    with pytest.raises(InvalidObjectError, match="join request"):
        given_token(None)
    check_agent_nats_url("nats://hub:4222", ca_given=False)
    check_agent_nats_url("tls://hub:4222", ca_given=True)
    with pytest.raises(InvalidObjectError) as caught:
        check_agent_nats_url("nats://hub:4222", ca_given=True)
    assert [p.path for p in caught.value.problems] == ["hubNatsUrl"]


def test_an_unjoin_cleans_the_member_as_the_join_set_it_up() -> None:
    given = push_annotations(use_given_credential=True, member_namespace="ns")
    own = push_annotations(use_given_credential=False, member_namespace="ns")
    assert member_cleanup(cluster("Pull"), admin_kubeconfig=True)[0] is MemberCleanup.NONE
    assert member_cleanup(cluster("Push", given), admin_kubeconfig=True) == (
        MemberCleanup.FORGET_CREDENTIAL, "ns",
    )  # fmt: skip
    assert member_cleanup(cluster("Push", own), admin_kubeconfig=True) == (
        MemberCleanup.REMOVE_WITH_ADMIN, "ns",
    )  # fmt: skip
    assert member_cleanup(cluster("Push"), admin_kubeconfig=False) == (
        MemberCleanup.DELETE_NAMESPACE, "foot-system",
    )  # fmt: skip

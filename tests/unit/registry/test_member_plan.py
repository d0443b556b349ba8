"""What a push join creates in a member, pure: the objects and their RBAC, and what FOOT
makes of objects it finds there or answers it gets."""

from __future__ import annotations

import pytest

from foot.errors import PermanentError
from foot_registry.core.member_plan import (
    CLUSTER_ROLE_RULES,
    JOINED_LABEL,
    created_uid,
    in_the_way,
    joined_as,
    member_objects,
    minted_token,
)


def test_join_plan_is_narrower_than_cluster_admin_and_owned_by_the_namespace() -> None:
    objects = member_objects("foot-system", "east", "uid-1")
    assert [o.body["kind"] for o in objects] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
    ]  # fmt: skip
    for obj in objects:
        assert obj.body["metadata"]["labels"]["cluster.foot.dev/joined-as"] == "east"
    for obj in objects[2:]:
        assert obj.body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    verbs = {v for rule in CLUSTER_ROLE_RULES for v in rule["verbs"]}
    assert not verbs & {"*", "escalate", "bind", "impersonate", "deletecollection"}


def test_what_stands_in_the_way_of_a_join_is_named() -> None:
    namespace = member_objects("foot-system", "east", None)[0]
    leaving = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert "still being deleted" in in_the_way(namespace, leaving).message
    other = {"metadata": {"labels": {JOINED_LABEL: "west"}}}
    assert "created by FOOT's cluster 'west'" in in_the_way(namespace, other).message
    assert "created by someone else" in in_the_way(namespace, {"metadata": {}}).message


def test_only_objects_labelled_for_the_cluster_are_its_own() -> None:
    assert joined_as({"metadata": {"labels": {JOINED_LABEL: "east"}}}, "east")
    assert not joined_as({"metadata": {"labels": {JOINED_LABEL: "west"}}}, "east")
    assert not joined_as({"metadata": {}}, "east")
    assert not joined_as(None, "east")


def test_answers_of_the_member() -> None:
    assert created_uid({"metadata": {"uid": "u-1"}}) == "u-1"
    assert created_uid({"metadata": {}}) is None
    assert created_uid(None) is None
    assert minted_token({"status": {"token": "t0k"}}) == "t0k"
    with pytest.raises(PermanentError, match="without a token"):
        minted_token({"status": {}})

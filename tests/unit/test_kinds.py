"""The kind registry: names as people type them, and the bucket key of each object."""

from __future__ import annotations

import pytest

from foot.errors import NotFoundError
from foot.kinds import KINDS


def test_kinds_resolve_as_people_type_them() -> None:
    assert KINDS.resolve("deploy").kind == "Deployment"
    assert KINDS.resolve("Deployments").kind == "Deployment"
    assert KINDS.resolve("cm").kind == "ConfigMap"
    assert KINDS.resolve("deployments.apps").kind == "Deployment"
    with pytest.raises(NotFoundError, match="unknown kind 'gizmo'"):
        KINDS.resolve("gizmo")


def test_bucket_keys_separate_kinds_and_namespaces() -> None:
    info = KINDS.resolve("deployments")
    assert info.key("shop", "web") == "apps.Deployment.shop.web"
    assert KINDS.resolve("ns").key(None, "shop") == "core.Namespace._.shop"

"""FOOT's own Kubernetes REST client against a real kube-apiserver: both kinds of admin
credential, server-side apply, and each failure mapped to the right FOOT error."""

from __future__ import annotations

import uuid

import pytest
import yaml
from pydantic import SecretStr

from foot.errors import PermanentError, RetryableError
from foot.kube import (
    KubeApiError,
    KubeClient,
    KubeConflictError,
    KubeNotFoundError,
    KubeTarget,
)
from foot.kube.errors import KubeUnavailableError
from foot_cli.processes import free_port
from foot_testenv.clusters import KubeClusters


@pytest.mark.parametrize("use_token", [False, True], ids=["client-cert", "token"])
async def test_admin_kubeconfig_either_credential_reaches_the_server(
    kube_clusters: KubeClusters, use_token: bool
) -> None:
    cluster = kube_clusters[0]
    context = cluster.token_context if use_token else cluster.context
    target = KubeTarget.from_kubeconfig(
        cluster.kubeconfig_path.read_text(),
        context=context,
        base_dir=cluster.kubeconfig_path.parent,
    )
    assert (target.token is not None) == use_token
    assert "PRIVATE KEY" not in repr(target)
    assert cluster.admin_token not in repr(target)
    async with KubeClient(target) as kube:
        version = await kube.version()
        await kube.readyz(timeout_seconds=2)
    assert version["major"] == "1"


async def test_apply_conflict_not_found_and_invalid(kube_clusters: KubeClusters) -> None:
    cluster = kube_clusters[0]
    target = KubeTarget.from_kubeconfig(cluster.kubeconfig_path.read_text())
    namespace = f"kc-{uuid.uuid4().hex[:8]}"
    async with KubeClient(target) as kube:
        await kube.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        with pytest.raises(KubeConflictError) as exists:
            await kube.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        assert exists.value.reason == "AlreadyExists"
        path = f"/api/v1/namespaces/{namespace}/configmaps/settings"
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"mode": "a"},
        }
        applied = await kube.apply(path, manifest, field_manager="foot")
        assert applied["data"] == {"mode": "a"}
        managers = {entry["manager"] for entry in applied["metadata"]["managedFields"]}
        assert managers == {"foot"}
        theirs = {**manifest, "data": {"mode": "b"}}
        with pytest.raises(KubeConflictError) as conflict:
            await kube.apply(path, theirs, field_manager="someone-else")
        assert 'conflict with "foot"' in str(conflict.value)
        with pytest.raises(KubeNotFoundError):
            await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/absent")
        with pytest.raises(KubeApiError) as invalid:
            await kube.create(
                f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "Bad_Name"}}
            )
        assert invalid.value.status == 422
        assert not invalid.value.retryable
        assert any(c.get("field") == "metadata.name" for c in invalid.value.causes)
        await kube.delete(f"/api/v1/namespaces/{namespace}")


async def test_wrong_token_is_permanent_and_dead_server_is_retryable(
    kube_clusters: KubeClusters,
) -> None:
    cluster = kube_clusters[0]
    good = KubeTarget.from_kubeconfig(cluster.kubeconfig_path.read_text())
    wrong = KubeTarget(server=good.server, ca_pem=good.ca_pem, token=SecretStr("not-a-token"))
    async with KubeClient(wrong) as kube:
        with pytest.raises(PermanentError) as refused:
            await kube.get("/api/v1/namespaces")
    assert isinstance(refused.value, KubeApiError)
    assert refused.value.status == 401
    dead = KubeTarget(server=f"https://127.0.0.1:{free_port()}", ca_pem=good.ca_pem)
    async with KubeClient(dead, timeout_seconds=2) as kube:
        with pytest.raises(RetryableError) as unreachable:
            await kube.readyz(timeout_seconds=1)
    assert isinstance(unreachable.value, KubeUnavailableError)


def test_kubeconfig_problems_name_their_place() -> None:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [
            {"name": "k", "cluster": {"server": "ftp://x", "certificate-authority-data": "%%%"}}
        ],
        "users": [{"name": "u", "user": {"exec": {"command": "aws"}}}],
    }
    with pytest.raises(PermanentError) as bad:
        KubeTarget.from_kubeconfig(yaml.safe_dump(document))
    message = str(bad.value)
    assert "clusters[k].cluster.server: must be an http(s) URL" in message
    assert "clusters[k].cluster.certificate-authority-data: is not base64 PEM" in message
    assert "users[u].user.exec: is not supported" in message
    with pytest.raises(PermanentError, match="not valid YAML"):
        KubeTarget.from_kubeconfig("a: [b")
    with pytest.raises(PermanentError, match="contexts: has no entry named 'other'"):
        KubeTarget.from_kubeconfig(yaml.safe_dump(document), context="other")

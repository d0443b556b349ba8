"""The shared apply code (push dispatcher and pull agent) against a real kube-apiserver:
namespace creation, server-side apply as `foot`, Abort/Overwrite, removal of FOOT's objects
only, per-manifest errors, and health read back after a status-subresource write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from foot.kinds.works import ManifestStatus
from foot.kube import KubeClient, KubeTarget
from foot.kube.apply import CREATE_ONLY_VERSION, MemberApplier
from foot.kube.errors import KubeConflictError, KubeNotFoundError
from foot.manifests import MANAGED_BY_LABEL, observed_status, ownership_marks
from foot_sim import Simulator
from foot_sim.background import BackgroundSimulator
from foot_testenv.clusters import KubeClusters

pytestmark = pytest.mark.kube


def target(kube_clusters: KubeClusters) -> KubeTarget:
    cluster = kube_clusters[0]
    return KubeTarget.from_kubeconfig(
        cluster.kubeconfig_path.read_text(), base_dir=cluster.kubeconfig_path.parent
    )


@pytest.fixture(scope="module")
def simulated_member() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(Simulator(1, simulate_workloads=False)) as running:
        yield running


@pytest.fixture(params=("real", "sim"))
def member(request: pytest.FixtureRequest) -> KubeTarget:
    """A member's admin target, on a real kube-apiserver and on the simulator."""
    if request.param == "sim":
        simulated: BackgroundSimulator = request.getfixturevalue("simulated_member")
        path = simulated.endpoints[0].kubeconfig_path
    else:
        clusters: KubeClusters = request.getfixturevalue("kube_clusters")
        path = clusters[0].kubeconfig_path
    return KubeTarget.from_kubeconfig(path.read_text(), base_dir=path.parent)


def manifests(namespace: str) -> list[dict[str, Any]]:
    mark = ownership_marks(namespace, "web-deployment")
    return [
        mark(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "web-config", "namespace": namespace},
                "data": {"mode": "prod"},
            }
        ),
        mark(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                    },
                },
            }
        ),
    ]


async def test_apply_creates_namespace_and_objects_owned_by_foot(
    kube_clusters: KubeClusters,
) -> None:
    namespace = f"apply-{uuid.uuid4().hex[:8]}"
    async with KubeClient(target(kube_clusters)) as kube:
        applier = MemberApplier(kube)
        statuses = await applier.apply_all(manifests(namespace))
        assert [(s.kind, s.applied, s.conflict, s.error) for s in statuses] == [
            ("ConfigMap", True, None, None),
            ("Deployment", True, None, None),
        ]
        assert statuses[1].health == "Progressing", "nothing reported ready replicas yet"
        namespace_obj = await kube.get(f"/api/v1/namespaces/{namespace}")
        assert namespace_obj["metadata"]["labels"][MANAGED_BY_LABEL] == "foot"
        deployment = await kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        managers = {e["manager"] for e in deployment["metadata"]["managedFields"]}
        assert managers == {"foot"}
        assert deployment["spec"]["replicas"] == 2
        # Re-applying what is already FOOT's costs one request per manifest.
        before = applier.requests
        await applier.apply_all(manifests(namespace))
        assert applier.requests - before == 2
        # A simulated kubelet writes readiness through the status subresource.
        generation = deployment["metadata"]["generation"]
        await kube.merge_patch(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/web/status",
            {
                "status": {
                    "observedGeneration": generation,
                    "replicas": 2,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                    "availableReplicas": 2,
                }
            },
        )
        observed = await applier.observe(manifests(namespace)[1])
        assert observed is not None
        base = ManifestStatus(api_version="apps/v1", kind="Deployment", name="web")
        healthy = observed_status(base, observed)
        assert (healthy.health, healthy.replicas, healthy.ready_replicas) == ("Healthy", 2, 2)
        # Removal deletes FOOT's objects.
        for manifest in manifests(namespace):
            assert await applier.remove(manifest)
        with pytest.raises(KubeNotFoundError):
            await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/web-config")
        await kube.delete(f"/api/v1/namespaces/{namespace}")


async def test_abort_leaves_a_foreign_object_and_overwrite_takes_it(
    kube_clusters: KubeClusters,
) -> None:
    namespace = f"conflict-{uuid.uuid4().hex[:8]}"
    path = f"/api/v1/namespaces/{namespace}/configmaps/web-config"
    async with KubeClient(target(kube_clusters)) as kube:
        await kube.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
        await kube.create(
            f"/api/v1/namespaces/{namespace}/configmaps",
            {"metadata": {"name": "web-config"}, "data": {"mode": "theirs"}},
        )
        config = manifests(namespace)[0]
        aborted = await MemberApplier(kube).apply(config, "Abort")
        assert not aborted.applied
        assert aborted.conflict is not None
        assert "was not created by FOOT" in aborted.conflict
        untouched = await kube.get(path)
        assert untouched["data"] == {"mode": "theirs"}
        assert MANAGED_BY_LABEL not in (untouched["metadata"].get("labels") or {})
        assert not await MemberApplier(kube).remove(config), "removal leaves foreign objects"
        assert (await kube.get(path))["data"] == {"mode": "theirs"}
        taken = await MemberApplier(kube).apply(config, "Overwrite")
        assert taken.applied
        assert taken.conflict is None
        owned = await kube.get(path)
        assert owned["data"] == {"mode": "prod"}
        assert owned["metadata"]["labels"][MANAGED_BY_LABEL] == "foot"
        await kube.delete(f"/api/v1/namespaces/{namespace}")


async def test_a_refused_manifest_is_reported_and_the_others_applied(
    kube_clusters: KubeClusters,
) -> None:
    namespace = f"refused-{uuid.uuid4().hex[:8]}"
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "Bad_Name", "namespace": namespace},
    }
    unknown = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": namespace},
    }
    async with KubeClient(target(kube_clusters)) as kube:
        statuses = await MemberApplier(kube).apply_all([bad, unknown, *manifests(namespace)])
        assert statuses[0].error is not None
        assert "422" in statuses[0].error
        assert statuses[1].error == "example.com/v1/Widget is not served by the member cluster"
        assert [s.applied for s in statuses] == [False, False, True, True]
        await kube.delete(f"/api/v1/namespaces/{namespace}")


async def test_the_member_decides_ownership_atomically_in_one_request_for_a_new_object(
    member: KubeTarget,
) -> None:
    """A new object costs one request (a create-only apply); an existing one is never changed
    by that request, whoever owns it; FOOT's own object unknown to this applier (a restarted
    dispatcher) is read and applied; a foreign one is left alone under Abort."""
    namespace = f"owner-{uuid.uuid4().hex[:8]}"
    mark = ownership_marks(namespace, "owners")

    def config(name: str, value: str) -> dict[str, Any]:
        return mark(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace},
                "data": {"value": value},
            }
        )

    async with KubeClient(member) as kube:
        first = MemberApplier(kube)
        assert (await first.apply(config("warm", "1"))).applied  # discovery, namespace
        before = first.requests
        assert (await first.apply(config("new", "1"))).applied
        assert first.requests - before == 1, "a new object: one request"
        # The create-only precondition never changes an existing object.
        ours = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/new")
        with pytest.raises(KubeConflictError):
            await kube.apply(
                f"/api/v1/namespaces/{namespace}/configmaps/new",
                {**config("new", "2"), "metadata": {**config("new", "2")["metadata"],
                 "resourceVersion": CREATE_ONLY_VERSION}},
                field_manager="foot",
                force=True,
            )  # fmt: skip
        unchanged = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/new")
        assert unchanged["metadata"]["resourceVersion"] == ours["metadata"]["resourceVersion"]
        assert unchanged["data"] == {"value": "1"}
        # A restarted dispatcher does not know the object is FOOT's: read, then applied.
        restarted = MemberApplier(kube)
        assert (await restarted.apply(config("new", "3"))).applied
        taken = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/new")
        assert taken["data"] == {"value": "3"}
        # Someone else's object: untouched under Abort.
        created = await kube.create(
            f"/api/v1/namespaces/{namespace}/configmaps",
            {"metadata": {"name": "theirs"}, "data": {"value": "theirs"}},
        )
        aborted = await restarted.apply(config("theirs", "foot"))
        assert not aborted.applied
        assert aborted.conflict is not None
        foreign = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/theirs")
        assert foreign["data"] == {"value": "theirs"}
        assert MANAGED_BY_LABEL not in (foreign["metadata"].get("labels") or {})
        assert foreign["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        await kube.delete(f"/api/v1/namespaces/{namespace}")

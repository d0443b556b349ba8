"""Member objects as tests and benchmarks read them as the admin, and the kubelet's part played
for members that run none: Deployment readiness written through the status subresource, so
that FOOT sees replicas become ready as it would in a real cluster."""

from __future__ import annotations

from typing import Any

from foot.kube import KubeClient
from foot.kube.errors import KubeNotFoundError


async def object_or_none(kube: KubeClient, path: str) -> dict[str, Any] | None:
    """The object at `path` in the member; None while it is not there."""
    try:
        found = await kube.get(path)
    except KubeNotFoundError:
        return None
    return found if isinstance(found, dict) else None


async def report_deployment_ready(
    kube: KubeClient, deployment_path: str, ready: int | None = None
) -> bool:
    """Report `ready` of the Deployment's replicas ready (all of them unless `ready` says
    otherwise), at its current generation; False while the Deployment is not there yet."""
    found = await object_or_none(kube, deployment_path)
    if found is None:
        return False
    replicas = found["spec"]["replicas"]
    ready = replicas if ready is None else ready
    await kube.merge_patch(
        deployment_path + "/status",
        {
            "status": {
                "observedGeneration": found["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
        },
    )
    return True

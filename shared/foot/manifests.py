"""FOOT's marks on the objects it applies into members, and what a member's copy of an object
says back (pure: no I/O).

Push delivery (the dispatcher, through `foot.kube.apply`) and pull delivery (the agent) apply
the same way, and the dispatcher's pure core renders manifests with the same marks, so the
ownership label and annotation, a manifest's identity and the status read from a member's
object live here, below the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from foot.kinds.works import ManifestStatus
from foot.object_health import interpret

FIELD_MANAGER = "foot"
MANAGED_BY_LABEL = "foot.dev/managed-by"
MANAGED_BY_VALUE = "foot"
BINDING_ANNOTATION = "foot.dev/binding"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
"""Label selector of everything FOOT manages in a member."""
Manifest = dict[str, Any]
ConflictResolution = Literal["Abort", "Overwrite"]


def ownership_marks(namespace: str | None, binding: str) -> Callable[[Manifest], Manifest]:
    """A function adding FOOT's ownership label and binding annotation to a manifest."""
    annotation = f"{namespace or ''}/{binding}"

    def mark(manifest: Manifest) -> Manifest:
        metadata = dict(manifest.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY_VALUE}
        metadata["annotations"] = {
            **(metadata.get("annotations") or {}),
            BINDING_ANNOTATION: annotation,
        }
        return {**manifest, "metadata": metadata}

    return mark


def is_managed(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE)


def identity(manifest: Mapping[str, Any]) -> tuple[str, str, str | None, str]:
    """(apiVersion, kind, namespace, name) of a manifest."""
    metadata = manifest.get("metadata") or {}
    return (
        str(manifest.get("apiVersion")),
        str(manifest.get("kind")),
        metadata.get("namespace"),
        str(metadata.get("name")),
    )


def describe(manifest: Mapping[str, Any]) -> str:
    _, kind, namespace, name = identity(manifest)
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def observed_status(base: ManifestStatus, obj: Mapping[str, Any], **also: Any) -> ManifestStatus:
    """`base` with what the member's object says: health, replicas, Service endpoints (and
    the fields in `also`)."""
    observed = interpret(obj)
    return base.model_copy(
        update={
            "health": observed.health,
            "replicas": observed.replicas,
            "ready_replicas": observed.ready_replicas,
            "service": observed.service,
            "observed_generation": observed.observed_generation,
            **also,
        }
    )

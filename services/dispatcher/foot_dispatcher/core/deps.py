"""propagateDeps: what a workload references and must therefore follow it (pure).

The ConfigMaps, Secrets, ServiceAccounts and PersistentVolumeClaims named in the pod
template: volumes (configMap, secret, persistentVolumeClaim, projected sources),
env valueFrom / envFrom, imagePullSecrets and serviceAccountName.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from foot_dispatcher.core.overriders import POD_SPEC_PATHS, Manifest
from foot_dispatcher.core.pointer import OverrideError, get_pointer

DEPENDENCY_ORDER = ("ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim")
"""Dependencies are applied before the workload, in this order of kinds, then by name."""
DEPENDENCY_API_VERSION = "v1"


def _names(items: Iterable[Any], *path: str) -> Iterable[str]:
    for item in items:
        node = item
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            yield node


def dependencies(manifest: Manifest) -> list[tuple[str, str]]:
    """(kind, name) of every object the workload's pod template references, in apply order.
    Objects other than pod-template workloads reference nothing."""
    path = POD_SPEC_PATHS.get(str(manifest.get("kind")))
    if path is None:
        return []
    try:
        spec = get_pointer(manifest, path)
    except OverrideError:
        return []
    if not isinstance(spec, dict):
        return []
    found: set[tuple[str, str]] = set()
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    found |= {("ConfigMap", n) for n in _names(volumes, "configMap", "name")}
    found |= {("Secret", n) for n in _names(volumes, "secret", "secretName")}
    found |= {
        ("PersistentVolumeClaim", n) for n in _names(volumes, "persistentVolumeClaim", "claimName")
    }
    for volume in volumes:
        sources = (volume.get("projected") or {}).get("sources") or []
        found |= {("ConfigMap", n) for n in _names(sources, "configMap", "name")}
        found |= {("Secret", n) for n in _names(sources, "secret", "name")}
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]
    for container in containers:
        env = [e for e in container.get("env") or [] if isinstance(e, dict)]
        found |= {("ConfigMap", n) for n in _names(env, "valueFrom", "configMapKeyRef", "name")}
        found |= {("Secret", n) for n in _names(env, "valueFrom", "secretKeyRef", "name")}
        env_from = [e for e in container.get("envFrom") or [] if isinstance(e, dict)]
        found |= {("ConfigMap", n) for n in _names(env_from, "configMapRef", "name")}
        found |= {("Secret", n) for n in _names(env_from, "secretRef", "name")}
    pull = [p for p in spec.get("imagePullSecrets") or [] if isinstance(p, dict)]
    found |= {("Secret", n) for n in _names(pull, "name")}
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(account, str) and account and account != "default":
        found.add(("ServiceAccount", account))
    return sorted(found, key=lambda item: (DEPENDENCY_ORDER.index(item[0]), item[1]))

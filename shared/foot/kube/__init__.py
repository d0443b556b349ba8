"""Talking to member clusters' API servers: credentials, a thin REST client, typed errors."""

from foot.kube.client import KubeClient, KubeResponse
from foot.kube.errors import (
    KubeApiError,
    KubeConflictError,
    KubeNotFoundError,
    KubeUnavailableError,
)
from foot.kube.target import KubeconfigError, KubeTarget

__all__ = [
    "KubeApiError",
    "KubeClient",
    "KubeConflictError",
    "KubeNotFoundError",
    "KubeResponse",
    "KubeTarget",
    "KubeUnavailableError",
    "KubeconfigError",
]

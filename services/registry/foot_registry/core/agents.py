"""Pull registration: the bootstrap credential and the agent's manifests (pure).

`foot cluster register NAME` makes a random bootstrap token, keeps only the agent
key derived from it (sealed, in the `cluster-agents` bucket), and prints the
manifests below; the token is in the Secret and nowhere else. The record
(`AgentRecord`) is defined in the common library: the dispatcher reads it too, for the key
that seals the works channel (`foot.agent_channel`).
"""

from __future__ import annotations

import secrets
from typing import Any

import yaml

from foot.agent_channel import AgentRecord as AgentRecord  # noqa: PLC0414 - re-exported

AGENT_NAMESPACE = "foot-agent"
AGENT_NAME = "foot-agent"
BOOTSTRAP_TOKEN_BYTES = 32


def new_bootstrap_token() -> str:
    return secrets.token_urlsafe(BOOTSTRAP_TOKEN_BYTES)


AGENT_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["create", "update", "patch", "delete"]},
    {
        "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/version", "/readyz", "/livez"],
        "verbs": ["get"],
    },
]


HUB_MOUNT = "/etc/foot-agent"
"""Where the agent's Secret (bootstrap token, NATS user, NATS CA) is mounted."""
NATS_CREDS_KEY = "nats.creds"
"""The Secret's key (and mounted file) holding the agent's NATS user, fenced to its cluster."""


def agent_manifests(
    *,
    cluster: str,
    nats_url: str,
    bootstrap_token: str,
    nats_creds: str,
    image: str,
    nats_ca_pem: str | None = None,
) -> str:
    """Namespace, ServiceAccount, ClusterRole and binding, Secret, Deployment; the agent
    connects as its own NATS user (`nats_creds`, a `.creds` file mounted from the Secret); with
    `nats_ca_pem`, it verifies the hub's NATS against that CA (mounted from the Secret)."""
    secret_data = {
        "cluster-name": cluster,
        "nats-url": nats_url,
        "bootstrap-token": bootstrap_token,
        NATS_CREDS_KEY: nats_creds,
    }
    mounted = [
        {"key": "bootstrap-token", "path": "bootstrap-token"},
        {"key": NATS_CREDS_KEY, "path": NATS_CREDS_KEY},
    ]
    env = [
        _from_secret("FOOT_AGENT_CLUSTER_NAME", "cluster-name"),
        _from_secret("FOOT_AGENT_NATS_URL", "nats-url"),
        {"name": "FOOT_AGENT_BOOTSTRAP_TOKEN_FILE", "value": f"{HUB_MOUNT}/bootstrap-token"},
        {"name": "FOOT_AGENT_NATS_CREDENTIALS_FILE", "value": f"{HUB_MOUNT}/{NATS_CREDS_KEY}"},
    ]
    if nats_ca_pem is not None:
        secret_data["nats-ca.crt"] = nats_ca_pem
        mounted.append({"key": "nats-ca.crt", "path": "nats-ca.crt"})
        env.append({"name": "FOOT_AGENT_NATS_CA_FILE", "value": f"{HUB_MOUNT}/nats-ca.crt"})
    labels = {"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/managed-by": "foot"}
    role = f"{AGENT_NAMESPACE}:{AGENT_NAME}"
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": AGENT_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": AGENT_NAME, "namespace": AGENT_NAMESPACE, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role, "labels": labels},
            "rules": AGENT_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": AGENT_NAME, "namespace": AGENT_NAMESPACE}
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "foot-agent-hub", "namespace": AGENT_NAMESPACE, "labels": labels},
            "type": "Opaque",
            "stringData": secret_data,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": AGENT_NAME, "namespace": AGENT_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT_NAME}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": AGENT_NAME,
                        "containers": [
                            {
                                "name": "agent",
                                "image": image,
                                "args": ["foot", "agent"],
                                "env": env,
                                "volumeMounts": [
                                    {
                                        "name": "hub",
                                        "mountPath": HUB_MOUNT,
                                        "readOnly": True,
                                    }
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "96Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                        "volumes": [
                            {
                                "name": "hub",
                                "secret": {
                                    "secretName": "foot-agent-hub",
                                    "items": mounted,
                                },
                            }
                        ],
                    },
                },
            },
        },
    ]
    return yaml.safe_dump_all(documents, sort_keys=False)


def _from_secret(variable: str, key: str) -> dict[str, Any]:
    return {
        "name": variable,
        "valueFrom": {"secretKeyRef": {"name": "foot-agent-hub", "key": key}},
    }

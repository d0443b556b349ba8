"""What a push join creates in a member cluster, pure: the objects, in creation order,
and what FOOT makes of objects it finds there.

* Namespace `<ns>` (setting `member_namespace`, default foot-system);
* ServiceAccount `<ns>/foot-controller`;
* ClusterRole `<ns>:foot-controller`: read everything (status, work status), and
  create/update/patch/delete any resource (FOOT applies whatever kinds its policies
  propagate). Narrower than cluster-admin: no `escalate`, `bind` or `impersonate`
  (so FOOT cannot grant itself or others more than this), no `deletecollection`, no
  wildcard verbs, no non-resource URLs beyond discovery, version and health;
* ClusterRoleBinding `<ns>:foot-controller` to the ServiceAccount.

Each object carries the label `cluster.foot.dev/joined-as=<name>`; the ClusterRole
and binding are owned (ownerReferences) by the namespace, so deleting the namespace
removes everything (the member's garbage collector does the cluster-scoped part).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foot.errors import AlreadyExistsError, PermanentError

JOINED_LABEL = "cluster.foot.dev/joined-as"
MANAGED_BY = {"app.kubernetes.io/managed-by": "foot"}
SERVICE_ACCOUNT = "foot-controller"
RBAC = "/apis/rbac.authorization.k8s.io/v1"

CLUSTER_ROLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["*"],
        "resources": ["*"],
        "verbs": ["create", "update", "patch", "delete"],
    },
    {
        "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/version", "/readyz", "/livez"],
        "verbs": ["get"],
    },
]


def role_name(namespace: str) -> str:
    return f"{namespace}:{SERVICE_ACCOUNT}"


@dataclass(frozen=True, slots=True)
class MemberObject:
    what: str
    """For messages: `ServiceAccount foot-system/foot-controller`."""
    collection: str
    """URL path of its collection (POST creates)."""
    name: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.name}"


def member_objects(namespace: str, cluster: str, namespace_uid: str | None) -> list[MemberObject]:
    """The objects of a join, in creation order (pure)."""
    labels = {**MANAGED_BY, JOINED_LABEL: cluster}
    owner = (
        [{"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": namespace_uid}]
        if namespace_uid
        else []
    )
    name = role_name(namespace)
    return [
        MemberObject(
            f"Namespace {namespace}",
            "/api/v1/namespaces",
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": labels},
            },
        ),
        MemberObject(
            f"ServiceAccount {namespace}/{SERVICE_ACCOUNT}",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            SERVICE_ACCOUNT,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
            },
        ),
        MemberObject(
            f"ClusterRole {name}",
            f"{RBAC}/clusterroles",
            name,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": labels, "ownerReferences": owner},
                "rules": CLUSTER_ROLE_RULES,
            },
        ),
        MemberObject(
            f"ClusterRoleBinding {name}",
            f"{RBAC}/clusterrolebindings",
            name,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": labels, "ownerReferences": owner},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}
                ],
            },
        ),
    ]


def _metadata(found: dict[str, Any]) -> dict[str, Any]:
    return found.get("metadata") or {}


def in_the_way(obj: MemberObject, found: dict[str, Any]) -> AlreadyExistsError:
    """Why a join cannot go ahead when `found` already stands where `obj` would be."""
    metadata = _metadata(found)
    joined_as = (metadata.get("labels") or {}).get(JOINED_LABEL)
    if metadata.get("deletionTimestamp"):
        return AlreadyExistsError(
            f"{obj.what} is still being deleted in the member; try again in a moment"
        )
    owner = f"FOOT's cluster {joined_as!r}" if joined_as else "someone else"
    return AlreadyExistsError(
        f"{obj.what} already exists in the member (created by {owner}); "
        f"unjoin that cluster or pick another member_namespace"
    )


def joined_as(found: dict[str, Any] | None, cluster: str) -> bool:
    """Whether an object found in the member was created by the join of `cluster`."""
    labels = _metadata(found or {}).get("labels") or {}
    return found is not None and labels.get(JOINED_LABEL) == cluster


def created_uid(created: dict[str, Any] | None) -> str | None:
    """The uid of an object the member just created (None when it did not say)."""
    return str((created or {}).get("metadata", {}).get("uid") or "") or None


def token_request_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/serviceaccounts/{SERVICE_ACCOUNT}/token"


def token_request(expiration_seconds: int) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration_seconds},
    }


def minted_token(answer: dict[str, Any] | None) -> str:
    token = ((answer or {}).get("status") or {}).get("token")
    if not token:
        raise PermanentError("the member answered the TokenRequest without a token")
    return str(token)

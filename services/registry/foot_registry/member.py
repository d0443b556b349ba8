"""What a push join creates in a member cluster, and creating / removing it.

With the admin credential it is given (and only for the length of the join), the
registry creates:

* Namespace `<ns>` (setting `member_namespace`, default foot-system);
* ServiceAccount `<ns>/foot-controller`;
* ClusterRole `<ns>:foot-controller`: read everything (status, work status), and
  create/update/patch/delete any resource (FOOT applies whatever kinds its policies
  propagate). Narrower than cluster-admin: no `escalate`, `bind` or `impersonate`
  (so FOOT cannot grant itself or others more than this), no `deletecollection`, no
  wildcard verbs, no non-resource URLs beyond discovery, version and health;
* ClusterRoleBinding `<ns>:foot-controller` to the ServiceAccount;

then mints a token for the ServiceAccount (TokenRequest) and checks that it works.
Each object carries the label `cluster.foot.dev/joined-as=<name>`; the ClusterRole
and binding are owned (ownerReferences) by the namespace, so deleting the namespace
removes everything (the member's garbage collector does the cluster-scoped part).

A failure at any step removes, in reverse order, what this join created (never an
object that was there before).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from foot.errors import AlreadyExistsError, FootError, PermanentError, TransportError
from foot.kube import KubeApiError, KubeClient, KubeNotFoundError, KubeUnavailableError
from foot.kube.errors import KubeConflictError

log = logging.getLogger(__name__)

JOINED_LABEL = "cluster.foot.dev/joined-as"
MANAGED_BY = {"app.kubernetes.io/managed-by": "foot"}
SERVICE_ACCOUNT = "foot-controller"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
TOKEN_CHECK_SECONDS = 10.0
UNAUTHORIZED = 401
FORBIDDEN = 403

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


def explain(exc: FootError, server: str) -> FootError:
    """A member's answer as an error a person understands (the cause stays chained)."""
    if isinstance(exc, KubeUnavailableError):
        error: FootError = TransportError(f"cannot reach the cluster at {server}: {exc.message}")
    elif isinstance(exc, KubeApiError) and exc.status == UNAUTHORIZED:
        error = PermanentError(
            f"the cluster at {server} refused the kubeconfig's credentials (401 Unauthorized)"
        )
    elif isinstance(exc, KubeApiError) and exc.status == FORBIDDEN:
        error = PermanentError(
            f"the kubeconfig's user may not set FOOT up in {server} (403 Forbidden: "
            f"{exc.body.get('message', '') if isinstance(exc.body, dict) else ''}); "
            "joining needs cluster-admin rights"
        )
    else:
        return exc
    error.__cause__ = exc
    return error


class MemberSetup:
    """Creates (join) or removes (unjoin, rollback) FOOT's objects in one member."""

    def __init__(self, kube: KubeClient, namespace: str, cluster: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.cluster = cluster
        self.created: list[MemberObject] = []

    async def _existing(self, obj: MemberObject) -> dict[str, Any] | None:
        try:
            found = await self.kube.get(obj.path)
        except KubeNotFoundError:
            return None
        return found if isinstance(found, dict) else None

    async def preflight(self) -> None:
        """Reachable, credentials accepted, and nothing of another join in the way."""
        for obj in member_objects(self.namespace, self.cluster, None):
            found = await self._existing(obj)
            if found is None:
                continue
            terminating = (found.get("metadata") or {}).get("deletionTimestamp")
            joined_as = ((found.get("metadata") or {}).get("labels") or {}).get(JOINED_LABEL)
            if terminating:
                raise AlreadyExistsError(
                    f"{obj.what} is still being deleted in the member; try again in a moment"
                )
            owner = f"FOOT's cluster {joined_as!r}" if joined_as else "someone else"
            raise AlreadyExistsError(
                f"{obj.what} already exists in the member (created by {owner}); "
                f"unjoin that cluster or pick another member_namespace"
            )

    async def create_all(self) -> None:
        namespace_uid: str | None = None
        for index in range(len(member_objects(self.namespace, self.cluster, None))):
            obj = member_objects(self.namespace, self.cluster, namespace_uid)[index]
            try:
                created = await self.kube.create(obj.collection, obj.body)
            except KubeConflictError as exc:
                raise AlreadyExistsError(
                    f"{obj.what} appeared in the member while joining; nothing was changed"
                ) from exc
            self.created.append(obj)
            log.info("created %s in the member", obj.what, extra={"cluster": self.cluster})
            if index == 0:
                namespace_uid = str((created or {}).get("metadata", {}).get("uid") or "") or None

    async def mint_token(self, expiration_seconds: int) -> str:
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{SERVICE_ACCOUNT}/token"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        answer = await self.kube.create(path, body)
        token = ((answer or {}).get("status") or {}).get("token")
        if not token:
            raise PermanentError("the member answered the TokenRequest without a token")
        return str(token)

    async def rollback(self) -> list[str]:
        """Delete what this join created, newest first; returns what could not be removed."""
        left: list[str] = []
        for obj in reversed(self.created):
            try:
                await self.kube.delete(obj.path)
                log.info("removed %s from the member", obj.what, extra={"cluster": self.cluster})
            except KubeNotFoundError:
                pass
            except FootError as exc:
                log.warning(
                    "could not remove %s from the member: %s",
                    obj.what,
                    exc,
                    extra={"cluster": self.cluster},
                )
                left.append(obj.what)
        self.created.clear()
        return left

    async def remove_all(self) -> list[str]:
        """Unjoin with an admin credential: delete every object of the join that carries
        this cluster's label. Returns what could not be removed."""
        self.created = [
            obj
            for obj in member_objects(self.namespace, self.cluster, None)
            if await self._ours(obj)
        ]
        return await self.rollback()

    async def _ours(self, obj: MemberObject) -> bool:
        found = await self._existing(obj)
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        return found is not None and labels.get(JOINED_LABEL) == self.cluster


async def check_token_works(kube: KubeClient) -> None:
    """FOOT's own token can read nodes (RBAC caches may take a moment after the binding)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOKEN_CHECK_SECONDS
    while True:
        try:
            await kube.get("/api/v1/nodes", limit="1")
        except KubeApiError as exc:
            if exc.status not in (UNAUTHORIZED, FORBIDDEN) or loop.time() > deadline:
                raise PermanentError(
                    f"the token minted for FOOT does not work: {exc.status} {exc.reason}"
                ) from exc
            await asyncio.sleep(0.1)
        else:
            return


async def delete_namespace(kube: KubeClient, namespace: str) -> None:
    """Unjoin with FOOT's own token: deleting the namespace takes the ServiceAccount with
    it, and the garbage collector the ClusterRole and binding it owns."""
    try:
        await kube.request(
            "DELETE",
            f"/api/v1/namespaces/{namespace}",
            body={"propagationPolicy": "Background"},
        )
    except KubeNotFoundError:
        return

"""Creating and removing FOOT's objects in a push member (what they are:
`foot_registry.core.member_plan`).

With the admin credential it is given (and only for the length of the join), the
registry creates the plan's objects, then mints a token for the ServiceAccount
(TokenRequest) and checks that it works.

A failure at any step removes, in reverse order, what this join created (never an
object that was there before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from foot.errors import AlreadyExistsError, FootError, PermanentError, TransportError
from foot.kube import (
    KubeApiError,
    KubeClient,
    KubeNotFoundError,
    KubeTarget,
    KubeUnavailableError,
)
from foot.kube.errors import KubeConflictError
from foot_registry.core.member_plan import (
    SERVICE_ACCOUNT,
    MemberObject,
    created_uid,
    in_the_way,
    joined_as,
    member_objects,
    minted_token,
    token_request,
    token_request_path,
)

log = logging.getLogger(__name__)

KubeFactory = Callable[[KubeTarget, float], KubeClient]
"""How the registry makes a client for a member: its target and the request timeout."""
TOKEN_CHECK_SECONDS = 10.0
UNAUTHORIZED = 401
FORBIDDEN = 403


GIVEN_CREDENTIAL_HINT = (
    "for a cluster without it, join with --use-given-credential (useGivenCredential in "
    "the API): FOOT then keeps the kubeconfig's own token"
)


def missing_token_request(exc: KubeNotFoundError) -> str:
    """Why a TokenRequest was answered 404: the ServiceAccount is gone (deleted while
    joining), or the API server has no TokenRequest API at all."""
    details = exc.body.get("details") if isinstance(exc.body, dict) else None
    if isinstance(details, dict) and details.get("kind") == "serviceaccounts":
        return f"the ServiceAccount is gone from the member ({exc.status} {exc.reason})"
    return (
        f"the member's API server has no TokenRequest API ({exc.status} {exc.reason}); "
        f"{GIVEN_CREDENTIAL_HINT}"
    )


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
            if found is not None:
                raise in_the_way(obj, found)

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
            except KubeNotFoundError as exc:
                raise PermanentError(
                    f"creating {obj.what} in the member failed: its API server does not serve "
                    f"{obj.collection} ({exc.status} {exc.reason}); {GIVEN_CREDENTIAL_HINT}"
                ) from exc
            self.created.append(obj)
            log.info("created %s in the member", obj.what, extra={"cluster": self.cluster})
            if index == 0:
                namespace_uid = created_uid(created)

    async def mint_token(self, expiration_seconds: int) -> str:
        """A token for FOOT's ServiceAccount (TokenRequest); a member whose API server has
        no TokenRequest API (the simulator, say) is told apart, with what to do instead."""
        try:
            answer = await self.kube.create(
                token_request_path(self.namespace), token_request(expiration_seconds)
            )
        except KubeNotFoundError as exc:
            raise PermanentError(
                f"minting a token for ServiceAccount {self.namespace}/{SERVICE_ACCOUNT} "
                f"failed: {missing_token_request(exc)}"
            ) from exc
        return minted_token(answer)

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
        return joined_as(await self._existing(obj), self.cluster)


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

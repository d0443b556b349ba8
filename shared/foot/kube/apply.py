"""Applying a work's manifests to one member cluster: the code push delivery (the dispatcher)
and pull delivery (the agent inside the member) share.

* server-side apply with field manager `foot` (forced: FOOT owns the fields it sets);
* the namespace is created first when it is missing;
* ownership: every object FOOT applies carries the label `foot.dev/managed-by: foot` (and the
  annotation `foot.dev/binding: <namespace>/<binding>`). An object that exists without the
  label was not created by FOOT: with conflictResolution Abort it is left untouched and the
  conflict reported; with Overwrite it is taken over (and labelled). Ownership is decided by
  the member itself, atomically, in one request for a new object: the first apply of an
  object not known to be FOOT's carries a `resourceVersion` precondition no stored object can
  have (`CREATE_ONLY_VERSION`), so the API server creates the object when it is absent and
  answers 409 without changing anything when it exists. Only then is the object read; a
  FOOT-managed one is applied with the resourceVersion just read as precondition (so nothing
  slips in between the read and the write), a foreign one is left alone under Abort;
* removal deletes only objects FOOT manages;
* errors: `KubeUnavailableError` (429, 5xx, timeouts, refused) propagates so the caller retries
  with backoff; a refusal of one manifest (`KubeApiError`, e.g. 422) is reported for that
  manifest and the others are still applied.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from foot.errors import PermanentError
from foot.kinds.works import ManifestStatus
from foot.kube.client import KubeClient
from foot.kube.errors import (
    CONFLICT,
    KubeApiError,
    KubeConflictError,
    KubeNotFoundError,
    KubeUnavailableError,
)
from foot.manifests import (
    FIELD_MANAGER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    ConflictResolution,
    Manifest,
    describe,
    identity,
    is_managed,
    observed_status,
)

log = logging.getLogger(__name__)

CREATE_ONLY_VERSION = "9223372036854775807"
"""A resourceVersion no stored object has (the largest int64; etcd revisions count up from 1):
as the precondition of a server-side apply it means "create, or change nothing" (a create
ignores the field, an update of an existing object fails with 409 Conflict)."""
PRECONDITION_ATTEMPTS = 3
"""Read-then-apply rounds for an existing object that keeps changing under us."""


class UnknownKindError(PermanentError):
    """The member cluster does not serve the manifest's apiVersion/kind."""


@dataclass(frozen=True, slots=True)
class ApiResource:
    plural: str
    namespaced: bool


class MemberApplier:
    """Applies and removes manifests in one member cluster through one `KubeClient`.

    Keeps what it learns (discovery, namespaces that exist, objects known to be FOOT's) so
    that re-applying costs one request per manifest.
    """

    def __init__(self, kube: KubeClient, *, field_manager: str = FIELD_MANAGER) -> None:
        self.kube = kube
        self.field_manager = field_manager
        self._resources: dict[str, dict[str, ApiResource]] = {}
        self._namespaces: set[str] = set()
        self._ours: set[str] = set()
        self.requests = 0

    # ---- discovery ---------------------------------------------------------------------

    async def resource(self, api_version: str, kind: str) -> ApiResource:
        served = self._resources.get(api_version)
        if served is None:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            self.requests += 1
            try:
                body = await self.kube.get(path)
            except KubeNotFoundError:
                body = {"resources": []}
            served = {
                str(r["kind"]): ApiResource(str(r["name"]), bool(r.get("namespaced")))
                for r in (body or {}).get("resources") or []
                if "/" not in str(r.get("name", ""))
            }
            self._resources[api_version] = served
        found = served.get(kind)
        if found is None:
            raise UnknownKindError(f"{api_version}/{kind} is not served by the member cluster")
        return found

    async def path(self, manifest: Mapping[str, Any]) -> str:
        api_version, kind, namespace, name = identity(manifest)
        resource = await self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if resource.namespaced:
            return f"{base}/namespaces/{namespace or 'default'}/{resource.plural}/{name}"
        return f"{base}/{resource.plural}/{name}"

    async def collection_path(self, api_version: str, kind: str) -> str:
        resource = await self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return f"{base}/{resource.plural}"

    # ---- namespaces --------------------------------------------------------------------

    async def ensure_namespace(self, namespace: str) -> None:
        if namespace in self._namespaces:
            return
        self.requests += 1
        with contextlib.suppress(KubeConflictError):  # already there
            await self.kube.create(
                "/api/v1/namespaces",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
                },
            )
        self._namespaces.add(namespace)

    # ---- apply -------------------------------------------------------------------------

    async def apply(
        self, manifest: Manifest, conflict_resolution: ConflictResolution = "Abort"
    ) -> ManifestStatus:
        """Apply one manifest; the returned status says applied, conflict or error, with the
        object's health as the member answered it. Raises only retryable errors."""
        api_version, kind, namespace, name = identity(manifest)
        status = ManifestStatus(api_version=api_version, kind=kind, namespace=namespace, name=name)
        try:
            path = await self.path(manifest)
            resource = await self.resource(api_version, kind)
            if resource.namespaced:
                await self.ensure_namespace(namespace or "default")
            if path in self._ours or conflict_resolution == "Overwrite":
                applied = await self._apply(path, manifest)
            else:
                applied = await self._apply_if_ours(path, manifest)
                if applied is None:
                    return status.model_copy(
                        update={
                            "conflict": f"{describe(manifest)} exists in the member and was "
                            "not created by FOOT; conflictResolution is Abort, so it is left "
                            "untouched"
                        }
                    )
        except (KubeApiError, UnknownKindError) as exc:
            if isinstance(exc, KubeNotFoundError) and namespace:
                self._namespaces.discard(namespace)  # deleted under us: create it next time
            return status.model_copy(update={"error": str(exc.message)})
        self._ours.add(path)
        return observed_status(status, applied, applied=True)

    async def _apply(
        self, path: str, manifest: Manifest, *, resource_version: str | None = None
    ) -> Any:
        if resource_version is not None:
            metadata = {**(manifest.get("metadata") or {}), "resourceVersion": resource_version}
            manifest = {**manifest, "metadata": metadata}
        self.requests += 1
        return await self.kube.apply(path, manifest, field_manager=self.field_manager, force=True)

    async def _apply_if_ours(self, path: str, manifest: Manifest) -> Any:
        """Apply unless the object exists and FOOT does not manage it (then None)."""
        for _ in range(PRECONDITION_ATTEMPTS):
            with contextlib.suppress(KubeConflictError):  # it exists
                return await self._apply(path, manifest, resource_version=CREATE_ONLY_VERSION)
            self.requests += 1
            try:
                existing = await self.kube.get(path)
            except KubeNotFoundError:
                continue  # deleted in between: try creating again
            if not is_managed(existing):
                return None
            version = str((existing.get("metadata") or {}).get("resourceVersion") or "")
            with contextlib.suppress(KubeConflictError):  # changed since the read: again
                return await self._apply(path, manifest, resource_version=version or None)
        raise KubeUnavailableError(
            self.kube.target.server,
            f"{describe(manifest)} kept changing while being applied",
            status=CONFLICT,
        )

    async def apply_all(
        self, manifests: Sequence[Manifest], conflict_resolution: ConflictResolution = "Abort"
    ) -> list[ManifestStatus]:
        return [await self.apply(m, conflict_resolution) for m in manifests]

    # ---- observe -----------------------------------------------------------------------

    async def observe(self, manifest: Manifest) -> dict[str, Any] | None:
        """The member's copy of the object, or None."""
        self.requests += 1
        try:
            body = await self.kube.get(await self.path(manifest))
        except KubeNotFoundError:
            return None
        return body if isinstance(body, dict) else None

    # ---- remove ------------------------------------------------------------------------

    async def remove(self, manifest: Manifest) -> bool:
        """Delete the object if FOOT manages it; True when it is gone (or was never there),
        False when it is someone else's and was left alone. Raises only retryable errors."""
        try:
            path = await self.path(manifest)
        except UnknownKindError:
            return True
        self.requests += 1
        try:
            existing = await self.kube.get(path)
        except KubeNotFoundError:
            self._ours.discard(path)
            return True
        if not is_managed(existing):
            return False
        self.requests += 1
        with contextlib.suppress(KubeNotFoundError):
            await self.kube.delete(
                path,
                {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        self._ours.discard(path)
        return True

"""Dispatch intents: what is applied to members before its work is stored.

A push work is stored once, with its first apply's answer. So that a dispatcher killed
between the apply and that write leaves nothing orphaned, the binding's intent (each
cluster and the objects being applied there) is stored in `dispatch-intents` before any of
its staged works is applied, and deleted once none waits to be stored. At start the intents
of a previous life are read back; the next render of their binding removes what they name
that no work of the binding has any more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from foot.bus import KvStore
from foot.errors import ConflictError
from foot.kinds.clusters import Cluster
from foot.kinds.works import Work
from foot.manifests import identity
from foot_dispatcher.core.render import work_key
from foot_dispatcher.members import Members
from foot_dispatcher.works import Identity, WorksCache

log = logging.getLogger(__name__)

ClusterObjects = dict[str, list[Identity]]
"""Cluster -> objects an intent names there."""


def _identity(value: list[Any]) -> Identity:
    api_version, kind, namespace, name = value
    return (str(api_version), str(kind), namespace, str(name))


def _identity_manifest(ident: Identity) -> dict[str, Any]:
    """The least manifest naming an object (enough to remove it)."""
    api_version, kind, namespace, name = ident
    metadata = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


class DispatchIntents:
    """The intents this process stored, and the ones a previous life left."""

    def __init__(
        self,
        bucket: KvStore,
        works: WorksCache,
        clusters: Mapping[str, Cluster],
        members: Members,
    ) -> None:
        self._bucket = bucket
        self._works = works
        self._clusters = clusters
        self._members = members
        self._intents: dict[str, tuple[int, ClusterObjects]] = {}
        """Binding key -> (revision, cluster -> objects) of the intent this process stored."""
        self._recovered: dict[str, ClusterObjects] = {}
        """Intents found at start (a previous life's): checked for orphans at the next render."""

    async def recover(self) -> None:
        """Read a previous life's intents (before any render can store a new one)."""
        for entry in await self._bucket.entries():
            if entry.value is None:
                continue
            document = orjson.loads(entry.value)
            self._recovered[entry.key] = {
                cluster: [_identity(i) for i in objects]
                for cluster, objects in (document.get("clusters") or {}).items()
            }
            self._intents[entry.key] = (entry.revision, self._recovered[entry.key])

    def recovered_bindings(self) -> list[str]:
        """Keys of the bindings whose previous life's intent is still to be checked."""
        return sorted(self._recovered)

    async def cover(self, binding_key: str, works: Iterable[Work]) -> None:
        """Store the binding's intent so that it names every object of `works` (and whatever
        it already named), before any of them is applied."""
        revision, clusters = self._intents.get(binding_key, (0, {}))
        merged = {cluster: list(objects) for cluster, objects in clusters.items()}
        grown = revision == 0
        for work in works:
            objects = merged.setdefault(work.spec.cluster, [])
            for manifest in work.spec.manifests:
                ident = identity(manifest)
                if ident not in objects:
                    objects.append(ident)
                    grown = True
        if not grown:
            return
        body = orjson.dumps({"binding": binding_key, "clusters": merged})
        self._intents[binding_key] = (await self._bucket.put(binding_key, body), merged)

    async def sweep(self, binding_key: str) -> None:
        """After a restart: remove what a previous life applied for this binding (its intent
        names it) where neither a stored nor a staged work of the binding has it any more."""
        recovered = self._recovered.get(binding_key)
        if recovered is None:
            return
        for cluster, objects in sorted(recovered.items()):
            key = work_key(cluster, binding_key)
            keep = self._works.identities(key)
            left = [ident for ident in objects if ident not in keep]
            target = self._clusters.get(cluster)
            if not left or target is None or target.spec.sync_mode == "Pull":
                continue  # pull works are stored before they are delivered
            member = await self._members.get(cluster)
            for ident in left:
                manifest = _identity_manifest(ident)
                if self._works.wanted_elsewhere(key, cluster, manifest):
                    continue
                with member.guarded():
                    await member.limiter.acquire()
                    removed = await member.applier.remove(manifest)
                if removed:
                    log.info("removed %s from %s: applied for %s, no longer wanted there",
                             ident, cluster, binding_key)  # fmt: skip
        del self._recovered[binding_key]

    async def uncover(self, binding_key: str) -> None:
        """Delete the binding's intent once nothing it names waits to be stored."""
        if self._works.has_staged(binding_key) or binding_key in self._recovered:
            return
        intent = self._intents.pop(binding_key, None)
        if intent is None:
            return
        try:
            await self._bucket.delete(binding_key, revision=intent[0])
        except ConflictError:
            log.debug("intent of %s was stored again meanwhile: kept", binding_key)

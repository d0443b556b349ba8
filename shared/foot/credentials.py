"""Where FOOT keeps the credentials it reaches member clusters with (the model is
`foot.cluster_credential`; this module is the KV-backed store, above the bus layer).

The registry is the only writer of the `cluster-credentials` bucket; the
dispatcher (and anyone else applying into members) reads it through
`CredentialStore.get`. Values are sealed with `SecretBox`; the token never
appears in a repr, a log line or the bucket in plain text.
"""

from __future__ import annotations

import orjson

from foot.bus.kv import KvStore
from foot.catalog import CLUSTER_CREDENTIALS
from foot.cluster_credential import ClusterCredential
from foot.errors import NotFoundError
from foot.secrets import SecretBox


def _context(cluster: str) -> str:
    return f"{CLUSTER_CREDENTIALS.name}/{cluster}"


class CredentialStore:
    """Sealed cluster credentials in their bucket."""

    def __init__(self, kv: KvStore, box: SecretBox) -> None:
        self._kv = kv
        self._box = box

    async def put(self, credential: ClusterCredential) -> int:
        """Store (or replace) a credential; registry only."""
        document = credential.model_dump(mode="json", by_alias=True)
        document["token"] = credential.token.get_secret_value()
        sealed = self._box.seal(orjson.dumps(document), context=_context(credential.cluster))
        return await self._kv.put(credential.cluster, sealed)

    async def get(self, cluster: str) -> ClusterCredential:
        """The credential of `cluster`, or NotFoundError."""
        entry = await self._kv.get(cluster)
        if entry is None or entry.value is None:
            raise NotFoundError(f"no credential stored for cluster {cluster!r}")
        opened = self._box.open_if_sealed(entry.value, context=_context(cluster))
        return ClusterCredential.model_validate(orjson.loads(opened))

    async def delete(self, cluster: str) -> None:
        """Forget a credential; registry only."""
        await self._kv.delete(cluster)

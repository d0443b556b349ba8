"""Deterministic Ceph names for a claim: the same claim always maps to the same objects.

Names carry a piece of the claim's uid, so a claim deleted and created again
never reuses (and never trips over) the objects of its predecessor, and a
provisioning step repeated after a crash finds what it created before instead
of creating a duplicate.
"""

from __future__ import annotations

import hashlib
import re

from foot.objects import FrozenModel

NAME_PREFIX = "foot"
_UNSAFE = re.compile(r"[^a-z0-9-]+")
BUCKET_NAME_MAX = 63
BASE_MAX = 40


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")


class CephNames(FrozenModel):
    """Every Ceph name a claim uses."""

    base: str
    """`foot-<namespace>-<name>-<uid8>`, shortened with a hash when long."""
    crush_rule: str
    pool: str
    image: str
    subvolume: str
    bucket: str
    rgw_user: str

    def client(self, cluster: str) -> str:
        """cephx entity of one member cluster (`client.` + this)."""
        return f"{self.base}.{_safe(cluster)}"

    def subuser(self, cluster: str) -> str:
        """RGW subuser (`user:sub`) holding one member cluster's S3 key."""
        return f"{self.rgw_user}:{_safe(cluster)}"


def ceph_names(namespace: str, name: str, uid: str) -> CephNames:
    stem = f"{_safe(namespace)}-{_safe(name)}"
    if len(stem) > BASE_MAX:
        digest = hashlib.sha256(stem.encode()).hexdigest()[:8]
        stem = f"{stem[: BASE_MAX - 9]}-{digest}"
    base = f"{NAME_PREFIX}-{stem}-{_safe(uid)[:8]}"
    return CephNames(
        base=base,
        crush_rule=base,
        pool=base,
        image=base,
        subvolume=base,
        bucket=base[:BUCKET_NAME_MAX].rstrip("-"),
        rgw_user=base,
    )

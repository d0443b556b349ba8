"""The bus catalog against the kinds: where each kind is stored, and who owns it."""

from __future__ import annotations

from foot.catalog import BUCKETS
from foot.kinds import KINDS


def test_every_kind_is_stored_in_a_declared_bucket_owned_by_its_owner() -> None:
    owners = {bucket.name: bucket.owner for bucket in BUCKETS}
    for info in KINDS:
        assert owners.get(info.bucket) == info.owner, (info.api_version, info.kind)

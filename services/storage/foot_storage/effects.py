"""The shell's effects: one idempotent "ensure" per step action, against Ceph and FOOT's API.

Every effect first looks at what exists, so running a step again after a
crash finds its earlier work instead of creating a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, API_DELETE, WORKS
from foot.errors import PermanentError, RetryableError, TransportError
from foot.kinds.storage import size_bytes
from foot.secrets import SecretBox
from foot_storage.ceph import CephCli, CephRefusedError, Dashboard
from foot_storage.core.delivery import (
    CephFacts,
    ClusterKey,
    delivery_documents,
    references,
    stale_documents,
    withdrawal_documents,
)
from foot_storage.core.machine import ProvisioningRecord, Step, StepResult

APPLIED_OUTCOMES = {"created", "configured", "unchanged"}
DELETED_OUTCOMES = {"deleted", "not-found"}
API_WAIT_SECONDS = 15.0


class Effects:
    """Runs steps for records stored under `record_key`."""

    def __init__(
        self,
        *,
        bus: Bus,
        dashboard: Dashboard,
        cli: CephCli,
        box: SecretBox,
        rgw_endpoint: str | None,
    ) -> None:
        self.bus = bus
        self.dashboard = dashboard
        self.cli = cli
        self.box = box
        self.rgw_endpoint = rgw_endpoint
        self._fsid: str | None = None

    # ---- sealing ------------------------------------------------------------------------

    @staticmethod
    def seal_context(record_key: str, cluster: str) -> str:
        return f"storage-provisioning/{record_key}/{cluster}"

    def _seal(self, record_key: str, cluster: str, key: ClusterKey) -> str:
        plain = orjson.dumps({"user": key.user, "secret": key.secret})
        return self.box.seal(plain, context=self.seal_context(record_key, cluster)).decode()

    def open_key(self, record_key: str, cluster: str, sealed: str) -> ClusterKey:
        plain = self.box.open(sealed.encode(), context=self.seal_context(record_key, cluster))
        values = orjson.loads(plain)
        return ClusterKey(user=values["user"], secret=values["secret"])

    # ---- dispatch -----------------------------------------------------------------------

    async def run(self, record_key: str, record: ProvisioningRecord, step: Step) -> StepResult:
        handler = getattr(self, "_" + step.action.replace("-", "_"))
        result: StepResult = await handler(record_key, record, step)
        return result

    # ---- block ----------------------------------------------------------------------------

    async def _crush_rule(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        name = record.names.crush_rule
        placement = record.spec.placement
        existing = await self.dashboard.crush_rule(name)
        if existing is None:
            await self.dashboard.create_crush_rule(
                name, placement.failure_domain, placement.device_class
            )
            existing = await self.dashboard.crush_rule(name)
            if existing is None:
                raise RetryableError(f"CRUSH rule {name} not visible yet")
        chooses = [s.get("type") for s in existing.get("steps", []) if "choose" in s.get("op", "")]
        if placement.failure_domain not in chooses:
            raise PermanentError(
                f"CRUSH rule {name} spreads over {chooses}, not {placement.failure_domain}: "
                "spec.placement cannot change once the pool exists"
            )
        return StepResult()

    async def _pool(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        name = record.names.pool
        pool = await self.dashboard.pool(name)
        if pool is None:
            application = "rbd"
            await self.dashboard.create_pool(name, record.names.crush_rule, application)
            pool = await self.dashboard.pool(name)
            if pool is None:
                raise RetryableError(f"pool {name} not visible yet")
        if pool.get("crush_rule") != record.names.crush_rule:
            raise PermanentError(f"pool {name} uses CRUSH rule {pool.get('crush_rule')}")
        if pool.get("size") != record.spec.placement.replicas:
            await self.cli.set_pool_size(name, record.spec.placement.replicas)
        return StepResult()

    async def _pool_quota(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        quota = record.spec.quota
        max_bytes = size_bytes(quota.max_bytes) if quota and quota.max_bytes else 0
        max_objects = quota.max_objects if quota and quota.max_objects else 0
        await self.dashboard.set_pool_quota(record.names.pool, max_bytes, max_objects)
        return StepResult()

    async def _image(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        pool, name = record.names.pool, record.names.image
        size = size_bytes(record.spec.size)
        image = await self.dashboard.image(pool, name)
        if image is None:
            try:
                await self.dashboard.create_image(pool, name, size)
            except CephRefusedError as exc:
                if "exists" not in str(exc):
                    raise
            image = await self.dashboard.image(pool, name)
            if image is None:
                raise RetryableError(f"RBD image {pool}/{name} not visible yet")
        current = int(image.get("size", 0))
        if current < size:
            await self.dashboard.resize_image(pool, name, size)
        elif current > size:
            raise PermanentError(
                f"RBD image {pool}/{name} is {current} bytes; spec.size cannot shrink it"
            )
        return StepResult()

    # ---- filesystem -------------------------------------------------------------------------

    async def _subvolume_group(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        await self.cli.ensure_subvolume_group(record.fs_name, record.subvolume_group)
        return StepResult()

    async def _subvolume(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        fs, group, name = record.fs_name, record.subvolume_group, record.names.subvolume
        size = size_bytes(record.spec.size)
        info = await self.cli.subvolume_info(fs, name, group)
        if info is None:
            await self.cli.create_subvolume(fs, name, group, size)
            info = await self.cli.subvolume_info(fs, name, group)
            if info is None:
                raise RetryableError(f"subvolume {name} not visible yet")
        elif info.get("bytes_quota") != size:
            await self.cli.resize_subvolume(fs, name, group, size)
        return StepResult(path=str(info["path"]))

    # ---- object ---------------------------------------------------------------------------

    async def _rgw_user(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        uid = record.names.rgw_user
        if await self.dashboard.rgw_user(uid) is None:
            await self.dashboard.create_rgw_user(uid, max_buckets=1)
        return StepResult()

    async def _bucket(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        bucket = await self.dashboard.bucket(record.names.bucket)
        if bucket is None:
            await self.dashboard.create_bucket(record.names.bucket, record.names.rgw_user)
        elif bucket.get("owner") != record.names.rgw_user:
            raise PermanentError(f"bucket {record.names.bucket} belongs to {bucket.get('owner')}")
        return StepResult()

    async def _bucket_quota(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        quota = record.spec.quota
        max_bytes = size_bytes(quota.max_bytes) if quota and quota.max_bytes else 0
        max_objects = quota.max_objects if quota and quota.max_objects else 0
        max_bytes = max_bytes or size_bytes(record.spec.size)
        await self.dashboard.set_bucket_quota(record.names.rgw_user, max_bytes, max_objects)
        return StepResult()

    # ---- keys -------------------------------------------------------------------------------

    def _caps(
        self, record: ProvisioningRecord, info: Mapping[str, Any] | None
    ) -> list[tuple[str, str]]:
        if record.spec.type == "block":
            pool = record.names.pool
            return [
                ("mon", "profile rbd"),
                ("osd", f"profile rbd pool={pool}"),
                ("mgr", f"profile rbd pool={pool}"),
            ]
        assert info is not None  # noqa: S101 - filesystem keys read the subvolume first
        return [
            ("mon", f"allow r fsname={record.fs_name}"),
            ("mds", f"allow rw fsname={record.fs_name} path={info['path']}"),
            ("osd", f"allow rw pool={info['data_pool']} namespace={info['pool_namespace']}"),
        ]

    async def _cephx_key(self, key: str, record: ProvisioningRecord, step: Step) -> StepResult:
        assert step.cluster is not None  # noqa: S101
        info = None
        if record.spec.type == "filesystem":
            info = await self.cli.subvolume_info(
                record.fs_name, record.names.subvolume, record.subvolume_group
            )
            if info is None:
                raise PermanentError(f"subvolume {record.names.subvolume} is gone")
        user = record.names.client(step.cluster)
        secret = await self.cli.ensure_key(f"client.{user}", self._caps(record, info))
        return StepResult(sealed_key=self._seal(key, step.cluster, ClusterKey(user, secret)))

    async def _s3_key(self, key: str, record: ProvisioningRecord, step: Step) -> StepResult:
        assert step.cluster is not None  # noqa: S101
        uid = record.names.rgw_user
        subuser = record.names.subuser(step.cluster)
        found = await self._subuser_key(uid, subuser)
        if found is None:
            await self.dashboard.create_subuser(uid, subuser.split(":", 1)[1])
            found = await self._subuser_key(uid, subuser)
            if found is None:
                raise RetryableError(f"RGW subuser {subuser} has no S3 key yet")
        return StepResult(sealed_key=self._seal(key, step.cluster, found))

    async def _subuser_key(self, uid: str, subuser: str) -> ClusterKey | None:
        user = await self.dashboard.rgw_user(uid)
        if user is None:
            raise PermanentError(f"RGW user {uid} is gone")
        for entry in user.get("keys", []):
            if entry.get("user") == subuser:
                return ClusterKey(user=entry["access_key"], secret=entry["secret_key"])
        return None

    async def _revoke_key(self, _key: str, record: ProvisioningRecord, step: Step) -> StepResult:
        assert step.cluster is not None  # noqa: S101
        if record.spec.type == "object":
            subuser = record.names.subuser(step.cluster)
            if await self.dashboard.rgw_user(record.names.rgw_user) is not None:
                await self.dashboard.delete_subuser(record.names.rgw_user, subuser)
        else:
            await self.cli.remove_key(f"client.{record.names.client(step.cluster)}")
        return StepResult()

    # ---- delivery through FOOT's API ------------------------------------------------------

    async def facts(self) -> CephFacts:
        if self._fsid is None:
            self._fsid = await self.cli.fsid()
        return CephFacts(cluster_id=self._fsid, rgw_endpoint=self.rgw_endpoint)

    async def _deliver(self, key: str, record: ProvisioningRecord, step: Step) -> StepResult:
        if not step.clusters:
            return await self._withdraw(key, record, step)
        keys = {c: self.open_key(key, c, record.keys[c]) for c in step.clusters}
        documents = delivery_documents(record, step.clusters, keys, await self.facts())
        await self._api(API_APPLY, documents, APPLIED_OUTCOMES)
        # Clusters that lost access lose their Secret (and its policy) before their key.
        stale = stale_documents(record, step.clusters)
        if stale:
            await self._api(API_DELETE, stale, DELETED_OUTCOMES)
        return StepResult()

    async def _withdraw(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        await self._api(API_DELETE, withdrawal_documents(record), DELETED_OUTCOMES)
        return StepResult()

    async def _api(self, subject: str, documents: list[dict[str, Any]], ok: set[str]) -> None:
        body = orjson.dumps(ApiRequest(objects=documents).model_dump(mode="json", by_alias=True))
        msg = await self.bus.request(subject, body, wait_seconds=API_WAIT_SECONDS)
        reply = ApiReply.model_validate_json(msg.data)
        if reply.error is not None:
            raise TransportError(f"FOOT API {subject}: {reply.error.message}")
        for result in reply.results:
            if result.outcome in ok:
                continue
            message = result.error.message if result.error else result.outcome
            code = result.error.code if result.error else ""
            error_type = PermanentError if code == "Invalid" else RetryableError
            raise error_type(f"FOOT API {subject} {result.ref}: {message}")

    async def _await_unreferenced(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        works = await self.bus.kv(WORKS.name)
        holding = []
        for entry in await works.entries():
            assert entry.value is not None  # noqa: S101 - entries() yields live keys
            work = orjson.loads(entry.value)
            manifests = (work.get("spec") or {}).get("manifests") or []
            if references(record, manifests):
                holding.append((work.get("spec") or {}).get("cluster", entry.key))
        if holding:
            raise RetryableError(
                f"member cluster(s) {', '.join(sorted(holding))} still hold the claim's Secret"
            )
        return StepResult()

    # ---- deletion ---------------------------------------------------------------------------

    async def _delete_image(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        await self.dashboard.delete_image(record.names.pool, record.names.image)
        return StepResult()

    async def _delete_pool(self, _key: str, record: ProvisioningRecord, _step: Step) -> StepResult:
        await self.dashboard.delete_pool(record.names.pool)
        if await self.dashboard.pool(record.names.pool) is not None:
            raise RetryableError(f"pool {record.names.pool} still exists")
        return StepResult()

    async def _delete_crush_rule(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        await self.dashboard.delete_crush_rule(record.names.crush_rule)
        return StepResult()

    async def _delete_subvolume(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        await self.cli.remove_subvolume(
            record.fs_name, record.names.subvolume, record.subvolume_group
        )
        return StepResult()

    async def _delete_bucket(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        await self.dashboard.delete_bucket(record.names.bucket)
        return StepResult()

    async def _delete_rgw_user(
        self, _key: str, record: ProvisioningRecord, _step: Step
    ) -> StepResult:
        await self.dashboard.delete_rgw_user(record.names.rgw_user)
        return StepResult()

    async def _retain(self, _key: str, _record: ProvisioningRecord, _step: Step) -> StepResult:
        return StepResult()  # the shell announces what was kept

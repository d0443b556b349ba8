"""The storage service: StorageClaims -> Ceph objects, scoped keys, and delivery to members.

The shell around the pure core (`foot_storage.core`): it watches claims,
clusters and bindings, reads a claim's provisioning record, asks the core what
to do, runs that one step against Ceph or FOOT's API, and stores the new
record before asking again. Status is written back on the claim; progress
events go to `foot.events.storage.<namespace>.<name>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import ClassVar

import orjson
from pydantic import Field

from foot.backoff import Backoff
from foot.bus import Informer, KvStore, ReconcileQueue
from foot.bus.kv import Versioned
from foot.catalog import BINDINGS, CLUSTERS, STORAGE_CLAIMS, STORAGE_PROVISIONING
from foot.errors import ConflictError, FootError
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding
from foot.kinds.clusters import Cluster
from foot.kinds.storage import STORAGE_API_VERSION, StorageClaim
from foot.objects import utc_now
from foot.runtime.service import Service
from foot.runtime.settings import ServiceSettings
from foot.secrets import SecretBox
from foot_storage.ceph import CephCli, CephUnavailableError, Dashboard
from foot_storage.core import machine
from foot_storage.core.access import target_clusters
from foot_storage.core.delivery import secret_names, storage_class_name
from foot_storage.core.machine import ProvisioningRecord, StepResult
from foot_storage.core.names import ceph_names
from foot_storage.effects import Effects

log = logging.getLogger(__name__)

StepOutcome = StepResult | FootError
"""What running one step gave: its result, or the error it met."""

EVENT_PREFIX = "foot.events.storage"
CLAIM_INFO = KINDS.lookup(STORAGE_API_VERSION, "StorageClaim")


class StorageSettings(ServiceSettings):
    """Settings of the storage service (FOOT_* variables / flags)."""

    ceph_dashboard_url: str = "http://127.0.0.1:8080"
    """URL of the Ceph mgr dashboard REST API."""
    ceph_dashboard_user: str = "admin"
    """Dashboard user (administrator role)."""
    ceph_dashboard_password_file: Path | None = None
    """File holding the dashboard user's password (never passed on the command line)."""
    ceph_conf: Path = Path("/etc/ceph/ceph.conf")
    """ceph.conf used by the ceph CLI (cephx keys, CephFS subvolumes)."""
    ceph_keyring: Path = Path("/etc/ceph/ceph.client.admin.keyring")
    """Keyring of `ceph_client` for the ceph CLI."""
    ceph_client: str = "client.admin"
    """cephx identity the service acts as."""
    ceph_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Deadline of one Ceph request (REST call or CLI run) before it counts as transient."""
    ceph_fs_name: str = "cephfs"
    """CephFS volume filesystem claims get a subvolume in."""
    ceph_subvolume_group: str = "csi"
    """Subvolume group of those subvolumes (ceph-csi's default)."""
    rgw_endpoint: str | None = None
    """S3 endpoint of the radosgw, delivered to member clusters with object claims."""
    retry_base_seconds: float = Field(default=0.5, gt=0, le=60)
    """First backoff after a transient Ceph error (doubling per failure)."""
    retry_max_seconds: float = Field(default=10.0, gt=0, le=600)
    """Longest backoff between attempts."""
    ceph_probe_seconds: float = Field(default=15.0, gt=0, le=600)
    """How often the service checks that Ceph answers (the dashboard and the ceph CLI);
    while it does not, /readyz says why and the service is not ready."""


def _decode_claim(data: bytes) -> StorageClaim:
    return StorageClaim.model_validate_json(data, by_alias=True)


class StorageService(Service[StorageSettings]):
    name = "storage"
    settings_model: ClassVar[type[ServiceSettings]] = StorageSettings

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings)
        self.dashboard: Dashboard | None = None
        """The Ceph dashboard's client, from setup() on."""
        self.ceph_problem: str | None = "ceph not checked yet (first probe pending)"
        """Why Ceph cannot be used, from the last probe (None: it answered)."""

    async def setup(self) -> None:
        settings = self.settings
        password = ""
        if settings.ceph_dashboard_password_file is not None:
            password = settings.ceph_dashboard_password_file.read_text().strip()
        dashboard = self.dashboard = Dashboard(
            settings.ceph_dashboard_url,
            settings.ceph_dashboard_user,
            password,
            timeout_seconds=settings.ceph_timeout_seconds,
        )
        self.cli = CephCli(
            settings.ceph_conf,
            settings.ceph_keyring,
            client=settings.ceph_client,
            timeout_seconds=settings.ceph_timeout_seconds,
        )
        self.effects = Effects(
            bus=self.bus,
            dashboard=dashboard,
            cli=self.cli,
            box=SecretBox.from_file(settings.secret_key_file, create=True),
            rgw_endpoint=settings.rgw_endpoint,
        )
        self.backoff = Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        self.claims_kv: KvStore = await self.bus.kv(STORAGE_CLAIMS.name)
        self.records_kv: KvStore = await self.bus.kv(STORAGE_PROVISIONING.name)
        self.claims: Informer = await self.watch(STORAGE_CLAIMS.name)
        self.records: Informer = await self.watch(STORAGE_PROVISIONING.name)
        self.clusters: Informer = await self.watch(CLUSTERS.name)
        self.bindings: Informer = await self.watch(BINDINGS.name)
        self.queue: ReconcileQueue = self.reconcile("storage-claims", self.reconcile_claim)
        self.claims.notify(self.queue)
        self.records.notify(self.queue)
        self.clusters.listen(lambda _entry: self._requeue_all())
        self.bindings.listen(lambda _entry: self._requeue_all())
        self.supervisor.spawn("ceph-probe", self._probe_loop)

    async def stop(self) -> None:
        await super().stop()
        if self.dashboard is not None:
            await self.dashboard.close()

    def readiness_problems(self) -> list[str]:
        problems = super().readiness_problems()
        if self.ceph_problem is not None:
            problems.append(self.ceph_problem)
        return problems

    async def probe_ceph(self) -> str | None:
        """Why Ceph cannot be used now (None when the dashboard and the ceph CLI answer)."""
        assert self.dashboard is not None  # noqa: S101 - set in setup()
        try:
            await self.dashboard.probe()
            await self.cli.fsid()
        except CephUnavailableError as exc:
            return f"ceph unreachable: {exc}"
        except FootError as exc:
            return f"ceph refused: {exc}"
        return None

    async def _probe_loop(self) -> None:
        while True:
            problem = await self.probe_ceph()
            if problem != self.ceph_problem:
                if problem is None:
                    log.info("Ceph answers (%s)", self.settings.ceph_dashboard_url)
                else:
                    log.warning("%s", problem)
            self.ceph_problem = problem
            await asyncio.sleep(self.settings.ceph_probe_seconds)

    def _requeue_all(self) -> None:
        for entry in self.claims.values():
            self.queue.add(entry.key)

    # ---- reading ------------------------------------------------------------------------

    def _claim(self, key: str) -> StorageClaim | None:
        entry = self.claims.get(key)
        if entry is None or entry.value is None:
            return None
        claim = StorageClaim.model_validate_json(entry.value, by_alias=True)
        return claim.model_copy(
            update={"metadata": claim.metadata.model_copy(update={"revision": entry.revision})}
        )

    async def _record(self, key: str) -> tuple[ProvisioningRecord | None, int]:
        entry = await self.records_kv.get(key)
        if entry is None or entry.value is None:
            return None, 0
        return ProvisioningRecord.model_validate_json(entry.value), entry.revision

    def _targets(self, claim: StorageClaim) -> tuple[str, ...]:
        clusters = [
            Cluster.model_validate_json(e.value, by_alias=True)
            for e in self.clusters.values()
            if e.value is not None
        ]
        bindings = [
            ResourceBinding.model_validate_json(e.value, by_alias=True)
            for e in self.bindings.values()
            if e.value is not None
        ]
        return target_clusters(claim, clusters, bindings)

    # ---- writing ------------------------------------------------------------------------

    async def _save(self, key: str, record: ProvisioningRecord, revision: int) -> int:
        """Store the record (only this service writes it; the revision guards a second
        replica working on the same claim)."""
        data = record.model_dump_json().encode()
        if revision == 0:
            return await self.records_kv.create(key, data)
        return await self.records_kv.update(key, data, revision)

    async def _write_status(self, key: str, record: ProvisioningRecord) -> None:
        now = utc_now()

        def with_status(current: Versioned[StorageClaim] | None) -> StorageClaim | None:
            if current is None:
                return None
            claim = current.value
            if claim.metadata.uid != record.claim_uid:
                return None
            status = machine.status_of(
                record,
                secrets=secret_names(record, record.delivered or ()),
                storage_class=storage_class_name(record),
                rgw_endpoint=self.settings.rgw_endpoint,
                previous=claim.status,
                now=now,
            )
            if claim.status == status:
                return None
            return claim.model_copy(update={"status": status})

        # Still changing after every attempt: the next pass writes the status again.
        with contextlib.suppress(ConflictError):
            await self.claims_kv.update_with(
                key, with_status, decode=_decode_claim, encode=StorageClaim.to_json
            )

    async def _event(self, record: ProvisioningRecord, kind: str, **extra: object) -> None:
        event = {
            "claim": f"{record.namespace}/{record.name}",
            "uid": record.claim_uid,
            "event": kind,
            "phase": record.phase,
            "step": record.step,
            "done": len(record.done),
            **extra,
        }
        subject = f"{EVENT_PREFIX}.{record.namespace}.{record.name}"
        try:
            await self.bus.publish(subject, orjson.dumps(event))
        except FootError as exc:
            log.warning("could not publish a storage event: %s", exc)

    # ---- the reconciler -----------------------------------------------------------------

    async def reconcile_claim(self, key: str) -> None:
        claim = self._claim(key)
        stored, revision = await self._record(key)
        record = stored
        if record is None:
            if claim is None or claim.metadata.uid is None:
                return
            record = machine.begin(
                claim_uid=claim.metadata.uid,
                namespace=claim.metadata.namespace or "default",
                name=claim.metadata.name,
                generation=claim.metadata.generation,
                spec=claim.spec,
                names=ceph_names(
                    claim.metadata.namespace or "default", claim.metadata.name, claim.metadata.uid
                ),
                clusters=self._targets(claim),
                fs_name=self.settings.ceph_fs_name,
                subvolume_group=self.settings.ceph_subvolume_group,
            )
        elif claim is None or claim.metadata.uid != record.claim_uid:
            # Deleted (or deleted and created again: the old claim's objects go first).
            record = machine.start_deleting(record)
        else:
            record = machine.retarget(
                record,
                generation=claim.metadata.generation,
                spec=claim.spec,
                clusters=self._targets(claim),
            )
        if record != stored:
            revision = await self._save(key, record, revision)
        await self._write_status(key, record)
        await self._drive(key, record, revision)

    async def _drive(self, key: str, record: ProvisioningRecord, revision: int) -> None:
        """Run the plan: every runnable step at once, each recorded as it completes, and
        the steps that depend on it started only after that record is stored."""
        async with asyncio.TaskGroup() as group:
            running: dict[asyncio.Task[StepOutcome], machine.Step] = {}
            while True:
                decision = machine.decide(record, utc_now())
                if isinstance(decision, machine.RunStep):
                    under_way = {step.id for step in running.values()}
                    for step in decision.steps:
                        if step.id in under_way:
                            continue
                        if step.long:
                            await self._event(record, "step-started", next_step=step.id)
                        task = group.create_task(
                            self._run_step(key, record, step),
                            name=f"storage-step:{key}:{step.id}",
                        )
                        running[task] = step
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    step = running.pop(task)
                    record = await self._record_outcome(record, step, task.result())
                    revision = await self._save(key, record, revision)
                    await self._write_status(key, record)
        if isinstance(decision, machine.WaitUntil):
            delay = (decision.when - utc_now()).total_seconds()
            self.queue.add_after(key, max(delay, 0.01))
        elif isinstance(decision, machine.Settled) and decision.forget:
            await self._forget(key, record)

    async def _run_step(
        self, key: str, record: ProvisioningRecord, step: machine.Step
    ) -> StepOutcome:
        try:
            return await self.effects.run(key, record, step)
        except FootError as exc:
            return exc

    async def _record_outcome(
        self, record: ProvisioningRecord, step: machine.Step, outcome: StepOutcome
    ) -> ProvisioningRecord:
        if isinstance(outcome, FootError):
            record = machine.step_failed(
                record,
                step,
                retryable=outcome.retryable,
                message=str(outcome),
                now=utc_now(),
                backoff=self.backoff,
                unavailable=isinstance(outcome, CephUnavailableError),
            )
            log.warning(
                "claim %s/%s: step %s failed (attempt %d): %s",
                record.namespace,
                record.name,
                step.id,
                record.attempts,
                outcome,
            )
            await self._event(record, "step-failed", error=str(outcome))
            return record
        record = machine.step_done(record, step, outcome)
        await self._event(record, "step-done", completed=step.id)
        if step.action == "retain":
            kept = self._kept(record)
            if kept:
                log.info(
                    "claim %s/%s deleted with reclaimPolicy Retain: kept %s",
                    record.namespace,
                    record.name,
                    kept,
                )
            else:
                log.info(
                    "claim %s/%s deleted: nothing had been created on Ceph, nothing to keep",
                    record.namespace,
                    record.name,
                )
        return record

    def _kept(self, record: ProvisioningRecord) -> dict[str, object]:
        """The claim's Ceph objects a Retain deletion leaves (only those that exist)."""
        resources = machine.resources_of(record, self.settings.rgw_endpoint)
        return resources.model_dump(exclude_none=True)

    async def _forget(self, key: str, record: ProvisioningRecord) -> None:
        kept = None
        if record.spec.reclaim_policy == "Retain":
            kept = self._kept(record)
        await self._event(record, "deleted", retained=kept)
        await self.records_kv.delete(key)
        if self.claims.get(key) is not None:
            self.queue.add(key)  # a newer claim of the same name waits for its turn

"""The storage service with no Ceph where it is told to look (as under a bare `foot up`): it
is not ready and says why, a claim shows CephUnavailable instead of retrying silently, and
deleting that claim claims to keep nothing. Real NATS with auth and the scheduler (which
owns what a deletion withdraws); the dashboard and the monitor are addresses where nothing
listens (a bound socket that never listens: connections are refused, and no one else can
take the port meanwhile)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from integration.storage.conftest import CLAIMS, apply, claim_document, delete, get_claim

from foot.bus import Bus
from foot.catalog import STORAGE_PROVISIONING
from foot.kinds.storage import CEPH_UNAVAILABLE, READY, ClaimResources, StorageClaimStatus
from foot.runtime.settings import ServiceSettings
from foot.secrets import SecretBox
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService
from foot_storage.service import StorageService, StorageSettings
from support import eventually, harness_credentials


@dataclass
class Unreachable:
    dashboard_url: str
    settings: StorageSettings
    scheduler: ServiceSettings


@pytest.fixture
def nothing_listens() -> Iterator[int]:
    """A loopback port bound but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture
def unreachable(nats_server: EmbeddedNats, nothing_listens: int, tmp_path: Path) -> Unreachable:
    address = f"127.0.0.1:{nothing_listens}"
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon_host = {address}\n")
    password = tmp_path / "dashboard.pass"
    password.write_text("not-used")
    password.chmod(0o600)
    settings = StorageSettings(
        nats_url=nats_server.url,
        admin_port=0,
        shutdown_deadline_seconds=3.0,
        secret_key_file=tmp_path / "secret.key",
        ceph_dashboard_url=f"http://{address}",
        ceph_dashboard_password_file=password,
        ceph_conf=conf,
        ceph_keyring=tmp_path / "keyring",
        ceph_timeout_seconds=1.0,
        retry_base_seconds=0.2,
        retry_max_seconds=1.0,
        ceph_probe_seconds=0.5,
    )
    scheduler = ServiceSettings(
        nats_url=nats_server.url,
        admin_port=0,
        shutdown_deadline_seconds=2.0,
        secret_key_file=settings.secret_key_file,
    )
    return Unreachable(f"http://{address}", settings, scheduler)


@pytest.fixture
async def harness(nats_server: EmbeddedNats, unreachable: Unreachable) -> AsyncIterator[Bus]:
    async with await Bus.connect(
        nats_server.url, "storage-test", credentials_file=harness_credentials()
    ) as bus:
        bus.secret_box = SecretBox.from_file(unreachable.settings.secret_key_file, create=True)
        await bus.declare()
        yield bus


async def test_storage_without_a_reachable_ceph_is_not_ready_and_says_why(
    unreachable: Unreachable,
) -> None:
    storage = StorageService(unreachable.settings)
    assert "ceph not checked yet (first probe pending)" in storage.readiness_problems()
    async with storage:
        await eventually(lambda: "unreachable" in (storage.ceph_problem or ""))
        # Its caches sync meanwhile (another problem until then): wait for Ceph's alone.
        await eventually(
            lambda: [p.split(":")[0] for p in storage.readiness_problems()] == ["ceph unreachable"]
        )
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{storage.admin.url}/readyz") as answer,
        ):
            assert answer.status == 503
            body = await answer.json()
        assert body["status"] == "not ready"
        (problem,) = body["problems"]
        assert problem.startswith("ceph unreachable: dashboard POST /api/auth: ")
        assert f"Ceph dashboard at {unreachable.dashboard_url} does not answer" in problem
        assert "not-used" not in problem  # (the password never shows)


async def wait_for_status(
    bus: Bus, name: str, check: object, within: float = 20.0
) -> StorageClaimStatus:
    assert callable(check)
    last: StorageClaimStatus | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                claim = await get_claim(bus, name)
                last = claim.status if claim is not None else None
                if last is not None and check(last):
                    return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"claim {name}: status never matched; last {last}")


async def test_a_claim_shows_ceph_unavailable_and_its_deletion_keeps_nothing_it_never_made(
    unreachable: Unreachable, harness: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="foot_storage")
    document = claim_document("orders")
    async with (
        SchedulerService(unreachable.scheduler),
        StorageService(unreachable.settings),
    ):
        await apply(harness, document)

        def unavailable(status: StorageClaimStatus) -> bool:
            condition = status.condition(CEPH_UNAVAILABLE)
            return condition is not None and condition.status == "True" and status.attempts >= 2

        status = await wait_for_status(harness, "orders", unavailable)
        assert status.phase == "Provisioning"
        assert status.retrying
        ceph = status.condition(CEPH_UNAVAILABLE)
        assert ceph is not None
        assert ceph.reason == "CephUnreachable"
        assert ceph.message == status.last_error
        assert unreachable.dashboard_url in ceph.message or "timed out" in ceph.message
        ready = status.condition(READY)
        assert ready is not None
        assert (ready.status, ready.reason) == ("False", "CephUnavailable")
        assert ready.message.startswith("waiting for Ceph to answer (attempt ")
        assert status.resources == ClaimResources()  # nothing exists on Ceph

        await delete(harness, document)
        records = await harness.kv(STORAGE_PROVISIONING.name)
        key = CLAIMS.key("apps", "orders")
        async with asyncio.timeout(20):
            # Polling: the record is state owned by the service, which offers no event.
            while (entry := await records.get(key)) is not None and entry.value is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("foot_storage")]
    assert "claim apps/orders deleted: nothing had been created on Ceph, nothing to keep" in said
    assert not [line for line in said if "kept" in line]

"""Fixtures every test can use: a real nats-server, a connected bus, and a task-leak check."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from admin_support import AdminCredentials, make_admin_credentials

from foot.bus import Bus
from foot.natsauth import NatsAuthHome
from foot.natsjwt import Permissions
from foot_cli.natsserver import EmbeddedNats
from support import HARNESS_IDENTITY, TEST_ONLY_SERVICES, harness_credentials

# Real member clusters (kube_clusters: three per session; kube_cluster_factory: per test).
pytest_plugins = ("foot_testenv.fixtures",)

LEAK_GRACE_SECONDS = 0.5

# One FOOT_HOME for the whole run (and every process it starts), so services and tests
# share one sealing key, and nothing is written into the real ~/.foot.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="foot-tests-home-"))
os.environ["FOOT_HOME"] = str(_TEST_HOME)
# NATS runs with authentication as `foot up`'s does: every service finds its own user in
# the home, the CLI its own. The tests' own connections (a harness that inspects and plays
# the other side) and the throwaway services some tests define have users of their own.
_EVERYTHING = Permissions(publish=(">",), subscribe=(">",), respond=True)
NATS_AUTH = NatsAuthHome(_TEST_HOME).ensure(
    extra_users=dict.fromkeys((HARNESS_IDENTITY, *TEST_ONLY_SERVICES), _EVERYTHING)
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_TEST_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    this = asyncio.current_task()
    deadline = asyncio.get_running_loop().time() + LEAK_GRACE_SECONDS
    while True:
        leaked = {t for t in asyncio.all_tasks() - before if t is not this and not t.done()}
        if not leaked or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    if leaked:
        names = sorted(t.get_name() + f" ({t.get_coro()!r})" for t in leaked)
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test leaked {len(leaked)} asyncio task(s): {names}")


@pytest.fixture(scope="session")
def admin_credentials(tmp_path_factory: pytest.TempPathFactory) -> AdminCredentials:
    """Admin and read-only token files for the services a test starts (one pair per session,
    as `foot up` makes one pair per home)."""
    return make_admin_credentials(tmp_path_factory.mktemp("admin-tokens"))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A real nats-server with JetStream and FOOT's authentication, on a free port, storing in
    the test's temp folder."""
    with EmbeddedNats(data_dir=tmp_path / "nats", auth=NATS_AUTH) as server:
        yield server


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """A connected bus with FOOT's streams and buckets declared."""
    async with await Bus.connect(
        nats_server.url, "test", credentials_file=harness_credentials()
    ) as connected:
        await connected.declare()
        yield connected

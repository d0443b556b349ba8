"""pytest fixtures for real member clusters.

Import them into a conftest.py::

    from foot_testenv.fixtures import kube_cluster_factory, kube_clusters  # noqa: F401

``kube_clusters`` is three clusters shared by the whole session (tests isolate
themselves by namespace and must not stop or kill them); ``kube_cluster_factory``
starts private clusters for one test, e.g. to kill one::

    async def test_failover(kube_cluster_factory: KubeClusterFactory) -> None:
        (cluster,) = await kube_cluster_factory(count=1)
        await cluster.kill()

Both are synchronous fixtures on purpose: cluster processes are plain
subprocesses polled without asyncio, so nothing they do lives in (or leaks
tasks into) a test's event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foot_testenv.ceph import ceph  # noqa: F401 - the `ceph` fixture, registered here
from foot_testenv.clusters import DEFAULT_START_TIMEOUT, KubeClusters
from foot_testenv.kube_binaries import BinariesMissingError, KubeBinaries, find_binaries

SESSION_CLUSTER_COUNT = 3


def require_binaries() -> KubeBinaries:
    """The installed binaries; fails the test (never skips) when they are missing."""
    try:
        return find_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)


class KubeClusterFactory:
    """Starts clusters private to one test; the fixture tears all of them down."""

    def __init__(self, workdir: Path, binaries: KubeBinaries) -> None:
        self._workdir = workdir
        self._binaries = binaries
        self._created: list[KubeClusters] = []

    async def __call__(
        self,
        count: int = 1,
        *,
        with_controller_manager: bool = False,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> KubeClusters:
        clusters = self._create(count, with_controller_manager, start_timeout)
        await clusters.launch()
        return clusters

    def start_blocking(
        self,
        count: int = 1,
        *,
        with_controller_manager: bool = False,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> KubeClusters:
        """The same as calling the factory, for synchronous tests."""
        clusters = self._create(count, with_controller_manager, start_timeout)
        clusters.launch_blocking()
        return clusters

    def _create(
        self, count: int, with_controller_manager: bool, start_timeout: float
    ) -> KubeClusters:
        # Each set in its own folder, with distinct names so that kubeconfig
        # contexts of two sets never clash when merged.
        set_number = len(self._created) + 1
        clusters = KubeClusters.create(
            count,
            workdir=self._workdir / f"clusters-{set_number}",
            with_controller_manager=with_controller_manager,
            name_prefix=f"private-{set_number}",
            binaries=self._binaries,
            start_timeout=start_timeout,
        )
        # Registered before launching: a start-up failure is torn down all the same.
        self._created.append(clusters)
        return clusters

    def dispose_blocking(self) -> None:
        for clusters in self._created:
            clusters.dispose_blocking()
        self._created.clear()


@pytest.fixture(scope="session")
def kube_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeClusters]:
    """Three real member clusters (member-1..3) shared by the test session."""
    binaries = require_binaries()
    workdir = tmp_path_factory.mktemp("kube-clusters")
    with KubeClusters.start_blocking(
        SESSION_CLUSTER_COUNT, workdir=workdir, binaries=binaries
    ) as clusters:
        yield clusters


@pytest.fixture
def kube_cluster_factory(tmp_path: Path) -> Iterator[KubeClusterFactory]:
    """Starts clusters for this test only: `await kube_cluster_factory(count=1)`."""
    factory = KubeClusterFactory(tmp_path, require_binaries())
    try:
        yield factory
    finally:
        factory.dispose_blocking()

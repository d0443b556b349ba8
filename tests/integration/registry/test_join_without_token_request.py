"""A join whose ServiceAccount token cannot be minted says which step failed and what to do
(issue 21, finding 2): the simulator serves RBAC but no TokenRequest API, as some clusters
do; `foot cluster join` without `--use-given-credential` must name the step and the flag,
leave nothing behind in the member, and with the flag the same cluster joins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_support import AdminCredentials
from registry_support import foot_cli, registry_settings

from foot.bus import Bus
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_sim.background import BackgroundSimulator
from foot_sim.client import KubeHttpClient
from foot_sim.simulator import Simulator


@pytest.fixture
def sim() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(Simulator(1, simulate_workloads=False)) as running:
        yield running


async def test_join_names_the_token_step_and_the_flag(
    sim: BackgroundSimulator,
    nats_server: EmbeddedNats,
    bus: Bus,
    tmp_path: Path,
    admin_credentials: AdminCredentials,
) -> None:
    settings = registry_settings(nats_server, tmp_path, **admin_credentials.settings())
    endpoint = sim.endpoints[0]
    join = ["cluster", "join", endpoint.name, "--kubeconfig", str(endpoint.kubeconfig_path)]
    async with RegistryService(settings) as registry:
        refused = await foot_cli(nats_server, tmp_path, *join)
        assert refused.returncode == 1, refused.stdout
        assert "Traceback" not in refused.stderr
        message = refused.stderr.strip()
        assert message.startswith(
            "error: minting a token for ServiceAccount foot-system/foot-controller failed: "
            "the member's API server has no TokenRequest API (404 NotFound); "
            "for a cluster without it, join with --use-given-credential"
        ), message
        assert endpoint.name not in registry.clusters
        # What the join created in the member went with it.
        async with KubeHttpClient(endpoint) as member:
            for path in (
                "/api/v1/namespaces/foot-system",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/foot-system:foot-controller",
            ):
                assert (await member.get(path)).status == 404, path

        joined = await foot_cli(nats_server, tmp_path, *join, "--use-given-credential")
        assert joined.returncode == 0, joined.stderr
        assert f"cluster {endpoint.name} joined" in joined.stdout

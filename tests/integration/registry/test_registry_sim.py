"""The registry with simulated members, driven by the `foot` CLI and the HTTP admin API:
join, the clusters table, status on demand, a partition and its healing (Ready, taints,
events), registration over HTTP behind the bearer token, unjoin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from admin_support import AdminCredentials
from registry_support import foot_cli, registry_settings

from foot.bus import Bus
from foot.catalog import HEALTH_PREFIX
from foot.health import ClusterHealthEvent
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_sim.background import BackgroundSimulator
from foot_sim.faults import FaultMode
from foot_sim.simulator import Simulator
from support import eventually


@pytest.fixture
def sim() -> Iterator[BackgroundSimulator]:
    with BackgroundSimulator(Simulator(2, simulate_workloads=False)) as running:
        yield running


async def test_join_table_partition_and_unjoin_through_the_cli(
    sim: BackgroundSimulator,
    nats_server: EmbeddedNats,
    bus: Bus,
    tmp_path: Path,
    admin_credentials: AdminCredentials,
) -> None:
    events: list[ClusterHealthEvent] = []

    async def on_event(msg: Any) -> None:
        events.append(ClusterHealthEvent.model_validate_json(msg.data))

    await bus.client.subscribe(f"{HEALTH_PREFIX}.>", cb=on_event)
    settings = registry_settings(nats_server, tmp_path, **admin_credentials.settings())
    async with RegistryService(settings) as registry:
        endpoint = sim.endpoints[0]
        joined = await foot_cli(
            nats_server, tmp_path, "cluster", "join", endpoint.name,
            "--kubeconfig", str(endpoint.kubeconfig_path), "--use-given-credential",
            "--region", "eu-west", "--label", "tier=gold", "--gateway-address", "10.1.2.3",
            wait_seconds=60,
        )  # fmt: skip
        assert joined.returncode == 0, joined.stderr
        assert f"cluster {endpoint.name} joined" in joined.stdout

        described = await foot_cli(
            nats_server,
            tmp_path,
            "cluster",
            "describe",
            endpoint.name,
            "--refresh",
            wait_seconds=60,
        )
        assert described.returncode == 0, described.stderr
        document = yaml.safe_load(described.stdout)
        assert document["metadata"]["labels"] == {"tier": "gold"}
        assert document["spec"]["gatewayAddress"] == "10.1.2.3"  # where NodePorts are reached
        assert document["status"]["nodeSummary"] == {"totalNum": 3, "readyNum": 3}
        assert document["status"]["resourceSummary"]["allocatable"]["cpu"] == "24"
        version = document["status"]["kubernetesVersion"]

        table = await foot_cli(nats_server, tmp_path, "get", "clusters", wait_seconds=60)
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()[:2]
        assert header.split() == ["NAME", "MODE", "READY", "VERSION", "NODES", "REGION", "AGE"]
        assert row.split()[:6] == [endpoint.name, "Push", "True", version, "3/3", "eu-west"]

        # A partition: Unknown and the unreachable taint; healed: Ready again, no taint.
        simulator = sim.simulator
        await sim.run_async(lambda: simulator.set_fault(endpoint.name, FaultMode.PARTITIONED))
        await eventually(lambda: events[-1].ready == "Unknown", within=10)
        assert events[-1].reason == "Unreachable"
        await eventually(
            lambda: (
                [t.key for t in registry.clusters[endpoint.name].spec.taints]
                == ["cluster.foot.dev/unreachable"]
            ),
            within=5,
        )
        await sim.run_async(lambda: simulator.set_fault(endpoint.name, FaultMode.HEALTHY))
        await eventually(lambda: events[-1].ready == "True", within=10)
        await eventually(lambda: not registry.clusters[endpoint.name].spec.taints, within=5)
        assert [e.sequence for e in events] == sorted(e.sequence for e in events)

        # The HTTP admin API: the same requests, behind the bearer token.
        url = f"{registry.admin.url}/api/clusters/register"
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"name": "pull-one"}) as response:
                assert response.status == 401
            headers = admin_credentials.admin_headers()
            async with http.post(url, json={"name": "pull-one"}, headers=headers) as response:
                assert response.status == 200
                body = await response.json()
                assert "bootstrap-token" in body["manifests"]
            async with http.post(url, json={"name": "Pull_One"}, headers=headers) as response:
                assert response.status == 422
                body = await response.json()
                assert body["error"]["fields"][0]["path"] == "name"
            json_body = {**headers, "Content-Type": "application/json"}
            async with http.post(url, data=b"null", headers=json_body) as response:
                assert response.status == 422
                body = await response.json()
                assert body["error"]["fields"] == [
                    {"path": "", "reason": "the body must be a JSON object"}
                ]

        unjoined = await foot_cli(
            nats_server, tmp_path, "cluster", "unjoin", endpoint.name, wait_seconds=60
        )
        assert unjoined.returncode == 0, unjoined.stderr
        listed = await foot_cli(nats_server, tmp_path, "cluster", "list", wait_seconds=60)
        assert endpoint.name not in listed.stdout
        assert "pull-one" in listed.stdout
        again = await foot_cli(
            nats_server, tmp_path, "cluster", "unjoin", endpoint.name, wait_seconds=60
        )
        assert again.returncode == 1
        assert "is not joined" in again.stderr

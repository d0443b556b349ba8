"""One contract suite, two backends: real kube-apiservers and the FOOT simulator.

Every test that takes `endpoint` (directly or through `kube`, `api_client`,
`namespace`) runs once per backend, with the backend in its id
(`test_get_not_found[real]`, `test_get_not_found[sim]`). Tests compare the
shapes clients depend on (reason, code, details, causes), not every byte.

Both backends are session-wide servers outside the test's event loop (real
clusters are subprocesses, the simulator runs on its own loop in a thread), so
tests isolate themselves with a fresh namespace each.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from kubernetes_asyncio import client as kube_client

from foot_sim import ClusterEndpoint, Simulator
from foot_sim.background import BackgroundSimulator
from foot_sim.client import KubeHttpClient
from foot_testenv.clusters import KubeClusters

BACKENDS = ("real", "sim")


@pytest.fixture(scope="session")
def simulated_clusters() -> Iterator[BackgroundSimulator]:
    # No simulated kubelet: the real test clusters run no controllers either, and status
    # writes of their own would race the tests' writes.
    with BackgroundSimulator(Simulator(3, simulate_workloads=False)) as running:
        yield running


@pytest.fixture(params=BACKENDS)
def endpoint(request: pytest.FixtureRequest) -> ClusterEndpoint:
    """Where the backend under test listens, with admin credentials."""
    if request.param == "sim":
        simulated: BackgroundSimulator = request.getfixturevalue("simulated_clusters")
        return simulated.endpoints[0]
    clusters: KubeClusters = request.getfixturevalue("kube_clusters")
    cluster = clusters[0]
    return ClusterEndpoint(
        cluster.name, cluster.server, cluster.admin_token, cluster.kubeconfig_path, cluster.ca_path
    )


@pytest.fixture
async def kube(endpoint: ClusterEndpoint) -> AsyncIterator[KubeHttpClient]:
    """A raw HTTP client authenticated as the cluster admin."""
    async with KubeHttpClient(endpoint) as http:
        yield http


@pytest.fixture
async def api_client(endpoint: ClusterEndpoint) -> AsyncIterator[kube_client.ApiClient]:
    """A kubernetes_asyncio ApiClient of its own (fresh Configuration), closed afterwards."""
    configuration = kube_client.Configuration(host=endpoint.server)
    configuration.api_key = {"BearerToken": f"Bearer {endpoint.token}"}
    if endpoint.ca_path is not None:
        configuration.ssl_ca_cert = str(endpoint.ca_path)
    api = kube_client.ApiClient(configuration=configuration)
    try:
        yield api
    finally:
        await api.close()


@pytest.fixture
async def namespace(kube: KubeHttpClient) -> AsyncIterator[str]:
    """A namespace of this test's own, deleted afterwards."""
    name = f"contract-{uuid.uuid4().hex[:10]}"
    created = await kube.post("/api/v1/namespaces", {"metadata": {"name": name}})
    assert created.status == 201, created.body
    yield name
    await kube.delete(f"/api/v1/namespaces/{name}")

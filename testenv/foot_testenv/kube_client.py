"""A kubernetes_asyncio client bound to one test member cluster.

async with api_client(cluster) as api:
    await client.CoreV1Api(api).list_namespace()
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from kubernetes_asyncio import client, config

from foot_testenv.clusters import KubeCluster


@contextlib.asynccontextmanager
async def api_client(
    cluster: KubeCluster, context: str | None = None
) -> AsyncIterator[client.ApiClient]:
    """A fresh Configuration and ApiClient for `cluster`, closed when the block ends.

    Each cluster gets its own Configuration: the library's default one is global
    and would send every request to the last cluster loaded.
    """
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig_path),
        context=context,
        client_configuration=configuration,
    )
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()

"""Many virtual member clusters in one asyncio process, each on its own loopback port.

One port per cluster keeps `down` honest: the cluster's listening socket is
really closed, so clients get connection refused. An optional admin HTTP
server (guarded by its own bearer token) lists the clusters, hands out their
kubeconfigs and switches their faults.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import random
import secrets
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml
from aiohttp import web

from foot_sim.faults import Fault, FaultMode
from foot_sim.files import write_private_file
from foot_sim.kubelet import NodeShape, SimulatedKubelet, node_object
from foot_sim.resources import NAMESPACES, NODES
from foot_sim.server import ClusterApi
from foot_sim.store import ClusterStore
from foot_sim.tls import ServingCertificate, create_serving_certificate

_BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Seconds in-flight requests (watches above all) get when a cluster goes down or stops.
_SHUTDOWN_GRACE_SECONDS = 0.1
_NAMESPACE_FINALIZE_DELAY_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ClusterEndpoint:
    """How a client reaches one cluster: what tests and benchmarks need from any backend."""

    name: str
    server: str
    token: str
    kubeconfig_path: Path
    ca_path: Path | None = None


def kubeconfig_document(name: str, server: str, token: str, ca_pem: bytes | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


@dataclass
class SimulatedCluster:
    """One virtual cluster: its store, API, simulated kubelet and listener."""

    name: str
    host: str
    token: str
    kubeconfig_path: Path
    store: ClusterStore
    api: ClusterApi
    kubelet: SimulatedKubelet
    port: int = 0
    certificate: ServingCertificate | None = None
    _runner: web.AppRunner | None = None
    _finalizers: set[asyncio.TimerHandle] = field(default_factory=set)

    @property
    def server(self) -> str:
        scheme = "https" if self.certificate is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def fault(self) -> Fault:
        return self.api.fault

    def endpoint(self) -> ClusterEndpoint:
        ca_path = self.certificate.ca_path if self.certificate is not None else None
        return ClusterEndpoint(self.name, self.server, self.token, self.kubeconfig_path, ca_path)

    def kubeconfig(self) -> str:
        ca_pem = self.certificate.ca_pem() if self.certificate is not None else None
        document = kubeconfig_document(self.name, self.server, self.token, ca_pem)
        return yaml.safe_dump(document, sort_keys=False)

    async def listen(self) -> None:
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self.api.server_address = f"{self.host}:{self.port}"
        # Cancelling handlers of clients that went away ends their watches at once.
        runner = web.AppRunner(
            self.api.application(),
            access_log=None,
            shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
            handler_cancellation=True,
        )
        await runner.setup()
        ssl_context = self.certificate.server_context() if self.certificate is not None else None
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()
        self._runner = runner

    async def close_listener(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def set_fault(self, fault: Fault) -> None:
        was_down = self.api.fault.mode is FaultMode.DOWN
        self.api.set_fault(fault)
        if fault.mode is FaultMode.DOWN and not was_down:
            await self.close_listener()
        elif fault.mode is not FaultMode.DOWN and was_down:
            await self.listen()

    def schedule_namespace_finalize(self, namespace: str) -> None:
        loop = asyncio.get_running_loop()

        def finalize() -> None:
            self._finalizers.discard(handle)
            self.store.finalize_namespace(namespace)

        handle = loop.call_later(_NAMESPACE_FINALIZE_DELAY_SECONDS, finalize)
        self._finalizers.add(handle)

    async def stop(self) -> None:
        self.kubelet.stop()
        for handle in self._finalizers:
            handle.cancel()
        self._finalizers.clear()
        self.api.set_fault(Fault())  # releases requests held by a partition
        await self.close_listener()

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig_path),
            "fault": self.fault.to_json(),
            "objects": self.store.count(),
            "requestsServed": self.api.requests_served,
            "resourceVersion": str(self.store.resource_version),
        }


class Simulator:
    """Start with `async with Simulator(clusters=3) as sim:`; stops every cluster on exit."""

    def __init__(
        self,
        clusters: int | list[str] = 1,
        *,
        host: str = "127.0.0.1",
        base_port: int = 0,
        kubeconfig_dir: Path | None = None,
        admin_port: int | None = None,
        admin_token: str | None = None,
        tls: bool = True,
        name_prefix: str = "sim",
        nodes_per_cluster: int = 3,
        node_shape: NodeShape | None = None,
        ready_delay: float = 1.0,
        simulate_workloads: bool = True,
        event_window: int = 1000,
        bookmark_interval: float = 60.0,
        seed: int | None = None,
    ) -> None:
        names = (
            clusters
            if isinstance(clusters, list)
            else [f"{name_prefix}-{i}" for i in range(clusters)]
        )
        if len(set(names)) != len(names):
            raise ValueError("cluster names must be unique")
        self._names = names
        self.host = host
        self._base_port = base_port
        self._kubeconfig_dir = kubeconfig_dir
        self._owns_kubeconfig_dir = kubeconfig_dir is None
        self._admin_port = admin_port
        self.admin_token = admin_token or secrets.token_urlsafe(24)
        self._tls = tls
        self.certificate: ServingCertificate | None = None
        self._nodes_per_cluster = nodes_per_cluster
        self._node_shape = node_shape or NodeShape()
        self._ready_delay = ready_delay
        self._simulate_workloads = simulate_workloads
        self._event_window = event_window
        self._bookmark_interval = bookmark_interval
        self._seed = seed
        self.clusters: list[SimulatedCluster] = []
        self._by_name: dict[str, SimulatedCluster] = {}
        self._admin_runner: web.AppRunner | None = None
        self.admin_url: str | None = None

    @property
    def kubeconfig_dir(self) -> Path:
        if self._kubeconfig_dir is None:
            raise RuntimeError("the simulator is not started")
        return self._kubeconfig_dir

    def cluster(self, name: str) -> SimulatedCluster:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no simulated cluster named {name!r}") from None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._kubeconfig_dir is None:
            self._kubeconfig_dir = Path(tempfile.mkdtemp(prefix="foot-sim-"))
        self._kubeconfig_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self._tls:
                self.certificate = create_serving_certificate(self._kubeconfig_dir, self.host)
            for index, name in enumerate(self._names):
                cluster = self._build_cluster(index, name)
                self.clusters.append(cluster)
                self._by_name[name] = cluster
                await cluster.listen()
                write_private_file(cluster.kubeconfig_path, cluster.kubeconfig())
                if self._simulate_workloads:
                    cluster.kubelet.start()
            if self._admin_port is not None:
                await self._start_admin()
        except BaseException:
            await self.stop()
            raise

    def _build_cluster(self, index: int, name: str) -> SimulatedCluster:
        store = ClusterStore(event_window=self._event_window)
        for namespace in _BOOTSTRAP_NAMESPACES:
            store.create(
                NAMESPACES, "", {"metadata": {"name": namespace}}, manager="kube-apiserver"
            )
        for node_index in range(self._nodes_per_cluster):
            store.create(
                NODES, "", node_object(name, node_index, self._node_shape), manager="kubelet"
            )
        # Like a watch cache that starts after bootstrap: resuming from before it is 410 Gone.
        store.mark_compacted()
        api = ClusterApi(
            name=name,
            token=secrets.token_urlsafe(32),
            store=store,
            bookmark_interval=self._bookmark_interval,
            rng=random.Random(None if self._seed is None else self._seed + index),  # noqa: S311 - fault sampling, not crypto
        )
        cluster = SimulatedCluster(
            name=name,
            host=self.host,
            token=api.token,
            kubeconfig_path=self.kubeconfig_dir / f"{name}.kubeconfig",
            store=store,
            api=api,
            kubelet=SimulatedKubelet(store, ready_delay=self._ready_delay),
            port=self._base_port + index if self._base_port else 0,
            certificate=self.certificate,
        )
        store.namespace_terminating_hook = cluster.schedule_namespace_finalize
        return cluster

    async def stop(self) -> None:
        if self._admin_runner is not None:
            runner, self._admin_runner = self._admin_runner, None
            await runner.cleanup()
        for cluster in self.clusters:
            await cluster.stop()
        if self._owns_kubeconfig_dir and self._kubeconfig_dir is not None:
            shutil.rmtree(self._kubeconfig_dir, ignore_errors=True)
            self._kubeconfig_dir = None

    async def set_fault(self, name: str, mode: FaultMode | str, **settings: Any) -> Fault:
        """Put a cluster into a fault mode, e.g. set_fault("sim-0", "slow", latency_ms=200)."""
        fault_mode = FaultMode(mode)
        fault = Fault.from_json(
            {
                "mode": fault_mode.value,
                "latencyMs": settings.pop("latency_ms", 0.0),
                "errorRate": settings.pop("error_rate", 0.0),
                "errorCodes": settings.pop("error_codes", (429, 500)),
                "retryAfterSeconds": settings.pop("retry_after_seconds", 1),
            }
        )
        if settings:
            raise TypeError(f"unknown fault settings: {', '.join(settings)}")
        await self.cluster(name).set_fault(fault)
        return fault

    # --- admin API --------------------------------------------------------------------

    async def _start_admin(self) -> None:
        app = web.Application(middlewares=[self._admin_auth])
        app.router.add_get("/sim/clusters", self._admin_list)
        app.router.add_get("/sim/clusters/{name}", self._admin_get)
        app.router.add_get("/sim/clusters/{name}/kubeconfig", self._admin_kubeconfig)
        app.router.add_get("/sim/clusters/{name}/fault", self._admin_get_fault)
        app.router.add_put("/sim/clusters/{name}/fault", self._admin_set_fault)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE_SECONDS)
        await runner.setup()
        sock = _bind(self.host, self._admin_port or 0)
        await web.SockSite(runner, sock).start()
        self._admin_runner = runner
        self.admin_url = f"http://{self.host}:{sock.getsockname()[1]}"

    @web.middleware
    async def _admin_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.encode(), self.admin_token.encode()
        ):
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    def _admin_cluster(self, request: web.Request) -> SimulatedCluster:
        name = request.match_info["name"]
        if name not in self._by_name:
            raise web.HTTPNotFound(
                text=orjson.dumps({"error": f"no cluster {name}"}).decode(),
                content_type="application/json",
            )
        return self._by_name[name]

    async def _admin_list(self, _request: web.Request) -> web.Response:
        return web.json_response({"clusters": [c.summary() for c in self.clusters]})

    async def _admin_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._admin_cluster(request).summary())

    async def _admin_kubeconfig(self, request: web.Request) -> web.Response:
        return web.Response(
            text=self._admin_cluster(request).kubeconfig(), content_type="application/yaml"
        )

    async def _admin_get_fault(self, request: web.Request) -> web.Response:
        return web.json_response(self._admin_cluster(request).fault.to_json())

    async def _admin_set_fault(self, request: web.Request) -> web.Response:
        cluster = self._admin_cluster(request)
        try:
            fault = Fault.from_json(orjson.loads(await request.read()))
        except (ValueError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        await cluster.set_fault(fault)
        return web.json_response(fault.to_json())

"""Real member clusters for tests: etcd + kube-apiserver (+ kube-controller-manager).

    async with KubeClusters.start(count=3, workdir=tmp_path) as clusters:
        for cluster in clusters:
            ...  # cluster.kubeconfig_path, cluster.server, cluster.admin_token, ...
        await clusters[0].kill()   # SIGKILL its kube-apiserver
        await clusters[0].start()  # back on the same port, with the same data

Every cluster gets free loopback ports picked at run time, its own certificate
authorities and credentials, and processes started and tracked here; tear-down
stops only those processes and removes their data. Nothing runs Pods: without a
kubelet, tests that need workload status write it through the status
subresource themselves.

The process work is synchronous (subprocess + polling) so that it does not
belong to any event loop: a session-wide set of clusters outlives the
per-test loops. The async methods run the same steps in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import enum
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import yaml

from foot_cli.processes import spawn, stop_all
from foot_testenv.kube_binaries import FootTestenvError, KubeBinaries, find_binaries
from foot_testenv.pki import (
    FRONT_PROXY_CLIENT_NAME,
    SERVICE_CLUSTER_IP_RANGE,
    ClusterPki,
    write_cluster_pki,
)

DEFAULT_START_TIMEOUT = 120.0
POLL_INTERVAL = 0.1
PROBE_TIMEOUT = 2.0
# kube-apiserver drains in about a second; past this a process is killed.
STOP_GRACE_SECONDS = 10.0
# A freshly picked port can be taken by someone else before our server binds it.
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 15
LOOPBACK = "127.0.0.1"
# Ports are picked below the kernel's ephemeral range so that outgoing
# connections (which take ephemeral ports) cannot occupy a cluster's port while
# it is down between kill() and start().
PORT_RANGE_FLOOR = 20000
CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Controllers that manage nodes, volumes and cloud resources have nothing to
# act on in a node-less cluster and only log errors.
CONTROLLERS = (
    "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route,"
    "-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,"
    "-pv-protection,-pvc-protection"
)


class Component(enum.StrEnum):
    ETCD = "etcd"
    KUBE_APISERVER = "kube-apiserver"
    KUBE_CONTROLLER_MANAGER = "kube-controller-manager"


class ClusterStartError(FootTestenvError):
    """A cluster did not become ready; the message carries the relevant log lines."""


@dataclass(frozen=True)
class ClusterPorts:
    kube_apiserver: int
    etcd_client: int
    etcd_peer: int


class KubeCluster:
    """One member cluster: its processes, ports, credentials and kubeconfig."""

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        binaries: KubeBinaries,
        with_controller_manager: bool,
        ports: ClusterPorts,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.name = name
        self.directory = directory
        self.binaries = binaries
        self.with_controller_manager = with_controller_manager
        self.ports = ports
        self.start_timeout = start_timeout
        self.log_dir = directory / "logs"
        self.etcd_data_dir = directory / "etcd-data"
        self.kubeconfig_path = directory / "kubeconfig"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._pki: ClusterPki = write_cluster_pki(directory / "pki", name)
        self._kubeconfig: dict[str, Any] = {}
        self._processes: dict[Component, subprocess.Popen[bytes]] = {}
        # Serialises spawning and stopping: an abandoned start-up step in a worker
        # thread must not start a process after tear-down has begun.
        self._lock = threading.RLock()
        self._disposed = False
        self._ever_ready = False
        self._startup = _StartupState()
        self._ssl_context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
        self._write_kubeconfig()

    def __repr__(self) -> str:
        return f"KubeCluster(name={self.name!r}, server={self.server!r})"

    # -- connection details -------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports.kube_apiserver}"

    @property
    def kubeconfig(self) -> dict[str, Any]:
        """The kubeconfig as a dict (a copy; the file at kubeconfig_path is the same)."""
        return copy.deepcopy(self._kubeconfig)

    @property
    def context(self) -> str:
        """Kubeconfig context authenticating with the admin client certificate (the default)."""
        return self.name

    @property
    def token_context(self) -> str:
        """Kubeconfig context authenticating with the static admin bearer token."""
        return f"{self.name}-token"

    @property
    def admin_token(self) -> str:
        """Bearer token of a system:masters user (keep it out of logs)."""
        return self._pki.admin_token

    @property
    def ca_path(self) -> Path:
        return self._pki.ca_cert

    @property
    def admin_cert_path(self) -> Path:
        return self._pki.admin_cert

    @property
    def admin_key_path(self) -> Path:
        return self._pki.admin_key

    def pid(self, component: Component) -> int | None:
        """PID of a running component of this cluster, None when it is not running."""
        process = self._processes.get(component)
        if process is None or process.poll() is not None:
            return None
        return process.pid

    def log_path(self, component: Component) -> Path:
        return self.log_dir / f"{component}.log"

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start whatever is not running, on the same ports and data, and wait until ready.

        Raises ClusterStartError (with log lines) after start_timeout seconds.
        """
        await _start_clusters([self])

    def start_blocking(self) -> None:
        _start_clusters_blocking([self])

    async def stop(self) -> None:
        """Stop every process of the cluster gracefully; start() brings it back with its data."""
        await asyncio.to_thread(self.stop_blocking)

    def stop_blocking(self) -> None:
        with self._lock:
            # Dependents first: the controller manager, then the API server, then etcd.
            for component in (
                Component.KUBE_CONTROLLER_MANAGER,
                Component.KUBE_APISERVER,
                Component.ETCD,
            ):
                stop_all(self._running_processes(component), grace_seconds=STOP_GRACE_SECONDS)

    async def kill(self) -> None:
        """SIGKILL the kube-apiserver, as a crash would; etcd keeps running. start() recovers."""
        await asyncio.to_thread(self.kill_blocking)

    def kill_blocking(self) -> None:
        with self._lock:
            for process in self._running_processes(Component.KUBE_APISERVER):
                process.kill()
                process.wait()

    async def is_ready(self) -> bool:
        """Whether the kube-apiserver answers /readyz with ok right now."""
        return await asyncio.to_thread(self.is_ready_blocking)

    def is_ready_blocking(self) -> bool:
        return self._get_ok("/readyz")

    def get_json_blocking(self, path: str) -> Any:
        """GET a path of the kube-apiserver as the admin and parse the JSON answer.

        Raises ValueError when the body is not JSON, OSError when the server
        cannot be reached, FootTestenvError on a non-200 answer.
        """
        status, body = self._https_get(path, timeout=30.0)
        if status != http.HTTPStatus.OK:
            raise FootTestenvError(f"{self.name}: GET {path} answered {status}")
        return json.loads(body)

    # -- internals ----------------------------------------------------------

    def _running_processes(self, component: Component) -> list[subprocess.Popen[bytes]]:
        process = self._processes.get(component)
        return [process] if process is not None and process.poll() is None else []

    def _is_running(self, component: Component) -> bool:
        return bool(self._running_processes(component))

    def _spawn(self, component: Component) -> None:
        with self._lock:
            if self._disposed:
                raise ClusterStartError(f"{self.name}: the cluster has been torn down")
            argv = {
                Component.ETCD: self._etcd_argv,
                Component.KUBE_APISERVER: self._kube_apiserver_argv,
                Component.KUBE_CONTROLLER_MANAGER: self._kube_controller_manager_argv,
            }[component]()
            # Own session (a terminal's Ctrl-C reaches only us; we stop children in
            # order) and SIGKILL if we die: a crashed test run takes its clusters along.
            self._processes[component] = spawn(
                argv,
                env=self._child_env(),
                log_path=self.log_path(component),
                new_session=True,
                death_signal=signal.SIGKILL,
            )

    def _child_env(self) -> dict[str, str]:
        # A clean environment: etcd reads ETCD_* variables and Go programs read
        # KUBECONFIG and proxy settings that the developer's shell may carry.
        return {"PATH": CHILD_PATH, "HOME": str(self.directory), "TMPDIR": str(self.directory)}

    def _etcd_argv(self) -> list[str]:
        client_url = f"http://{LOOPBACK}:{self.ports.etcd_client}"
        peer_url = f"http://{LOOPBACK}:{self.ports.etcd_peer}"
        return [
            str(self.binaries.etcd),
            f"--name={self.name}",
            f"--data-dir={self.etcd_data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={self.name}={peer_url}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token=foot-testenv-{self.name}",
            "--logger=zap",
            "--log-level=warn",
        ]

    def _kube_apiserver_argv(self) -> list[str]:
        pki = self._pki
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://{LOOPBACK}:{self.ports.etcd_client}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={self.ports.kube_apiserver}",
            f"--cert-dir={pki.directory}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={pki.token_file}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The front-proxy CA lets delegated authentication (the controller
            # manager, aggregated APIs) work without errors in every cluster.
            f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT_NAME}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
            "--allow-privileged=true",
            "--profiling=false",
            # With a loopback advertise address the endpoint reconciler logs an
            # error every 10 s; nothing reaches the apiserver through the service.
            "--endpoint-reconciler-type=none",
        ]
        if not self.with_controller_manager:
            # Nobody creates the default ServiceAccount without the controller
            # manager, so admission would reject every Pod.
            argv.append("--disable-admission-plugins=ServiceAccount")
        return argv

    def _kube_controller_manager_argv(self) -> list[str]:
        pki = self._pki
        return [
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={self.kubeconfig_path}",
            # Nothing needs its metrics or health endpoints; not serving saves a port.
            "--secure-port=0",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--controllers={CONTROLLERS}",
        ]

    def _write_kubeconfig(self) -> None:
        pki = self._pki
        admin_user = f"{self.name}-admin"
        token_user = f"{self.name}-token"
        self._kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": self.name,
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _base64_file(pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": admin_user,
                    "user": {
                        "client-certificate-data": _base64_file(pki.admin_cert),
                        "client-key-data": _base64_file(pki.admin_key),
                    },
                },
                {"name": token_user, "user": {"token": pki.admin_token}},
            ],
            "contexts": [
                {"name": self.context, "context": {"cluster": self.name, "user": admin_user}},
                {"name": self.token_context, "context": {"cluster": self.name, "user": token_user}},
            ],
            "current-context": self.context,
        }
        descriptor = os.open(self.kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            yaml.safe_dump(self._kubeconfig, handle, sort_keys=False)

    def _repick_ports(self) -> None:
        """Move a cluster that never came up to new ports (its first ones were taken)."""
        with self._lock:
            self.stop_blocking()
            shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
            self.ports = _pick_cluster_ports(1)[0]
            self._write_kubeconfig()

    def _begin_start(self) -> None:
        self._startup = _StartupState(deadline=time.monotonic() + self.start_timeout)

    def _advance_start(self) -> bool:
        """One non-blocking start-up step; True once the cluster is ready."""
        if self._startup.ready:
            return True
        try:
            self._advance_start_unchecked()
        except _ProcessExitedError as exited:
            startup = self._startup
            if exited.port_in_use and not self._ever_ready and startup.port_attempt < PORT_ATTEMPTS:
                startup.port_attempt += 1
                startup.spawned.clear()
                self._repick_ports()
                return False
            raise ClusterStartError(str(exited)) from None
        return self._startup.ready

    def _advance_start_unchecked(self) -> None:
        startup = self._startup
        for component in startup.spawned:
            process = self._processes[component]
            if process.poll() is not None:
                raise _ProcessExitedError(self, component, process.returncode)
        if not self._is_running(Component.ETCD):
            self._spawn_for_start(Component.ETCD)
            return
        if not self._is_running(Component.KUBE_APISERVER):
            if self._etcd_healthy():
                self._spawn_for_start(Component.KUBE_APISERVER)
            return
        # The default namespace appears just after /readyz; tests expect it there.
        if not (self._get_ok("/readyz") and self._get_ok("/api/v1/namespaces/default")):
            return
        if self.with_controller_manager:
            if not self._is_running(Component.KUBE_CONTROLLER_MANAGER):
                self._spawn_for_start(Component.KUBE_CONTROLLER_MANAGER)
                return
            # The ServiceAccount controller's first object: controllers are running
            # and Pods can be admitted.
            if not self._get_ok("/api/v1/namespaces/default/serviceaccounts/default"):
                return
        self._ever_ready = True
        startup.ready = True

    def _spawn_for_start(self, component: Component) -> None:
        self._spawn(component)
        self._startup.spawned.add(component)

    def _describe_start_wait(self) -> str:
        if not self._is_running(Component.KUBE_APISERVER):
            waiting_for, component = "etcd healthy", Component.ETCD
        elif self._is_running(Component.KUBE_CONTROLLER_MANAGER):
            waiting_for, component = "default ServiceAccount", Component.KUBE_CONTROLLER_MANAGER
        else:
            waiting_for, component = "/readyz ok", Component.KUBE_APISERVER
        return (
            f"{self.name}: no {waiting_for} after {self.start_timeout:.0f} s; "
            f"{_log_tail(self.log_path(component))}"
        )

    def _dispose_blocking(self, remove_directory: bool) -> None:
        with self._lock:
            self._disposed = True
            self.stop_blocking()
            shutil.rmtree(self.etcd_data_dir, ignore_errors=True)
            if remove_directory:
                shutil.rmtree(self.directory, ignore_errors=True)

    def _https_get(self, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, bytes]:
        connection = http.client.HTTPSConnection(
            LOOPBACK, self.ports.kube_apiserver, context=self._ssl_context, timeout=timeout
        )
        try:
            connection.request("GET", path, headers={"Authorization": f"Bearer {self.admin_token}"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _get_ok(self, path: str) -> bool:
        try:
            status, _ = self._https_get(path)
        except (OSError, http.client.HTTPException):
            return False
        return status == http.HTTPStatus.OK

    def _etcd_healthy(self) -> bool:
        connection = http.client.HTTPConnection(
            LOOPBACK, self.ports.etcd_client, timeout=PROBE_TIMEOUT
        )
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()
        return response.status == http.HTTPStatus.OK and b'"true"' in body


class _ProcessExitedError(Exception):
    def __init__(self, cluster: KubeCluster, component: Component, returncode: int) -> None:
        log_path = cluster.log_path(component)
        tail = _log_tail(log_path)
        super().__init__(
            f"{cluster.name}: {component} exited with code {returncode} during start-up; {tail}"
        )
        self.port_in_use = "address already in use" in tail


@dataclass
class _StartupState:
    """Progress of one cluster's start-up, advanced one non-blocking step at a time."""

    deadline: float = 0.0
    port_attempt: int = 1
    spawned: set[Component] = field(default_factory=set)
    ready: bool = False


# The drivers below belong with KubeCluster; they reach its start-up steps,
# which are private because they are only meaningful in this sequence.


def _begin_start(clusters: Sequence[KubeCluster]) -> None:
    for cluster in clusters:
        cluster._begin_start()  # noqa: SLF001


def _start_step(clusters: Sequence[KubeCluster]) -> bool:
    """Advance every cluster one step; True once all are ready."""
    pending = [cluster for cluster in clusters if not cluster._advance_start()]  # noqa: SLF001
    late = [cluster for cluster in pending if time.monotonic() > cluster._startup.deadline]  # noqa: SLF001
    if late:
        waiting = "\n".join(cluster._describe_start_wait() for cluster in late)  # noqa: SLF001
        raise ClusterStartError(f"not ready in time:\n{waiting}")
    return not pending


def _start_clusters_blocking(clusters: Sequence[KubeCluster]) -> None:
    _begin_start(clusters)
    while not _start_step(clusters):
        time.sleep(POLL_INTERVAL)


async def _start_clusters(clusters: Sequence[KubeCluster]) -> None:
    _begin_start(clusters)
    # Polling is deliberate: readiness is the state of other processes, which
    # offer no event to wait on.
    while not await asyncio.to_thread(_start_step, clusters):  # noqa: ASYNC110
        await asyncio.sleep(POLL_INTERVAL)


class KubeClusters(Sequence[KubeCluster]):
    """A set of member clusters started together and torn down together."""

    def __init__(self, clusters: list[KubeCluster], workdir: Path, *, owns_workdir: bool) -> None:
        self._clusters = clusters
        self.workdir = workdir
        self._owns_workdir = owns_workdir

    @classmethod
    def create(
        cls,
        count: int,
        *,
        workdir: Path | None = None,
        with_controller_manager: bool = False,
        name_prefix: str = "member",
        binaries: KubeBinaries | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> KubeClusters:
        """Prepare folders, ports, credentials and kubeconfigs; start nothing yet.

        Without a workdir a temporary folder is used and removed at tear-down;
        a given workdir keeps logs and kubeconfigs (etcd data is always removed).
        Raises BinariesMissingError when the binaries are not installed.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        binaries = binaries or find_binaries()
        owns_workdir = workdir is None
        root = Path(tempfile.mkdtemp(prefix="foot-kube-")) if workdir is None else workdir
        ports = _pick_cluster_ports(count)
        clusters: list[KubeCluster] = []
        for index, cluster_ports in enumerate(ports, start=1):
            name = f"{name_prefix}-{index}"
            directory = root / name
            # A leftover folder would mix an old etcd's data into the new cluster.
            directory.mkdir(parents=True, exist_ok=False)
            clusters.append(
                KubeCluster(
                    name=name,
                    directory=directory,
                    binaries=binaries,
                    with_controller_manager=with_controller_manager,
                    ports=cluster_ports,
                    start_timeout=start_timeout,
                )
            )
        return cls(clusters, root, owns_workdir=owns_workdir)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        count: int = 3,
        *,
        workdir: Path | None = None,
        with_controller_manager: bool = False,
        name_prefix: str = "member",
        binaries: KubeBinaries | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> AsyncIterator[KubeClusters]:
        """Start `count` clusters concurrently; tear them down when the block ends."""
        clusters = cls.create(
            count,
            workdir=workdir,
            with_controller_manager=with_controller_manager,
            name_prefix=name_prefix,
            binaries=binaries,
            start_timeout=start_timeout,
        )
        try:
            await clusters.launch()
            yield clusters
        finally:
            await clusters.dispose()

    @classmethod
    @contextlib.contextmanager
    def start_blocking(
        cls,
        count: int = 3,
        *,
        workdir: Path | None = None,
        with_controller_manager: bool = False,
        name_prefix: str = "member",
        binaries: KubeBinaries | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> Iterator[KubeClusters]:
        """The same as start(), for code without an event loop."""
        clusters = cls.create(
            count,
            workdir=workdir,
            with_controller_manager=with_controller_manager,
            name_prefix=name_prefix,
            binaries=binaries,
            start_timeout=start_timeout,
        )
        try:
            clusters.launch_blocking()
            yield clusters
        finally:
            clusters.dispose_blocking()

    async def launch(self) -> None:
        """Start all clusters side by side and wait until every one is ready."""
        await _start_clusters(self._clusters)

    def launch_blocking(self) -> None:
        _start_clusters_blocking(self._clusters)

    async def dispose(self) -> None:
        """Stop every process these clusters started and remove their data."""
        try:
            await asyncio.to_thread(self.dispose_blocking)
        except asyncio.CancelledError:
            # Cancelled again mid-teardown: finish here so no process outlives the block
            # (the worker thread's run and this one are serialised per cluster).
            self.dispose_blocking()
            raise

    def dispose_blocking(self) -> None:
        # Stop the clusters side by side: each waits up to STOP_GRACE_SECONDS.
        threads = [
            threading.Thread(
                target=cluster._dispose_blocking,  # noqa: SLF001 - tear-down is shared
                args=(self._owns_workdir,),
                name=f"foot-testenv-stop-{cluster.name}",
            )
            for cluster in self._clusters
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @overload
    def __getitem__(self, index: int) -> KubeCluster: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[KubeCluster]: ...

    def __getitem__(self, index: int | slice) -> KubeCluster | Sequence[KubeCluster]:
        return self._clusters[index]

    def __len__(self) -> int:
        return len(self._clusters)

    def by_name(self, name: str) -> KubeCluster:
        for cluster in self._clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)


# -- ports and files ---------------------------------------------------------


def _pick_cluster_ports(count: int) -> list[ClusterPorts]:
    ports = _free_loopback_ports(3 * count)
    return [
        ClusterPorts(kube_apiserver=ports[i], etcd_client=ports[i + 1], etcd_peer=ports[i + 2])
        for i in range(0, len(ports), 3)
    ]


def _free_loopback_ports(count: int) -> list[int]:
    """Distinct loopback ports that are free now, below the ephemeral port range."""
    ceiling = _ephemeral_port_floor()
    chosen: list[int] = []
    sockets: list[socket.socket] = []
    generator = random.Random()  # noqa: S311 - spreads ports, not a secret
    try:
        # Holding each probe socket until all are picked keeps the ports distinct.
        attempts = 0
        while len(chosen) < count:
            attempts += 1
            if attempts > 100 * count:
                raise FootTestenvError(f"found no {count} free loopback ports below {ceiling}")
            port = generator.randrange(PORT_RANGE_FLOOR, ceiling)
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                probe.close()
                continue
            sockets.append(probe)
            chosen.append(port)
    finally:
        for probe in sockets:
            probe.close()
    return chosen


def _ephemeral_port_floor() -> int:
    try:
        floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        floor = 32768
    # A machine tuned to hand out ephemeral ports from low numbers still needs a range.
    return max(floor, PORT_RANGE_FLOOR + 1000)


def _base64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except FileNotFoundError:
        return f"no log at {path}"
    if not lines:
        return f"{path} is empty"
    shown = "\n".join(f"    {line[:400]}" for line in lines)
    return f"last lines of {path}:\n{shown}"

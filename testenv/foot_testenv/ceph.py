"""A real single-machine Ceph for tests: brought up by testenv/ceph/up.sh, torn down by down.sh.

The session fixture `ceph` starts one Ceph 16.2 (Debian packages) per test
session in a folder of its own, on free ports: 1 mon, 1 mgr with the dashboard
REST API (no TLS), a memstore OSD, an MDS with the CephFS volume `cephfs` and a
radosgw. It yields `CephCluster` (connection facts) and tears down only the
daemons it started (by their PIDs, checked against their command line).

Tests share the cluster: they name what they create uniquely and must leave it
running. `pause()`/`resume()` freeze and thaw every daemon (SIGSTOP/SIGCONT) to
simulate Ceph being unreachable for a while.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "ceph"
UP_TIMEOUT_SECONDS = 180.0
REQUIRED_COMMANDS = ("ceph", "ceph-mon", "ceph-mgr", "ceph-osd", "ceph-mds", "radosgw", "rbd")
DEBIAN_PACKAGES = (
    "ceph-mon ceph-mgr ceph-osd ceph-mgr-dashboard radosgw ceph-mds ceph-common "
    "python3-rados python3-rbd python3-cephfs"
)
PORT_RANGE_SIZE = 200
DASHBOARD_USER = "admin"


class CephUnavailableError(RuntimeError):
    """The Ceph packages are missing or the cluster did not come up."""


@dataclass(frozen=True, slots=True)
class CephCluster:
    """Connection facts of a running test Ceph (secrets are the test cluster's own)."""

    run_dir: Path
    conf: Path
    """ceph.conf for the CLI and librados (`-c`)."""
    admin_keyring: Path
    """Keyring holding client.admin (`-k`)."""
    fsid: str
    mon_host: str
    dashboard_url: str
    dashboard_user: str
    dashboard_password: str = field(repr=False)
    rgw_url: str
    fs_name: str = "cephfs"
    bring_up_seconds: float = 0.0

    def daemon_pids(self) -> list[int]:
        pids = []
        for pid_file in sorted((self.run_dir / "pid").glob("*.pid")):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text().strip())
                if _is_ours(pid, self.conf):
                    pids.append(pid)
        return pids

    def pause(self) -> None:
        """Freeze every daemon: Ceph stops answering (connections hang) until `resume()`."""
        for pid in self.daemon_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.daemon_pids():
            os.kill(pid, signal.SIGCONT)

    def ceph(self, *args: str, timeout: float = 30.0) -> str:
        """Run the ceph CLI as client.admin; stdout, or CalledProcessError."""
        return self._run("ceph", args, timeout)

    def rbd(self, *args: str, timeout: float = 30.0) -> str:
        return self._run("rbd", args, timeout)

    def _run(self, tool: str, args: tuple[str, ...], timeout: float) -> str:
        completed = subprocess.run(
            [tool, "-c", str(self.conf), "-k", str(self.admin_keyring), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return completed.stdout


def _is_ours(pid: int, conf: Path) -> bool:
    """A live daemon of ours has our ceph.conf on its command line (a zombie has none)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return str(conf).encode() in cmdline


def missing_commands() -> list[str]:
    return [command for command in REQUIRED_COMMANDS if shutil.which(command) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port_range(size: int) -> int:
    """First port of a range whose ends are free (daemons bind inside it)."""
    rng = random.Random()  # noqa: S311 - spreading port ranges, not security
    for _ in range(50):
        start = rng.randrange(20000, 30000 - size)
        if all(_port_free(p) for p in (start, start + 1, start + size // 2, start + size - 1)):
            return start
    raise CephUnavailableError("no free port range for the Ceph daemons")


def start_ceph(run_dir: Path, *, osds: int = 1) -> CephCluster:
    """Bring a Ceph up in `run_dir` (blocking); tear it down again if start-up fails."""
    missing = missing_commands()
    if missing:
        raise CephUnavailableError(
            f"Ceph is not installed ({', '.join(missing)} missing); as root: apt-get install "
            f"--no-install-recommends -y {DEBIAN_PACKAGES} (.ci/run does this)"
        )
    password = f"Foot-{os.urandom(6).hex()}-1"
    port_min = _free_port_range(PORT_RANGE_SIZE)
    env = os.environ | {
        "FOOT_CEPH_RUN": str(run_dir),
        "FOOT_CEPH_OSDS": str(osds),
        "FOOT_CEPH_MON_V2_PORT": str(_free_port()),
        "FOOT_CEPH_MON_V1_PORT": str(_free_port()),
        "FOOT_CEPH_PORT_MIN": str(port_min),
        "FOOT_CEPH_PORT_MAX": str(port_min + PORT_RANGE_SIZE - 1),
        "FOOT_CEPH_DASHBOARD_PORT": str(_free_port()),
        "FOOT_CEPH_RGW_PORT": str(_free_port()),
        "FOOT_CEPH_DASHBOARD_USER": DASHBOARD_USER,
        "FOOT_CEPH_DASHBOARD_PASS": password,
    }
    started = time.perf_counter()
    log_file = run_dir.parent / f"{run_dir.name}-up.log"
    try:
        with log_file.open("w") as log:
            subprocess.run(
                ["bash", str(SCRIPTS / "up.sh")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=UP_TIMEOUT_SECONDS,
                check=True,
            )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stop_ceph(run_dir)
        raise CephUnavailableError(
            f"Ceph did not come up: {exc}\n{log_file.read_text()[-3000:]}"
        ) from exc
    elapsed = time.perf_counter() - started
    facts = _read_env(run_dir / "env")
    return CephCluster(
        run_dir=run_dir,
        conf=Path(facts["CEPH_CONF"]),
        admin_keyring=Path(facts["CEPH_KEYRING"]),
        fsid=facts["CEPH_FSID"],
        mon_host=facts["CEPH_MON_HOST"],
        dashboard_url=facts["CEPH_DASHBOARD_URL"],
        dashboard_user=facts["CEPH_DASHBOARD_USER"],
        dashboard_password=password,
        rgw_url=facts["CEPH_RGW_URL"],
        bring_up_seconds=elapsed,
    )


def stop_ceph(run_dir: Path) -> None:
    """Stop the daemons started in `run_dir` (only those) and delete its state."""
    # Thaw first: a paused daemon does not act on SIGTERM.
    conf = run_dir / "ceph.conf"
    for pid_file in (run_dir / "pid").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if _is_ours(pid, conf):
                os.kill(pid, signal.SIGCONT)
    subprocess.run(
        ["bash", str(SCRIPTS / "down.sh")],
        env=os.environ | {"FOOT_CEPH_RUN": str(run_dir)},
        capture_output=True,
        timeout=60,
        check=False,
    )


def _read_env(path: Path) -> dict[str, str]:
    facts = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        facts[name] = value.strip("'")
    return facts


@pytest.fixture(scope="session")
def ceph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephCluster]:
    """A real single-machine Ceph shared by the session (fails, never skips, without it)."""
    run_dir = tmp_path_factory.mktemp("ceph") / "run"
    try:
        cluster = start_ceph(run_dir)
    except CephUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    print(f"\n[ceph] up in {cluster.bring_up_seconds:.1f}s at {cluster.dashboard_url}")  # noqa: T201
    try:
        yield cluster
    finally:
        stop_ceph(run_dir)

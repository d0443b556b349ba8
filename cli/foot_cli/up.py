"""`foot up`: embedded NATS and the five services as separate processes, stopped cleanly.

The admin HTTP servers are closed without a token, so `foot up` makes two into its home
(kept across runs): `admin.token` (everything) and `read.token` (GET and HEAD only), files
of mode 600 in a home of mode 700, handed to the services as files. Only their paths are
printed and recorded in the state file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import orjson
from rich.console import Console
from rich.table import Table

from foot.natsauth import CLI_IDENTITY, NatsAuthHome
from foot.redaction import redact
from foot.secrets import SecretBox
from foot_cli.home import ADMIN_TOKEN_FILE, READ_TOKEN_FILE, STATE_FILE
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import free_port, port_open, spawn, stop, wait_until

SERVICES = ("registry", "scheduler", "dispatcher", "gateway-sync", "storage")
HEALTH_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 4.0
"""Each service gets this long after SIGTERM; their own in-flight deadline is shorter."""
SERVICE_SHUTDOWN_DEADLINE_SECONDS = 2.5


@dataclass(frozen=True)
class TokenFiles:
    admin: Path
    read: Path


def write_token_file(path: Path, token: str) -> None:
    """Create or replace `path` holding `token`, readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through os.open


def ensure_token_files(home: Path) -> TokenFiles:
    """The admin and read tokens of `home`, made on first use (a home of mode 700)."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    files = TokenFiles(admin=home / ADMIN_TOKEN_FILE, read=home / READ_TOKEN_FILE)
    for path in (files.admin, files.read):
        if not path.exists():
            write_token_file(path, secrets.token_urlsafe(32))
    return files


@dataclass
class RunningService:
    name: str
    admin_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


class Stack:
    """Everything `foot up` started, in the order it must stop (reverse of start)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.nats: EmbeddedNats | None = None
        self.services: list[RunningService] = []
        self.extras: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.kubeconfigs: list[Path] = []

    def stop(self) -> None:
        started = time.monotonic()
        children = [s.process for s in self.services] + [p for _, p in self.extras]
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            remaining = max(0.1, STOP_GRACE_SECONDS - (time.monotonic() - started))
            stop(child, grace_seconds=remaining)
        if self.nats is not None:
            self.nats.stop()
        self.console.print(f"[dim]stopped everything in {time.monotonic() - started:.1f}s[/dim]")


def health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=0.5) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)  # noqa: PLR2004
    except (urllib.error.URLError, OSError):
        return False


def run_up(
    *,
    nats_url: str | None,
    nats_port: int,
    admin_port_base: int,
    home: Path,
    log_level: str,
    simulated_clusters: int,
) -> int:
    console = Console(stderr=True)
    tokens = ensure_token_files(home)
    # NATS users (keys and .creds files, mode 600) in the home, made once and kept.
    auth = NatsAuthHome(home).ensure()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(console)
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    started = time.monotonic()
    try:
        nats_url = nats_url or start_nats(stack, home, nats_port, logs, auth)
        start_services(
            stack,
            nats_url,
            admin_port_base,
            log_level=log_level,
            logs=logs,
            tokens=tokens,
            auth=auth,
        )
        wait_healthy(stack)
        if simulated_clusters:
            start_simulator(stack, simulated_clusters, home, logs, console)
        write_state(home, nats_url, stack, tokens, auth)
        print_summary(stack, nats_url, tokens, auth, time.monotonic() - started)
        while not stopping:
            crashed = next((s for s in stack.services if s.process.poll() is not None), None)
            if crashed is not None:
                raise RuntimeError(  # noqa: TRY301 - reported like every start-up failure
                    f"{crashed.name} exited with {crashed.process.returncode}; "
                    f"see {crashed.log_path}"
                )
            time.sleep(0.1)
    except (RuntimeError, TimeoutError, OSError) as exc:
        console.print(f"[red]foot up failed:[/red] {exc}")
        return 1
    else:
        console.print("stopping FOOT")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()


def start_nats(stack: Stack, home: Path, port: int, logs: Path, auth: NatsAuthHome) -> str:
    with stack.console.status("starting embedded NATS (JetStream)"):
        stack.nats = EmbeddedNats(
            data_dir=home / "nats", port=port, log_path=logs / "nats-server.log", auth=auth
        ).start()
    stack.console.print(
        f"[green]✓[/green] NATS with JetStream and authentication at {stack.nats.url}"
    )
    return stack.nats.url


def start_services(
    stack: Stack,
    nats_url: str,
    admin_port_base: int,
    *,
    log_level: str,
    logs: Path,
    tokens: TokenFiles,
    auth: NatsAuthHome,
) -> None:
    secret_key_file = logs.parent / "secret.key"
    SecretBox.from_file(secret_key_file, create=True)  # one key for every service, made once
    for index, name in enumerate(SERVICES, start=1):
        port = free_port() if admin_port_base == 0 else admin_port_base + index
        if admin_port_base != 0 and port_open("127.0.0.1", port):
            raise RuntimeError(
                f"port {port} for the {name} admin server is in use; "
                "pass --admin-port-base 0 to pick free ports"
            )
        log_path = logs / f"{name}.log"
        module = "foot_" + name.replace("-", "_")
        argv = [sys.executable, "-m", module, "--nats-url", nats_url, "--admin-port", str(port)]
        argv += ["--log-level", log_level]
        argv += ["--shutdown-deadline-seconds", str(SERVICE_SHUTDOWN_DEADLINE_SECONDS)]
        argv += ["--secret-key-file", str(secret_key_file)]
        argv += ["--admin-token-file", str(tokens.admin), "--read-token-file", str(tokens.read)]
        argv += ["--nats-credentials-file", str(auth.creds(name))]
        if name == "registry":
            # It mints each pull agent's NATS user at `foot cluster register`.
            argv += ["--nats-account-signing-seed-file", str(auth.signing_seed)]
        process = spawn(argv, log_path=log_path, new_session=True)
        stack.services.append(RunningService(name, f"http://127.0.0.1:{port}", process, log_path))


def wait_healthy(stack: Stack) -> None:
    with stack.console.status("waiting for the services' /healthz"):
        for service in stack.services:

            def healthy(svc: RunningService = service) -> bool:
                if svc.process.poll() is not None:
                    raise RuntimeError(
                        f"{svc.name} exited with {svc.process.returncode}; see {svc.log_path}"
                    )
                return health_ok(svc.admin_url)

            wait_until(healthy, timeout_seconds=HEALTH_TIMEOUT_SECONDS, what=service.name)


def print_summary(
    stack: Stack, nats_url: str, tokens: TokenFiles, auth: NatsAuthHome, seconds: float
) -> None:
    out = Console()
    table = Table(title=f"FOOT is up ({seconds:.1f}s)")
    table.add_column("service")
    table.add_column("admin URL")
    table.add_column("log")
    for service in stack.services:
        table.add_row(service.name, service.admin_url, str(service.log_path))
    out.print(table)
    out.print(f"NATS: {redact(nats_url)}")
    # Where the tokens are, never what they are.
    out.print(f"admin token file: {tokens.admin}", highlight=False, soft_wrap=True)
    out.print(f"read-only token file: {tokens.read}", highlight=False, soft_wrap=True)
    out.print(f"NATS users (.creds): {auth.folder}", highlight=False, soft_wrap=True)
    out.print("Press Ctrl-C to stop.", highlight=False)
    sys.stdout.flush()


def start_simulator(stack: Stack, clusters: int, home: Path, logs: Path, console: Console) -> None:
    kubeconfig_dir = home / "sim-kubeconfigs"
    kubeconfig_dir.mkdir(exist_ok=True)
    for stale in kubeconfig_dir.glob("*.kubeconfig"):
        stale.unlink()
    log_path = logs / "simulator.log"
    log_path.write_bytes(b"")  # the simulator announces its clusters there, one line each
    argv = [sys.executable, "-m", "foot_sim", "--clusters", str(clusters)]
    argv += ["--kubeconfig-dir", str(kubeconfig_dir)]
    process = spawn(argv, log_path=log_path, new_session=True)
    stack.extras.append(("simulator", process))
    announced: list[list[str]] = []

    def all_announced() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited; see {log_path}")
        lines = log_path.read_text(errors="replace").splitlines()
        announced[:] = [line.split("\t") for line in lines if line.count("\t") == 2]  # noqa: PLR2004
        return len(announced) >= clusters

    with console.status(f"starting {clusters} simulated member clusters"):
        wait_until(all_announced, timeout_seconds=30, what="member-cluster simulator")
    stack.kubeconfigs = [Path(path) for _name, _server, path in announced[:clusters]]
    console.print(f"[green]✓[/green] {clusters} simulated member clusters:")
    for name, server, path in announced[:clusters]:
        console.print(f"  {name} at {server}  KUBECONFIG={path}", highlight=False, soft_wrap=True)


def write_state(
    home: Path, nats_url: str, stack: Stack, tokens: TokenFiles, auth: NatsAuthHome
) -> None:
    state = {
        "nats_url": nats_url,
        "pid": os.getpid(),
        "services": {
            s.name: {"admin_url": s.admin_url, "pid": s.process.pid} for s in stack.services
        },
        "nats_pid": stack.nats.process.pid if stack.nats and stack.nats.process else None,
        "extra_pids": {name: p.pid for name, p in stack.extras},
        "kubeconfigs": [str(path) for path in stack.kubeconfigs],
        "admin_token_file": str(tokens.admin),
        "read_token_file": str(tokens.read),
        "nats_credentials_file": str(auth.creds(CLI_IDENTITY)),
    }
    path = home / STATE_FILE
    path.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))

"""Child processes that never outlive FOOT: parent-death signal, free ports, orderly stop."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM this child when the process that started it dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def spawn(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a child that receives SIGTERM if we die, with output to `log_path` (or inherited)."""
    output = log_path.open("ab") if log_path is not None else None
    try:
        return subprocess.Popen(
            [str(a) for a in argv],
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl, no locks taken
            start_new_session=new_session,
        )
    finally:
        if output is not None:
            output.close()


def stop(process: subprocess.Popen[bytes], *, grace_seconds: float = 5.0) -> int:
    """SIGTERM, wait up to the grace period, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_until(check: Callable[[], bool], *, timeout_seconds: float, what: str) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_seconds:.0f}s")
        time.sleep(0.02)


def venv_binary(name: str) -> Path:
    """A console script installed beside the running interpreter (e.g. `nats-server`)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    raise FileNotFoundError(f"{name} is not installed (run ./dev setup)")

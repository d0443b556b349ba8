"""Child processes that never outlive FOOT: parent-death signal, free ports, orderly stop."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Resolved once, before any fork: between fork and exec the child may only make
# the system call.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent(parent_pid: int, death_signal: int) -> Callable[[], None]:
    def arm() -> None:  # pragma: no cover - runs in the child between fork and exec
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        # The parent may have died before the signal was armed.
        if os.getppid() != parent_pid:
            os._exit(1)

    return arm


@dataclass(frozen=True)
class _SpawnRequest:
    argv: list[str]
    env: dict[str, str] | None
    log_path: Path | None
    cwd: Path | None
    new_session: bool
    death_signal: int
    result: Future[subprocess.Popen[bytes]]


class _Launcher:
    """Starts every child from one thread that lives as long as this process.

    Linux sends the parent-death signal when the *thread* that forked a child
    ends, not the process: spawning from a short-lived worker thread (asyncio's
    to_thread) would kill the child when the thread retires. A daemon thread
    ends only with the process, which is exactly when the children must go too.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_SpawnRequest] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    def spawn(self, request: _SpawnRequest) -> subprocess.Popen[bytes]:
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="foot-process-launcher", daemon=True
                )
                self._thread.start()
        self._requests.put(request)
        return request.result.result()

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            try:
                request.result.set_result(_popen(request))
            except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
                request.result.set_exception(error)


def _popen(request: _SpawnRequest) -> subprocess.Popen[bytes]:
    output = request.log_path.open("ab") if request.log_path is not None else None
    try:
        return subprocess.Popen(
            request.argv,
            cwd=request.cwd,
            env=request.env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=request.new_session,
            preexec_fn=_die_with_parent(os.getpid(), request.death_signal),  # noqa: PLW1509
        )
    finally:
        if output is not None:
            output.close()


_LAUNCHER = _Launcher()


def spawn(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start a child that gets `death_signal` if this process dies.

    Output is appended to `log_path` (or inherited). `new_session` keeps a
    terminal's Ctrl-C from reaching the child, so we can stop children in order.
    """
    request = _SpawnRequest(
        argv=[str(a) for a in argv],
        env=dict(env) if env is not None else None,
        log_path=log_path,
        cwd=cwd,
        new_session=new_session,
        death_signal=death_signal,
        result=Future(),
    )
    return _LAUNCHER.spawn(request)


def stop(process: subprocess.Popen[bytes], *, grace_seconds: float = 5.0) -> int:
    """SIGTERM, wait up to the grace period, then SIGKILL. Returns the exit code."""
    return stop_all([process], grace_seconds=grace_seconds)[0]


def stop_all(
    processes: Sequence[subprocess.Popen[bytes]], *, grace_seconds: float = 5.0
) -> list[int]:
    """SIGTERM every process at once, wait up to the grace period, SIGKILL the rest; reaps all."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [process.returncode for process in processes]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


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

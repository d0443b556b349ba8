"""The fuzz suite's target and bookkeeping.

`FuzzTarget`: the scheduler and the registry as `foot up` runs them (processes of their
own, the admin token files of mode 600, a real nats-server), each one's log captured in a
file so that a traceback any input caused is found. `LoopThread`: an event loop in a thread
of its own, so that the (synchronous) Hypothesis tests can use the asyncio clients.
`TALLY`: every input sent, by where it went, and every crash, for the summary line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from admin_support import AdminCredentials

from foot.api import ApiError
from foot_cli.natsserver import EmbeddedNats
from foot_cli.processes import free_port, spawn, stop_all, wait_until

T = TypeVar("T")

TALLY: Counter[str] = Counter()
"""Inputs sent, by kind ("http", "nats", "cli", "openapi"), and "crash" for every one that
got no clear answer (a 5xx, a dropped connection, an unanswered request, an exception)."""
INPUT_KINDS = ("openapi", "http", "nats", "cli")
SERVICE_START_SECONDS = 60.0
TRACEBACK_MARKERS = ("Traceback (most recent call last)", '"exception":')


def summary_line() -> str:
    """What the suite sent and found, for the closing note (printed after the run)."""
    total = sum(TALLY[kind] for kind in INPUT_KINDS)
    parts = ", ".join(f"{kind} {TALLY[kind]}" for kind in INPUT_KINDS)
    return (
        f"fuzz: {total} generated bad inputs ({parts}); crashes {TALLY['crash']}, "
        f"tracebacks in service logs {TALLY['traceback']}, invalid objects stored "
        f"{TALLY['stored']}"
    )


class LoopThread:
    """An asyncio event loop running in a daemon thread; `run` waits for a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


@dataclass
class ServiceProcess:
    name: str
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def tracebacks(self) -> list[str]:
        """Log lines that carry a traceback (text) or an exception (the JSON log's field)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if any(m in line for m in TRACEBACK_MARKERS)]


@dataclass
class FuzzTarget:
    nats: EmbeddedNats
    credentials: AdminCredentials
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def registry_url(self) -> str:
        """The registry serves every admin route (its own /api/clusters ones included)."""
        return self.services["registry"].url

    @property
    def scheduler_url(self) -> str:
        return self.services["scheduler"].url

    def tracebacks(self) -> list[str]:
        return [line for s in self.services.values() for line in s.tracebacks()]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def start_service(
    name: str, nats: EmbeddedNats, credentials: AdminCredentials, folder: Path
) -> ServiceProcess:
    """`python -m foot_<name>` with the settings `foot up` gives it, until it is ready."""
    port = free_port()
    env = dict(os.environ) | {
        "FOOT_NATS_URL": nats.url,
        "FOOT_ADMIN_PORT": str(port),
        "FOOT_ADMIN_TOKEN_FILE": str(credentials.admin_file),
        "FOOT_READ_TOKEN_FILE": str(credentials.read_file),
        "FOOT_LOG_FORMAT": "json",
    }
    log_path = folder / f"{name}.log"
    process = spawn([sys.executable, "-m", f"foot_{name}"], env=env, log_path=log_path)
    url = f"http://127.0.0.1:{port}"
    service = ServiceProcess(name, url, log_path, process)
    try:
        wait_until(
            lambda: process.poll() is None and _ready(url),
            timeout_seconds=SERVICE_START_SECONDS,
            what=f"foot-{name}",
        )
    except TimeoutError:
        stop_all([process])
        raise AssertionError(f"foot-{name} did not start:\n{log_path.read_text()}") from None
    return service


@contextmanager
def running_target(folder: Path, credentials: AdminCredentials) -> Iterator[FuzzTarget]:
    """nats-server, then the scheduler (it creates the installation's sealing key), then the
    registry; stopped in the reverse order."""
    with EmbeddedNats(data_dir=folder / "nats") as nats:
        target = FuzzTarget(nats, credentials)
        try:
            for name in ("scheduler", "registry"):
                target.services[name] = start_service(name, nats, credentials, folder)
            yield target
        finally:
            stop_all([s.process for s in target.services.values()])


# ---- what a clear answer is ------------------------------------------------------------------


def clear_error_problems(error: Any) -> list[str]:
    """What keeps `error` (a decoded `ApiError`) from being a clear error: a code, a
    message, at least one field problem with a reason, and nothing of a library's
    internals (pydantic's text, its docs URL, a traceback)."""
    try:
        parsed = ApiError.model_validate(error)
    except ValueError as exc:
        return [f"not in the one error shape: {exc}"]
    problems = []
    if not parsed.code or not parsed.message:
        problems.append("no code or no message")
    if parsed.code == "Invalid" and not parsed.fields:
        problems.append("an Invalid error names no field")
    problems += [f"field {f.path!r} has no reason" for f in parsed.fields if not f.reason.strip()]
    text = orjson.dumps(error).decode()
    problems += [
        f"shows {leak!r}" for leak in ("pydantic", "https://errors.", "Traceback") if leak in text
    ]
    return problems


def refused_reply_problems(reply: Any) -> list[str]:
    """What keeps an ApiReply (decoded) to a request of only bad documents from being a
    clear refusal: either the request's own error, or every result rejected with one."""
    if not isinstance(reply, dict):
        return [f"not an object: {reply!r}"]
    if reply.get("error") is not None:
        return clear_error_problems(reply["error"])
    results = reply.get("results") or []
    if not results:
        return ["neither an error nor any result"]
    problems = []
    for index, result in enumerate(results):
        if result.get("outcome") != "rejected" or result.get("error") is None:
            problems.append(f"result {index} not rejected: {result!r}")
        else:
            problems += [f"result {index}: {p}" for p in clear_error_problems(result["error"])]
    return problems

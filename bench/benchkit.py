"""What every benchmark shares: figures and how they are printed, percentiles, process
CPU and memory from /proc, waiting, and the few requests every bench makes to FOOT.

A benchmark runs as a script (`.venv/bin/python bench/X.py`), so this folder is first on
`sys.path` and `import benchkit` finds this module; tests reach it the same way (pytest's
`pythonpath`, mypy's `mypy_path`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from foot.api import ApiReply, ApiRequest
from foot.bus import Bus
from foot.catalog import API_APPLY, HEALTH_PREFIX
from foot.health import ClusterHealthEvent
from foot.natsauth import NatsAuthHome, service_creds_path
from foot.natsjwt import Permissions
from foot.registry_api import RegistryReply
from foot.registry_client import RegistryClient
from foot.runtime.settings import default_home

JSON_DIGITS = 4
"""Decimals kept in a JSON line's value: enough for seconds to 0.1 ms."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, with its goal when it has one."""

    metric: str
    value: float
    unit: str
    goal: float | None = None
    higher_is_better: bool = False
    """The goal is a lower bound (rates) instead of an upper bound (latencies, shares)."""

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        return f"{'>=' if self.higher_is_better else '<='} {self.goal:g}"

    def meets_goal(self) -> bool | None:
        """None without a goal."""
        if self.goal is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal


BENCH_IDENTITY = "bench"
"""The NATS user of a bench's own connections (it plays every party but the one measured)."""


def bench_nats_auth(home: Path) -> NatsAuthHome:
    """FOOT's NATS users in a bench's `home`, as `foot up` makes them, plus the bench's own.

    FOOT_HOME points there from now on, so the services a bench starts (in process, or as
    processes that inherit FOOT_HOME) find their users as under `foot up`.
    """
    os.environ["FOOT_HOME"] = str(home)
    everything = Permissions(publish=(">",), subscribe=(">",), respond=True)
    return NatsAuthHome(home).ensure(extra_users={BENCH_IDENTITY: everything})


def bench_credentials() -> Path:
    """The `.creds` file of the bench's own NATS user (after `bench_nats_auth`)."""
    return service_creds_path(default_home(), BENCH_IDENTITY)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The sample nearest to `fraction` of the way from the smallest to the largest.

    Index `round(fraction * (n - 1))` into the sorted samples: numpy's "nearest" method
    (Python's `round` halves to even, as numpy does), so figures can be checked against it.
    p0 is the minimum, p100 the maximum and p50 the middle sample of an odd count; a p50
    of 10 samples is the 5th (index 4). The other common shortcut, `int(fraction * n)`,
    was dropped: it makes the p99 of 100 samples their maximum (one outlier becomes the
    figure) and its p50 of two samples the larger one.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction {fraction} is not within 0..1")
    ordered = sorted(samples)
    return ordered[round(fraction * (len(ordered) - 1))]


def json_line(bench: str, figure: Figure) -> str:
    """`{"bench", "metric", "value", "unit", "goal"}`: the form every benchmark prints."""
    value = round(figure.value, JSON_DIGITS) if isinstance(figure.value, float) else figure.value
    return json.dumps(
        {
            "bench": bench,
            "metric": figure.metric,
            "value": value,
            "unit": figure.unit,
            "goal": figure.goal,
        }
    )


def table(figures: Iterable[Figure]) -> list[str]:
    """A readable table of the figures: metric, value, unit, goal and whether it is met."""
    rows = list(figures)
    width = max([len("metric"), *(len(f.metric) for f in rows)])
    lines = [f"{'metric':<{width}} {'value':>12}  {'unit':<14} {'goal':<10} met"]
    for figure in rows:
        met = {None: "", True: "yes", False: "NO"}[figure.meets_goal()]
        lines.append(
            f"{figure.metric:<{width}} {figure.value:>12.6g}  {figure.unit:<14} "
            f"{figure.goal_text():<10} {met}".rstrip()
        )
    return lines


def report(bench: str, figures: Sequence[Figure], title: str = "") -> None:
    """Print the table, then every figure as one JSON line."""
    print()
    if title:
        print(f"{bench}: {title}")
    for line in table(figures):
        print(line)
    for figure in figures:
        print(json_line(bench, figure), flush=True)


def say(text: str) -> None:
    print(text, flush=True)


# ---- processes ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; OSError elsewhere)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MB (`VmHWM`: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found for process {pid}")


# ---- waiting -----------------------------------------------------------------------------


async def spawn_simulator(
    clusters: int, directory: Path, *options: str
) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader]:
    """`python -m foot_sim` serving `clusters` clusters, their kubeconfigs written to
    `directory`: the process and its stdout, on which it prints a line per cluster."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foot_sim", "--clusters", str(clusters),
        "--kubeconfig-dir", str(directory), *options,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    if process.stdout is None:
        raise RuntimeError("the simulator's stdout is not piped")
    return process, process.stdout


async def wait_for(check: Callable[[], bool], within: float, interval: float = 0.002) -> None:
    """Until `check()` holds (state changed by another task or process); TimeoutError after
    `within` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the state changes in another task/process
            await asyncio.sleep(interval)


async def until_answers(
    attempt: Callable[[], Awaitable[object]],
    within: float,
    interval: float = 0.2,
    check: Callable[[], None] = lambda: None,
) -> None:
    """Until `attempt()` returns without raising (a service still starting); `check()` runs
    before each attempt and may raise to give up early (a child process that exited)."""
    async with asyncio.timeout(within):
        while True:
            check()
            try:
                await attempt()
            except Exception:  # noqa: BLE001 - not answering yet
                await asyncio.sleep(interval)
            else:
                return


# ---- FOOT's front doors ------------------------------------------------------------------


class ApiRefusedError(RuntimeError):
    """FOOT's API refused a request the benchmark needs: the run is void."""


async def api_apply(bus: Bus, documents: list[dict[str, Any]]) -> ApiReply:
    """Apply documents through `foot.api.apply`; ApiRefusedError unless every one is taken."""
    body = orjson.dumps(ApiRequest(objects=documents).model_dump(mode="json", by_alias=True))
    reply = ApiReply.model_validate_json((await bus.request(API_APPLY, body, wait_seconds=60)).data)
    if not reply.ok:
        rejected = [r.error for r in reply.results if r.error is not None]
        raise ApiRefusedError(f"refused: {reply.error or rejected[0]}")
    return reply


async def api_answers(bus: Bus) -> None:
    """One request to `foot.api.apply` that is answered at all: an empty apply, which FOOT
    refuses ("no objects in the request"); the answer shows the API is being served."""
    body = orjson.dumps(ApiRequest(objects=[]).model_dump(mode="json", by_alias=True))
    ApiReply.model_validate_json((await bus.request(API_APPLY, body, wait_seconds=5)).data)


async def ask_registry(bus: Bus, verb: str, body: dict[str, Any]) -> RegistryReply:
    """One registry request (`join`, `unjoin`, ...); RuntimeError when it answers an error."""
    reply = await RegistryClient(bus, wait_seconds=60).ask(verb, body)
    if reply.error is not None:
        raise RuntimeError(f"{verb} {body.get('name')}: {reply.error.message}")
    return reply


class HealthEvents:
    """Cluster health events as they arrive, each with its arrival time on `clock` (wall
    clock to compare with other processes' timestamps, monotonic otherwise)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seen: list[tuple[float, ClusterHealthEvent]] = []
        self.changed = asyncio.Event()

    async def listen(self, bus: Bus) -> None:
        """Subscribe to every cluster's health events (live only: nothing is replayed)."""
        await bus.client.subscribe(f"{HEALTH_PREFIX}.>", cb=self.on_message)
        await bus.flush()

    async def on_message(self, msg: Any) -> None:
        self.seen.append((self.clock(), ClusterHealthEvent.model_validate_json(msg.data)))
        self.changed.set()

    async def first(
        self, cluster: str, wanted: Callable[[str], bool], after: float, within: float
    ) -> tuple[float, ClusterHealthEvent]:
        """(arrival, event) of the first event of `cluster` whose Ready satisfies `wanted`,
        arrived at or after `after`."""
        async with asyncio.timeout(within):
            while True:
                for arrived, event in self.seen:
                    if arrived >= after and event.cluster == cluster and wanted(event.ready):
                        return arrived, event
                self.changed.clear()
                await self.changed.wait()

    def count(self, cluster: str, since: float) -> int:
        return sum(1 for t, e in self.seen if e.cluster == cluster and t >= since)

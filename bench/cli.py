"""Benchmark the `foot` CLI's start-up: a command as a person types it, from exec to exit.

    .venv/bin/python bench/cli.py [--runs 20] [--clusters 5]

A real nats-server with FOOT's authentication runs in a temporary home, with FOOT's
buckets and `--clusters` Cluster objects stored as the registry stores them, and the state
file `foot up` writes (so the CLI finds it with `--home`, as after `foot up --home X`).
Then `--runs` times each, after one unmeasured warm-up run:

* `foot get clusters --home HOME`: wall time from spawn to exit (the goal: 300 ms), its
  CPU time (user + system: less sensitive to a busy machine) and its peak RSS;
* `foot --help`: the same, for the parser and the imports every command pays.

Each run must succeed (the table must name every cluster), or the bench stops.
Prints a table, then one JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchkit import Figure, bench_credentials, bench_nats_auth, percentile, report, say
from foot.bus import Bus
from foot.kinds import KINDS
from foot.store import ObjectStore
from foot_cli.home import STATE_FILE
from foot_cli.natsserver import EmbeddedNats

BENCH = "cli"
GET_GOAL_MS = 300.0
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Run:
    wall_ms: float
    cpu_ms: float
    max_rss_mb: float
    stdout: str


def foot_command() -> list[str]:
    """The `foot` entry point of this interpreter's environment, as a user runs it."""
    script = Path(sys.executable).with_name("foot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "foot_cli.main"]


def run_measured(argv: list[str], env: dict[str, str]) -> Run:
    """One run measured in full: spawn to exit (wall), and the child's own CPU and peak RSS
    from wait4 (output to a file, so no pipe has to be drained while waiting)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {process.returncode}: {stderr}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall * 1000, cpu * 1000, usage.ru_maxrss / 1024, stdout)


async def store_clusters(nats: EmbeddedNats, count: int) -> list[str]:
    """FOOT's buckets, and `count` joined-looking Cluster objects, written as the registry
    writes them (the bench plays the registry: `foot get clusters` only reads the bucket)."""
    info = KINDS.resolve("clusters")
    names = [f"member-{index:02d}" for index in range(count)]
    async with await Bus.connect(
        nats.url, "bench-cli", credentials_file=bench_credentials()
    ) as bus:
        await bus.declare()
        store = ObjectStore(bus, owner=info.owner)
        for index, name in enumerate(names):
            document = {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "metadata": {"name": name, "labels": {"tier": "gold"}},
                "spec": {
                    "syncMode": "Push",
                    "apiEndpoint": f"https://10.0.0.{index + 1}:6443",
                    "region": "eu-west",
                },
            }
            await store.apply(KINDS.parse(document))
    return names


def measure(
    label: str, argv: list[str], env: dict[str, str], runs: int, expect: list[str]
) -> list[Run]:
    say(f"{label}: 1 warm-up run, then {runs} runs")
    measured = []
    for index in range(runs + 1):
        run = run_measured(argv, env)
        missing = [word for word in expect if word not in run.stdout]
        if missing:
            raise RuntimeError(f"{label}: the output lacks {missing}: {run.stdout!r}")
        if index:
            measured.append(run)
    return measured


def figures(metric: str, runs: list[Run], goal: float | None) -> list[Figure]:
    walls = [r.wall_ms for r in runs]
    return [
        Figure(f"{metric}_ms", percentile(walls, 0.5), "ms", goal),
        Figure(f"{metric}_p90_ms", percentile(walls, 0.9), "ms"),
        Figure(f"{metric}_min_ms", min(walls), "ms"),
        Figure(f"{metric}_cpu_ms", percentile([r.cpu_ms for r in runs], 0.5), "ms"),
        Figure(f"{metric}_max_rss_mb", max(r.max_rss_mb for r in runs), "MB"),
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each command")
    parser.add_argument("--clusters", type=int, default=5, help="Cluster objects in the table")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="foot-bench-cli-"))
    auth = bench_nats_auth(home)  # FOOT's users, the CLI's among them, as `foot up` makes them
    nats = EmbeddedNats(data_dir=home / "nats", auth=auth).start()
    try:
        names = await store_clusters(nats, options.clusters)
        state = {"nats_url": nats.url, "pid": os.getpid(), "services": {}}
        (home / STATE_FILE).write_bytes(orjson.dumps(state))
        # A user's shell: FOOT found through --home alone.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}
        env["OTEL_TRACES_EXPORTER"] = "none"
        foot = foot_command()
        get = measure(
            "foot get clusters",
            [*foot, "get", "clusters", "--home", str(home)],
            env,
            options.runs,
            names,
        )
        helped = measure("foot --help", [*foot, "--help"], env, options.runs, ["usage: foot"])
    finally:
        nats.stop()
        shutil.rmtree(home, ignore_errors=True)
    report(
        BENCH,
        [*figures("cli_get_clusters", get, GET_GOAL_MS), *figures("cli_help", helped, None)],
        title=f"`foot` start-up, {options.runs} runs each, spawn to exit ({os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f})",
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Benchmark the `foot` CLI's start-up: a command as a person types it, from exec to exit.

    .venv/bin/python bench/cli.py [--runs 20] [--clusters 5]

A real nats-server with FOOT's authentication runs in a temporary home, with FOOT's
buckets and `--clusters` Cluster objects stored as the registry stores them, and the state
file `foot up` writes (so the CLI finds it with `--home`, as after `foot up --home X`).
Then `--runs` times each, after one unmeasured warm-up run:

* `foot get clusters --home HOME` (run as the `foot` console script runs it): wall time
  from spawn to exit (the goal: 300 ms), its CPU time (user + system: less sensitive to
  a busy machine) and its peak RSS;
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


PEAK_RSS = """
import atexit, sys
rss_file, sys.argv = sys.argv[1], ["foot", *sys.argv[2:]]
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(rss_file, "w").write(line.split()[1])
atexit.register(peak)
from foot_cli.main import main
main()
"""


def foot_command(rss_file: Path) -> list[str]:
    """`foot` as its console script runs it (`from foot_cli.main import main; main()`), with
    the process's peak RSS (VmHWM) written to `rss_file` at exit. Read there, not from
    wait4: a child's ru_maxrss starts at the RSS of the process it was forked from."""
    return [sys.executable, "-c", PEAK_RSS, str(rss_file)]


def run_measured(argv: list[str], env: dict[str, str], rss_file: Path) -> Run:
    """One run: spawn to exit (wall), the child's own CPU time (wait4), its peak RSS; the
    output goes to files, so no pipe has to be drained while waiting."""
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
        raise RuntimeError(f"{' '.join(argv[3:])} exited {process.returncode}: {stderr}")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall * 1000, cpu * 1000, int(rss_file.read_text()) / 1024, stdout)


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
    label: str, words: list[str], env: dict[str, str], runs: int, expect: list[str]
) -> list[Run]:
    """`foot WORDS` run `runs` times after a warm-up run; each must print every `expect`."""
    say(f"foot {' '.join(words)}: 1 warm-up run, then {runs} runs")
    measured = []
    with tempfile.TemporaryDirectory() as folder:
        rss_file = Path(folder) / "peak-rss-kb"
        for index in range(runs + 1):
            run = run_measured([*foot_command(rss_file), *words], env, rss_file)
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
        get = measure(
            "get clusters", ["get", "clusters", "--home", str(home)], env, options.runs, names
        )
        helped = measure("--help", ["--help"], env, options.runs, ["usage: foot"])
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

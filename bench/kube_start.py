"""Benchmark: how long the test environment takes to give tests real clusters.

    .venv/bin/python bench/kube_start.py [--rounds N]

Measures (a) `foot-testenv ensure` when everything is already installed and
built (the cost every `./dev test` pays), and (b) starting 1 and 3 real
clusters (etcd + kube-apiserver) until /readyz is ok. Prints a table, then one
JSON line per figure. The binaries must be built (`foot-testenv ensure`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import Figure, report
from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import find_binaries

FOOT_TESTENV = Path(sys.executable).parent / "foot-testenv"


def time_cached_ensure(rounds: int) -> float:
    """Median wall time of the whole `foot-testenv ensure` command, Python start-up included."""
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([str(FOOT_TESTENV), "ensure"], check=True, capture_output=True)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def time_cluster_start(count: int, rounds: int) -> float:
    """Median time from nothing (certificates included) to every /readyz ok."""
    binaries = find_binaries()
    durations = []
    for _ in range(rounds):
        started = time.perf_counter()
        with KubeClusters.start_blocking(count, binaries=binaries):
            durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="repetitions per figure (median)")
    rounds = parser.parse_args().rounds

    find_binaries()  # fail early, with the set-up hint, when nothing is built
    figures = [
        Figure("ensure_cached_seconds", time_cached_ensure(rounds), "s", goal=1.0),
        Figure("start_1_cluster_seconds", time_cluster_start(1, rounds), "s", goal=6.0),
        Figure("start_3_clusters_seconds", time_cluster_start(3, rounds), "s", goal=10.0),
    ]

    report("kube_start", figures, f"median of {rounds}")


if __name__ == "__main__":
    main()

"""Benchmark: how long the test environment takes to give tests real clusters.

    .venv/bin/python bench/kube_start.py [--rounds N]

Measures (a) `foot-testenv ensure` when everything is already installed and
built (the cost every `./dev test` pays), and (b) starting 1 and 3 real
clusters (etcd + kube-apiserver) until /readyz is ok. Prints a table, then one
JSON line per figure. The binaries must be built (`foot-testenv ensure`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import find_binaries

FOOT_TESTENV = Path(sys.executable).parent / "foot-testenv"


@dataclass(frozen=True)
class Figure:
    metric: str
    value: float
    unit: str
    goal: float  # upper bound: lower is better for every figure here

    def meets_goal(self) -> bool:
        return self.value <= self.goal


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

    print(f"kube_start (median of {rounds})")
    print(f"{'metric':<28} {'value':>8} {'goal':>8}  ok")
    for figure in figures:
        mark = "yes" if figure.meets_goal() else "NO"
        print(
            f"{figure.metric:<28} {figure.value:>7.2f}{figure.unit} "
            f"{'<=' + format(figure.goal, '.1f'):>7}{figure.unit}  {mark}"
        )
    for figure in figures:
        print(
            json.dumps(
                {
                    "bench": "kube_start",
                    "metric": figure.metric,
                    "value": round(figure.value, 3),
                    "unit": figure.unit,
                    "goal": figure.goal,
                }
            )
        )


if __name__ == "__main__":
    main()

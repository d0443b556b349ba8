"""`python -m foot_scheduler` / `foot-scheduler`: run the scheduler service."""

from __future__ import annotations

import gc

from foot.runtime.main import run_service
from foot_scheduler.service import SchedulerService

GC_THRESHOLDS = (20_000, 50, 50)
"""The scheduler keeps every template, policy and binding parsed in memory and makes many
short-lived objects per decision; with Python's default thresholds (700, 10, 10) the cyclic
collector runs so often over that large, long-lived heap that it costs more than the
decisions (measured with bench/scheduler.py). Rarer young collections, and the modules and
schemas loaded at start moved out of the collector's sight, keep it in proportion."""


def main() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    run_service(SchedulerService)


if __name__ == "__main__":
    main()

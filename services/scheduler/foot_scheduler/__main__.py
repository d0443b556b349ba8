"""`python -m foot_scheduler` / `foot-scheduler`: run the scheduler service."""

from __future__ import annotations

from foot.runtime.main import run_service
from foot_scheduler.service import SchedulerService


def main() -> None:
    run_service(SchedulerService)


if __name__ == "__main__":
    main()

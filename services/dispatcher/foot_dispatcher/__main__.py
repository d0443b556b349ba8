"""`python -m foot_dispatcher` / `foot-dispatcher`: run the dispatcher service."""

from __future__ import annotations

from foot.runtime.main import run_service
from foot_dispatcher.service import DispatcherService


def main() -> None:
    DispatcherService.tune_gc = True
    run_service(DispatcherService)


if __name__ == "__main__":
    main()

"""Named, supervised background tasks: a crash is logged, counted and restarted with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from foot.runtime.metrics import ServiceMetrics

log = logging.getLogger(__name__)

RESTART_FIRST_DELAY_SECONDS = 0.5
RESTART_MAX_DELAY_SECONDS = 30.0
HEALTHY_RUN_SECONDS = 60.0
"""A task that ran this long before crashing restarts from the first delay again."""


class Supervisor:
    def __init__(self, service: str, metrics: ServiceMetrics) -> None:
        self.service = service
        self.metrics = metrics
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.fatal = asyncio.Event()
        """Set when a task that must not restart has failed: the service should exit."""
        self.fatal_reason = ""

    def spawn(
        self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool = True
    ) -> asyncio.Task[None]:
        if name in self.tasks and not self.tasks[name].done():
            raise RuntimeError(f"task {name} is already running")
        task = asyncio.create_task(
            self._supervise(name, factory, restart=restart), name=f"{self.service}:{name}"
        )
        self.tasks[name] = task
        return task

    async def _supervise(
        self, name: str, factory: Callable[[], Awaitable[None]], *, restart: bool
    ) -> None:
        delay = RESTART_FIRST_DELAY_SECONDS
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("task %s crashed", name, extra={"task": name})
                if not restart:
                    self.fatal_reason = f"task {name} failed: {exc}"
                    self.fatal.set()
                    return
            else:
                return
            if loop.time() - started > HEALTHY_RUN_SECONDS:
                delay = RESTART_FIRST_DELAY_SECONDS
            self.metrics.task_restarts.labels(name).inc()
            log.warning("restarting task %s in %.1fs", name, delay, extra={"task": name})
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY_SECONDS)

    async def cancel_all(self) -> None:
        running = [task for task in self.tasks.values() if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

"""Named, supervised background tasks: a crash is logged, counted and restarted with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from foot.backoff import Backoff
from foot.runtime.metrics import ServiceMetrics

log = logging.getLogger(__name__)

RESTART_FIRST_DELAY_SECONDS = 0.5
RESTART_MAX_DELAY_SECONDS = 30.0
HEALTHY_RUN_SECONDS = 60.0
"""A task that ran this long before crashing restarts from the first delay again."""
RESTART_BACKOFF = Backoff(RESTART_FIRST_DELAY_SECONDS, RESTART_MAX_DELAY_SECONDS)
CANCEL_DEADLINE_SECONDS = 5.0
"""How long `cancel_all` waits for cancelled tasks to end before giving up on them."""
RECANCEL_INTERVAL_SECONDS = 0.1
"""How often a task that is still running after its cancel is cancelled again. Python 3.11
can lose a cancel: `asyncio.wait_for` (under nats-py's requests) returns a result that
arrived in the same loop turn, and a TaskGroup raises a child's error instead of the
CancelledError; waiting on such a task without cancelling again would wait forever."""


class Supervisor:
    def __init__(self, service: str, metrics: ServiceMetrics) -> None:
        self.service = service
        self.metrics = metrics
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.fatal = asyncio.Event()
        """Set when a task that must not restart has failed: the service should exit."""
        self.fatal_reason = ""
        self._stopping = False

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
        delays = RESTART_BACKOFF.delays()
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return  # a cancel turned into an error (see RECANCEL_INTERVAL_SECONDS)
                log.exception("task %s crashed", name, extra={"task": name})
                if not restart:
                    self.fatal_reason = f"task {name} failed: {exc}"
                    self.fatal.set()
                    return
            else:
                return
            if loop.time() - started > HEALTHY_RUN_SECONDS:
                delays.reset()
            delay = delays.next()
            self.metrics.task_restarts.labels(name).inc()
            log.warning("restarting task %s in %.1fs", name, delay, extra={"task": name})
            await asyncio.sleep(delay)

    async def cancel_all(self, deadline_seconds: float = CANCEL_DEADLINE_SECONDS) -> None:
        """Cancel every task and wait for them to end: cancelled again while they still run,
        given up on (and named in the log) after `deadline_seconds`, so a stop never hangs."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + deadline_seconds
        running = {task for task in self.tasks.values() if not task.done()}
        while running:
            for task in running:
                task.cancel()
            remaining = give_up_at - loop.time()
            if remaining <= 0:
                names = ", ".join(sorted(task.get_name() for task in running))
                log.error(
                    "tasks still running %.1fs after being cancelled, left behind: %s",
                    deadline_seconds,
                    names,
                )
                return
            _, pending = await asyncio.wait(
                running, timeout=min(RECANCEL_INTERVAL_SECONDS, remaining)
            )
            running = pending
        for task in self.tasks.values():
            if not task.cancelled():
                task.exception()  # retrieved, or asyncio reports it when the task is collected

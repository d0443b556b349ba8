"""Run a Simulator on its own event loop in a background thread.

For callers whose event loops come and go (pytest function-scoped loops, sync
code): the simulator then behaves like an external server, and none of its
tasks live in the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from foot_sim.simulator import ClusterEndpoint, Simulator

T = TypeVar("T")

_START_TIMEOUT_SECONDS = 60.0


class BackgroundSimulator:
    """`with BackgroundSimulator(Simulator(3)) as sim: sim.endpoints[0].server`"""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="foot-sim", daemon=True)
        self.endpoints: list[ClusterEndpoint] = []

    def __enter__(self) -> BackgroundSimulator:
        self._thread.start()
        try:
            self.run(self.simulator.start)
        except BaseException:
            self._shutdown()
            raise
        self.endpoints = [cluster.endpoint() for cluster in self.simulator.clusters]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.run(self.simulator.stop)
        finally:
            self._shutdown()

    def run(
        self,
        function: Callable[[], Coroutine[Any, Any, T]],
        timeout: float = _START_TIMEOUT_SECONDS,
    ) -> T:
        """Run `function()` on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(function(), self._loop).result(timeout)

    async def run_async(self, function: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The same as `run`, awaited from another event loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(function(), self._loop))

    def _shutdown(self) -> None:
        if self._thread.is_alive():
            # As asyncio.run does: nothing may be left running when the loop closes.
            asyncio.run_coroutine_threadsafe(_cancel_remaining_tasks(), self._loop).result(
                _START_TIMEOUT_SECONDS
            )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _cancel_remaining_tasks() -> None:
    current = asyncio.current_task()
    remaining = [task for task in asyncio.all_tasks() if task is not current]
    for task in remaining:
        task.cancel()
    await asyncio.gather(*remaining, return_exceptions=True)

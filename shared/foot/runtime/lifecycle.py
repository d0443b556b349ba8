"""`async with` for anything that starts and stops: a service, the agent."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class StartStop(ABC):
    """Started on entry, stopped on exit; a start that fails is stopped before it raises,
    so that what it had opened is closed."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None:
        """Stops what runs; called again (or after a failed start) it must do no harm."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

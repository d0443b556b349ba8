"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(check: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll `check` until it holds; fail with TimeoutError after `within` seconds.

    Polling is deliberate: the condition is state owned by the code under test,
    which offers no event to wait on.
    """
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)

"""More agent tasks: each entry is called with the `Agent` before it starts and registers
its tasks with `agent.add_task(name, factory)`. Work pulling (the dispatcher's part of
pull mode) plugs in here as a module of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foot_agent.agent import Agent


def _works(agent: Agent) -> None:
    from foot_agent import works

    works.install(agent)


EXTENSIONS: list[Callable[[Agent], None]] = [_works]

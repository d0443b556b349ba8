"""`python -m foot_agent` / `foot-agent` / `foot agent`: run the pull-mode agent."""

from __future__ import annotations

import asyncio
import signal
import sys

from foot.errors import FootError
from foot.runtime.logs import configure_logging
from foot.runtime.settings import SettingsError
from foot_agent.agent import Agent
from foot_agent.settings import AgentSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2


async def serve(agent: Agent) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    starting = asyncio.create_task(agent.start(), name="agent:start")
    stopper = asyncio.create_task(stop.wait(), name="agent:signal")
    code = EXIT_OK
    try:
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            fatal = asyncio.create_task(agent.supervisor.fatal.wait(), name="agent:fatal")
            await asyncio.wait({stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
            fatal.cancel()
            if agent.supervisor.fatal.is_set():
                code = EXIT_FAILED
    except FootError as exc:
        print(f"foot-agent: {exc.message}", file=sys.stderr)  # noqa: T201
        code = EXIT_FAILED
    finally:
        for task in (starting, stopper):
            task.cancel()
        await asyncio.gather(starting, stopper, return_exceptions=True)
        await agent.stop()
    return code


def main(argv: list[str] | None = None) -> None:
    try:
        settings = AgentSettings.load(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"foot-agent: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_BAD_SETTINGS)
    configure_logging("agent", level=settings.log_level, fmt=settings.log_format)
    sys.exit(asyncio.run(serve(Agent(settings))))


if __name__ == "__main__":
    main()

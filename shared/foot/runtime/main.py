"""Process entry point shared by every service: settings, logs, tracing, signals."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from foot.errors import FootError
from foot.runtime.logs import configure_logging
from foot.runtime.service import Service
from foot.runtime.settings import SettingsError
from foot.telemetry import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETTINGS = 2


def run_service(service_class: type[Service[Any]], argv: Sequence[str] | None = None) -> NoReturn:
    """Run until SIGTERM/SIGINT, then stop in stages; exits with 0, 1 (failure) or 2 (settings)."""
    try:
        settings = service_class.settings_model.load(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"foot-{service_class.name}: {exc}", file=sys.stderr)  # noqa: T201
        sys.exit(EXIT_BAD_SETTINGS)
    configure_logging(service_class.name, level=settings.log_level, fmt=settings.log_format)
    configure_tracing(f"foot-{service_class.name}")
    try:
        code = asyncio.run(serve(service_class(settings)))
    finally:
        shutdown_tracing()
    sys.exit(code)


async def serve(service: Service[Any]) -> int:
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)
    try:
        await service.start()
    except FootError as exc:
        log.error("%s cannot start: %s", service.name, exc)  # noqa: TRY400 - the message says it all
        await service.stop()
        return EXIT_FAILED
    waiters = [
        asyncio.create_task(stop_requested.wait(), name="wait:signal"),
        asyncio.create_task(service.supervisor.fatal.wait(), name="wait:fatal"),
    ]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    fatal = service.supervisor.fatal.is_set()
    if fatal:
        log.error("%s is stopping because %s", service.name, service.supervisor.fatal_reason)
    await service.stop()
    return EXIT_FAILED if fatal else EXIT_OK

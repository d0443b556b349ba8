"""The dispatcher service."""

from __future__ import annotations

from foot.runtime.service import Service


class DispatcherService(Service):
    name = "dispatcher"

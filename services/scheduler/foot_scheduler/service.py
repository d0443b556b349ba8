"""The scheduler service."""

from __future__ import annotations

from foot.runtime.service import Service


class SchedulerService(Service):
    name = "scheduler"

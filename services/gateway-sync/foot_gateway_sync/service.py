"""The gateway-sync service."""

from __future__ import annotations

from foot.runtime.service import Service


class GatewaySyncService(Service):
    name = "gateway-sync"

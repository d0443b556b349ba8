"""The registry service."""

from __future__ import annotations

from foot.runtime.service import Service


class RegistryService(Service):
    name = "registry"

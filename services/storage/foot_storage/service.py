"""The storage service."""

from __future__ import annotations

from foot.runtime.service import Service


class StorageService(Service):
    name = "storage"

"""Where the CLI writes: `out` for results, `err` for everything meant for the person only."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from foot.objects import KubeObject

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def age(obj: KubeObject) -> str:
    return age_since(obj.metadata.creation_timestamp)


def age_since(created: datetime | None) -> str:
    if created is None:
        return "-"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

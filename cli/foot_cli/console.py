"""Where the CLI writes: `out` for results, `err` for everything meant for the person only;
tables as plain aligned columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Console

from foot.objects import KubeObject

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

COLUMN_GAP = "   "


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns aligned as `kubectl get` aligns them: every cell whole, on one line, whatever
    the width of the terminal or the pipe (a cell's own line breaks become spaces)."""
    cells = [[" ".join(str(cell).splitlines()) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    return [
        COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *cells]
    ]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout, never wrapped or cut (see `table_lines`)."""
    for line in table_lines(headers, rows):
        out.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)


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

"""FOOT's home as the CLI sees it: which folder, and what `foot up` recorded in it.

`foot up --home X` writes `X/up.json` (the NATS URL, the admin URLs, where the CLI's
credentials and the read token are) and removes it when it stops; every other command
finds the stack through it. Only the standard library here: every command reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "up.json"
ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name
READ_TOKEN_FILE = "read.token"  # noqa: S105 - a file name
HOME_HELP = (
    "FOOT's home: data, logs and the state of its `foot up` (default: FOOT_HOME, else ~/.foot)"
)


def foot_home(given: str | Path | None = None) -> Path:
    """`given` (--home), else FOOT_HOME, else ~/.foot."""
    if given:
        return Path(given).expanduser()
    return Path(os.environ.get("FOOT_HOME") or Path.home() / ".foot")


def read_state(home: Path) -> dict[str, Any] | None:
    """What the running `foot up` of `home` recorded (None: none runs with that home)."""
    try:
        state = json.loads((home / STATE_FILE).read_bytes())
    except FileNotFoundError:
        return None
    return state if isinstance(state, dict) else None

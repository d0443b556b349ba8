"""Which NATS the CLI talks to, and the connection to it; which admin API, with what token."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from foot.bus import Bus
from foot.errors import PermanentError
from foot.natsauth import CLI_IDENTITY, CLI_INBOX_PREFIX, service_creds_path
from foot.runtime.settings import read_token_file


def nats_url_from(args: argparse.Namespace) -> str:
    """--nats-url, else FOOT_NATS_URL, else what `foot up` recorded, else the default port."""
    if args.nats_url:
        return str(args.nats_url)
    if os.environ.get("FOOT_NATS_URL"):
        return os.environ["FOOT_NATS_URL"]
    from foot_cli.up import STATE_FILE, foot_home

    state = foot_home() / STATE_FILE
    if state.exists():
        return str(orjson.loads(state.read_bytes())["nats_url"])
    return "nats://127.0.0.1:4222"


def nats_credentials_from() -> Path | None:
    """FOOT_NATS_CREDENTIALS_FILE, else the CLI's user `foot up` made in the home (none when
    there is none: a NATS without authentication, or one that will refuse us)."""
    if os.environ.get("FOOT_NATS_CREDENTIALS_FILE"):
        return Path(os.environ["FOOT_NATS_CREDENTIALS_FILE"])
    from foot_cli.up import foot_home

    path = service_creds_path(foot_home(), CLI_IDENTITY)
    return path if path.is_file() else None


async def connect(args: argparse.Namespace) -> Bus:
    return await Bus.connect(
        nats_url_from(args),
        "foot-cli",
        connect_timeout=3,
        credentials_file=nats_credentials_from(),
        inbox_prefix=CLI_INBOX_PREFIX,
    )


@dataclass(frozen=True)
class AdminEndpoint:
    """One service's admin HTTP API and the read-only token for it."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def admin_endpoint(service: str) -> AdminEndpoint:
    """`service`'s admin API as the running `foot up` of FOOT_HOME recorded it, with the read
    token of that home (the CLI reads; it never needs more)."""
    from foot_cli.up import READ_TOKEN_FILE, STATE_FILE, foot_home

    home = foot_home()
    state_path = home / STATE_FILE
    if not state_path.exists():
        raise PermanentError(
            f"this is read through the {service}'s admin API, and no `foot up` runs with "
            f"home {home} (set FOOT_HOME to its home)"
        )
    state = orjson.loads(state_path.read_bytes())
    token_file = Path(state.get("read_token_file") or home / READ_TOKEN_FILE)
    try:
        token = read_token_file(token_file, "read_token_file")
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    return AdminEndpoint(url=str(state["services"][service]["admin_url"]), token=token)

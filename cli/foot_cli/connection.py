"""Which NATS the CLI talks to, and the connection to it; which admin API, with what token.

Where the NATS URL comes from, first found wins: `--nats-url`, `FOOT_NATS_URL`, the state
file of the running `foot up` of the home (`--home`, else `FOOT_HOME`, else `~/.foot`),
else `nats://127.0.0.1:4222`. The CLI's NATS user: `FOOT_NATS_CREDENTIALS_FILE`, else the
one `foot up` made in that home.

A command connects once, without reconnecting: no FOOT there is one error (`NoFootError`)
naming the URL tried and where it came from, not a retry loop.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from foot.errors import PermanentError, TransportError
from foot.natsauth import CLI_IDENTITY, CLI_INBOX_PREFIX, service_creds_path
from foot_cli.home import READ_TOKEN_FILE, STATE_FILE, foot_home, read_state

if TYPE_CHECKING:
    from foot.bus import Bus

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
CONNECT_TIMEOUT_SECONDS = 5.0
"""At most this long to reach NATS, whatever --timeout is (less when --timeout is less)."""


class NoFootError(TransportError):
    """No FOOT answers at the URL the CLI found (nothing listens, or nothing answers)."""


@dataclass(frozen=True, slots=True)
class NatsTarget:
    """The NATS a command talks to, where that URL came from, and the CLI's user there."""

    url: str
    source: str
    """`--nats-url`, `FOOT_NATS_URL`, `state` (the home's `foot up`) or `default`."""
    home: Path
    credentials: Path | None

    def hint(self) -> str:
        """What a person should check when nothing answers there."""
        if self.source == "state":
            state = self.home / STATE_FILE
            return f"the `foot up` of {self.home} recorded it in {state}: is it still running?"
        if self.source == "default":
            return (
                f"is `foot up` running? started with --home? (no `foot up` state in {self.home};"
                " pass its --home, or set FOOT_HOME)"
            )
        return f"is `foot up` running? (the URL is from {self.source})"


def cli_home(args: argparse.Namespace) -> Path:
    """The home a command works with: --home, else FOOT_HOME, else ~/.foot."""
    return foot_home(getattr(args, "home", None))


def nats_target(args: argparse.Namespace) -> NatsTarget:
    home = cli_home(args)
    credentials = nats_credentials_from(args)
    if getattr(args, "nats_url", None):
        return NatsTarget(str(args.nats_url), "--nats-url", home, credentials)
    if os.environ.get("FOOT_NATS_URL"):
        return NatsTarget(os.environ["FOOT_NATS_URL"], "FOOT_NATS_URL", home, credentials)
    state = read_state(home)
    if state is not None and state.get("nats_url"):
        return NatsTarget(str(state["nats_url"]), "state", home, credentials)
    return NatsTarget(DEFAULT_NATS_URL, "default", home, credentials)


def nats_url_from(args: argparse.Namespace) -> str:
    """--nats-url, else FOOT_NATS_URL, else what the `foot up` of the home recorded, else
    the default port on this machine."""
    return nats_target(args).url


def nats_credentials_from(args: argparse.Namespace) -> Path | None:
    """FOOT_NATS_CREDENTIALS_FILE, else the CLI's user `foot up` made in the home (none when
    there is none: a NATS without authentication, or one that will refuse us)."""
    if os.environ.get("FOOT_NATS_CREDENTIALS_FILE"):
        return Path(os.environ["FOOT_NATS_CREDENTIALS_FILE"])
    path = service_creds_path(cli_home(args), CLI_IDENTITY)
    return path if path.is_file() else None


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (the innermost cause decides)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "no answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def start_the_clock(args: argparse.Namespace) -> None:
    """--timeout runs from the command's first reach for FOOT to its end: the deadline the
    command runs under (main's `args.deadline`, unset until now) is set at the first
    connection. What came before (imports, reading files) is not FOOT's to answer for."""
    deadline: asyncio.Timeout | None = getattr(args, "deadline", None)
    if deadline is not None and deadline.when() is None:
        deadline.reschedule(asyncio.get_running_loop().time() + float(args.timeout))


async def connect(args: argparse.Namespace) -> Bus:
    """One connection for one command: tried once, never re-established (NoFootError when
    nothing answers at the URL)."""
    from foot.bus import Bus

    start_the_clock(args)
    target = nats_target(args)
    args.connecting_to = target
    timeout = min(CONNECT_TIMEOUT_SECONDS, float(getattr(args, "timeout", None) or 5.0))
    try:
        bus = await Bus.connect(
            target.url,
            "foot-cli",
            connect_timeout=timeout,
            credentials_file=target.credentials,
            inbox_prefix=CLI_INBOX_PREFIX,
            reconnect=False,
        )
    except PermanentError:
        raise  # refused credentials, a missing credentials file: said as it is
    except TransportError as exc:
        raise no_foot(target, _reason(exc)) from exc
    args.connected = True
    return bus


def no_foot(target: NatsTarget, reason: str) -> NoFootError:
    from foot.redaction import redact

    return NoFootError(f"no FOOT at {redact(target.url)} ({reason}) — {target.hint()}")


@dataclass(frozen=True)
class AdminEndpoint:
    """One service's admin HTTP API and the read-only token for it."""

    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def admin_endpoint(service: str, args: argparse.Namespace | None = None) -> AdminEndpoint:
    """`service`'s admin API as the running `foot up` of the home recorded it, with the read
    token of that home (the CLI reads; it never needs more)."""
    from foot.runtime.settings import read_token_file

    home = cli_home(args) if args is not None else foot_home()
    state = read_state(home)
    if state is None:
        raise PermanentError(
            f"this is read through the {service}'s admin API, and no `foot up` runs with "
            f"home {home} (pass its --home, or set FOOT_HOME)"
        )
    token_file = Path(state.get("read_token_file") or home / READ_TOKEN_FILE)
    try:
        token = read_token_file(token_file, "read_token_file")
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    return AdminEndpoint(url=str(state["services"][service]["admin_url"]), token=token)

"""Which NATS the CLI talks to, and the connection to it."""

from __future__ import annotations

import argparse
import os

import orjson

from foot.bus import Bus


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


async def connect(args: argparse.Namespace) -> Bus:
    return await Bus.connect(nats_url_from(args), "foot-cli", connect_timeout=3)

"""`foot cluster join|unjoin|register|list|describe`, `foot agent`, and the clusters table.

The commands ask the registry over NATS (`foot.registry.<verb>`); the same requests
are served on the registry's admin HTTP API under `/api/clusters/...`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from foot_cli.console import err, out

if TYPE_CHECKING:
    from foot.registry_api import RegistryReply

Subparsers = Any  # argparse's _SubParsersAction is private
# What only a command's run needs (the registry's client, the store, YAML) is imported
# there: the parser is built for every command, so what it imports every command pays.


async def _ask(args: argparse.Namespace, verb: str, body: dict[str, Any]) -> RegistryReply:
    from foot.registry_client import RegistryClient
    from foot_cli.connection import connect

    async with await connect(args) as bus:
        return await RegistryClient(bus, wait_seconds=args.timeout).ask(verb, body)


def _failed(reply: RegistryReply) -> int:
    assert reply.error is not None  # noqa: S101 - only called for errors
    err.print(f"[red]error[/red]: {reply.error.message}", markup=True)
    for field in reply.error.fields:
        err.print(f"    {field.path or '(request)'}: {field.reason}")
    return 1


def _labels(pairs: Sequence[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"foot: --label wants KEY=VALUE, got {pair!r}")
        labels[key] = value
    return labels


def _placement(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "provider": args.provider,
        "region": args.region,
        "zone": args.zone,
        "gatewayAddress": args.gateway_address,
        "labels": _labels(args.label or []),
    }


async def cmd_join(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "kubeconfig": await asyncio.to_thread(Path(args.kubeconfig).read_text, "utf-8"),
        "context": args.context,
        "useGivenCredential": args.use_given_credential,
        **_placement(args),
    }
    reply = await _ask(args, "join", body)
    if not reply.ok:
        return _failed(reply)
    out.print(reply.message)
    return 0


async def cmd_unjoin(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "force": args.force, "context": args.context}
    if args.kubeconfig:
        body["kubeconfig"] = await asyncio.to_thread(Path(args.kubeconfig).read_text, "utf-8")
    reply = await _ask(args, "unjoin", body)
    if not reply.ok:
        return _failed(reply)
    out.print(reply.message)
    return 0


async def cmd_register(args: argparse.Namespace) -> int:
    body = {
        "name": args.name,
        "hubNatsUrl": args.agent_nats_url,
        **({"image": args.image} if args.image else {}),
        **_placement(args),
    }
    reply = await _ask(args, "register", body)
    if not reply.ok:
        return _failed(reply)
    manifests = reply.manifests or ""
    if args.output_file:
        descriptor = os.open(args.output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(manifests)
        err.print(
            f"{reply.message}: the manifests (with the bootstrap token) are in {args.output_file}"
        )
    else:
        err.print(f"{reply.message}: kubectl apply -f - the manifests below (they hold a secret)")
        out.print(manifests, markup=False, end="")
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    from foot_cli.get import cmd_get

    args.kind, args.name, args.namespace, args.all_namespaces = "clusters", None, None, False
    return await cmd_get(args)


async def cmd_describe(args: argparse.Namespace) -> int:
    import yaml

    reply = await _ask(args, "collect", {"name": args.name}) if args.refresh else None
    if reply is not None and not reply.ok:
        return _failed(reply)
    if reply is None:
        from foot.kinds import KINDS
        from foot.store import ObjectStore
        from foot_cli.connection import connect

        info = KINDS.resolve("clusters")
        async with await connect(args) as bus:
            found = await ObjectStore(bus, owner="cli").get(info, None, args.name)
        if found is None:
            err.print(f"[red]cluster {args.name!r} not found[/red]")
            return 1
        document = found.to_dict()
    else:
        document = reply.cluster or {}
    out.print(yaml.safe_dump(document, sort_keys=False).rstrip(), markup=False)
    return 0


def exec_agent(agent_args: Sequence[str]) -> NoReturn:
    """Run the pull-mode agent in this process's place (it is a workspace member of its own,
    so the CLI never imports it)."""
    argv = [sys.executable, "-m", "foot_agent", *agent_args]
    os.execvp(sys.executable, argv)  # noqa: S606 - our own interpreter, argument list


def cmd_agent(args: argparse.Namespace) -> int:
    exec_agent(args.agent_args)


def add_commands(
    commands: Subparsers,
    with_nats: Callable[..., argparse.ArgumentParser],
    *,
    member_timeout: float,
) -> None:
    """`with_nats(parser, timeout=...)` adds --home, --nats-url and --timeout; join and
    unjoin wait on the member's API server, so their default is `member_timeout`."""
    cluster = commands.add_parser("cluster", help="join, register and inspect member clusters")
    verbs = cluster.add_subparsers(dest="cluster_command", required=True, metavar="VERB")

    def placement(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--provider", help="cloud provider name")
        sub.add_argument("--region", help="region")
        sub.add_argument("--zone", help="zone")
        sub.add_argument(
            "--gateway-address",
            help="address at which the gateway reaches NodePort Services (default: API host)",
        )
        sub.add_argument("--label", action="append", metavar="KEY=VALUE", help="cluster label")

    join = with_nats(
        verbs.add_parser("join", help="push mode: set FOOT up in a cluster"),
        timeout=member_timeout,
    )
    join.add_argument("name")
    join.add_argument("--kubeconfig", required=True, help="admin kubeconfig (not stored)")
    join.add_argument("--context", help="kubeconfig context (default: current-context)")
    join.add_argument(
        "--use-given-credential",
        action="store_true",
        help="store the kubeconfig's own token instead of creating a ServiceAccount "
        "(for a cluster without the TokenRequest API, such as foot-sim's)",
    )
    placement(join)
    join.set_defaults(run=cmd_join, is_async=True)

    unjoin = with_nats(
        verbs.add_parser("unjoin", help="forget a cluster, remove FOOT from it"),
        timeout=member_timeout,
    )
    unjoin.add_argument("name")
    unjoin.add_argument("--kubeconfig", help="admin kubeconfig: remove FOOT's objects at once")
    unjoin.add_argument("--context", help="kubeconfig context")
    unjoin.add_argument("--force", action="store_true", help="forget it even if unreachable")
    unjoin.set_defaults(run=cmd_unjoin, is_async=True)

    register = with_nats(
        verbs.add_parser("register", help="pull mode: print the agent's manifests")
    )
    register.add_argument("name")
    register.add_argument("--agent-nats-url", help="NATS URL the agent dials (as members see it)")
    register.add_argument("--image", help="container image with FOOT")
    register.add_argument("-o", "--output-file", help="write the manifests here (mode 600)")
    placement(register)
    register.set_defaults(run=cmd_register, is_async=True)

    listing = with_nats(verbs.add_parser("list", help="the clusters table"))
    listing.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    listing.set_defaults(run=cmd_list, is_async=True)

    describe = with_nats(verbs.add_parser("describe", help="one cluster in full"))
    describe.add_argument("name")
    describe.add_argument("--refresh", action="store_true", help="collect its status first")
    describe.set_defaults(run=cmd_describe, is_async=True)

    agent = commands.add_parser(
        "agent", help="run the pull-mode agent (options: foot agent --help)", add_help=False
    )
    agent.add_argument("agent_args", nargs=argparse.REMAINDER)
    agent.set_defaults(run=cmd_agent, is_async=False)

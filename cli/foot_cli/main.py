"""The `foot` command line.

Every command that talks to FOOT finds it the same way (foot_cli.connection): `--nats-url`,
else `FOOT_NATS_URL`, else the state file of the running `foot up` of `--home` (else
`FOOT_HOME`, else `~/.foot`), else nats://127.0.0.1:4222; `--timeout` bounds all of its
talk with FOOT, connecting included. Modules a command does not need are imported when it runs,
so start-up stays short.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foot.errors import FootError, InvalidObjectError, PermanentError
from foot_cli.home import HOME_HELP

if TYPE_CHECKING:
    from foot.api import ObjectResult

DEFAULT_TIMEOUT_SECONDS = 5.0
"""How long a command's talk with FOOT may take by default, connecting included."""
MEMBER_TIMEOUT_SECONDS = 60.0
"""The default for commands that wait on a member cluster's API server (join, unjoin)."""
ENVIRONMENT_HELP = """\
where FOOT is (first found wins):
  --nats-url URL                 or FOOT_NATS_URL
  the state file of `foot up`    HOME/up.json, HOME from --home, else FOOT_HOME, else ~/.foot
  nats://127.0.0.1:4222          otherwise
the CLI's NATS user: FOOT_NATS_CREDENTIALS_FILE, else the one `foot up` made in HOME.
Every command that talks to FOOT gives up --timeout seconds after it first reaches for it
(connecting included)."""


class EmptyFileError(PermanentError):
    """A file given to `-f` holds no object: almost always the wrong file."""

    def __init__(self, source: str) -> None:
        super().__init__(f"no objects in {source} (it is empty, or only comments and `---`)")


def read_files(paths: Sequence[str]) -> list[dict[str, Any]]:
    from foot.yamlsafe import NO_OBJECTS, load_documents

    documents = []
    for path in paths:
        # Bytes: the loader itself refuses what is not UTF-8, with a clear error.
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        source = "stdin" if path == "-" else path
        try:
            documents += load_documents(data, source=source)
        except InvalidObjectError as exc:
            if [problem.reason for problem in exc.problems] == [NO_OBJECTS]:
                raise EmptyFileError(source) from None
            raise
    return documents


def print_results(results: Sequence[ObjectResult]) -> bool:
    from foot_cli.console import err, out

    ok = True
    for result in results:
        info_kind = result.ref.kind.lower()
        group = result.ref.api_version.rpartition("/")[0]
        name = f"{info_kind}{'.' + group if group else ''}/{result.ref.name}"
        if result.error is None:
            out.print(f"{name} {result.outcome}")
            continue
        ok = False
        error = result.error
        reason = "" if error.fields else f": {error.message}"
        err.print(f"[red]{name or '(unnamed)'} {result.outcome}[/red]{reason}", markup=True)
        for field in error.fields:
            err.print(f"    {field.path or '(document)'}: {field.reason}")
    return ok


async def call_api(args: argparse.Namespace, subject: str, documents: list[dict[str, Any]]) -> int:
    import orjson

    from foot.api import ApiReply, ApiRequest
    from foot_cli.connection import connect
    from foot_cli.console import err

    async with await connect(args) as bus:
        payload = ApiRequest(objects=documents).model_dump(mode="json", by_alias=True)
        msg = await bus.request(subject, orjson.dumps(payload), wait_seconds=args.timeout)
    reply = ApiReply.model_validate_json(msg.data)
    if reply.error is not None:
        err.print(f"[red]error[/red]: {reply.error.message}")
        return 1
    return 0 if print_results(reply.results) else 1


async def cmd_apply(args: argparse.Namespace) -> int:
    from foot.catalog import API_APPLY

    return await call_api(args, API_APPLY, read_files(args.filename))


async def cmd_get(args: argparse.Namespace) -> int:
    from foot_cli.get import cmd_get as run_get

    return await run_get(args)


async def cmd_delete(args: argparse.Namespace) -> int:
    from foot.catalog import API_DELETE
    from foot.kinds import KINDS
    from foot_cli.console import err

    if args.filename:
        documents = read_files(args.filename)
    elif args.kind and args.names:
        info = KINDS.resolve(args.kind)
        documents = [
            {
                "apiVersion": info.api_version,
                "kind": info.kind,
                "metadata": {"name": name, "namespace": args.namespace},
            }
            for name in args.names
        ]
    else:
        err.print("usage: foot delete KIND NAME... | foot delete -f FILE")
        return 2
    return await call_api(args, API_DELETE, documents)


def cmd_up(args: argparse.Namespace) -> int:
    from foot_cli.home import foot_home
    from foot_cli.up import run_up

    return run_up(
        nats_url=args.nats_url,
        nats_port=args.nats_port,
        admin_port_base=args.admin_port_base,
        home=foot_home(args.home),
        log_level=args.log_level,
        simulated_clusters=args.sim,
    )


def with_nats(
    sub: argparse.ArgumentParser, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> argparse.ArgumentParser:
    """The options of every command that talks to FOOT: where it is, and how long to wait."""
    sub.add_argument("--home", help=HOME_HELP)
    sub.add_argument(
        "--nats-url",
        help="NATS to talk to (default: FOOT_NATS_URL, else the URL the `foot up` of --home "
        "recorded, else nats://127.0.0.1:4222)",
    )
    sub.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds all of the command's talk with FOOT may take, connecting included "
        f"(default {timeout:g})",
    )
    return sub


COMMANDS = {
    "up": "start FOOT: embedded NATS and the five services",
    "apply": "create or update objects from files",
    "get": "show objects",
    "describe": "show a template's policy, placement and why",
    "delete": "delete objects",
    "cluster": "join, register and inspect member clusters",
    "agent": "run the pull-mode agent (options: foot agent --help)",
}
"""Every command and its one-line help, in the order `foot --help` lists them."""


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line. Only `command`'s own parser is built in full (every one when None):
    the others are their names and help, so that a command imports only what it needs."""
    root = argparse.ArgumentParser(
        prog="foot",
        description="FOOT: one control plane for many Kubernetes clusters.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    builders: dict[str, Callable[[Any], None]] = {
        "up": add_up,
        "apply": add_apply,
        "get": add_get,
        "describe": add_describe_command,
        "delete": add_delete,
        "cluster": add_cluster_commands,
        "agent": lambda _commands: None,  # `cluster` adds it
    }
    for name, summary in COMMANDS.items():
        if command is None or name == command:
            builders[name](commands)
        elif name not in commands.choices:
            commands.add_parser(name, help=summary)
    return root


def add_up(commands: Any) -> None:
    up = commands.add_parser("up", help=COMMANDS["up"])
    up.add_argument("--nats-url", help="use this NATS instead of starting one")
    up.add_argument("--nats-port", type=int, default=4222, help="embedded NATS port (0: free)")
    up.add_argument(
        "--admin-port-base",
        type=int,
        default=8470,
        help="admin servers listen on BASE+1..BASE+5 (0: free ports)",
    )
    up.add_argument("--home", help=HOME_HELP)
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    up.add_argument(
        "--sim", type=int, default=0, metavar="N", help="also start N simulated member clusters"
    )
    up.set_defaults(run=cmd_up, is_async=False)


def add_apply(commands: Any) -> None:
    apply = with_nats(commands.add_parser("apply", help=COMMANDS["apply"]))
    apply.add_argument(
        "-f", "--filename", action="append", required=True, help="YAML/JSON file, - for stdin"
    )
    apply.set_defaults(run=cmd_apply, is_async=True)


def add_get(commands: Any) -> None:
    get = with_nats(commands.add_parser("get", help=COMMANDS["get"]))
    get.add_argument("kind", help=f"kind to show ({kind_spellings()})")
    get.add_argument("name", nargs="?")
    get.add_argument("-n", "--namespace")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=["table", "wide", "yaml", "json"], default="table")
    get.set_defaults(run=cmd_get, is_async=True)


def add_describe_command(commands: Any) -> None:
    from foot_cli.describe import add_describe

    add_describe(commands, with_nats)


def add_delete(commands: Any) -> None:
    delete = with_nats(commands.add_parser("delete", help=COMMANDS["delete"]))
    delete.add_argument("kind", nargs="?")
    delete.add_argument("names", nargs="*")
    delete.add_argument("-n", "--namespace")
    delete.add_argument("-f", "--filename", action="append")
    delete.set_defaults(run=cmd_delete, is_async=True)


def add_cluster_commands(commands: Any) -> None:
    from foot_cli.cluster import add_commands

    add_commands(commands, with_nats, member_timeout=MEMBER_TIMEOUT_SECONDS)


def kind_spellings() -> str:
    from foot.kinds import KINDS

    return KINDS.spellings()


async def run_within_timeout(args: argparse.Namespace) -> int:
    """Run a command that talks to FOOT within --timeout, from its first connection (which
    sets the deadline: foot_cli.connection.start_the_clock) to its end."""
    import asyncio

    run: Callable[[argparse.Namespace], Any] = args.run
    timeout = getattr(args, "timeout", None)
    if timeout is None:
        return int(await run(args))
    try:
        async with asyncio.timeout(None) as bound:
            args.deadline = bound
            return int(await run(args))
    except TimeoutError:
        if not bound.expired():
            raise
        from foot.redaction import redact
        from foot_cli.connection import nats_target, no_foot

        target = getattr(args, "connecting_to", None) or nats_target(args)
        if not getattr(args, "connected", False):
            raise no_foot(target, f"no answer within {timeout:g}s") from None
        raise CommandTimeoutError(
            f"FOOT at {redact(target.url)} did not finish within {timeout:g}s "
            f"(--timeout {timeout:g})"
        ) from None


class CommandTimeoutError(FootError):
    """A command ran out of --timeout after it reached FOOT."""

    retryable = True
    code = "Unavailable"


def report(exc: FootError | OSError) -> None:
    """A failed command as a person reads it: one line (and the problems of an object)."""
    from foot_cli.connection import NoFootError

    if isinstance(exc, NoFootError | CommandTimeoutError):
        print(f"foot: {exc.message}", file=sys.stderr)
        return
    from foot_cli.console import err

    message = exc.message if isinstance(exc, FootError) else str(exc)
    err.print(f"[red]error[/red]: {message}")
    if isinstance(exc, InvalidObjectError):
        for problem in exc.problems:
            err.print(f"    {problem}")


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["agent"]:  # every option after it is the agent's own
        from foot_cli.cluster import exec_agent

        exec_agent(words[1:])
    args = parser(words[0] if words else None).parse_args(words)
    import asyncio
    import logging

    # The CLI speaks through its own output: library warnings (a NATS client's complaint,
    # an unclosed session at exit) are not for the person at the terminal.
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        code = asyncio.run(run_within_timeout(args)) if args.is_async else args.run(args)
    except (FootError, OSError) as exc:
        report(exc)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()

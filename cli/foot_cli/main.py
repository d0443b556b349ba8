"""The `foot` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from foot.api import ApiReply, ApiRequest, ObjectResult
from foot.catalog import API_APPLY, API_DELETE
from foot.errors import FootError, InvalidObjectError, PermanentError
from foot.kinds import KINDS
from foot.yamlsafe import NO_OBJECTS, load_documents
from foot_cli.cluster import add_commands as add_cluster_commands
from foot_cli.cluster import exec_agent
from foot_cli.connection import connect
from foot_cli.console import err, out
from foot_cli.describe import add_describe
from foot_cli.get import cmd_get


class EmptyFileError(PermanentError):
    """A file given to `-f` holds no object: almost always the wrong file."""

    def __init__(self, source: str) -> None:
        super().__init__(f"no objects in {source} (it is empty, or only comments and `---`)")


def read_files(paths: Sequence[str]) -> list[dict[str, Any]]:
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
    async with await connect(args) as bus:
        payload = ApiRequest(objects=documents).model_dump(mode="json", by_alias=True)
        msg = await bus.request(subject, orjson.dumps(payload), wait_seconds=args.timeout)
    reply = ApiReply.model_validate_json(msg.data)
    if reply.error is not None:
        err.print(f"[red]error[/red]: {reply.error.message}")
        return 1
    return 0 if print_results(reply.results) else 1


async def cmd_apply(args: argparse.Namespace) -> int:
    return await call_api(args, API_APPLY, read_files(args.filename))


async def cmd_delete(args: argparse.Namespace) -> int:
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
    from foot_cli.up import foot_home, run_up

    return run_up(
        nats_url=args.nats_url,
        nats_port=args.nats_port,
        admin_port_base=args.admin_port_base,
        home=Path(args.home) if args.home else foot_home(),
        log_level=args.log_level,
        simulated_clusters=args.sim,
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="foot", description="FOOT: one control plane for many Kubernetes clusters."
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_nats(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--nats-url", help="NATS to talk to (default: FOOT_NATS_URL, else what `foot up` runs)"
        )
        sub.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for FOOT")
        return sub

    up = commands.add_parser("up", help="start FOOT: embedded NATS and the five services")
    up.add_argument("--nats-url", help="use this NATS instead of starting one")
    up.add_argument("--nats-port", type=int, default=4222, help="embedded NATS port (0: free)")
    up.add_argument(
        "--admin-port-base",
        type=int,
        default=8470,
        help="admin servers listen on BASE+1..BASE+5 (0: free ports)",
    )
    up.add_argument("--home", help="data and logs folder (default: FOOT_HOME or ~/.foot)")
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    up.add_argument(
        "--sim", type=int, default=0, metavar="N", help="also start N simulated member clusters"
    )
    up.set_defaults(run=cmd_up, is_async=False)

    apply = with_nats(commands.add_parser("apply", help="create or update objects from files"))
    apply.add_argument(
        "-f", "--filename", action="append", required=True, help="YAML/JSON file, - for stdin"
    )
    apply.set_defaults(run=cmd_apply, is_async=True)

    get = with_nats(commands.add_parser("get", help="show objects"))
    get.add_argument("kind", help=f"kind to show ({KINDS.spellings()})")
    get.add_argument("name", nargs="?")
    get.add_argument("-n", "--namespace")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-o", "--output", choices=["table", "wide", "yaml", "json"], default="table")
    get.set_defaults(run=cmd_get, is_async=True)

    add_describe(commands, with_nats)

    delete = with_nats(commands.add_parser("delete", help="delete objects"))
    delete.add_argument("kind", nargs="?")
    delete.add_argument("names", nargs="*")
    delete.add_argument("-n", "--namespace")
    delete.add_argument("-f", "--filename", action="append")
    delete.set_defaults(run=cmd_delete, is_async=True)

    add_cluster_commands(commands, with_nats)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["agent"]:  # every option after it is the agent's own
        exec_agent(words[1:])
    args = parser().parse_args(words)
    try:
        code = asyncio.run(args.run(args)) if args.is_async else args.run(args)
    except (FootError, OSError) as exc:
        message = exc.message if isinstance(exc, FootError) else str(exc)
        err.print(f"[red]error[/red]: {message}")
        if isinstance(exc, InvalidObjectError):
            for problem in exc.problems:
                err.print(f"    {problem}")
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()

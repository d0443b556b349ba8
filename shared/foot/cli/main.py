"""The `foot` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console
from rich.table import Table

from foot.api import ApiReply, ApiRequest, ObjectResult
from foot.bus import Bus
from foot.bus.catalog import API_APPLY, API_DELETE
from foot.errors import FootError, InvalidObjectError
from foot.kinds import KINDS
from foot.objects import KubeObject, load_documents

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def nats_url_from(args: argparse.Namespace) -> str:
    """--nats-url, else FOOT_NATS_URL, else what `foot up` recorded, else the default port."""
    if args.nats_url:
        return str(args.nats_url)
    if os.environ.get("FOOT_NATS_URL"):
        return os.environ["FOOT_NATS_URL"]
    from foot.cli.up import STATE_FILE, foot_home

    state = foot_home() / STATE_FILE
    if state.exists():
        return str(orjson.loads(state.read_bytes())["nats_url"])
    return "nats://127.0.0.1:4222"


async def connect(args: argparse.Namespace) -> Bus:
    return await Bus.connect(nats_url_from(args), "foot-cli", connect_timeout=3)


def read_files(paths: Sequence[str]) -> list[dict[str, Any]]:
    documents = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        documents += load_documents(text, source="stdin" if path == "-" else path)
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


def age(obj: KubeObject) -> str:
    created = obj.metadata.creation_timestamp
    if created is None:
        return "-"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def cmd_get(args: argparse.Namespace) -> int:
    from foot.store import ObjectStore

    info = KINDS.resolve(args.kind)
    namespace = None if args.all_namespaces else (args.namespace or "default")
    if not info.namespaced:
        namespace = None
    async with await connect(args) as bus:
        store = ObjectStore(bus, owner="cli")
        if args.name:
            found = await store.get(info, namespace, args.name)
            if found is None:
                where = f" in namespace {namespace}" if namespace else ""
                err.print(f"[red]{info.kind} {args.name!r} not found{where}[/red]")
                return 1
            objects = [found]
        else:
            objects = await store.list(info, namespace)
        if args.output != "table":
            from foot.cli.status import with_status

            objects = await with_status(bus, info, objects)
    if info.kind == "ResourceBinding" and args.output == "table":
        from foot.cli.describe import render_bindings

        render_bindings(objects, show_namespace=namespace is None)
        return 0
    render(
        objects,
        info.plural,
        args.output,
        single=bool(args.name),
        show_namespace=namespace is None and info.namespaced,
    )
    return 0


def render(
    objects: list[KubeObject], plural: str, output: str, *, single: bool, show_namespace: bool
) -> None:
    if output == "json":
        items = [o.to_dict() for o in objects]
        body: Any = items[0] if single else {"items": items}
        out.print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(), markup=False)
        return
    if output == "yaml":
        docs = [o.to_dict() for o in objects]
        out.print(yaml.safe_dump_all(docs, sort_keys=False).rstrip(), markup=False)
        return
    if not objects:
        err.print(f"no {plural} found")
        return
    if plural == "clusters":
        from foot.cli.cluster import render_clusters

        render_clusters(objects)
        return
    table = Table(box=None, pad_edge=False)
    columns = ["NAMESPACE"] if show_namespace else []
    for column in [*columns, "NAME", "GENERATION", "AGE"]:
        table.add_column(column)
    for obj in objects:
        row = [obj.metadata.name, str(obj.metadata.generation), age(obj)]
        table.add_row(*([obj.metadata.namespace or ""] if show_namespace else []), *row)
    out.print(table)


def cmd_up(args: argparse.Namespace) -> int:
    from foot.cli.up import foot_home, run_up

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
    get.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    get.set_defaults(run=cmd_get, is_async=True)

    from foot.cli.describe import add_describe

    add_describe(commands, with_nats)

    delete = with_nats(commands.add_parser("delete", help="delete objects"))
    delete.add_argument("kind", nargs="?")
    delete.add_argument("names", nargs="*")
    delete.add_argument("-n", "--namespace")
    delete.add_argument("-f", "--filename", action="append")
    delete.set_defaults(run=cmd_delete, is_async=True)

    from foot.cli.cluster import add_commands as add_cluster_commands

    add_cluster_commands(commands, with_nats)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["agent"]:  # every option after it is the agent's own
        from foot.cli.cluster import exec_agent

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

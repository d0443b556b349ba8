"""`foot get KIND [NAME]`: objects as a table, YAML or JSON (clusters and bindings with
tables of their own)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import orjson
import yaml
from rich.table import Table

from foot.kinds import KINDS
from foot.kinds.clusters import Cluster
from foot.objects import KubeObject
from foot.runtime.wire import redact_secrets
from foot_cli.connection import connect
from foot_cli.console import age, err, out


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
            from foot_cli.status import with_status

            objects = await with_status(bus, info, objects)
    if info.kind == "ResourceBinding" and args.output == "table":
        from foot_cli.describe import render_bindings

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
    # Secret values are shown as the admin API's reads show them: redacted, keys kept.
    documents = [redact_secrets(o.to_dict()) for o in objects]
    if output == "json":
        body: Any = documents[0] if single else {"items": documents}
        out.print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(), markup=False)
        return
    if output == "yaml":
        out.print(yaml.safe_dump_all(documents, sort_keys=False).rstrip(), markup=False)
        return
    if not objects:
        err.print(f"no {plural} found")
        return
    if plural == "clusters":
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


def cluster_row(cluster: Cluster, age: str) -> list[str]:
    ready = cluster.status.condition("Ready")
    nodes = cluster.status.node_summary
    return [
        cluster.name,
        cluster.spec.sync_mode,
        ready.status if ready is not None else "Unknown",
        cluster.status.kubernetes_version or "-",
        f"{nodes.ready_num}/{nodes.total_num}" if nodes is not None else "-",
        cluster.spec.region or "-",
        age,
    ]


def render_clusters(objects: Sequence[KubeObject]) -> None:
    """`foot get clusters`: NAME MODE READY VERSION NODES REGION AGE."""
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "MODE", "READY", "VERSION", "NODES", "REGION", "AGE"):
        table.add_column(column)
    for obj in objects:
        if isinstance(obj, Cluster):
            table.add_row(*cluster_row(obj, age(obj)))
    out.print(table)

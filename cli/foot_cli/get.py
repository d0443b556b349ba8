"""`foot get KIND [NAME]`: objects as a table, YAML or JSON (clusters and bindings with
tables of their own).

Kinds sealed at rest (Secrets) are read through their owner's admin API with the read
token: the CLI holds no sealing key, and the API shows their values redacted, keys kept.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import yaml
from rich.table import Table

from foot.errors import PermanentError, TransportError
from foot.kinds import KINDS, KindInfo
from foot.kinds.clusters import Cluster
from foot.objects import KubeObject
from foot.runtime.wire import redact_secrets
from foot_cli.connection import admin_endpoint, connect
from foot_cli.console import age, age_since, err, out


async def cmd_get(args: argparse.Namespace) -> int:
    from foot.store import ObjectStore

    info = KINDS.resolve(args.kind)
    namespace = None if args.all_namespaces else (args.namespace or "default")
    if not info.namespaced:
        namespace = None
    if info.sensitive:
        return await get_through_admin_api(args, info, namespace)
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


async def get_through_admin_api(
    args: argparse.Namespace, info: KindInfo, namespace: str | None
) -> int:
    endpoint = admin_endpoint(info.owner, args)
    url = f"{endpoint.url}/admin/objects/{info.plural}"
    if args.name:
        url += f"/{args.name}"
    query = {"namespace": namespace} if namespace else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=args.timeout)) as http,
            http.get(url, params=query, headers=endpoint.headers) as response,
        ):
            status = response.status
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TransportError(f"the {info.owner}'s admin API at {endpoint.url}: {exc}") from exc
    if status == 404:  # noqa: PLR2004
        where = f" in namespace {namespace}" if namespace else ""
        err.print(f"[red]{info.kind} {args.name!r} not found{where}[/red]")
        return 1
    if status != 200:  # noqa: PLR2004
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        raise PermanentError(f"the {info.owner}'s admin API answered {status}: {message}")
    documents: list[dict[str, Any]] = [body] if args.name else body["items"]
    if not print_documents(documents, args.output, single=bool(args.name)):
        render_table(documents, info.plural, show_namespace=namespace is None and info.namespaced)
    return 0


def print_documents(documents: list[dict[str, Any]], output: str, *, single: bool) -> bool:
    """`documents` as JSON or YAML, with Secret values redacted; False for a table."""
    documents = [redact_secrets(document) for document in documents]
    if output == "json":
        body: Any = documents[0] if single else {"items": documents}
        out.print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(), markup=False)
        return True
    if output == "yaml":
        out.print(yaml.safe_dump_all(documents, sort_keys=False).rstrip(), markup=False)
        return True
    return False


def render_table(documents: list[dict[str, Any]], plural: str, *, show_namespace: bool) -> None:
    """NAME GENERATION AGE of objects read as documents."""
    if not documents:
        err.print(f"no {plural} found")
        return
    table = Table(box=None, pad_edge=False)
    for column in [*(["NAMESPACE"] if show_namespace else []), "NAME", "GENERATION", "AGE"]:
        table.add_column(column)
    for document in documents:
        metadata = document.get("metadata") or {}
        created = metadata.get("creationTimestamp")
        row = [
            str(metadata.get("name", "")),
            str(metadata.get("generation", "")),
            age_since(datetime.fromisoformat(created) if created else None),
        ]
        table.add_row(*([str(metadata.get("namespace") or "")] if show_namespace else []), *row)
    out.print(table)


def render(
    objects: list[KubeObject], plural: str, output: str, *, single: bool, show_namespace: bool
) -> None:
    if print_documents([o.to_dict() for o in objects], output, single=single):
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

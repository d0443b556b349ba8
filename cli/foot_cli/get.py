"""`foot get KIND [NAME]`: objects as a table (`-o wide`: more columns), YAML or JSON.

Tables are plain aligned columns, never wrapped or cut, on a terminal or in a pipe. Templates
show how far they are rolled out (READY, CLUSTERS, from the dispatcher's aggregated status);
clusters, bindings and works have columns of their own. A kind FOOT accepts in two groups
(`pp`: FOOT's and Karmada's policies) lists both.

Kinds sealed at rest (Secrets, and works carrying one) are read through their owner's admin
API with the read token: the CLI holds no sealing key, and the API shows their values
redacted, keys kept.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import orjson
import yaml

from foot.bus import Bus
from foot.catalog import AGGREGATED_STATUS, TEMPLATES
from foot.errors import FootError, PermanentError, TransportError
from foot.kinds import KINDS, KindInfo
from foot.kinds.clusters import Cluster
from foot.kinds.works import AggregatedStatus, Work
from foot.objects import KubeObject
from foot.runtime.wire import redact_secrets
from foot_cli.connection import admin_endpoint, connect
from foot_cli.console import age, age_since, err, out, print_table

TABLE_OUTPUTS = ("table", "wide")


async def cmd_get(args: argparse.Namespace) -> int:
    from foot.store import ObjectStore

    infos = KINDS.resolve_all(args.kind)
    info = infos[0]
    namespace = None if args.all_namespaces else (args.namespace or "default")
    if not info.namespaced:
        namespace = None
    if info.sensitive or info.sealed_when_secret:
        return await get_through_admin_api(args, info, namespace)
    statuses: dict[str, AggregatedStatus] = {}
    async with await connect(args) as bus:
        store = ObjectStore(bus, owner="cli")
        objects: list[KubeObject] = []
        for each in infos:
            if args.name:
                found = await store.get(each, namespace, args.name)
                objects += [found] if found is not None else []
            else:
                objects += await store.list(each, namespace)
        if args.name and not objects:
            where = f" in namespace {namespace}" if namespace else ""
            err.print(f"[red]{info.kind} {args.name!r} not found{where}[/red]")
            return 1
        if args.output not in TABLE_OUTPUTS:
            from foot_cli.status import with_status

            objects = await with_status(bus, info, objects)
        elif info.bucket == TEMPLATES.name and objects:
            statuses = await aggregated_statuses(bus, info, namespace, args.name)
    render(
        objects,
        info,
        args.output,
        single=bool(args.name) and len(objects) == 1,
        show_namespace=namespace is None and info.namespaced,
        statuses=statuses,
    )
    return 0


async def aggregated_statuses(
    bus: Bus, info: KindInfo, namespace: str | None, name: str | None
) -> dict[str, AggregatedStatus]:
    """The dispatcher's status of the templates of `info`, by template key (one read of the
    bucket; none when no dispatcher has run yet)."""
    try:
        store = await bus.kv(AGGREGATED_STATUS.name)
        if name is not None and namespace is not None:
            entry = await store.get(info.key(namespace, name))
            entries = [] if entry is None else [entry]
        else:
            entries = await store.entries(info.pattern(namespace))
    except FootError:
        return {}
    return {
        entry.key: AggregatedStatus.model_validate_json(entry.value)
        for entry in entries
        if entry.value is not None and not entry.deleted
    }


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
    if print_documents(documents, args.output, single=bool(args.name)):
        return 0
    show_namespace = namespace is None and info.namespaced
    if not documents:
        err.print(f"no {info.plural} found")
    elif info.kind == "Work":
        works = [Work.model_validate(d, by_alias=True) for d in documents]
        print_table(*work_table(works, wide=args.output == "wide", show_namespace=show_namespace))
    else:
        print_table(
            *generic_table(documents, wide=args.output == "wide", show_namespace=show_namespace)
        )
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


Table = tuple[list[str], list[list[str]]]
"""Headers and rows."""


def generic_table(
    documents: Sequence[Mapping[str, Any]], *, wide: bool, show_namespace: bool
) -> Table:
    """NAME GENERATION AGE (API VERSION too with `-o wide`, or when several groups show)."""
    show_version = wide or len({d.get("apiVersion") for d in documents}) > 1
    headers = [
        *(["NAMESPACE"] if show_namespace else []),
        "NAME",
        *(["API VERSION"] if show_version else []),
        "GENERATION",
        "AGE",
    ]
    rows = []
    for document in documents:
        metadata = document.get("metadata") or {}
        created = metadata.get("creationTimestamp")
        rows.append(
            [
                *([str(metadata.get("namespace") or "")] if show_namespace else []),
                str(metadata.get("name", "")),
                *([str(document.get("apiVersion", ""))] if show_version else []),
                str(metadata.get("generation", "")),
                age_since(datetime.fromisoformat(created) if created else None),
            ]
        )
    return headers, rows


def template_table(
    objects: Sequence[KubeObject],
    info: KindInfo,
    statuses: Mapping[str, AggregatedStatus],
    *,
    wide: bool,
    show_namespace: bool,
) -> Table:
    """Templates: READY (ready/desired replicas over every cluster) and CLUSTERS (where it is
    placed); `-o wide` adds each cluster's ready/desired, health, applied and generation."""
    headers = [
        *(["NAMESPACE"] if show_namespace else []),
        "NAME",
        "READY",
        "CLUSTERS",
        *(["HEALTH", "APPLIED", "PER CLUSTER", "GENERATION"] if wide else []),
        "AGE",
    ]
    rows = []
    for obj in objects:
        status = statuses.get(info.key(obj.namespace, obj.name))
        row = [
            *([obj.namespace or ""] if show_namespace else []),
            obj.name,
            *template_cells(status, wide=wide),
        ]
        if wide:
            row.append(str(obj.metadata.generation))
        rows.append([*row, age(obj)])
    return headers, rows


def template_cells(status: AggregatedStatus | None, *, wide: bool) -> list[str]:
    """READY and CLUSTERS (and HEALTH, APPLIED, PER CLUSTER when wide) of one template."""
    if status is None:
        return ["-", "-", *(["Unknown", "false", "-"] if wide else [])]
    ready = "-" if status.replicas is None else f"{status.ready_replicas or 0}/{status.replicas}"
    placed = [c.cluster for c in status.clusters if not c.leaving]
    cells = [ready, ",".join(placed) or "-"]
    if wide:
        per_cluster = [
            c.cluster
            + ("" if c.replicas is None else f"={c.ready_replicas or 0}/{c.replicas}")
            + ("(leaving)" if c.leaving else "")
            for c in status.clusters
        ]
        cells += [status.health, str(status.applied).lower(), ",".join(per_cluster) or "-"]
    return cells


def work_table(works: Sequence[Work], *, wide: bool, show_namespace: bool) -> Table:
    """Works: the cluster each goes to, whether it is applied there and how healthy."""
    headers = [
        *(["NAMESPACE"] if show_namespace else []),
        "NAME",
        "CLUSTER",
        "APPLIED",
        "HEALTH",
        *(["BINDING", "MANIFESTS"] if wide else []),
        "AGE",
    ]
    rows = []
    for work in works:
        applied = work.status.applied_hash == work.spec.manifests_hash
        rows.append(
            [
                *([work.namespace or ""] if show_namespace else []),
                work.name,
                work.spec.cluster,
                str(applied).lower(),
                work.status.health,
                *([work.spec.binding.name, str(len(work.spec.manifests))] if wide else []),
                age(work),
            ]
        )
    return headers, rows


def render(
    objects: list[KubeObject],
    info: KindInfo,
    output: str,
    *,
    single: bool,
    show_namespace: bool,
    statuses: Mapping[str, AggregatedStatus] | None = None,
) -> None:
    if print_documents([o.to_dict() for o in objects], output, single=single):
        return
    if not objects:
        err.print(f"no {info.plural} found")
        return
    wide = output == "wide"
    if info.kind == "Cluster":
        print_table(*cluster_table(objects, wide=wide))
    elif info.kind == "ResourceBinding":
        from foot_cli.describe import binding_table

        print_table(*binding_table(objects, show_namespace=show_namespace))
    elif info.kind == "Work":
        works = [o for o in objects if isinstance(o, Work)]
        print_table(*work_table(works, wide=wide, show_namespace=show_namespace))
    elif info.bucket == TEMPLATES.name:
        table = template_table(
            objects, info, statuses or {}, wide=wide, show_namespace=show_namespace
        )
        print_table(*table)
    else:
        documents = [o.to_dict() for o in objects]
        print_table(*generic_table(documents, wide=wide, show_namespace=show_namespace))


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


def cluster_wide_cells(cluster: Cluster) -> list[str]:
    """PROVIDER ZONES TAINTS ENDPOINT."""
    zones = cluster.spec.zones or ([cluster.spec.zone] if cluster.spec.zone else [])
    taints = [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in cluster.spec.taints]
    return [
        cluster.spec.provider or "-",
        ",".join(zones) or "-",
        ",".join(taints) or "-",
        cluster.spec.api_endpoint or "-",
    ]


def cluster_table(objects: Sequence[KubeObject], *, wide: bool) -> Table:
    """`foot get clusters`: NAME MODE READY VERSION NODES REGION AGE (`-o wide`: PROVIDER
    ZONES TAINTS ENDPOINT too)."""
    headers = ["NAME", "MODE", "READY", "VERSION", "NODES", "REGION", "AGE"]
    if wide:
        headers += ["PROVIDER", "ZONES", "TAINTS", "ENDPOINT"]
    rows = [
        [*cluster_row(obj, age(obj)), *(cluster_wide_cells(obj) if wide else [])]
        for obj in objects
        if isinstance(obj, Cluster)
    ]
    return headers, rows

"""`foot describe <kind>/<name>` (a template: its policy, its placement and why) and the
columns of `foot get bindings`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from foot.errors import NotFoundError
from foot.kinds import KINDS
from foot.kinds.bindings import ResourceBinding, binding_name
from foot.objects import KubeObject
from foot_cli.connection import connect
from foot_cli.console import err, out

BINDING_KIND = ("work.foot.dev/v1alpha1", "ResourceBinding")


def _placement(binding: ResourceBinding) -> str:
    if not binding.spec.clusters:
        return "-"
    return ", ".join(
        t.name if t.replicas is None else f"{t.name}={t.replicas}" for t in binding.spec.clusters
    )


def _scheduled(binding: ResourceBinding) -> tuple[str, str]:
    condition = next((c for c in binding.status.conditions if c.type == "Scheduled"), None)
    if condition is None:
        return "Unknown", ""
    return condition.status, condition.reason


def binding_table(
    objects: Sequence[KubeObject], *, show_namespace: bool
) -> tuple[list[str], list[list[str]]]:
    """`foot get bindings`: template, policy, placement and whether it is scheduled."""
    headers = [
        *(["NAMESPACE"] if show_namespace else []),
        "NAME",
        "TEMPLATE",
        "POLICY",
        "SCHEDULED",
        "REASON",
        "CLUSTERS",
    ]
    rows = []
    for obj in objects:
        if not isinstance(obj, ResourceBinding):
            continue
        spec = obj.spec
        policy = f"{spec.policy.kind}/{spec.policy.name}" if spec.policy else "<none>"
        status, reason = _scheduled(obj)
        rows.append(
            [
                *([obj.metadata.namespace or ""] if show_namespace else []),
                obj.metadata.name,
                f"{spec.resource.kind}/{spec.resource.name}",
                policy,
                status,
                reason or "-",
                _placement(obj),
            ]
        )
    return headers, rows


def _split(target: str, name: str | None) -> tuple[str, str]:
    if "/" in target:
        kind, _, rest = target.partition("/")
        if not rest:
            raise NotFoundError(f"say which object: {kind}/NAME")
        return kind, rest
    if name is None:
        raise NotFoundError("say which object: foot describe KIND/NAME or KIND NAME")
    return target, name


async def cmd_describe(args: argparse.Namespace) -> int:
    from foot.store import ObjectStore

    kind_spelling, name = _split(args.target, args.name)
    info = KINDS.resolve(kind_spelling)
    namespace = (args.namespace or "default") if info.namespaced else None
    bindings = KINDS.lookup(*BINDING_KIND)
    async with await connect(args) as bus:
        store = ObjectStore(bus, owner="cli")
        template = await store.get(info, namespace, name)
        if template is None:
            where = f" in namespace {namespace}" if namespace else ""
            err.print(f"[red]{info.kind} {name!r} not found{where}[/red]")
            return 1
        found = await store.get(bindings, namespace, binding_name(name, info.kind))
        from foot_cli.status import aggregated_status, status_lines

        dispatched = await aggregated_status(bus, info.key(namespace, name))
    binding = found if isinstance(found, ResourceBinding) else None
    for line in [*describe_lines(template, binding), *status_lines(dispatched)]:
        out.print(line, markup=False, highlight=False)
    return 0


def describe_lines(template: KubeObject, binding: ResourceBinding | None) -> list[str]:
    """What `foot describe` prints, as plain lines."""
    spec: dict[str, Any] = template.to_dict().get("spec") or {}
    lines = [
        f"Name:         {template.name}",
        f"Namespace:    {template.namespace or '<cluster-scoped>'}",
        f"Kind:         {template.api_version} {template.kind}",
        f"Generation:   {template.metadata.generation}",
    ]
    if "replicas" in spec:
        lines.append(f"Replicas:     {spec['replicas']}")
    if binding is None:
        lines += ["Policy:       <not scheduled yet>", "Placement:    -"]
        return lines
    policy = binding.spec.policy
    policy_text = (
        f"{policy.kind} {policy.namespace + '/' if policy.namespace else ''}{policy.name} "
        f"({policy.api_version})"
        if policy
        else "<none>"
    )
    status, reason = _scheduled(binding)
    condition = next((c for c in binding.status.conditions if c.type == "Scheduled"), None)
    lines += [
        f"Policy:       {policy_text}",
        f"Binding:      {binding.metadata.name} (generation {binding.metadata.generation})",
        f"Scheduled:    {status} ({reason})",
    ]
    if binding.status.scheduler_observing_affinity_name:
        lines.append(f"Affinity:     {binding.status.scheduler_observing_affinity_name}")
    lines.append("Placement:")
    if not binding.spec.clusters:
        lines.append("  (no clusters)")
    suspended = set(binding.spec.suspended_clusters)
    for target in binding.spec.clusters:
        replicas = "whole object" if target.replicas is None else f"{target.replicas} replica(s)"
        held = "  (dispatch suspended)" if target.name in suspended else ""
        lines.append(f"  {target.name:<24} {replicas}{held}")
    if binding.spec.graceful_evictions:
        lines.append("Leaving:")
        for eviction in binding.spec.graceful_evictions:
            grace = (
                f", at most {eviction.grace_period_seconds}s"
                if eviction.grace_period_seconds
                else ""
            )
            lines.append(
                f"  {eviction.from_cluster:<24} {eviction.purge_mode}{grace}: {eviction.reason}"
            )
    if condition is not None and condition.message:
        lines.append("Why:")
        lines += [f"  {part.strip()}" for part in _why(condition.message)]
    if binding.status.last_scheduled_time is not None:
        lines.append(f"Last scheduled: {binding.status.last_scheduled_time.isoformat()}")
    if binding.status.last_scheduled_trace:
        lines.append(f"Trace:        {binding.status.last_scheduled_trace}")
    return lines


def _why(message: str) -> list[str]:
    parts: list[str] = []
    for line in message.splitlines():
        parts += [piece for piece in line.split("; ") if piece.strip()]
    return parts


def add_describe(
    commands: Any,
    with_nats: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    describe = with_nats(
        commands.add_parser("describe", help="show a template's policy, placement and why")
    )
    describe.add_argument("target", help="KIND/NAME, e.g. deploy/web (or KIND NAME)")
    describe.add_argument("name", nargs="?")
    describe.add_argument("-n", "--namespace")
    describe.set_defaults(run=cmd_describe, is_async=True)

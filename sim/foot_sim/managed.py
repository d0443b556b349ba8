"""Field ownership: metadata.managedFields in FieldsV1 format, and server-side apply.

Pure functions. A field path is a tuple of FieldsV1 path elements, e.g.
("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}', "f:image").
A manager's set holds leaf fields, list items (their "." membership in
FieldsV1) and maps whose creation it made.

Apply follows structured-merge-diff: merge the applied configuration into the
live object; fields that change and are owned by another manager conflict
(unless forced, which moves ownership); fields the applier owned before and no
longer applies are removed unless someone else still owns them. Non-apply
writes ("Update" operations) take ownership of what they changed without
conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from foot_sim.errors import apply_conflict
from foot_sim.schema import (
    GRANULAR_MAP_FIELDS,
    KEY_DEFAULTS,
    ListSchema,
    ListType,
    Path,
    is_atomic_map,
    list_schema,
)
from foot_sim.values import clone

FieldPath = tuple[str, ...]
FieldSet = set[FieldPath]

_MISSING: Any = object()

# Fields the server owns; they never appear in a manager's set.
_SYSTEM_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def strip_system_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object whose fields managers can own."""
    stripped = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    metadata = {k: v for k, v in obj.get("metadata", {}).items() if k not in _SYSTEM_METADATA}
    if metadata:
        stripped["metadata"] = metadata
    return stripped


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _item_element(item: Any, position: int, schema: ListSchema) -> str:
    if schema.list_type is ListType.SET:
        return "v:" + _dumps(item)
    if isinstance(item, dict):
        key: dict[str, Any] = {}
        for name in schema.keys:
            if name in item:
                key[name] = item[name]
            elif name in KEY_DEFAULTS:
                key[name] = KEY_DEFAULTS[name]
            else:
                return f"i:{position}"
        return "k:" + _dumps(key)
    return f"i:{position}"


def _granular_list(kind: str, schema_path: Path) -> ListSchema | None:
    schema = list_schema(kind, schema_path)
    return None if schema.list_type is ListType.ATOMIC else schema


def _collect(value: Any, kind: str, path: FieldPath, schema_path: Path, out: FieldSet) -> None:
    if isinstance(value, dict) and not is_atomic_map(schema_path):
        if not value and path:
            out.add(path)
        for key, child in value.items():
            _collect(child, kind, (*path, "f:" + key), (*schema_path, key), out)
        return
    if isinstance(value, list) and (schema := _granular_list(kind, schema_path)) is not None:
        for position, item in enumerate(value):
            item_path = (*path, _item_element(item, position, schema))
            out.add(item_path)
            if isinstance(item, dict) and schema.list_type is ListType.MAP:
                for key, child in item.items():
                    _collect(child, kind, (*item_path, "f:" + key), (*schema_path, key), out)
        return
    if path:
        out.add(path)


def object_field_set(obj: dict[str, Any], kind: str) -> FieldSet:
    """Every field an applied configuration sets (leaves, list items, empty maps)."""
    out: FieldSet = set()
    _collect(strip_system_fields(obj), kind, (), (), out)
    return out


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any], kind: str) -> FieldSet:
    """Fields an update sets to a new value or creates (removals are not included)."""
    out: FieldSet = set()

    def walk(before: Any, after: Any, path: FieldPath, schema_path: Path) -> None:
        if before is not _MISSING and before == after:
            return
        mergeable = before is _MISSING or isinstance(before, dict)
        if isinstance(after, dict) and not is_atomic_map(schema_path) and mergeable:
            created = before is _MISSING and path
            if created and (not after or (schema_path and schema_path[-1] in GRANULAR_MAP_FIELDS)):
                out.add(path)
            previous = before if isinstance(before, dict) else {}
            for key, child in after.items():
                walk(previous.get(key, _MISSING), child, (*path, "f:" + key), (*schema_path, key))
            return
        schema = _granular_list(kind, schema_path)
        if (
            isinstance(after, list)
            and schema is not None
            and (before is _MISSING or isinstance(before, list))
        ):
            earlier_items = {}
            if isinstance(before, list):
                earlier_items = {
                    _item_element(item, i, schema): item for i, item in enumerate(before)
                }
            for position, item in enumerate(after):
                element = _item_element(item, position, schema)
                item_path = (*path, element)
                earlier = earlier_items.get(element, _MISSING)
                if earlier is _MISSING:
                    out.add(item_path)
                if isinstance(item, dict) and schema.list_type is ListType.MAP:
                    fields = earlier if isinstance(earlier, dict) else {}
                    for key, child in item.items():
                        walk(
                            fields.get(key, _MISSING),
                            child,
                            (*item_path, "f:" + key),
                            (*schema_path, key),
                        )
            return
        if path:
            out.add(path)

    walk(
        strip_system_fields(old) if old is not None else _MISSING, strip_system_fields(new), (), ()
    )
    return out


def _locate(obj: Any, kind: str, path: FieldPath) -> tuple[Any, Any]:
    """(container, key-or-index) holding the value at `path`, or (_MISSING, None)."""
    node: Any = obj
    container: Any = _MISSING
    slot: Any = None
    schema_path: Path = ()
    for element in path:
        if element.startswith("f:"):
            name = element[2:]
            if not isinstance(node, dict) or name not in node:
                return _MISSING, None
            container, slot, node = node, name, node[name]
            schema_path = (*schema_path, name)
        else:
            if not isinstance(node, list):
                return _MISSING, None
            schema = list_schema(kind, schema_path)
            position = next(
                (i for i, item in enumerate(node) if _item_element(item, i, schema) == element),
                None,
            )
            if position is None:
                return _MISSING, None
            container, slot, node = node, position, node[position]
    return container, slot


def path_exists(obj: dict[str, Any], kind: str, path: FieldPath) -> bool:
    container, _ = _locate(obj, kind, path)
    return container is not _MISSING


def remove_path(obj: dict[str, Any], kind: str, path: FieldPath) -> None:
    container, slot = _locate(obj, kind, path)
    if container is not _MISSING:
        del container[slot]


def format_path(path: FieldPath) -> str:
    """The path as structured-merge-diff prints it: .spec.containers[name="app"].image"""
    parts: list[str] = []
    for element in path:
        prefix, body = element[:2], element[2:]
        if prefix == "f:":
            parts.append("." + body)
        elif prefix == "k:":
            key = orjson.loads(body)
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in sorted(key.items())) + "]")
        elif prefix == "v:":
            parts.append(f"[={body}]")
        else:
            parts.append(f"[{body}]")
    return "".join(parts)


def to_fields_v1(fields: FieldSet) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in fields:
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in fields:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    """Keys sorted, "." (the node's own membership) first, as the API server prints them."""
    if not node:
        return {}
    keys = sorted(node)  # "." first: every other element starts with a letter (f:, k:, v:, i:)
    return {k: _sorted_tree(node[k]) for k in keys}


def from_fields_v1(tree: dict[str, Any]) -> FieldSet:
    out: FieldSet = set()

    def walk(node: dict[str, Any], path: FieldPath) -> None:
        for element, child in node.items():
            if element == ".":
                out.add(path)
                continue
            child_path = (*path, element)
            if not child:
                out.add(child_path)
            else:
                walk(child, child_path)

    walk(tree, ())
    return out


@dataclass(slots=True)
class ManagedEntry:
    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    def identity(self) -> tuple[str, str, str, str]:
        # Appliers keep one entry whatever apiVersion they use, as on a real server.
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def printed(self) -> str:
        """The manager as conflict messages name it."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def decode_managed_fields(obj: dict[str, Any] | None) -> list[ManagedEntry]:
    if obj is None:
        return []
    return [
        ManagedEntry(
            manager=raw.get("manager", ""),
            operation=raw.get("operation", "Update"),
            api_version=raw.get("apiVersion", ""),
            time=raw.get("time", ""),
            fields=from_fields_v1(raw.get("fieldsV1") or {}),
            subresource=raw.get("subresource", ""),
        )
        for raw in obj.get("metadata", {}).get("managedFields") or []
    ]


def _finish(entries: list[ManagedEntry], obj: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Drop fields that no longer exist and managers left with nothing."""
    kept: list[dict[str, Any]] = []
    for entry in entries:
        entry.fields = {p for p in entry.fields if path_exists(obj, kind, p)}
        if entry.fields:
            kept.append(entry.to_json())
    return kept


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    kind: str,
    manager: str,
    api_version: str,
    subresource: str,
    now: str,
) -> list[dict[str, Any]]:
    """managedFields after a non-apply write by `manager` turned `old` into `new`."""
    entries = decode_managed_fields(old)
    changed = changed_fields(old, new, kind)
    if changed:
        identity = (manager, "Update", api_version, subresource)
        mine: ManagedEntry | None = None
        for entry in entries:
            if entry.identity() == identity:
                mine = entry
            else:
                entry.fields -= changed
        if mine is None:
            mine = ManagedEntry(manager, "Update", api_version, now, set(), subresource)
            entries.append(mine)
        mine.fields |= changed
        mine.time = now
    return _finish(entries, new, kind)


def _merge_applied(live: Any, applied: Any, kind: str, schema_path: Path) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict) and not is_atomic_map(schema_path):
        merged = dict(live)
        for key, value in applied.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _merge_applied(
                    live.get(key, _MISSING), value, kind, (*schema_path, key)
                )
        return merged
    schema = _granular_list(kind, schema_path)
    if isinstance(applied, list) and isinstance(live, list) and schema is not None:
        applied_items = {_item_element(item, i, schema): item for i, item in enumerate(applied)}
        merged_items: list[Any] = []
        seen: set[str] = set()
        for position, item in enumerate(live):
            element = _item_element(item, position, schema)
            seen.add(element)
            if element in applied_items:
                merged_items.append(_merge_applied(item, applied_items[element], kind, schema_path))
            else:
                merged_items.append(item)
        merged_items.extend(
            clone(item) for element, item in applied_items.items() if element not in seen
        )
        return merged_items
    return clone(applied)


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    kind: str,
    manager: str,
    force: bool,
    api_version: str,
    subresource: str,
    now: str,
) -> dict[str, Any]:
    """The object after `manager` applies `applied`; raises a 409 ApiError on conflicts.

    The caller has already removed what this endpoint may not change (status on
    the main resource, everything but status on /status) from `applied`.
    """
    # Merging shares untouched subtrees with its inputs, and pruning deletes in place.
    base: dict[str, Any] = clone(live) if live is not None else {}
    entries = decode_managed_fields(live)
    merged: dict[str, Any] = _merge_applied(base, applied, kind, ())
    applied_fields = object_field_set(applied, kind)
    changed = changed_fields(base, merged, kind)

    identity = (manager, "Apply", "", subresource)
    mine = next((e for e in entries if e.identity() == identity), None)
    conflicts: list[tuple[ManagedEntry, FieldPath]] = []
    for entry in entries:
        if entry is mine:
            continue
        conflicts.extend((entry, path) for path in sorted(entry.fields & changed))
    if conflicts and not force:
        raise apply_conflict([(entry.printed(), format_path(path)) for entry, path in conflicts])
    for entry, path in conflicts:
        entry.fields.discard(path)

    previously_applied = mine.fields if mine is not None else set()
    still_owned = set().union(*(e.fields for e in entries if e is not mine))
    for path in sorted(previously_applied - applied_fields - still_owned, key=len, reverse=True):
        owned_inside = any(p[: len(path)] == path for p in still_owned | applied_fields)
        if not owned_inside:
            remove_path(merged, kind, path)

    if mine is None:
        mine = ManagedEntry(manager, "Apply", api_version, now, applied_fields, subresource)
        entries.append(mine)
    elif mine.fields != applied_fields or (changed & applied_fields):
        mine.fields = applied_fields
        mine.time = now
        mine.api_version = api_version
    merged.setdefault("metadata", {})["managedFields"] = _finish(entries, merged, kind)
    return merged

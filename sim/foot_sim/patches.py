"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Pure functions over JSON-shaped values; they never mutate their inputs.
Strategic merge follows the patch strategies of the built-in types for the
lists that matter in practice (see `foot_sim.schema`), and honours the
`$patch: delete|replace`, `$retainKeys` and `$deleteFromPrimitiveList/<field>`
directives; `$setElementOrder/<field>` only orders lists and is ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from foot_sim.schema import ListType, Path, list_schema


class PatchError(Exception):
    """The patch cannot be applied to this document (the server answers 422)."""


class PatchFormatError(Exception):
    """The patch itself is malformed (the server answers 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch -------------------------------------------------------------------------


def _pointer_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchFormatError(f"JSON pointer must start with '/': {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _list_index(container: list[Any], segment: str, pointer: str, *, for_insert: bool) -> int:
    if segment == "-" and for_insert:
        return len(container)
    if not segment.isdigit():
        raise PatchError(f"invalid array index {segment!r} in {pointer}")
    index = int(segment)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds in {pointer}")
    return index


def _resolve_parent(doc: Any, pointer: str, op: str) -> tuple[Any, str]:
    segments = _pointer_tokens(pointer)
    if not segments:
        raise PatchError(f"{op} operation does not apply: cannot operate on the document root")
    return _walk(doc, segments[:-1], pointer, op), segments[-1]


def _get(doc: Any, pointer: str, op: str) -> Any:
    return _walk(doc, _pointer_tokens(pointer), pointer, op)


def _walk(doc: Any, segments: list[str], pointer: str, op: str) -> Any:
    """The node `segments` (of `pointer`) lead to from `doc`; each must exist."""
    node = doc
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list):
            node = node[_list_index(node, segment, pointer, for_insert=False)]
        else:
            raise PatchError(
                f"{op} operation does not apply: doc is missing path: {pointer}: missing value"
            )
    return node


def _remove(doc: Any, pointer: str, op: str) -> Any:
    parent, last = _resolve_parent(doc, pointer, op)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(
                f"{op} operation does not apply: doc is missing key: {pointer}: missing value"
            )
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, pointer, for_insert=False))
    raise PatchError(
        f"{op} operation does not apply: doc is missing path: {pointer}: missing value"
    )


def _add(doc: Any, pointer: str, value: Any, op: str) -> Any:
    if pointer == "":
        return value
    parent, last = _resolve_parent(doc, pointer, op)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, pointer, for_insert=True), value)
    else:
        raise PatchError(
            f"{op} operation does not apply: doc is missing path: {pointer}: missing value"
        )
    return doc


def json_patch(doc: Any, operations: Any) -> Any:  # noqa: PLR0912 - a branch per RFC 6902 op
    """RFC 6902 over a deep copy of `doc`."""
    if not isinstance(operations, list):
        raise PatchFormatError("json patch must be a list of operations")
    result = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchFormatError(f"invalid json patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchFormatError(f"{op} operation missing value")
        if op == "add":
            result = _add(result, path, copy.deepcopy(operation["value"]), op)
        elif op == "remove":
            _remove(result, path, op)
        elif op == "replace":
            if path == "":
                result = copy.deepcopy(operation["value"])
                continue
            _remove(result, path, op)
            result = _add(result, path, copy.deepcopy(operation["value"]), op)
        elif op in ("move", "copy"):
            if "from" not in operation:
                raise PatchFormatError(f"{op} operation missing from")
            if op == "move":
                value = _remove(result, operation["from"], op)
            else:
                value = copy.deepcopy(_get(result, operation["from"], op))
            result = _add(result, path, value, op)
        elif op == "test":
            if _get(result, path, op) != operation["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchFormatError(f"unexpected kind of json patch operation: {op!r}")
    return result


# --- strategic merge patch ---------------------------------------------------------------

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER_PREFIX = "$setElementOrder/"
_DELETE_FROM_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"


def strategic_merge_patch(original: Any, patch: Any, kind: str) -> Any:
    """Apply a strategic merge patch for an object of `kind`."""
    if not isinstance(patch, dict):
        raise PatchFormatError("strategic merge patch must be a JSON object")
    merged = _smp_map(original if isinstance(original, dict) else {}, patch, kind, ())
    return merged if merged is not None else {}


def _smp_map(  # noqa: PLR0912 - a branch per patch directive
    original: dict[str, Any], patch: dict[str, Any], kind: str, path: Path
) -> dict[str, Any] | None:
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive is not None:
        raise PatchFormatError(f"unknown patch type: {directive}")
    result = dict(original)
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM_PRIMITIVE_PREFIX):
            field = key[len(_DELETE_FROM_PRIMITIVE_PREFIX) :]
            if not isinstance(value, list):
                raise PatchFormatError(f"{key} must be a list")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [item for item in current if item not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        child_path = (*path, key)
        if isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value, kind, child_path)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(
                current if isinstance(current, list) else [], value, kind, child_path
            )
        else:
            result[key] = value
    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchFormatError(f"{_RETAIN_KEYS} must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(original: list[Any], patch: list[Any], kind: str, path: Path) -> list[Any]:
    replace_whole = any(
        isinstance(item, dict) and item.get(_DIRECTIVE) == "replace" for item in patch
    )
    if replace_whole:
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and _DIRECTIVE in i)]
    schema = list_schema(kind, path)
    if schema.list_type is ListType.SET:
        merged = list(original)
        merged.extend(item for item in patch if item not in merged)
        return merged
    merge_key = schema.merge_key
    if schema.list_type is ListType.ATOMIC or merge_key is None:
        return copy.deepcopy(patch)
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchFormatError(
                f"map: {item!r} does not contain declared merge key: {merge_key}"
            )
        position = next(
            (
                i
                for i, existing in enumerate(result)
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get(_DIRECTIVE) == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("$")})
        else:
            merged_item = _smp_map(result[position], item, kind, path)
            if merged_item is not None:
                result[position] = merged_item
    return result

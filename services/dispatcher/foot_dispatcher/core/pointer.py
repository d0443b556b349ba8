"""JSON pointers (RFC 6901) and the add/remove/replace operations of JSON patch (RFC 6902)
on plain JSON documents, returning new documents (the input is never changed)."""

from __future__ import annotations

import copy
from typing import Any

from foot.errors import PermanentError


class OverrideError(PermanentError):
    """An overrider cannot be applied to a manifest; the message names the path and why."""


def parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise OverrideError(f"{pointer!r} is not a JSON pointer: it must start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, *, for_add: bool) -> int:
    if for_add and token == "-":  # noqa: S105 - the JSON-pointer end-of-array token
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise OverrideError(f"{pointer}: {token!r} is not an array index")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise OverrideError(f"{pointer}: index {index} is out of range ({len(container)} items)")
    return index


def _parent(document: Any, tokens: list[str], pointer: str) -> Any:
    node = document
    for depth, token in enumerate(tokens[:-1]):
        where = "/" + "/".join(tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                raise OverrideError(f"{pointer}: {where} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, pointer, for_add=False)]
        else:
            raise OverrideError(f"{pointer}: {where} is inside a {type(node).__name__}")
    return node


def get_pointer(document: Any, pointer: str) -> Any:
    """The value at `pointer`; OverrideError when it does not exist."""
    tokens = parse_pointer(pointer)
    if not tokens:
        return document
    parent = _parent(document, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise OverrideError(f"{pointer} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, pointer, for_add=False)]
    raise OverrideError(f"{pointer}: the parent is a {type(parent).__name__}")


def apply_operation(document: Any, operator: str, pointer: str, value: Any = None) -> Any:
    """A copy of `document` with one JSON-patch operation (add, remove, replace) applied.

    As RFC 6902: `add` needs the parent to exist (it sets an object member or inserts into an
    array, `-` appends); `replace` and `remove` need the target to exist.
    """
    tokens = parse_pointer(pointer)
    result = copy.deepcopy(document)
    if not tokens:
        if operator == "remove":
            raise OverrideError("the whole document cannot be removed")
        return copy.deepcopy(value)
    parent = _parent(result, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if operator == "add":
            parent[last] = copy.deepcopy(value)
        elif last not in parent:
            raise OverrideError(f"{pointer} does not exist, so it cannot be {operator}d")
        elif operator == "replace":
            parent[last] = copy.deepcopy(value)
        else:
            del parent[last]
    elif isinstance(parent, list):
        index = _index(parent, last, pointer, for_add=operator == "add")
        if operator == "add":
            parent.insert(index, copy.deepcopy(value))
        elif operator == "replace":
            parent[index] = copy.deepcopy(value)
        else:
            del parent[index]
    else:
        raise OverrideError(f"{pointer}: the parent is a {type(parent).__name__}, not a container")
    return result

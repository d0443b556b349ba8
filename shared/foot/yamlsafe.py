"""The one loader of user input (YAML or JSON): `foot apply -f`, HTTP and NATS ingest.

Parsing is bounded before anything is built from the text, so no input can make a
process spend memory or time out of proportion to its size:

* at most `MAX_INPUT_BYTES` (kube-apiserver's own request limit), UTF-8 only;
* YAML aliases are counted by what they would expand to (`MAX_NODES` per input): a
  "billion laughs" bomb is refused while its node graph is still a few hundred nodes;
* nesting at most `MAX_DEPTH` levels;
* duplicate mapping keys refused, naming the key and its line (Kubernetes refuses them
  too; silently keeping the last value hides typos);
* only the JSON-compatible YAML tags (str, int, float, bool, null, map, seq): `!!binary`,
  `!!timestamp`, `!!set`, `!!python/...` or any custom tag is refused. Dates stay strings,
  as in Kubernetes.

Every failure is an `InvalidObjectError` with a field path and a reason, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from foot.errors import FieldProblem, InvalidObjectError

MAX_INPUT_BYTES = 3 * 1024 * 1024
"""kube-apiserver refuses request bodies over 3 MiB; so does FOOT, for files too."""
MAX_DEPTH = 100
"""Nesting of mappings and sequences; real objects (CRD schemas included) stay far below."""
MAX_NODES = 1_000_000
"""Values an input may hold once every alias is expanded (a 3 MiB input of plain values
holds far fewer; a bomb holds billions)."""
NO_OBJECTS = "no objects in the request"

_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):  # noqa: N818 - internal signal, turned into InvalidObjectError
    def __init__(self, reason: str, node: Node | None = None) -> None:
        where = f" (line {node.start_mark.line + 1})" if node is not None else ""
        super().__init__(f"{reason}{where}")


class _StrictResolver(Resolver):
    """YAML 1.1's implicit types without timestamps (Kubernetes keeps dates as strings)."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table
        first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


class _BoundedScanner(Scanner):
    """Refuses flow collections ("[", "{") nested past the limit while scanning: looking
    ahead for a possible key, PyYAML's scanner would otherwise spend time quadratic in
    the nesting of one line (most of a second on a few kB of "a: [[[[...")."""

    def fetch_flow_collection_start(self, TokenClass: type) -> None:  # noqa: N803 - PyYAML's name
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(TokenClass)


class _BoundedComposer(Composer):
    """Composes the node graph (aliases stay shared references) and checks it whole before
    any Python value is constructed."""

    _depth = 0

    def compose_document(self) -> Node | None:
        node: Node | None = super().compose_document()
        if node is not None:
            _check_graph(node)
        return node

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        # Refused as soon as the nesting passes the limit, rather than on the whole graph
        # after Python's recursion limit has been run into.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
            node: Node | None = super().compose_node(parent, index)  # type: ignore[arg-type]
            return node
        finally:
            self._depth -= 1


def _check_graph(root: Node) -> None:
    """Tags, duplicate keys, depth and the expanded size, each node visited once."""
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", node)
        known = expanded.get(id(node))
        if known is not None:
            return known
        if node.tag not in _STANDARD_TAGS and node.tag != _MERGE_TAG:
            raise _Refused(
                f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed", node
            )
        if id(node) in open_nodes:
            raise _Refused("an alias refers to a node that contains it", node)
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        elif isinstance(node, MappingNode):
            _check_unique_keys(node)
            for key, value in node.value:
                total += size(key, depth + 1) + size(value, depth + 1)
        open_nodes.discard(id(node))
        if total > MAX_NODES:
            raise _Refused(f"expands to more than {MAX_NODES} values (aliases)", node)
        expanded[id(node)] = total
        return total

    size(root, 0)


def _check_unique_keys(node: MappingNode) -> None:
    first_line: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        if key.value in first_line:
            first = first_line[key.value]
            raise _Refused(f"duplicate key {key.value!r} at line {line} (first at line {first})")
        first_line[key.value] = line


class _BoundedLoader(
    Reader, _BoundedScanner, Parser, _BoundedComposer, SafeConstructor, _StrictResolver
):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _text(data: str | bytes, source: str) -> str:
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_INPUT_BYTES:
        raise _problem(source, f"is {size} bytes, more than the limit of {MAX_INPUT_BYTES}")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        raise _problem(source, reason) from None


def _problem(source: str, reason: str, path: str = "") -> InvalidObjectError:
    return InvalidObjectError(source, [FieldProblem(path, reason)])


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key!r}")
        result[key] = value
    return result


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""Integers outside the signed 64-bit range are refused: nothing downstream (the bus's JSON
encoder, Kubernetes' own int64 fields) can carry them, and a request must fail here, clearly,
rather than later without an answer."""


def _check_json_depth(value: Any) -> None:
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def _check_integers(value: Any, source: str) -> None:
    """Refuse any integer outside the signed 64-bit range, naming where it stands."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, dict):
            pending.extend(
                (child, f"{path}.{key}" if path else str(key)) for key, child in item.items()
            )
        elif isinstance(item, list):
            # Dotted like every other field path (`spec.containers.0.ports.1`).
            pending.extend(
                (child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item)
            )
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            reason = f"the integer {item} is outside the 64-bit range ({INT64_MIN} to {INT64_MAX})"
            raise _problem(source, reason, path)


def load_json(data: str | bytes, source: str = "input") -> Any:
    """One JSON value, with the same limits as YAML (size, UTF-8, depth, duplicate keys)."""
    text = _text(data, source)
    try:
        value = json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_no_constant)
        _check_json_depth(value)
    except json.JSONDecodeError as exc:
        reason = f"does not parse: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise _problem(source, reason) from None
    except _Refused as exc:
        raise _problem(source, str(exc)) from None
    except RecursionError:
        raise _problem(source, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise _problem(source, _value_error_reason(exc)) from None
    _check_integers(value, source)
    return value


def _value_error_reason(exc: ValueError) -> str:
    """Python's refusal of an integer too long to convert, without its advice to the
    programmer (`sys.set_int_max_str_digits()`)."""
    if "digits" in str(exc):
        limit = sys.get_int_max_str_digits()
        return f"does not parse: an integer has more than {limit} digits"
    return f"does not parse: {exc}"


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _load_yaml(text: str, source: str) -> list[Any]:
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        reason = (
            f"contains the non-printable character #x{exc.character:04x} at offset {exc.position}"
        )
        raise _problem(source, reason) from None
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
    except _Refused as exc:
        raise _problem(source, str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "not valid YAML"
        if where is not None:
            reason += f" (line {where.line + 1}, column {where.column + 1})"
        raise _problem(source, f"does not parse: {reason}") from None
    except yaml.YAMLError as exc:
        raise _problem(source, f"does not parse: {exc}") from None
    except RecursionError:
        raise _problem(source, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise _problem(source, _value_error_reason(exc)) from None
    finally:
        loader.dispose()
    for document in documents:
        _check_integers(document, source)
    return documents


def load_documents(data: str | bytes, source: str = "input") -> list[dict[str, Any]]:
    """Parse JSON (an object, or a list of objects) or multi-document YAML into mappings.

    An input holding no object at all (empty, only comments, `null`) is an error: a request
    that does nothing is almost always a mistake (the wrong file, a failed template render).
    """
    text = _text(data, source)
    stripped = text.lstrip()
    if not stripped:  # whitespace only (a tab included, which YAML would call a bad token)
        raise _problem(source, NO_OBJECTS)
    if stripped.startswith(("{", "[")):
        parsed = load_json(text, source)
        documents = parsed if isinstance(parsed, list) else [parsed]
    else:
        documents = [d for d in _load_yaml(text, source) if d is not None]
    if not documents:
        raise _problem(source, NO_OBJECTS)
    for index, document in enumerate(documents):
        if not isinstance(document, Mapping):
            raise InvalidObjectError(
                f"{source} document {index + 1}",
                [FieldProblem("", f"must be a mapping, got {_type_name(document)}")],
            )
    return [dict(d) for d in documents]


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "a list" if isinstance(value, list) else names.get(type(value), "null")

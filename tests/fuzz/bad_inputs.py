"""Hypothesis strategies of bad inputs: every value they draw must be refused.

Documents (`bad_documents`): a valid Deployment template with one thing made wrong (a
value of the wrong type, an int32 overflow, a bad label key or value, an unknown field,
kind or apiVersion, a bad or missing name, a selector that does not match its pods, deep
nesting inside a field). Bodies (`bad_bodies`): such documents as JSON or YAML, and inputs
bad before any document is read (YAML alias bombs, non-UTF-8 bytes, duplicate keys,
nesting past the limit, tags outside JSON's, no object at all, random bytes).
"""

from __future__ import annotations

import copy
import json
import string
from typing import Any

import orjson
import yaml
from hypothesis import strategies as st

from foot.yamlsafe import MAX_DEPTH, MAX_NODES

Document = dict[str, Any]
INT32_MAX = 2**31 - 1
NAME = "fuzz-web"
LABEL_KEY_CHARS = string.ascii_letters + string.digits + "-_./"
FORBIDDEN_IN_KEYS = " !\"#$%&'()*+,:;<=>?@[\\]^`{|}~\t\u00e9\u4e2d"


def valid_deployment() -> Document:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": "fuzz", "labels": {"app": NAME}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def _set(document: Document, path: tuple[str | int, ...], value: Any) -> Document:
    changed = copy.deepcopy(document)
    here: Any = changed
    for step in path[:-1]:
        here = here[step]
    here[path[-1]] = value
    return changed


_CONTAINER = ("spec", "template", "spec", "containers", 0)
_not_int = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not float(f).is_integer()),
)
_not_str = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
_not_list = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.booleans(),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
_not_mapping = st.one_of(
    st.text(max_size=8), st.integers(), st.booleans(), st.lists(st.integers(), max_size=2)
)
_WRONG_TYPES: list[tuple[tuple[str | int, ...], st.SearchStrategy[Any]]] = [
    (("spec", "replicas"), _not_int),
    (("spec", "minReadySeconds"), _not_int),
    (
        ("spec", "paused"),
        st.one_of(st.text(max_size=5), st.integers(), st.lists(st.booleans(), max_size=2)),
    ),
    (("spec", "selector"), _not_mapping),
    (("spec", "template", "spec", "containers"), _not_list),
    ((*_CONTAINER, "image"), _not_str),
    ((*_CONTAINER, "ports"), _not_list),
    (
        (*_CONTAINER, "ports"),
        st.lists(st.fixed_dictionaries({"containerPort": _not_int}), min_size=1, max_size=3),
    ),
    (("metadata", "labels"), _not_mapping),
    (("metadata", "annotations"), _not_mapping),
    (("metadata", "labels", "app"), _not_str),
]


@st.composite
def wrong_type(draw: st.DrawFn) -> Document:
    path, values = draw(st.sampled_from(_WRONG_TYPES))
    return _set(valid_deployment(), path, draw(values))


_out_of_int32 = st.one_of(
    st.integers(min_value=INT32_MAX + 1),
    st.integers(max_value=-(2**31) - 1),
    st.integers(min_value=INT32_MAX + 1, max_value=10**30).map(float),
)


@st.composite
def huge_int(draw: st.DrawFn) -> Document:
    path = draw(
        st.sampled_from(
            [("spec", "replicas"), ("spec", "minReadySeconds"), ("spec", "revisionHistoryLimit")]
        )
    )
    return _set(valid_deployment(), path, draw(_out_of_int32))


_bad_label_key = st.one_of(
    st.tuples(
        st.text(LABEL_KEY_CHARS, max_size=10),
        st.sampled_from(FORBIDDEN_IN_KEYS),
        st.text(LABEL_KEY_CHARS, max_size=10),
    ).map("".join),
    st.text(string.ascii_lowercase, min_size=64, max_size=90),
    st.sampled_from(["", "-a", "a-", "a/b/c", "/a", "a/", "A_B/c", "x" * 254 + "/a"]),
)
_bad_label_value = st.one_of(
    st.tuples(
        st.text(string.ascii_letters, max_size=5), st.sampled_from(FORBIDDEN_IN_KEYS + "/")
    ).map("".join),
    st.text(string.ascii_lowercase, min_size=64, max_size=80),
    st.sampled_from(["-a", "a-", "_a", "a.", ".a"]),
)


@st.composite
def bad_label(draw: st.DrawFn) -> Document:
    document = valid_deployment()
    if draw(st.booleans()):
        document["metadata"]["labels"][draw(_bad_label_key)] = "x"
    else:
        document["metadata"]["labels"]["tier"] = draw(_bad_label_value)
    return document


_unknown_name = st.text(string.ascii_letters + string.digits, min_size=1, max_size=12).map(
    lambda s: f"fuzz{s}"
)


@st.composite
def unknown_field(draw: st.DrawFn) -> Document:
    where = draw(
        st.sampled_from([(), ("spec",), ("spec", "template", "spec"), _CONTAINER, ("metadata",)])
    )
    document = valid_deployment()
    here: Any = document
    for step in where:
        here = here[step]
    here[draw(_unknown_name)] = draw(st.one_of(st.integers(), st.text(max_size=5)))
    return document


@st.composite
def unknown_kind(draw: st.DrawFn) -> Document:
    document = valid_deployment()
    choice = draw(st.integers(0, 2))
    if choice == 0:
        document["kind"] = "Fuzz" + draw(_unknown_name)
    elif choice == 1:
        document["apiVersion"] = draw(
            st.sampled_from(["apps/v2", "apps/v1beta9", "app/v1", "v1", "apps", "/v1", "apps/"])
        )
    else:
        document["apiVersion"] = f"{draw(_unknown_name).lower()}.example.com/v1"
        document["kind"] = "Fuzz" + draw(_unknown_name)
    return document


@st.composite
def bad_name(draw: st.DrawFn) -> Document:
    document = valid_deployment()
    choice = draw(st.integers(0, 3))
    if choice == 0:
        del document["metadata"]["name"]
    elif choice == 1:
        document["metadata"]["name"] = draw(
            st.one_of(
                st.just(""),
                st.text(string.ascii_uppercase + "_ .", min_size=1, max_size=20),
                st.text(string.ascii_lowercase, min_size=254, max_size=300),
            )
        )
    elif choice == 2:
        document["metadata"]["namespace"] = draw(
            st.text(string.ascii_uppercase + "_.", min_size=1, max_size=20)
        )
    else:
        document["metadata"] = draw(_not_mapping)
    return document


@st.composite
def selector_mismatch(draw: st.DrawFn) -> Document:
    other = draw(
        st.text(string.ascii_lowercase, min_size=1, max_size=10).filter(lambda s: s != NAME)
    )
    return _set(valid_deployment(), ("spec", "selector", "matchLabels", "app"), other)


@st.composite
def deep_field(draw: st.DrawFn) -> Document:
    """A value nested past the loader's depth limit inside an annotation-like field."""
    depth = draw(st.integers(MAX_DEPTH + 1, 2 * MAX_DEPTH))
    value: Any = draw(st.integers())
    for _ in range(depth):
        value = [value] if draw(st.booleans()) else {"a": value}
    return _set(valid_deployment(), ("spec", "template", "spec", "containers", 0, "args"), value)


def bad_documents() -> st.SearchStrategy[Document]:
    return st.one_of(
        wrong_type(),
        huge_int(),
        bad_label(),
        unknown_field(),
        unknown_kind(),
        bad_name(),
        selector_mismatch(),
        deep_field(),
    )


# ---- bodies --------------------------------------------------------------------------------


def _yaml(documents: list[Document]) -> bytes:
    return yaml.safe_dump_all(documents, sort_keys=False).encode()


def to_json(value: Any) -> bytes:
    """JSON of `value`; integers of any size (orjson stops at 64 bits)."""
    return json.dumps(value).encode()


def _json(documents: list[Document]) -> bytes:
    return to_json(documents[0] if len(documents) == 1 else documents)


@st.composite
def document_bodies(draw: st.DrawFn) -> bytes:
    documents = draw(st.lists(bad_documents(), min_size=1, max_size=3))
    return _yaml(documents) if draw(st.booleans()) else _json(documents)


@st.composite
def alias_bombs(draw: st.DrawFn) -> bytes:
    """ "Billion laughs": each level a list of `width` aliases of the level below."""
    width = draw(st.integers(3, 12))
    depth = draw(st.integers(4, 14).filter(lambda d: width**d > MAX_NODES))
    lines = [f"l0: &l0 [{','.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth + 1)]
    if draw(st.booleans()):  # inside an otherwise plausible document
        lines = [
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata: {name: bomb}",
            "data:",
            *(f"  {line}" for line in lines),
        ]
    return ("\n".join(lines) + "\n").encode()


_BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xed\xa0\x80",
    b"\xf0\x28\x8c\xbc",
    b"\xc0\xaf",
    b"\x80",
]


@st.composite
def non_utf8(draw: st.DrawFn) -> bytes:
    base = _yaml([valid_deployment()]) if draw(st.booleans()) else _json([valid_deployment()])
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(st.sampled_from(_BAD_UTF8)) + base[at:]


@st.composite
def duplicate_keys(draw: st.DrawFn) -> bytes:
    key = draw(st.sampled_from(["kind", "apiVersion", "metadata", "spec"]))
    if draw(st.booleans()):
        text = _yaml([valid_deployment()]).decode()
        return (text + f"{key}: {draw(st.sampled_from(['x', '1', '{}', 'null']))}\n").encode()
    body = orjson.dumps(valid_deployment())
    return body[:-1] + b',"' + key.encode() + b'":' + to_json(draw(st.integers())) + b"}"


@st.composite
def too_deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(MAX_DEPTH + 1, 3000))
    style = draw(st.integers(0, 2))
    if style == 0:
        return b"[" * depth + b"]" * depth
    if style == 1:
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"a: " + b"[" * depth + b"]" * depth + b"\n"


_TAGS = [
    "!!binary aGk=",
    "!!python/object/apply:os.system [ls]",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    "!shell ls",
    "!<tag:example.com,2000:x> 1",
    "!!omap [{a: 1}]",
    "!!pairs [{a: 1}]",
    "!!python/name:os.system",
]


@st.composite
def foreign_tags(draw: st.DrawFn) -> bytes:
    field = draw(st.sampled_from(["kind", "apiVersion", "metadata"]))
    text = _yaml([valid_deployment()]).decode()
    return (
        text.replace(f"{field}:", f"{field}: {draw(st.sampled_from(_TAGS))}\nx{field}:", 1)
    ).encode()


_NOTHING = [
    b"",
    b"null",
    b"---",
    b"--- \n...\n",
    b"# nothing\n",
    b"~",
    b"[]",
    b"   \n\t",
    b"---\n---\n",
]
_NOT_OBJECTS = st.one_of(
    st.sampled_from(_NOTHING),
    st.lists(
        st.one_of(st.integers(), st.text(max_size=5), st.booleans()), min_size=1, max_size=4
    ).map(to_json),
    st.one_of(st.integers(), st.text(string.ascii_letters, max_size=10), st.booleans()).map(
        lambda v: yaml.safe_dump(v).encode()
    ),
)


def bad_bodies() -> st.SearchStrategy[bytes]:
    """Request bodies and files, each bad (so each must be refused)."""
    return st.one_of(
        document_bodies(),
        alias_bombs(),
        non_utf8(),
        duplicate_keys(),
        too_deep(),
        foreign_tags(),
        _NOT_OBJECTS,
        st.binary(min_size=1, max_size=200),
    )


def loader_bad_bodies() -> st.SearchStrategy[bytes]:
    """Bodies the loader itself must refuse (before any document is checked)."""
    return st.one_of(
        alias_bombs(),
        non_utf8(),
        duplicate_keys(),
        too_deep(),
        foreign_tags(),
        st.sampled_from(_NOTHING),
        document_bodies().map(lambda body: body + b"\n\xff"),
        deep_field().map(lambda d: _yaml([d])),
    )

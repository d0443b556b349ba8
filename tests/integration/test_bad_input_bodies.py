"""The bad-input corpus, bodies (issue 15, acceptance 4): requests bad before any document is
read (not UTF-8, not JSON or YAML, no object, alias bombs, tags outside JSON's, duplicate
keys, nesting, numbers JSON or 64 bits cannot hold, too big, the wrong media type), sent where
each belongs: `foot.api.apply` on a real nats-server, `POST /api/apply` on the scheduler's
admin server with the admin token, and the CLI's loader (`foot.yamlsafe`, which `foot apply
-f` reads files with). Each gets one clear error in the one error shape, no service logs a
traceback, nothing is stored. An alias bomb is refused in under 100 ms, growing memory by
under 50 MB."""

from __future__ import annotations

import resource
import time
import tracemalloc
from typing import Any

import orjson
import pytest
import yaml
from admin_support import AdminCredentials
from bad_input_support import (
    JSON,
    YAML,
    Expected,
    assert_clear_error,
    assert_no_tracebacks,
    changed,
    data_object,
    deployment,
    over_http,
    over_nats,
    stored,
)

from foot.bus import Bus
from foot.errors import InvalidObjectError
from foot.yamlsafe import MAX_INPUT_BYTES, load_documents
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService

NO_OBJECTS = [("", "no objects in the request")]
LAUGHS = 'lol0: &lol0 "lol"\n' + "".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]\n" for i in range(1, 10)
)
"""The classic "billion laughs": 765 bytes, 10**9 strings once expanded."""
ALIAS_BOMB_385 = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: boom, namespace: bad}\ndata:\n"
    "  a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"  {n}: &{n} [{','.join([f'*{p}'] * 10)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    )
)
"""A bomb inside an otherwise valid ConfigMap (426 bytes, 10**9 strings once expanded), like
the 385-byte one the issue sent over HTTP."""
VALID = yaml.safe_dump(changed(data_object("ConfigMap", data={"a": "b"}), ("metadata",), {
    "name": "plain", "namespace": "bad"})).encode()  # fmt: skip
"""A valid ConfigMap: refused all the same when the request itself is wrong."""
HUGE = "9" * 5000
BEYOND_INT64 = 2**63
MESSAGES = {
    "UnsupportedMediaType": "the body must be application/json or application/yaml",
    "RequestEntityTooLarge": f"the body is larger than the limit of {MAX_INPUT_BYTES} bytes",
}
"""What a refusal that names no field says."""
PORT = "spec.template.spec.containers.0.ports.0.containerPort"


def yaml_of(document: dict[str, Any], old: str, new: str) -> bytes:
    """`document` as YAML with one scalar's text replaced (what yaml.safe_dump cannot write)."""
    text = yaml.safe_dump(document)
    assert old in text
    return text.replace(old, new).encode()


def nested_yaml(depth: int) -> bytes:
    """A mapping nested `depth` levels deep, in block style (indentation, no brackets)."""
    return (
        "".join(f"{'  ' * level}k{level}:\n" for level in range(depth)).encode()
        + b"  " * (depth)
        + b"x: 1\n"
    )


# (id, body, Content-Type, status, code, expected problems)
HTTP_CASES: list[tuple[str, bytes, str | None, int, str, Expected]] = [
    ("whitespace-only", b"  \n\t\n", YAML, 422, "Invalid", NO_OBJECTS),
    ("comments-only", b"# nothing\n# here\n", YAML, 422, "Invalid", NO_OBJECTS),
    ("empty-documents", b"---\n---\n...\n", YAML, 422, "Invalid", NO_OBJECTS),
    (
        "latin-1-text",
        "kind: Caf\xe9\n".encode("latin-1"),
        YAML,
        422,
        "Invalid",
        [("", "is not UTF-8 text (byte 0xe9 at offset 9)")],
    ),
    (
        "utf-16-text",
        "kind: ConfigMap\n".encode("utf-16"),
        YAML,
        422,
        "Invalid",
        [("", "is not UTF-8 text (byte 0xff at offset 0)")],
    ),
    ("nul-byte", b"kind: a\x00\n", YAML, 422, "Invalid", [("", "non-printable character #x0000")]),
    (
        "bell-character",
        b"kind: \x07\n",
        YAML,
        422,
        "Invalid",
        [("", "non-printable character #x0007")],
    ),
    (
        "broken-json",
        b'{"apiVersion": }',
        JSON,
        422,
        "Invalid",
        [("", "does not parse: Expecting value (line 1, column 16)")],
    ),
    (
        "json-array-with-a-string",
        b'[{"apiVersion": "v1"}, "x"]',
        JSON,
        422,
        "Invalid",
        [("", "must be a mapping, got a string")],
    ),
    ("json-number", b"42", JSON, 422, "Invalid", [("", "must be a mapping, got a number")]),
    (
        "yaml-list",
        b"- kind: A\n- kind: B\n",
        YAML,
        422,
        "Invalid",
        [("", "must be a mapping, got a list")],
    ),
    (
        "yaml-plain-text",
        b"just text\n",
        YAML,
        422,
        "Invalid",
        [("", "must be a mapping, got a string")],
    ),
    (
        "nested-101-levels-block",
        nested_yaml(101),
        YAML,
        422,
        "Invalid",
        [("", "nested deeper than 100 levels")],
    ),
    (
        "nested-200-levels-json",
        b'{"a":' * 200 + b"1" + b"}" * 200,
        JSON,
        422,
        "Invalid",
        [("", "nested deeper than 100 levels")],
    ),
    (
        "billion-laughs",
        LAUGHS.encode(),
        YAML,
        422,
        "Invalid",
        [("", "expands to more than 1000000 values (aliases)")],
    ),
    (
        "alias-bomb-in-a-configmap",
        ALIAS_BOMB_385.encode(),
        YAML,
        422,
        "Invalid",
        [("", "(aliases)")],
    ),
    (
        "recursive-alias",
        b"a: &a [*a]\n",
        YAML,
        422,
        "Invalid",
        [("", "an alias refers to a node that contains it")],
    ),
    (
        "python-object-apply-tag",
        b"kind: !!python/object/apply:os.system ['echo hi']\n",
        YAML,
        422,
        "Invalid",
        [("", "tag !!python/object/apply:os.system is not allowed")],
    ),
    (
        "python-name-tag",
        b"kind: !!python/name:os.system\n",
        YAML,
        422,
        "Invalid",
        [("", "tag !!python/name:os.system is not allowed")],
    ),
    (
        "set-tag",
        b"labels: !!set {a, b}\n",
        YAML,
        422,
        "Invalid",
        [("", "tag !!set is not allowed")],
    ),
    (
        "timestamp-tag",
        b"kind: !!timestamp 2024-01-01\n",
        YAML,
        422,
        "Invalid",
        [("", "tag !!timestamp is not allowed")],
    ),
    (
        "duplicate-key-nested",
        b"kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
        YAML,
        422,
        "Invalid",
        [("", "duplicate key 'name' at line 4 (first at line 3)")],
    ),
    (
        "duplicate-key-json",
        b'{"kind": "A", "kind": "B"}',
        JSON,
        422,
        "Invalid",
        [("", "duplicate key 'kind'")],
    ),
    (
        "int-beyond-64-bits",
        yaml_of(deployment(replicas=7), "replicas: 7", f"replicas: {BEYOND_INT64}"),
        YAML,
        422,
        "Invalid",
        [("spec.replicas", "outside the 64-bit range")],
    ),
    (
        "int-beyond-64-bits-in-a-list",
        yaml_of(
            changed(
                deployment(),
                ("spec", "template", "spec", "containers", 0, "ports"),
                [{"containerPort": 7}],
            ),
            "containerPort: 7",
            f"containerPort: {BEYOND_INT64}",
        ),
        YAML,
        422,
        "Invalid",
        [(PORT, "outside the 64-bit range")],
    ),
    (
        "nan-in-json",
        b'{"spec": {"replicas": NaN}}',
        JSON,
        422,
        "Invalid",
        [("", "NaN is not a JSON number")],
    ),
    (
        "integer-of-5000-digits",
        f"replicas: {HUGE}\n".encode(),
        YAML,
        422,
        "Invalid",
        [("", "an integer has more than 4300 digits")],
    ),
    ("comments-over-aiohttp-1mib", b"# padding\n" * 150_000, YAML, 422, "Invalid", NO_OBJECTS),
    ("over-3mib", b"#" * MAX_INPUT_BYTES + b"\n", YAML, 413, "RequestEntityTooLarge", []),
    ("text-plain", VALID, "text/plain", 415, "UnsupportedMediaType", []),
    ("image-png", VALID, "image/png", 415, "UnsupportedMediaType", []),
    ("no-content-type", VALID, None, 415, "UnsupportedMediaType", []),
    (
        "form-urlencoded",
        VALID,
        "application/x-www-form-urlencoded",
        415,
        "UnsupportedMediaType",
        [],
    ),
    ("multipart-form", VALID, "multipart/form-data; boundary=x", 415, "UnsupportedMediaType", []),
    ("application-xml", VALID, "application/xml", 415, "UnsupportedMediaType", []),
    (
        "json-with-charset-broken",
        b"{",
        "application/json; charset=utf-8",
        422,
        "Invalid",
        [("", "does not parse")],
    ),
]

# (id, body, expected problems): each a request-level error
NATS_CASES: list[tuple[str, bytes, Expected]] = [
    ("whitespace-only", b"  \n\t ", [("", "does not parse")]),
    (
        "latin-1-text",
        '{"objects": [{"kind": "Caf\xe9"}]}'.encode("latin-1"),
        [("", "is not UTF-8 text (byte 0xe9")],
    ),
    ("top-level-array", b'[{"apiVersion": "v1"}]', [("", "must be a JSON object")]),
    ("top-level-string", b'"objects"', [("", "must be a JSON object")]),
    (
        "objects-a-mapping",
        b'{"objects": {}}',
        [("objects", "must be a list of objects, got a mapping")],
    ),
    (
        "objects-a-string",
        b'{"objects": "all"}',
        [("objects", "must be a list of objects, got 'all'")],
    ),
    (
        "objects-misspelled",
        b'{"object": []}',
        [("object", "unknown field"), ("objects", "is required")],
    ),
    ("yaml-not-json", b"objects:\n- kind: A\n", [("", "does not parse")]),
    ("alias-bomb", LAUGHS.encode(), [("", "does not parse")]),
    ("nan", b'{"objects": [{"spec": {"replicas": NaN}}]}', [("", "NaN is not a JSON number")]),
    (
        "infinity",
        b'{"objects": [{"spec": {"replicas": -Infinity}}]}',
        [("", "-Infinity is not a JSON number")],
    ),
    (
        "int-beyond-64-bits",
        b'{"objects": [{"spec": {"replicas": %d}}]}' % BEYOND_INT64,
        [("objects.0.spec.replicas", "outside the 64-bit range")],
    ),
    (
        "integer-of-5000-digits",
        b'{"objects": [{"a": %s}]}' % HUGE.encode(),
        [("", "an integer has more than 4300 digits")],
    ),
    (
        "duplicate-key-in-a-document",
        b'{"objects": [{"kind": "A", "kind": "B"}]}',
        [("", "duplicate key 'kind'")],
    ),
    ("trailing-garbage", b'{"objects": []} x', [("", "does not parse: Extra data")]),
    ("byte-order-mark", "\ufeff{}".encode(), [("", "does not parse")]),
    (
        "one-object-not-a-mapping",
        b'{"objects": [%s, 5]}' % orjson.dumps(yaml.safe_load(VALID)),
        [("objects.1", "must be a mapping")],
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "expected"),
    [pytest.param(b, t, s, c, e, id=i) for i, b, t, s, c, e in HTTP_CASES],
)
async def test_a_bad_http_body_gets_one_clear_error(
    *,
    scheduler: SchedulerService,
    nats_server: EmbeddedNats,
    admin_credentials: AdminCredentials,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
    status: int,
    code: str,
    expected: Expected,
) -> None:
    before = await stored(nats_server.url)
    got, answer = await over_http(scheduler.admin.url, admin_credentials, body, content_type)
    assert got == status, answer
    assert set(answer) == {"error"}, answer
    assert_clear_error(answer["error"], expected, code, MESSAGES.get(code, ""))
    assert await stored(nats_server.url) == before
    assert_no_tracebacks(caplog)


@pytest.mark.parametrize(("body", "expected"), [pytest.param(b, e, id=i) for i, b, e in NATS_CASES])
async def test_a_bad_nats_request_gets_one_clear_error(
    *,
    scheduler: SchedulerService,
    bus: Bus,
    nats_server: EmbeddedNats,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    expected: Expected,
) -> None:
    before = await stored(nats_server.url)
    answer = await over_nats(bus, body)
    assert answer.get("results") in (None, []), answer
    assert_clear_error(answer["error"], expected)
    assert await stored(nats_server.url) == before
    assert_no_tracebacks(caplog)


async def test_an_object_with_nothing_in_it_is_refused_naming_what_it_lacks(
    scheduler: SchedulerService, bus: Bus, nats_server: EmbeddedNats
) -> None:
    answer = await over_nats(bus, b'{"objects": [{}]}')
    assert [r["outcome"] for r in answer["results"]] == ["rejected"]
    fields = assert_clear_error(answer["results"][0]["error"], [("apiVersion", "is required")])
    assert fields == {"apiVersion": "is required", "kind": "is required"}
    assert await stored(nats_server.url) == {}


LOADER_CASES = [(i, b, e) for i, b, _, s, _, e in HTTP_CASES if s == 422]
"""Every body the loader itself refuses (the media type and size checks are HTTP's)."""


@pytest.mark.parametrize(
    ("body", "expected"), [pytest.param(b, e, id=i) for i, b, e in LOADER_CASES]
)
def test_the_cli_loader_refuses_the_same_bodies_the_same_way(
    body: bytes, expected: Expected
) -> None:
    with pytest.raises(InvalidObjectError) as refused:
        load_documents(body, source="app.yaml")
    found = {p.path: p.reason for p in refused.value.problems}
    for path, fragment in expected:
        assert fragment in found[path], found


@pytest.mark.parametrize("bomb", [LAUGHS, ALIAS_BOMB_385], ids=["billion-laughs", "in-a-configmap"])
def test_an_alias_bomb_is_refused_in_under_100ms_growing_memory_under_50mb(bomb: str) -> None:
    for _ in range(5):  # every time, not once by luck
        started = time.perf_counter()
        with pytest.raises(InvalidObjectError, match="aliases"):
            load_documents(bomb.encode(), source="bomb.yaml")
        assert time.perf_counter() - started < 0.1
    # What the loader allocates (Python objects: the parser and node graph are pure Python),
    # and what the process holds at most (anything a C extension would allocate too).
    peak_rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        with pytest.raises(InvalidObjectError):
            load_documents(bomb.encode(), source="bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_rss_before < 50 * 2**10


async def test_an_alias_bomb_over_http_costs_the_service_under_50mb(
    scheduler: SchedulerService, nats_server: EmbeddedNats, admin_credentials: AdminCredentials
) -> None:
    """The scheduler runs in this process: its allocations answering the bomb are traced."""
    tracemalloc.start()
    try:
        status, answer = await over_http(
            scheduler.admin.url, admin_credentials, ALIAS_BOMB_385.encode()
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 422, answer
    assert_clear_error(answer["error"], [("", "aliases")])
    assert peak < 50 * 2**20
    assert await stored(nats_server.url) == {}

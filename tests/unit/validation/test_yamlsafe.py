"""The one input loader: limits hold before anything is built, every refusal is a field problem."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from foot.errors import InvalidObjectError
from foot.yamlsafe import MAX_INPUT_BYTES, load_documents, load_json

LEVELS = 9
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n"
    for i in range(LEVELS - 1)
)
"""A "billion laughs": 9 levels of 9 aliases, 9**9 (387 million) strings once expanded."""


def refusal(data: str | bytes) -> str:
    with pytest.raises(InvalidObjectError) as refused:
        load_documents(data, source="input")
    problems = refused.value.problems
    assert len(problems) == 1
    return problems[0].reason


def test_an_alias_bomb_is_refused_fast_and_small() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    reason = refusal(BOMB)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "aliases" in reason
    assert elapsed < 0.1
    assert peak < 50 * 1024 * 1024


def test_aliases_that_expand_to_little_are_kept() -> None:
    text = "kind: A\nbase: &labels {app: web}\nother: *labels\n"
    assert load_documents(text) == [{"kind": "A", "base": {"app": "web"}, "other": {"app": "web"}}]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param(b"kind: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 9)", id="latin-1"),
        pytest.param(b"\x89PNG\r\n\x1a\n", "is not UTF-8", id="png"),
        pytest.param("a: 1\n\x00", "non-printable character #x0000", id="nul"),
        pytest.param("a: !!binary aGk=\n", "tag !!binary is not allowed (line 1)", id="binary"),
        pytest.param("a: !!timestamp 2024-01-01\n", "tag !!timestamp is not allowed", id="ts"),
        pytest.param("a: !!set {x}\n", "tag !!set is not allowed", id="set"),
        pytest.param("a: !!python/name:os.system\n", "is not allowed", id="python"),
        pytest.param("a: !env HOME\n", "tag !env is not allowed", id="custom"),
        pytest.param(
            "a: 1\nb: 2\na: 3\n", "duplicate key 'a' at line 3 (first at line 1)", id="dup"
        ),
        pytest.param('{"a": 1, "a": 2}', "duplicate key 'a'", id="dup-json"),
        pytest.param("a: &x [*x]\n", "refers to a node that contains it", id="recursive"),
        pytest.param("a: " + "[" * 150 + "]" * 150, "nested deeper than 100 levels", id="deep"),
        pytest.param("[" * 5000 + "]" * 5000, "nested deeper than 100 levels", id="deep-json"),
        pytest.param('{"a": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param("", "no objects in the request", id="empty"),
        pytest.param("# nothing\n", "no objects in the request", id="comment"),
        pytest.param("null", "no objects in the request", id="null"),
        pytest.param("---\n---\n", "no objects in the request", id="empty-documents"),
        pytest.param("[]", "no objects in the request", id="empty-list"),
        pytest.param("a: [", "does not parse", id="broken"),
        pytest.param("- a\n- b\n", "must be a mapping, got a list", id="list"),
        pytest.param("x" * (MAX_INPUT_BYTES + 1), "more than the limit", id="size"),
    ],
)
def test_bad_input_is_refused_with_a_clear_reason(data: str | bytes, fragment: str) -> None:
    assert fragment in refusal(data)


def test_dates_stay_strings_as_in_kubernetes() -> None:
    assert load_documents("kind: A\nsince: 2024-01-01\n") == [{"kind": "A", "since": "2024-01-01"}]


def test_json_requests_share_the_limits() -> None:
    with pytest.raises(InvalidObjectError) as refused:
        load_json(b'{"objects": [], "objects": [1]}', source="request")
    assert refused.value.problems[0].reason == "duplicate key 'objects'"
    assert load_json('{"objects": [{"a": 1}]}') == {"objects": [{"a": 1}]}


@pytest.mark.parametrize(
    "text",
    [
        '{"metadata": {"annotations": 1638006388111025635328}}',
        "metadata:\n  annotations: 1638006388111025635328\n",
        '{"spec": {"replicas": -9223372036854775809}}',
    ],
)
def test_integers_beyond_64_bits_are_refused_naming_the_field(text: str) -> None:
    # Found by the fuzz suite: such an integer passed the loader and then could not be
    # forwarded to its owner (the bus's JSON encoder stops at 64 bits), so no answer came.
    with pytest.raises(InvalidObjectError) as refused:
        load_documents(text)
    (problem,) = refused.value.problems
    assert problem.path in {"metadata.annotations", "spec.replicas"}
    assert "outside the 64-bit range" in problem.reason


def test_the_largest_64_bit_integers_still_load() -> None:
    loaded = load_documents('{"a": 9223372036854775807, "b": -9223372036854775808}')
    assert loaded == [{"a": 2**63 - 1, "b": -(2**63)}]

"""Bugs the fuzz suite found, each kept by a test of its own."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel

from foot.errors import InvalidObjectError
from foot.registry_api import ClusterNameRequest, JoinRequest, RegisterRequest, UnjoinRequest
from foot.yamlsafe import MAX_DEPTH, load_documents
from foot_registry.routing import parse, request_document

DEEP_FLOW_SECONDS = 0.3
"""The refusal takes milliseconds; before the fix these inputs took 0.4 to 1.7 s of CPU (in
the scheduler's event loop, for an HTTP body). Generous for a loaded machine."""


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 3000, 200_000])
@pytest.mark.parametrize("opener", [b"[", b"{a: "])
def test_deep_flow_nesting_in_yaml_is_refused_at_once(opener: bytes, depth: int) -> None:
    body = b"a: " + opener * depth
    started = time.perf_counter()
    with pytest.raises(InvalidObjectError) as refused:
        load_documents(body, source="deploy.yaml")
    elapsed = time.perf_counter() - started
    assert [p.reason for p in refused.value.problems] == [f"nested deeper than {MAX_DEPTH} levels"]
    assert elapsed < DEEP_FLOW_SECONDS


@pytest.mark.parametrize(
    ("model", "document", "path"),
    [
        # A name that is no cluster's reached the bucket as a key: 503 "InvalidKeyError".
        (ClusterNameRequest, {"name": ""}, "name"),
        (ClusterNameRequest, {"name": "a.b"}, "name"),
        (UnjoinRequest, {"name": "*"}, "name"),
        # Labels were stored on the Cluster unchecked.
        (RegisterRequest, {"name": "east", "labels": {"": "x"}}, "labels"),
        (RegisterRequest, {"name": "east", "labels": {"bad key": "x"}}, "labels"),
        (JoinRequest, {"name": "east", "kubeconfig": "x", "labels": {"a": "-x-"}}, "labels"),
    ],
)
def test_registry_requests_refuse_bad_names_and_labels_by_field(
    model: type[BaseModel], document: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidObjectError) as refused:
        parse(model, document, "request")
    assert [p.path for p in refused.value.problems] == [path]


@pytest.mark.parametrize("body", [b"", b"{", b'{"name": "a", "name": "b"}', b"[1]"])
def test_a_registry_request_that_is_not_an_object_names_its_field(body: bytes) -> None:
    """An Invalid answer without any field was not a clear error (found by schemathesis)."""
    with pytest.raises(InvalidObjectError) as refused:
        request_document(body, not_an_object="the request must be an object")
    assert [p.path for p in refused.value.problems] == [""]

"""Bugs the fuzz suite found, each kept by a test of its own."""

from __future__ import annotations

import time

import pytest

from foot.errors import InvalidObjectError
from foot.yamlsafe import MAX_DEPTH, load_documents

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

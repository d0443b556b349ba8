"""JSON pointer operations of overriders (`core.pointer`), after RFC 6902."""

from __future__ import annotations

import pytest

from foot_dispatcher.core.pointer import OverrideError, apply_operation


def test_json_patch_operations_follow_rfc_6902() -> None:
    doc = {"a": {"b": [1, 2]}}
    assert apply_operation(doc, "add", "/a/b/-", 3) == {"a": {"b": [1, 2, 3]}}
    assert apply_operation(doc, "add", "/a/b/0", 0) == {"a": {"b": [0, 1, 2]}}
    assert apply_operation(doc, "replace", "/a/b/1", 9) == {"a": {"b": [1, 9]}}
    assert apply_operation(doc, "remove", "/a/b", None) == {"a": {}}
    assert apply_operation(doc, "add", "/a/x~1y", 1)["a"]["x/y"] == 1
    assert doc == {"a": {"b": [1, 2]}}, "the input is never changed"
    with pytest.raises(OverrideError, match="/a/c does not exist, so it cannot be replaced"):
        apply_operation(doc, "replace", "/a/c", 1)
    with pytest.raises(OverrideError, match="/x does not exist"):
        apply_operation(doc, "add", "/x/y", 1)
    with pytest.raises(OverrideError, match="index 5 is out of range"):
        apply_operation(doc, "remove", "/a/b/5", None)

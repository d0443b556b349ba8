"""Sealing at rest: round trip, binding to the storage location, key file hygiene."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from foot.secrets import BOX_PREFIX, BoxKey, SecretBox, SecretKeyError, UnsealError, seal_to


def test_sealed_value_opens_only_at_its_own_location(tmp_path: Path) -> None:
    box = SecretBox.from_file(tmp_path / "key", create=True)
    sealed = box.seal(b"token-abc", context="cluster-credentials/east")
    assert b"token-abc" not in sealed
    assert box.open(sealed, context="cluster-credentials/east") == b"token-abc"
    with pytest.raises(UnsealError, match="cluster-credentials/west"):
        box.open(sealed, context="cluster-credentials/west")


def test_another_key_cannot_open(tmp_path: Path) -> None:
    sealed = SecretBox.from_file(tmp_path / "a", create=True).seal(b"x", context="c")
    with pytest.raises(UnsealError, match="wrong key or tampered"):
        SecretBox.from_file(tmp_path / "b", create=True).open(sealed, context="c")


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret.key"
    first = SecretBox.from_file(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    sealed = first.seal(b"x", context="c")
    assert SecretBox.from_file(path).open(sealed, context="c") == b"x"
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="readable by others"):
        SecretBox.from_file(path)


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="cannot read the sealing key file"):
        SecretBox.from_file(tmp_path / "absent")


def test_a_sealed_message_opens_only_with_its_key_and_context() -> None:
    receiver = BoxKey()
    sealed = seal_to(receiver.public_key, b"apiVersion: v1 token: abc", context="join/east")
    assert sealed.startswith(BOX_PREFIX)
    assert b"token: abc" not in base64.b64decode(sealed[len(BOX_PREFIX) :])
    assert receiver.open(sealed, context="join/east") == b"apiVersion: v1 token: abc"
    with pytest.raises(UnsealError, match="join/west"):
        receiver.open(sealed, context="join/west")
    with pytest.raises(UnsealError, match="does not open"):
        BoxKey().open(sealed, context="join/east")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(UnsealError, match="tampered"):
        receiver.open(tampered, context="join/east")
    with pytest.raises(UnsealError, match="not sealed"):
        receiver.open("plain text", context="join/east")


def test_a_box_key_derived_from_the_sealing_key_is_stable_per_purpose(tmp_path: Path) -> None:
    box = SecretBox.from_file(tmp_path / "key", create=True)
    again = SecretBox.from_file(tmp_path / "key")
    assert box.box_key("registry").public_key == again.box_key("registry").public_key
    assert box.box_key("registry").public_key != box.box_key("other").public_key
    sealed = seal_to(box.box_key("registry").public_key, b"x", context="c")
    assert again.box_key("registry").open(sealed, context="c") == b"x"
    assert "key hidden" in repr(box)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("AAAA", "starts with"),
        ("foot-x25519:not base64!", "base64"),
        ("foot-x25519:" + base64.b64encode(b"short").decode(), "32 bytes"),
    ],
)
def test_a_bad_public_key_says_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        seal_to(text, b"x", context="c")

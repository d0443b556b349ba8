"""Sealing at rest: round trip, binding to the storage location, key file hygiene."""

from __future__ import annotations

from pathlib import Path

import pytest

from foot.secrets import SecretBox, SecretKeyError, UnsealError


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

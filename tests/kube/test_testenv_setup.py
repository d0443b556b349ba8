"""The test environment's set-up rules: pinned versions, clear failures. No clusters needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from foot_testenv import binaries
from foot_testenv.binaries import find_go
from foot_testenv.fixtures import require_binaries
from foot_testenv.kube_binaries import (
    WRAPPER_MODULE_DIR,
    FootTestenvError,
    pinned_kubernetes_version,
)


def test_wrapper_module_replaces_every_staging_module_with_the_matching_release() -> None:
    go_mod = (WRAPPER_MODULE_DIR / "go.mod").read_text()
    version = pinned_kubernetes_version()
    staging_version = "v0." + version.removeprefix("v1.")

    replacements = dict(re.findall(r"^\s*(k8s\.io/\S+) => \1 (v\S+)\s*$", go_mod, re.MULTILINE))
    # Every k8s.io module the build resolves at the placeholder v0.0.0 must be replaced.
    placeholders = set(re.findall(r"^\s*(k8s\.io/\S+) v0\.0\.0\s*(?://.*)?$", go_mod, re.MULTILINE))

    assert re.fullmatch(r"v1\.36\.\d+", version)
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go"} <= replacements.keys()
    assert set(replacements.values()) == {staging_version}
    assert placeholders <= replacements.keys()
    assert (WRAPPER_MODULE_DIR / "go.sum").stat().st_size > 0


def test_missing_binaries_fail_the_test_with_the_setup_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    with pytest.raises(pytest.fail.Exception) as failure:
        require_binaries()

    assert "run `./dev setup` (or `foot-testenv ensure`) first" in str(failure.value)


def test_no_go_toolchain_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no fetched Go either
    monkeypatch.setattr(binaries, "GO_CANDIDATES", ())

    with pytest.raises(FootTestenvError, match=r"needs Go 1\.26\+, and no `go` was found"):
        find_go()


def test_an_old_go_toolchain_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old_go = tmp_path / "go"
    old_go.write_text("#!/bin/sh\necho go1.22.4\n")
    old_go.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(binaries, "GO_CANDIDATES", ())

    with pytest.raises(FootTestenvError, match=r"needs Go 1\.26\+; found only .*go1\.22"):
        find_go()


def test_a_machine_without_go_gets_one_from_the_module_proxy_checked_against_sumdb(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(binaries, "GO_CANDIDATES", ())
    with pytest.raises(FootTestenvError):
        find_go()
    messages: list[str] = []

    root = binaries.fetch_go_toolchain(messages.append)

    go, version = find_go()
    assert go == root / "bin" / "go"
    assert version == (1, 26)
    assert any("downloading golang.org/toolchain" in m for m in messages)
    assert (root / "pkg" / "tool").is_dir()
    # A second call finds it in the cache instead of downloading again.
    messages.clear()
    assert binaries.fetch_go_toolchain(messages.append) == root
    assert messages == []


def test_a_tampered_toolchain_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(binaries, "_toolchain_sum", lambda _proxy, _version: "h1:AAAA")
    with pytest.raises(FootTestenvError, match="does not match the checksum database"):
        binaries.fetch_go_toolchain(lambda _message: None)
    assert not binaries.fetched_go_dir().exists()

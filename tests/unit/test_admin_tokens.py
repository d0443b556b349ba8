"""Admin HTTP tokens in settings, `foot up`'s token files, and Secret redaction on reads."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from foot.runtime.settings import ServiceSettings, SettingsError
from foot.runtime.wire import REDACTED, redact_secrets
from foot_cli.up import ensure_token_files, write_token_file

ADMIN = "a" * 32
READ = "r" * 32


def token_file(directory: Path, name: str, token: str, mode: int = 0o600) -> Path:
    path = directory / name
    write_token_file(path, token)
    path.chmod(mode)
    return path


def test_token_files_are_read_and_never_shown(tmp_path: Path) -> None:
    settings = ServiceSettings(
        admin_token_file=token_file(tmp_path, "admin", ADMIN),
        read_token_file=token_file(tmp_path, "read", READ),
    )
    assert settings.admin_tokens.admin == ADMIN
    assert settings.admin_tokens.read == READ
    for shown in (repr(settings), str(settings), repr(settings.admin_tokens)):
        assert ADMIN not in shown
        assert READ not in shown
    # Services re-read their own settings model from the common one: the tokens stay.
    again = ServiceSettings(**settings.model_dump())
    assert again.admin_tokens == settings.admin_tokens


def test_no_token_configured_leaves_the_api_closed() -> None:
    tokens = ServiceSettings().admin_tokens
    assert tokens.admin is None
    assert tokens.read is None


def test_a_token_given_directly_still_works() -> None:
    assert ServiceSettings(admin_token=ADMIN).admin_tokens.admin == ADMIN  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"admin": (ADMIN, 0o644)}, "is open to other users (mode 644); chmod 600 it"),
        ({"admin": (ADMIN, 0o660)}, "is open to other users (mode 660)"),
        ({"admin": ("short", 0o600)}, "must hold at least 16 characters"),
        ({"read": (READ, 0o600)}, "a read token is given but no admin token"),
        ({"admin": (ADMIN, 0o600), "read": (ADMIN, 0o600)}, "must differ from the admin token"),
    ],
)
def test_bad_token_files_are_refused_before_anything_starts(
    tmp_path: Path, files: dict[str, tuple[str, int]], problem: str
) -> None:
    fields = {
        f"{role}_token_file": token_file(tmp_path, role, token, mode)
        for role, (token, mode) in files.items()
    }
    with pytest.raises(SettingsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        ServiceSettings.load(
            [f"--{field.replace('_', '-')}={path}" for field, path in fields.items()]
        )


def test_a_missing_token_file_and_a_token_twice_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="No such file or directory"):
        ServiceSettings.load([f"--admin-token-file={tmp_path / 'missing'}"])
    path = token_file(tmp_path, "admin", ADMIN)
    with pytest.raises(SettingsError, match="give admin_token or admin_token_file, not both"):
        ServiceSettings.load([f"--admin-token-file={path}", f"--admin-token={ADMIN}"])
    with pytest.raises(SettingsError, match="at least 16 characters"):
        ServiceSettings.load(["--admin-token=short"])


def test_token_files_are_found_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOOT_ADMIN_TOKEN_FILE", str(token_file(tmp_path, "admin", ADMIN)))
    assert ServiceSettings.load([]).admin_tokens.admin == ADMIN


def test_foot_up_makes_private_token_files_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    files = ensure_token_files(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    tokens = []
    for path in (files.admin, files.read):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        tokens.append(path.read_text().strip())
    assert len(set(tokens)) == 2
    assert all(len(token) >= 32 for token in tokens)
    again = ensure_token_files(home)  # kept across runs: scripts holding them keep working
    assert [again.admin.read_text().strip(), again.read.read_text().strip()] == tokens
    settings = ServiceSettings(admin_token_file=files.admin, read_token_file=files.read)
    assert settings.admin_tokens.admin == tokens[0]


def test_secret_values_are_redacted_wherever_a_secret_is() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "type": "Opaque",
        "data": {"password": "c2VjcmV0", "user": "YWRtaW4="},
        "stringData": {"plain": "secret"},
    }
    assert redact_secrets(secret) == secret | {
        "data": {"password": REDACTED, "user": REDACTED},
        "stringData": {"plain": REDACTED},
    }
    assert secret["data"] == {"password": "c2VjcmV0", "user": "YWRtaW4="}, "input untouched"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "public"}}
    work = {
        "apiVersion": "work.foot.dev/v1alpha1",
        "kind": "Work",
        "metadata": {"name": "w"},
        "spec": {"manifests": [config, secret]},
    }
    shown = redact_secrets(work)
    assert shown["spec"]["manifests"][0] == config
    assert shown["spec"]["manifests"][1]["data"] == {"password": REDACTED, "user": REDACTED}
    assert "c2VjcmV0" not in str(shown)
    assert redact_secrets({"kind": "Secret", "data": {"not": "a manifest"}}) == {
        "kind": "Secret",
        "data": {"not": "a manifest"},
    }

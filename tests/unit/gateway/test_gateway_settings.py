"""gateway-sync settings: URLs checked, the Admin API key from a file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from foot.errors import PermanentError
from foot.runtime.settings import SettingsError
from foot_gateway_sync.service import GatewaySyncSettings


def test_key_file_wins_and_the_key_is_never_in_the_repr(tmp_path: Path) -> None:
    key_file = tmp_path / "apisix.key"
    key_file.write_text("from-the-file-0123\n")
    settings = GatewaySyncSettings.load(
        ["--apisix-admin-key-file", str(key_file), "--apisix-admin-key", "from-the-flag-0123"]
    )
    assert settings.admin_key() == "from-the-file-0123"
    assert "from-the-flag-0123" not in repr(settings)


def test_missing_key_and_unreadable_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no APISIX Admin API key"):
        GatewaySyncSettings.load([]).admin_key()
    settings = GatewaySyncSettings.load(["--apisix-admin-key-file", str(tmp_path / "absent")])
    with pytest.raises(PermanentError, match="apisix_admin_key_file"):
        settings.admin_key()


def test_instances_are_http_urls_listed_once() -> None:
    key = ["--apisix-admin-key", "a-key-of-16-chars"]
    settings = GatewaySyncSettings.load(
        ["--apisix-urls", '["http://a:9180","https://b:9180"]', "--resync-seconds", "5", *key]
    )
    assert settings.apisix_urls == ["http://a:9180", "https://b:9180"]
    for bad in ('["ftp://a"]', '["http://a","http://a"]'):
        with pytest.raises(SettingsError) as caught:
            GatewaySyncSettings.load(["--apisix-urls", bad, *key])
        assert "apisix_urls" in str(caught.value)


def test_no_instance_needs_no_key_but_an_instance_does() -> None:
    assert GatewaySyncSettings.load([]).apisix_urls == []  # a bare `foot up` drives no APISIX
    with pytest.raises(SettingsError, match="apisix_urls is set but no Admin API key"):
        GatewaySyncSettings.load(["--apisix-urls", '["http://a:9180"]'])
    with pytest.raises(SettingsError, match="resync_seconds"):
        GatewaySyncSettings.load(["--resync-seconds", "0"])

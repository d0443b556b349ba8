"""Where the CLI looks for FOOT: --nats-url > FOOT_NATS_URL > the home's state > default."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from foot_cli.connection import DEFAULT_NATS_URL, nats_target


def options(home: Path | None = None, nats_url: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(home=str(home) if home else None, nats_url=nats_url)


@pytest.fixture(autouse=True)
def no_foot_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FOOT_NATS_URL", "FOOT_NATS_CREDENTIALS_FILE", "FOOT_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_without_anything_it_is_the_default_and_says_where_it_looked(tmp_path: Path) -> None:
    target = nats_target(options(tmp_path))
    assert (target.url, target.source, target.home) == (DEFAULT_NATS_URL, "default", tmp_path)
    assert target.credentials is None
    assert "started with --home?" in target.hint()
    assert str(tmp_path) in target.hint()


def test_each_source_wins_over_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "up.json").write_bytes(orjson.dumps({"nats_url": "nats://state:1"}))
    assert nats_target(options(tmp_path)).url == "nats://state:1"
    monkeypatch.setenv("FOOT_NATS_URL", "nats://env:2")
    assert nats_target(options(tmp_path)).url == "nats://env:2"
    assert nats_target(options(tmp_path, "nats://flag:3")).url == "nats://flag:3"


def test_foot_home_is_the_home_without_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "up.json").write_bytes(orjson.dumps({"nats_url": "nats://state:1"}))
    monkeypatch.setenv("FOOT_HOME", str(tmp_path))
    target = nats_target(options())
    assert (target.url, target.source, target.home) == ("nats://state:1", "state", tmp_path)
    assert nats_target(options(tmp_path / "other")).source == "default"


def test_the_cli_user_of_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "nats-auth" / "cli.creds"
    creds.parent.mkdir()
    creds.write_text("creds")
    assert nats_target(options(tmp_path)).credentials == creds
    monkeypatch.setenv("FOOT_NATS_CREDENTIALS_FILE", "/elsewhere.creds")
    assert nats_target(options(tmp_path)).credentials == Path("/elsewhere.creds")

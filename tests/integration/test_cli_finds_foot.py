"""How the `foot` CLI finds FOOT, and what it says when nothing is there (issue 21, finding 1).

Every command that talks to FOOT takes `--home` (the state file `foot up --home X` writes
names the NATS URL, the home holds the CLI's NATS user), and with no FOOT at the URL it
finds it exits non-zero within its `--timeout` with one line naming the URL: no retry
loop, no traceback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from nats.aio.msg import Msg

from foot.bus import Bus
from foot.catalog import API_APPLY
from foot.natsauth import CLI_IDENTITY, service_creds_path
from foot.runtime.settings import default_home
from foot_cli.natsserver import EmbeddedNats

START_ALLOWANCE_SECONDS = 30.0
"""The interpreter's start-up on a loaded machine, on top of --timeout (the bug this guards
against never ended at all)."""
GIVE_UP_SECONDS = 90.0


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"nats://127.0.0.1:{port}"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback URL that accepts connections and never says a word (no NATS INFO)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"nats://127.0.0.1:{listener.getsockname()[1]}"


def cli_environment(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: none of FOOT's variables unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOT_")}
    env.update(COLUMNS="200", OTEL_TRACES_EXPORTER="none", **extra)
    return env


async def foot(*args: str, env: dict[str, str]) -> tuple[int, str, str, float]:
    """The CLI as a user runs it: exit code, stdout, stderr and the wall time it took."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "foot_cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with asyncio.timeout(GIVE_UP_SECONDS):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.communicate()
        pytest.fail(f"foot {' '.join(args)} still ran after {GIVE_UP_SECONDS}s")
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode(), time.monotonic() - started


def make_home(folder: Path, nats_url: str | None) -> Path:
    """A home as `foot up` leaves it while running: its state file (when `nats_url`) and the
    CLI's NATS user."""
    folder.mkdir(mode=0o700)
    creds = service_creds_path(folder, CLI_IDENTITY)
    creds.parent.mkdir(mode=0o700)
    shutil.copy(service_creds_path(default_home(), CLI_IDENTITY), creds)
    if nats_url is not None:
        state = {"nats_url": nats_url, "services": {}}
        (folder / "up.json").write_bytes(orjson.dumps(state))
    return folder


COMMANDS = {
    "get": ["get", "clusters"],
    "get-namespaced": ["get", "deployments", "-n", "shop"],
    "apply": ["apply", "-f", "{app}"],
    "delete": ["delete", "configmap", "settings", "-n", "shop"],
    "describe": ["describe", "deploy/web", "-n", "shop"],
    "cluster-list": ["cluster", "list"],
    "cluster-describe": ["cluster", "describe", "east"],
    "cluster-join": ["cluster", "join", "east", "--kubeconfig", "{kubeconfig}"],
    "cluster-unjoin": ["cluster", "unjoin", "east"],
    "cluster-register": ["cluster", "register", "east"],
}


def command_line(name: str, tmp_path: Path) -> list[str]:
    app = tmp_path / "app.yaml"
    app.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    paths = {"{app}": str(app), "{kubeconfig}": str(kubeconfig)}
    return [paths.get(word, word) for word in COMMANDS[name]]


def assert_one_line_naming(stderr: str, url: str, reason: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith(f"foot: no FOOT at {url} ({reason})"), lines[0]


@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_no_foot_at_the_home_s_url_is_one_line_within_the_timeout(
    command: str, tmp_path: Path
) -> None:
    url = closed_port_url()
    home = make_home(tmp_path / "home", url)  # a `foot up` that died without cleaning up
    args = [*command_line(command, tmp_path), "--home", str(home), "--timeout", "2"]
    code, stdout, stderr, took = await foot(*args, env=cli_environment())
    assert code == 1, (stdout, stderr)
    assert stdout == ""
    assert_one_line_naming(stderr, url, "connection refused")
    assert str(home / "up.json") in stderr  # where the URL came from
    assert took < 2 + START_ALLOWANCE_SECONDS


async def test_no_foot_and_no_home_says_so(tmp_path: Path) -> None:
    url = closed_port_url()
    home = tmp_path / "never-started"
    code, _, stderr, _ = await foot(
        "get", "clusters", "--home", str(home), env=cli_environment(FOOT_NATS_URL=url)
    )
    assert code == 1
    assert_one_line_naming(stderr, url, "connection refused")
    assert "FOOT_NATS_URL" in stderr


async def test_a_server_that_never_answers_ends_at_the_timeout(
    silent_server: str, tmp_path: Path
) -> None:
    """Connecting counts against --timeout: a NATS that never answers is given up on then."""
    for timeout in ("1", "3"):
        code, stdout, stderr, took = await foot(
            "get", "clusters", "--nats-url", silent_server, "--timeout", timeout,
            env=cli_environment(FOOT_HOME=str(tmp_path / "home")),
        )  # fmt: skip
        assert code == 1, (stdout, stderr)
        assert_one_line_naming(stderr, silent_server, f"no answer within {timeout}s")
        assert float(timeout) <= took < float(timeout) + START_ALLOWANCE_SECONDS


@pytest.fixture
def foot_nats(nats_server: EmbeddedNats, bus: Bus) -> str:
    """A NATS with FOOT's buckets declared (no services: `get clusters` reads a bucket)."""
    return nats_server.url


async def test_home_finds_the_stack_its_foot_up_recorded(foot_nats: str, tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", foot_nats)
    env = cli_environment()
    code, stdout, stderr, _ = await foot("get", "clusters", "--home", str(home), env=env)
    assert (code, stdout, stderr.strip()) == (0, "", "no clusters found")
    # FOOT_HOME does the same, for every command.
    code, _, stderr, _ = await foot("cluster", "list", env=cli_environment(FOOT_HOME=str(home)))
    assert (code, stderr.strip()) == (0, "no clusters found")


async def test_the_url_s_precedence(foot_nats: str, tmp_path: Path) -> None:
    """--nats-url > FOOT_NATS_URL > the home's state file > the default."""
    dead = closed_port_url()
    good_home = make_home(tmp_path / "good", foot_nats)
    dead_home = make_home(tmp_path / "dead", dead)
    cases = [
        (["--home", str(dead_home), "--nats-url", foot_nats], {}, True),
        (["--home", str(dead_home)], {"FOOT_NATS_URL": foot_nats}, True),
        (["--home", str(good_home), "--nats-url", dead], {}, False),
        (["--home", str(good_home)], {"FOOT_NATS_URL": dead}, False),
        # --home wins over FOOT_HOME
        (["--home", str(good_home)], {"FOOT_HOME": str(dead_home)}, True),
        (["--home", str(dead_home)], {"FOOT_HOME": str(good_home)}, False),
    ]
    for options, variables, reaches in cases:
        code, _, stderr, _ = await foot(
            "get", "clusters", *options, "--timeout", "3", env=cli_environment(**variables)
        )
        assert (code == 0) is reaches, (options, variables, stderr)
        if not reaches:
            assert_one_line_naming(stderr, dead, "connection refused")


async def test_a_foot_that_never_answers_ends_at_the_timeout(
    nats_server: EmbeddedNats, bus: Bus, tmp_path: Path
) -> None:
    """Connected, then the request is never answered: --timeout ends the command, in one
    line, counted from the connection."""
    await bus.client.subscribe(API_APPLY, cb=never_answer)
    await bus.flush()
    home = make_home(tmp_path / "home", nats_server.url)
    args = [*command_line("apply", tmp_path), "--home", str(home), "--timeout", "2"]
    code, stdout, stderr, took = await foot(*args, env=cli_environment())
    assert code == 1, (stdout, stderr)
    assert stderr.strip().splitlines() == [
        f"foot: FOOT at {nats_server.url} did not finish within 2s (--timeout 2)"
    ]
    assert 2 <= took < 2 + START_ALLOWANCE_SECONDS


async def never_answer(_msg: Msg) -> None:
    """A responder that takes requests and answers none."""

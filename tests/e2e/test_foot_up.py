"""`foot up` as a user runs it (Foundation acceptance 1).

Starts the real command as a subprocess in its own session (as a terminal
would), checks every service's /healthz within 10 s, then Ctrl-C (SIGINT to
the process group) must stop everything within 5 s, leaving no process behind.
On the way: the admin API is closed to anyone without the tokens `foot up`
made (files of mode 600 in a home of mode 700, never printed), and the CLI
finds the read token itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes_asyncio import client, config

START_BUDGET_SECONDS = 10.0
STOP_BUDGET_SECONDS = 5.0
SERVICES = {"registry", "scheduler", "dispatcher", "gateway-sync", "storage"}


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
            return int(response.status)
    except OSError:
        return 0


@pytest.fixture(params=[0, 2], ids=["no-sim", "sim-2"])
def foot_up(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    home = tmp_path / "foot-home"
    env = dict(os.environ, FOOT_HOME=str(home))
    argv = [sys.executable, "-m", "foot_cli.main", "up", "--nats-port", "0"]
    argv += ["--sim", str(request.param)]
    with (tmp_path / "up.out").open("wb") as output:
        process = subprocess.Popen(
            [*argv, "--admin-port-base", "0"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, home
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def admin_status(url: str, token: str | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")  # noqa: S310
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def check_admin_security(home: Path, state: dict[str, Any], output: Path) -> None:
    """Token files private and unprinted; the API closed without them; Secrets redacted."""
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    tokens = {}
    for role in ("admin", "read"):
        path = Path(state[f"{role}_token_file"])
        assert path.parent == home
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        tokens[role] = path.read_text().strip()
    printed = output.read_text()
    assert f"admin token file: {state['admin_token_file']}" in printed  # where, not what
    assert all(token not in printed for token in tokens.values())
    scheduler = state["services"]["scheduler"]["admin_url"]
    assert admin_status(f"{scheduler}/admin/objects") == 401
    assert admin_status(f"{scheduler}/admin/objects", tokens["read"]) == 200
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "stringData": {"password": "e2e-password-value"},
    }
    body = orjson.dumps(secret)
    assert admin_status(f"{scheduler}/api/apply", tokens["read"], body) == 403
    assert admin_status(f"{scheduler}/api/apply", tokens["admin"], body) == 200
    shown = subprocess.run(
        [sys.executable, "-m", "foot_cli.main", "get", "secrets", "db", "-o", "yaml"],
        env=dict(os.environ, FOOT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "password: <redacted>" in shown.stdout
    assert "e2e-password-value" not in shown.stdout


async def namespaces_seen_through(kubeconfig: Path) -> set[str]:
    """What a real kubernetes-asyncio client lists through a simulated cluster's kubeconfig."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        listed = await client.CoreV1Api(api).list_namespace()
    return {item.metadata.name for item in listed.items}


def test_foot_up_serves_health_and_stops_cleanly_on_ctrl_c(
    foot_up: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, home = foot_up
    started = time.monotonic()
    state_file = home / "up.json"
    while not state_file.exists():
        assert process.poll() is None, "foot up exited during start-up"
        assert time.monotonic() - started < START_BUDGET_SECONDS, "foot up did not come up"
        time.sleep(0.05)
    state = orjson.loads(state_file.read_bytes())
    assert set(state["services"]) == SERVICES
    for name, service in state["services"].items():
        while healthz(service["admin_url"]) != 200:
            assert time.monotonic() - started < START_BUDGET_SECONDS, f"{name} /healthz not 200"
            time.sleep(0.05)
    came_up = time.monotonic() - started
    assert came_up < START_BUDGET_SECONDS

    children = [s["pid"] for s in state["services"].values()] + [state["nats_pid"]]
    children += list(state["extra_pids"].values())
    assert all(alive(pid) for pid in children)
    for kubeconfig in state["kubeconfigs"]:
        assert asyncio.run(namespaces_seen_through(Path(kubeconfig))) >= {"default"}
    check_admin_security(home, state, home.parent / "up.out")

    ctrl_c = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    exit_code = process.wait(timeout=STOP_BUDGET_SECONDS + 5)
    stopped_in = time.monotonic() - ctrl_c
    assert exit_code == 0
    assert stopped_in < STOP_BUDGET_SECONDS, f"took {stopped_in:.1f}s to stop"
    assert [pid for pid in children if alive(pid)] == [], "processes left behind"
    assert not state_file.exists(), "the state file is removed on stop"

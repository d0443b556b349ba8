"""`foot up` as a user runs it (Foundation acceptance 1).

Starts the real command as a subprocess in its own session (as a terminal
would), checks every service's /healthz within 10 s, then Ctrl-C (SIGINT to
the process group) must stop everything within 5 s, leaving no process behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

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

    ctrl_c = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    exit_code = process.wait(timeout=STOP_BUDGET_SECONDS + 5)
    stopped_in = time.monotonic() - ctrl_c
    assert exit_code == 0
    assert stopped_in < STOP_BUDGET_SECONDS, f"took {stopped_in:.1f}s to stop"
    assert [pid for pid in children if alive(pid)] == [], "processes left behind"
    assert not state_file.exists(), "the state file is removed on stop"

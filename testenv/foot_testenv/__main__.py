"""foot-testenv: prepare and run real member clusters for FOOT tests.

foot-testenv ensure          install etcd and build kube-apiserver/-controller-manager once
foot-testenv path            print the folder holding the built binaries
foot-testenv up N [--with-controller-manager] [--workdir DIR]
                             start N clusters, print their kubeconfigs, run until Ctrl-C
foot-testenv down            stop the clusters of every running `foot-testenv up`
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from foot_testenv.binaries import ensure
from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import (
    FootTestenvError,
    cache_root,
    cached_bin_dir,
    find_binaries,
    pinned_kubernetes_version,
)

# `up` records itself here so that `down` (in another terminal) can find it.
UP_STATE_DIR_NAME = "up"
DOWN_WAIT_SECONDS = 60.0


def say(message: str) -> None:
    sys.stdout.write(f"[testenv] {message}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="foot-testenv", description="Real member clusters (etcd + kube-apiserver) for tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure", help="install etcd and build the Kubernetes binaries if needed")
    commands.add_parser("path", help="print the folder holding the built binaries")
    up = commands.add_parser("up", help="start N clusters and keep them running until Ctrl-C")
    up.add_argument("count", type=int, help="number of clusters")
    up.add_argument(
        "--with-controller-manager",
        action="store_true",
        help="also run kube-controller-manager in each cluster",
    )
    up.add_argument(
        "--workdir", type=Path, help="folder for the clusters' files (default: a temporary one)"
    )
    commands.add_parser("down", help="stop the clusters of every running `foot-testenv up`")
    arguments = parser.parse_args(argv)

    try:
        if arguments.command == "ensure":
            command_ensure()
        elif arguments.command == "path":
            command_path()
        elif arguments.command == "up":
            command_up(arguments.count, arguments.with_controller_manager, arguments.workdir)
        else:
            command_down()
    except FootTestenvError as error:
        sys.stderr.write(f"foot-testenv: {error}\n")
        sys.exit(1)


def command_ensure() -> None:
    # SIGTERM (CI cancelling a job) unwinds like Ctrl-C: the build is stopped and its
    # temporary folder removed instead of being left for the next run to clean.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    started = time.monotonic()
    binaries = ensure(say)
    say(
        f"ready in {time.monotonic() - started:.1f} s: kube-apiserver {binaries.version} in "
        f"{binaries.kube_apiserver.parent}, etcd {binaries.etcd}"
    )


def command_path() -> None:
    bin_dir = cached_bin_dir(pinned_kubernetes_version())
    sys.stdout.write(f"{bin_dir}\n")
    if not (bin_dir / "kube-apiserver").is_file():
        sys.stderr.write("foot-testenv: not built yet: run `foot-testenv ensure`\n")
        sys.exit(1)


def command_up(count: int, with_controller_manager: bool, workdir: Path | None) -> None:
    if count < 1:
        raise FootTestenvError("the number of clusters must be at least 1")
    binaries = find_binaries()
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    state_file = _up_state_dir() / f"{os.getpid()}.json"
    say(f"starting {count} cluster(s) with kube-apiserver {binaries.version}")
    started = time.monotonic()
    with KubeClusters.start_blocking(
        count,
        workdir=workdir,
        with_controller_manager=with_controller_manager,
        binaries=binaries,
    ) as clusters:
        say(f"{count} cluster(s) ready in {time.monotonic() - started:.1f} s")
        for cluster in clusters:
            say(f"{cluster.name}: {cluster.server}  KUBECONFIG={cluster.kubeconfig_path}")
        say(f"logs under {clusters.workdir}; Ctrl-C or `foot-testenv down` stops them")
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "workdir": str(clusters.workdir),
                    "kubeconfigs": [str(cluster.kubeconfig_path) for cluster in clusters],
                }
            )
        )
        try:
            stop_requested.wait()
            say("stopping")
        finally:
            state_file.unlink(missing_ok=True)
    say("stopped")


def command_down() -> None:
    state_dir = _up_state_dir()
    state_files = sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []
    if not state_files:
        say("no `foot-testenv up` is running")
        return
    for state_file in state_files:
        pid = int(json.loads(state_file.read_text())["pid"])
        if not _is_foot_testenv_up(pid):
            # Left behind by an `up` that was killed; its clusters died with it.
            state_file.unlink(missing_ok=True)
            continue
        say(f"stopping `foot-testenv up` (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_WAIT_SECONDS
        while _is_foot_testenv_up(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_foot_testenv_up(pid):
            raise FootTestenvError(f"`foot-testenv up` (pid {pid}) did not stop within 60 s")
        say(f"stopped pid {pid}")


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _up_state_dir() -> Path:
    return cache_root() / UP_STATE_DIR_NAME


def _is_foot_testenv_up(pid: int) -> bool:
    """Whether pid is still a `foot-testenv up` (not a reused PID of something else)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"foot-testenv" in part or b"foot_testenv" in part for part in command_line) and (
        b"up" in command_line
    )


if __name__ == "__main__":
    main()

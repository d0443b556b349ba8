"""The programs one test member cluster runs, and where a build left them.

Below both `foot_testenv.clusters` (which runs them) and `foot_testenv.binaries` (which
installs and builds them, then starts a cluster to check a fresh build): clusters need not
import binaries, so binaries may import clusters without a circle. Built binaries are
cached by version under ``${XDG_CACHE_HOME:-~/.cache}/foot/kube/<version>/bin``; etcd
comes from Debian.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ETCD_PATH = Path("/usr/bin/etcd")
WRAPPER_MODULE_DIR = Path(__file__).resolve().parent.parent / "kube"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager")
SETUP_HINT = "run `./dev setup` (or `foot-testenv ensure`) first"


class FootTestenvError(RuntimeError):
    """The test environment cannot be prepared; the message says why and what to do."""


class BinariesMissingError(FootTestenvError):
    """The cluster binaries are not installed or built on this machine yet."""


@dataclass(frozen=True)
class KubeBinaries:
    """Paths of the programs that make up one test member cluster."""

    version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    etcd: Path


def pinned_kubernetes_version(wrapper_dir: Path = WRAPPER_MODULE_DIR) -> str:
    """The k8s.io/kubernetes version the wrapper module's go.mod requires."""
    go_mod = wrapper_dir / "go.mod"
    try:
        text = go_mod.read_text()
    except FileNotFoundError:
        raise FootTestenvError(
            f"{go_mod} is missing: foot-testenv must run from a FOOT source checkout "
            "(installed editable by ./dev)"
        ) from None
    # Either `require k8s.io/kubernetes vX.Y.Z` or a line of a `require (...)` block.
    match = re.search(
        r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\d+\.\d+\.\d+)\s*(?://.*)?$",
        text,
        re.MULTILINE,
    )
    if match is None:
        raise FootTestenvError(f"{go_mod} has no `require k8s.io/kubernetes vX.Y.Z` line")
    return match.group(1)


def cache_root() -> Path:
    """Folder holding one subfolder of built binaries per Kubernetes version."""
    xdg_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg_cache) / "foot" / "kube"


def cached_bin_dir(version: str) -> Path:
    return cache_root() / version / "bin"


def find_binaries() -> KubeBinaries:
    """The installed binaries, or BinariesMissingError naming what is missing."""
    version = pinned_kubernetes_version()
    bin_dir = cached_bin_dir(version)
    missing = [name for name in KUBE_COMMANDS if not is_executable(bin_dir / name)]
    if missing:
        raise BinariesMissingError(
            f"{', '.join(missing)} {version} not built in {bin_dir}: {SETUP_HINT}"
        )
    if not is_executable(ETCD_PATH):
        raise BinariesMissingError(f"{ETCD_PATH} is missing: {SETUP_HINT}")
    return KubeBinaries(
        version=version,
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        etcd=ETCD_PATH,
    )


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)

"""Installing and building the binaries behind the test member clusters (where they are
found: `foot_testenv.kube_binaries`).

kube-apiserver and kube-controller-manager are built from the Go module
``k8s.io/kubernetes`` through the wrapper module in ``testenv/kube`` and cached
by version under ``${XDG_CACHE_HOME:-~/.cache}/foot/kube/<version>/bin``; etcd
comes from Debian's ``etcd-server`` package.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from foot_cli.processes import spawn
from foot_testenv.clusters import KubeClusters
from foot_testenv.kube_binaries import (
    ETCD_PATH,
    KUBE_COMMANDS,
    WRAPPER_MODULE_DIR,
    FootTestenvError,
    KubeBinaries,
    cache_root,
    cached_bin_dir,
    find_binaries,
    is_executable,
    pinned_kubernetes_version,
)

ETCD_DEBIAN_PACKAGE = "etcd-server"
MINIMUM_GO = (1, 26)
# /usr/local/go is where the official Go tarball installs; PATH may not include it.
GO_CANDIDATES = ("/usr/local/go/bin/go",)
FETCHED_GO = "1.26.8"
"""Go release fetched when the machine has no Go 1.26+ (as a module: golang.org/toolchain)."""
GO_PROXY = "https://proxy.golang.org"
BUILD_HEARTBEAT_SECONDS = 60.0

Reporter = Callable[[str], None]


def ensure(report: Reporter) -> KubeBinaries:
    """Install etcd and Ceph, and build the Kubernetes binaries, unless already there."""
    _ensure_etcd(report)
    _ensure_ceph(report)
    version = pinned_kubernetes_version()
    bin_dir = cached_bin_dir(version)
    if not all(is_executable(bin_dir / name) for name in KUBE_COMMANDS):
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        # Two `ensure` runs at once (two terminals, CI steps) must not both build.
        with _exclusive_lock(root / ".build.lock"):
            if not all(is_executable(bin_dir / name) for name in KUBE_COMMANDS):
                _build(version, report)
    return find_binaries()


def _ensure_etcd(report: Reporter) -> None:
    if is_executable(ETCD_PATH):
        return
    install_debian_packages([ETCD_DEBIAN_PACKAGE], why=f"{ETCD_PATH} is missing", report=report)
    # The package also ships a systemd unit; a test machine must not run a shared etcd.
    if shutil.which("systemctl") is not None:
        subprocess.run(["systemctl", "disable", "--now", "etcd"], capture_output=True, check=False)
    if not is_executable(ETCD_PATH):
        raise FootTestenvError(f"{ETCD_DEBIAN_PACKAGE} installed but {ETCD_PATH} is still missing")


def _ensure_ceph(report: Reporter) -> None:
    """The Ceph daemons behind the storage tests (a real single-machine Ceph)."""
    from foot_testenv.ceph import DEBIAN_PACKAGES, missing_commands

    missing = missing_commands()
    if not missing and Path("/usr/share/ceph/mgr/dashboard").is_dir():
        return
    why = f"Ceph for the storage tests ({', '.join(missing) or 'the mgr dashboard'} missing)"
    install_debian_packages(DEBIAN_PACKAGES.split(), why=why, report=report)


def install_debian_packages(packages: list[str], *, why: str, report: Reporter) -> None:
    """apt-get install `packages` (no recommends), or say exactly what to run."""
    listing = " ".join(packages)
    if os.geteuid() != 0:
        raise FootTestenvError(
            f"{why}; installing it needs root: run `sudo apt-get install -y "
            f"--no-install-recommends {listing}`, then `foot-testenv ensure` again"
        )
    if shutil.which("apt-get") is None:
        raise FootTestenvError(f"{why}, and apt-get is not available: install {listing}")
    report(f"installing {listing} with apt-get ({why})")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
    ):
        completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise FootTestenvError(
                f"`{' '.join(argv)}` failed with exit code {completed.returncode}:\n"
                + _tail(completed.stdout + completed.stderr)
            )
    report(f"installed {listing} in {time.monotonic() - started:.1f} s")


def find_go() -> tuple[Path, tuple[int, int]]:
    """A Go toolchain new enough to build the pinned Kubernetes, and its version."""
    candidates: list[str] = []
    on_path = shutil.which("go")
    if on_path is not None:
        candidates.append(on_path)
    candidates += [c for c in GO_CANDIDATES if c not in candidates]
    candidates.append(str(fetched_go_dir() / "bin" / "go"))
    found: list[str] = []
    for candidate in candidates:
        if not is_executable(Path(candidate)):
            continue
        version = _go_version(Path(candidate))
        if version is None:
            continue
        found.append(f"{candidate} (go{version[0]}.{version[1]})")
        if version >= MINIMUM_GO:
            return Path(candidate), version
    wanted = f"Go {MINIMUM_GO[0]}.{MINIMUM_GO[1]}+"
    if found:
        raise FootTestenvError(
            f"building kube-apiserver needs {wanted}; found only {', '.join(found)}: "
            "install a newer Go from https://go.dev/dl/ into /usr/local/go"
        )
    raise FootTestenvError(
        f"building kube-apiserver needs {wanted}, and no `go` was found on PATH or in "
        "/usr/local/go/bin: install it from https://go.dev/dl/"
    )


def _go_version(go: Path) -> tuple[int, int] | None:
    completed = subprocess.run(
        [str(go), "env", "GOVERSION"], capture_output=True, text=True, check=False
    )
    match = re.match(r"go(\d+)\.(\d+)", completed.stdout.strip())
    if completed.returncode != 0 or match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _build_env(go: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # Static binaries, as the Kubernetes release builds them.
            "CGO_ENABLED": "0",
            # go.sum is committed; a build must never rewrite go.mod or go.sum, and the
            # wrapper's VCS state is irrelevant to the binaries.
            "GOFLAGS": "-mod=readonly -buildvcs=false",
            # Use the Go found here rather than silently downloading another toolchain.
            "GOTOOLCHAIN": "local",
        }
    )
    env.pop("GOEXPERIMENT", None)
    # The jsonv2 experiment (default from Go 1.27) makes kube-apiserver serve malformed
    # /openapi/v2; turn it off whenever this Go knows the experiment.
    probe = subprocess.run(
        [str(go), "env", "GOEXPERIMENT"],
        env={**env, "GOEXPERIMENT": "nojsonv2"},
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        env["GOEXPERIMENT"] = "nojsonv2"
    return env


def _version_ldflags(version: str) -> str:
    """Linker flags stamping the release into the binaries, as the Kubernetes build does."""
    major, minor = version.removeprefix("v").split(".")[:2]
    build_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    package = "k8s.io/component-base/version"
    stamps = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    return " ".join(["-s", "-w", *(f"-X {package}.{key}={value}" for key, value in stamps.items())])


def _build(version: str, report: Reporter) -> None:
    try:
        go, go_version = find_go()
    except FootTestenvError as missing:
        report(f"{missing}; fetching Go {FETCHED_GO} from the Go module proxy instead")
        fetch_go_toolchain(report)
        go, go_version = find_go()
    root = cache_root()
    # Leftovers of interrupted builds; safe to remove because the build lock is held.
    for stale in root.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{version}-", dir=root))
    try:
        report(
            f"building {' and '.join(KUBE_COMMANDS)} {version} with go{go_version[0]}."
            f"{go_version[1]} (first time on this machine, ~5-10 min)"
        )
        started = time.monotonic()
        _go_build(go, version, staging / "bin", staging / "build.log", report)
        build_seconds = time.monotonic() - started
        report(f"built {version} in {build_seconds:.0f} s; checking that it serves valid OpenAPI")
        _check_built_binaries(staging / "bin", version)
        (staging / "build-info.json").write_text(
            json.dumps(
                {
                    "kubernetes_version": version,
                    "go": f"{go_version[0]}.{go_version[1]}",
                    "build_seconds": round(build_seconds, 1),
                },
                indent=2,
            )
        )
        target = root / version
        staging.chmod(0o755)  # mkdtemp makes it private; the binaries are not secrets
        # A half-built version folder (created by hand, say) would shadow the new build.
        if target.exists():
            shutil.rmtree(target)
        # One rename publishes the build: an interrupted build never leaves a broken cache.
        staging.rename(target)
        report(f"cached in {target / 'bin'}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _go_build(go: Path, version: str, out_dir: Path, log_path: Path, report: Reporter) -> None:
    out_dir.mkdir(parents=True)
    argv = [
        str(go),
        "build",
        "-ldflags",
        _version_ldflags(version),
        "-o",
        f"{out_dir}{os.sep}",
        *(f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS),
    ]
    started = time.monotonic()
    # Tied to this process: a killed `ensure` must not leave a compiler running.
    process = spawn(
        argv,
        env=_build_env(go),
        log_path=log_path,
        cwd=WRAPPER_MODULE_DIR,
        new_session=True,
        death_signal=signal.SIGKILL,
    )
    try:
        while True:
            try:
                process.wait(timeout=BUILD_HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                report(f"still building ({(time.monotonic() - started) / 60:.0f} min so far)")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise FootTestenvError(
            f"`go build` of {version} failed with exit code {process.returncode}:\n"
            + _tail(log_path.read_text())
        )


def _check_built_binaries(bin_dir: Path, version: str) -> None:
    """Reject a build that does not report its version or serves unparsable /openapi/v2."""
    for name in KUBE_COMMANDS:
        completed = subprocess.run(
            [str(bin_dir / name), "--version"], capture_output=True, text=True, check=False
        )
        if completed.returncode != 0 or version not in completed.stdout:
            raise FootTestenvError(
                f"the freshly built {name} does not report {version}: "
                f"{(completed.stdout + completed.stderr).strip()[:500]}"
            )
    binaries = KubeBinaries(
        version=version,
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        etcd=ETCD_PATH,
    )
    with KubeClusters.start_blocking(count=1, binaries=binaries) as clusters:
        try:
            document = clusters[0].get_json_blocking("/openapi/v2")
        except ValueError as error:
            raise FootTestenvError(
                f"the freshly built kube-apiserver serves malformed /openapi/v2 ({error}); "
                "was it built with the jsonv2 Go experiment on?"
            ) from None
    if (
        not isinstance(document, dict)
        or document.get("swagger") != "2.0"
        or not document.get("paths")
    ):
        raise FootTestenvError("the freshly built kube-apiserver serves an unusable /openapi/v2")


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---- a Go toolchain for machines without one ------------------------------------------------


def fetched_go_dir() -> Path:
    return cache_root().parent / "go" / f"go{FETCHED_GO}"


def fetch_go_toolchain(report: Reporter) -> Path:
    """Download Go as the module golang.org/toolchain (what `GOTOOLCHAIN` itself does), check
    it against the Go checksum database, and unpack it into the cache; its root folder."""
    target = fetched_go_dir()
    if is_executable(target / "bin" / "go"):
        return target
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    module_version = f"v0.0.1-go{FETCHED_GO}.linux-{arch}"
    proxy = os.environ.get("GOPROXY", GO_PROXY).split(",")[0].rstrip("/")
    if not proxy.startswith("https://"):
        proxy = GO_PROXY
    expected = _toolchain_sum(proxy, module_version)
    report(f"downloading golang.org/toolchain@{module_version} (about 70 MB)")
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".go-", dir=target.parent))
    try:
        archive = staging / "toolchain.zip"
        url = f"{proxy}/golang.org/toolchain/@v/{module_version}.zip"
        with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:  # noqa: S310 - https only
            shutil.copyfileobj(response, out, length=1 << 20)
        actual = _dirhash_h1(archive)
        if actual != expected:
            raise FootTestenvError(
                f"golang.org/toolchain@{module_version} does not match the checksum database "
                f"({actual} != {expected}); refusing to use it"
            )
        prefix = f"golang.org/toolchain@{module_version}/"
        unpacked = staging / "go"
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                if not member.filename.startswith(prefix) or member.is_dir():
                    continue
                relative = Path(member.filename.removeprefix(prefix))
                if relative.is_absolute() or ".." in relative.parts:
                    raise FootTestenvError(f"unsafe path in the Go toolchain: {member.filename}")
                destination = unpacked / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
                # Module zips carry no modes; Go marks its commands executable the same way.
                if relative.parts[0] == "bin" or relative.parts[:2] == ("pkg", "tool"):
                    destination.chmod(0o755)
        unpacked.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report(f"Go {FETCHED_GO} ready in {target} after {time.monotonic() - started:.0f} s")
    return target


def _toolchain_sum(proxy: str, module_version: str) -> str:
    """The h1: hash the Go checksum database records for the toolchain module (through the
    proxy's sumdb endpoint, which is reachable where sum.golang.org itself may not be)."""
    url = f"{proxy}/sumdb/sum.golang.org/lookup/golang.org/toolchain@{module_version}"
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - https only
        text: str = response.read().decode()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] == module_version and fields[2].startswith("h1:"):  # noqa: PLR2004
            return fields[2]
    raise FootTestenvError(f"the checksum database has no entry for toolchain {module_version}")


def _dirhash_h1(archive: Path) -> str:
    """Go's `h1:` hash of a module zip (golang.org/x/mod/sumdb/dirhash.Hash1)."""
    summary = hashlib.sha256()
    with zipfile.ZipFile(archive) as zipped:
        for name in sorted(info.filename for info in zipped.infolist() if not info.is_dir()):
            digest = hashlib.sha256()
            with zipped.open(name) as member:
                for chunk in iter(lambda: member.read(1 << 20), b""):
                    digest.update(chunk)
            summary.update(f"{digest.hexdigest()}  {name}\n".encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()

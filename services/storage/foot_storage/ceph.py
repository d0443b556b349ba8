"""Reaching Ceph: the mgr dashboard REST API (aiohttp) and the ceph CLI (cephx keys, CephFS).

Every failure is wrapped into FOOT's errors with the cause chained:
connection problems, timeouts and 5xx answers are `CephUnavailableError`
(retryable), refusals are `CephRefusedError` (permanent), a missing object is
`NotFoundError`. Keys never reach a log: CLI output holding a key is parsed and
never echoed, and errors quote stderr only.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from foot.errors import NotFoundError, PermanentError, RetryableError

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.ceph.api.v1.0+json"
TASK_POLL_SECONDS = 0.2


class CephUnavailableError(RetryableError):
    """Ceph did not answer (in time); trying again later may work."""


class CephRefusedError(PermanentError):
    """Ceph refused the request; the same request fails the same way."""


class Dashboard:
    """A client of the mgr dashboard REST API (Pacific), token refreshed on 401."""

    def __init__(
        self, url: str, user: str, password: str, *, timeout_seconds: float = 10.0
    ) -> None:
        self.url = url.rstrip("/")
        self._user = user
        self._password = password
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"Dashboard({self.url!r}, user={self._user!r}, password=<hidden>)"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _login(self) -> str:
        body = {"username": self._user, "password": self._password}
        status, answer = await self._send("POST", "/api/auth", body, token=None)
        if status != 201 or not isinstance(answer, dict) or "token" not in answer:  # noqa: PLR2004
            raise CephRefusedError(f"dashboard login as {self._user} refused (HTTP {status})")
        self._token = str(answer["token"])
        return self._token

    async def _send(
        self, method: str, path: str, body: Any, *, token: str | None
    ) -> tuple[int, Any]:
        headers = {"Accept": ACCEPT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        what = f"dashboard {method} {path}"
        try:
            async with self._http().request(
                method, self.url + path, json=body, headers=headers
            ) as response:
                text = await response.text()
                status = response.status
        except TimeoutError as exc:
            seconds = self._timeout.total
            raise CephUnavailableError(
                f"{what}: Ceph dashboard at {self.url} gave no answer within {seconds:g}s"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise CephUnavailableError(
                f"{what}: Ceph dashboard at {self.url} does not answer: {detail}"
            ) from exc
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text
        return status, answer

    async def call(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        """One request; the answer's JSON, None for a tolerated 404."""
        token = self._token or await self._login()
        status, answer = await self._send(method, path, body, token=token)
        if status == 401:  # noqa: PLR2004 - token expired (mgr restarted, ...)
            status, answer = await self._send(method, path, body, token=await self._login())
        if status == 202:  # noqa: PLR2004 - a background task: wait for it
            await self._wait_task(answer)
            return answer
        if status < 300:  # noqa: PLR2004
            return answer
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        message = f"dashboard {method} {path}: HTTP {status}: {detail}"
        if status == 404 or _rgw_not_found(detail):  # noqa: PLR2004
            if missing_ok:
                return None
            raise NotFoundError(message)
        if status >= 500 or status in {408, 409, 429} or _mgr_settling(detail):  # noqa: PLR2004
            raise CephUnavailableError(message)
        raise CephRefusedError(message)

    async def _wait_task(self, answer: Any) -> None:
        name = answer.get("name") if isinstance(answer, dict) else None
        if not name:
            return
        metadata = answer.get("metadata") or {}
        while True:
            tasks = await self.call("GET", f"/api/task?name={quote(name)}")
            executing = [
                t for t in (tasks or {}).get("executing_tasks", []) if t.get("metadata") == metadata
            ]
            if not executing:
                finished = [
                    t
                    for t in (tasks or {}).get("finished_tasks", [])
                    if t.get("metadata") == metadata
                ]
                failed = [t for t in finished if not t.get("success", True)]
                if failed:
                    exception = failed[-1].get("exception") or {}
                    raise CephRefusedError(f"{name} failed: {exception.get('detail', exception)}")
                return
            await asyncio.sleep(TASK_POLL_SECONDS)

    async def probe(self) -> str:
        """Log in if needed and read the cluster's summary: its health status
        (HEALTH_OK, ...). Raises CephUnavailableError / CephRefusedError."""
        answer = await self.call("GET", "/api/summary")
        health = answer.get("health_status") if isinstance(answer, dict) else None
        return str(health or "unknown")

    # ---- pools, CRUSH rules, RBD --------------------------------------------------------

    async def crush_rule(self, name: str) -> dict[str, Any] | None:
        answer = await self.call("GET", f"/api/crush_rule/{quote(name, safe='')}", missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def create_crush_rule(
        self, name: str, failure_domain: str, device_class: str | None
    ) -> None:
        body: dict[str, Any] = {"name": name, "root": "default", "failure_domain": failure_domain}
        if device_class:
            body["device_class"] = device_class
        await self.call("POST", "/api/crush_rule", body)

    async def delete_crush_rule(self, name: str) -> None:
        await self.call("DELETE", f"/api/crush_rule/{quote(name, safe='')}", missing_ok=True)

    async def pool(self, name: str) -> dict[str, Any] | None:
        answer = await self.call(
            "GET", f"/api/pool/{quote(name, safe='')}?stats=false", missing_ok=True
        )
        return answer if isinstance(answer, dict) else None

    async def create_pool(self, name: str, rule: str, application: str) -> None:
        body = {
            "pool": name,
            "pool_type": "replicated",
            "pg_num": 8,
            "rule_name": rule,
            "application_metadata": [application],
        }
        await self.call("POST", "/api/pool", body)

    async def set_pool_quota(self, name: str, max_bytes: int, max_objects: int) -> None:
        body = {"quota_max_bytes": max_bytes, "quota_max_objects": max_objects}
        await self.call("PUT", f"/api/pool/{quote(name, safe='')}", body)

    async def delete_pool(self, name: str) -> None:
        await self.call("DELETE", f"/api/pool/{quote(name, safe='')}", missing_ok=True)

    @staticmethod
    def _image_path(pool: str, image: str) -> str:
        return "/api/block/image/" + quote(f"{pool}/{image}", safe="")

    async def image(self, pool: str, image: str) -> dict[str, Any] | None:
        answer = await self.call("GET", self._image_path(pool, image), missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def create_image(self, pool: str, image: str, size: int) -> None:
        body = {"pool_name": pool, "name": image, "size": size}
        await self.call("POST", "/api/block/image", body)

    async def resize_image(self, pool: str, image: str, size: int) -> None:
        await self.call("PUT", self._image_path(pool, image), {"size": size})

    async def delete_image(self, pool: str, image: str) -> None:
        await self.call("DELETE", self._image_path(pool, image), missing_ok=True)

    # ---- RGW --------------------------------------------------------------------------------

    async def rgw_user(self, uid: str) -> dict[str, Any] | None:
        answer = await self.call("GET", f"/api/rgw/user/{quote(uid, safe='')}", missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def create_rgw_user(self, uid: str, max_buckets: int) -> None:
        body = {
            "uid": uid,
            "display_name": f"FOOT storage claim {uid}",
            "max_buckets": max_buckets,
            "generate_key": True,  # the dashboard creates buckets with the owner's key
        }
        await self.call("POST", "/api/rgw/user", body)

    async def delete_rgw_user(self, uid: str) -> None:
        await self.call("DELETE", f"/api/rgw/user/{quote(uid, safe='')}", missing_ok=True)

    async def create_subuser(self, uid: str, subuser: str) -> None:
        body = {"subuser": subuser, "access": "full", "key_type": "s3", "generate_secret": True}
        await self.call("POST", f"/api/rgw/user/{quote(uid, safe='')}/subuser", body)

    async def delete_subuser(self, uid: str, subuser: str) -> None:
        path = f"/api/rgw/user/{quote(uid, safe='')}/subuser/{quote(subuser, safe='')}"
        await self.call("DELETE", path + "?purge_keys=true", missing_ok=True)

    async def bucket(self, name: str) -> dict[str, Any] | None:
        answer = await self.call("GET", f"/api/rgw/bucket/{quote(name, safe='')}", missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def create_bucket(self, name: str, uid: str) -> None:
        await self.call("POST", "/api/rgw/bucket", {"bucket": name, "uid": uid})

    async def delete_bucket(self, name: str) -> None:
        path = f"/api/rgw/bucket/{quote(name, safe='')}?purge_objects=true"
        await self.call("DELETE", path, missing_ok=True)

    async def set_bucket_quota(self, uid: str, max_bytes: int, max_objects: int) -> None:
        body = {
            "quota_type": "bucket",
            "enabled": True,
            "max_size_kb": max(max_bytes // 1024, 1),
            "max_objects": max_objects or -1,
        }
        await self.call("PUT", f"/api/rgw/user/{quote(uid, safe='')}/quota", body)


class CephCli:
    """The `ceph` CLI as client.admin (cephx keys and CephFS subvolumes, missing from the
    Pacific REST API), run without a shell and with a deadline."""

    def __init__(
        self,
        conf: Path,
        keyring: Path,
        *,
        client: str = "client.admin",
        timeout_seconds: float = 10.0,
        binary: str = "ceph",
    ) -> None:
        self.conf = conf
        self.keyring = keyring
        self.client = client
        self.timeout = timeout_seconds
        self.binary = binary

    async def run(self, *args: str, secret_output: bool = False) -> Any:
        """Run `ceph ARGS -f json`; the parsed output (None when empty)."""
        argv = [
            self.binary,
            "-c",
            str(self.conf),
            "-n",
            self.client,
            "-k",
            str(self.keyring),
            "--connect-timeout",
            str(max(int(self.timeout), 1)),
            *args,
            "-f",
            "json",
        ]
        what = "ceph " + " ".join(args[:4])
        if not self.conf.is_file():
            raise CephUnavailableError(
                f"{what}: no ceph.conf at {self.conf} (set ceph_conf, FOOT_CEPH_CONF)"
            )
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=os.environ | {"LC_ALL": "C"},
            )
        except OSError as exc:
            raise CephRefusedError(f"{what}: cannot run {self.binary}: {exc}") from exc
        try:
            async with asyncio.timeout(self.timeout + 5):
                stdout, stderr = await process.communicate()
        except TimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise CephUnavailableError(f"{what}: no answer within {self.timeout + 5:.0f}s") from exc
        except asyncio.CancelledError:
            # Stopped mid-call (a probe at shutdown): no child, and no pipes left to the GC.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.communicate())
            raise
        if process.returncode != 0:
            raise _cli_error(what, process.returncode or 1, stderr.decode(errors="replace"))
        text = stdout.decode().strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            # Never echo output that may hold a key.
            shown = "<hidden>" if secret_output else text[:200]
            raise CephRefusedError(f"{what}: unexpected output {shown}") from None

    # ---- cephx ------------------------------------------------------------------------------

    async def ensure_key(self, entity: str, caps: Sequence[tuple[str, str]]) -> str:
        """The key of `entity` with exactly `caps` (created, or its caps corrected)."""
        flat = [part for cap in caps for part in cap]
        try:
            answer = await self.run("auth", "get-or-create", entity, *flat, secret_output=True)
        except CephRefusedError as exc:
            if "EINVAL" not in str(exc) and "match" not in str(exc):
                raise
            await self.run("auth", "caps", entity, *flat)
            answer = await self.run("auth", "get", entity, secret_output=True)
        try:
            return str(answer[0]["key"])
        except (TypeError, KeyError, IndexError):
            raise CephRefusedError(f"auth get-or-create {entity}: no key in the answer") from None

    async def key_caps(self, entity: str) -> dict[str, str] | None:
        try:
            answer = await self.run("auth", "get", entity, secret_output=True)
        except NotFoundError:
            return None
        return dict(answer[0].get("caps", {}))

    async def remove_key(self, entity: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.run("auth", "rm", entity)

    async def fsid(self) -> str:
        answer = await self.run("fsid")
        return str(answer["fsid"]) if isinstance(answer, dict) else str(answer)

    async def set_pool_size(self, pool: str, size: int) -> None:
        args = ["osd", "pool", "set", pool, "size", str(size)]
        if size == 1:
            args.append("--yes-i-really-mean-it")
        await self.run(*args)

    # ---- CephFS -----------------------------------------------------------------------------

    async def ensure_subvolume_group(self, fs: str, group: str) -> None:
        await self.run("fs", "subvolumegroup", "create", fs, group)

    async def subvolume_info(self, fs: str, name: str, group: str) -> dict[str, Any] | None:
        try:
            answer = await self.run("fs", "subvolume", "info", fs, name, "--group_name", group)
        except NotFoundError:
            return None
        return answer if isinstance(answer, dict) else None

    async def create_subvolume(self, fs: str, name: str, group: str, size: int) -> None:
        await self.run(
            "fs",
            "subvolume",
            "create",
            fs,
            name,
            "--size",
            str(size),
            "--group_name",
            group,
            "--namespace-isolated",
        )

    async def resize_subvolume(self, fs: str, name: str, group: str, size: int) -> None:
        await self.run("fs", "subvolume", "resize", fs, name, str(size), "--group_name", group)

    async def remove_subvolume(self, fs: str, name: str, group: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.run("fs", "subvolume", "rm", fs, name, "--group_name", group)


def _mgr_settling(detail: Any) -> bool:
    """The mgr answers 400 while its own RADOS handle is (re)connecting, e.g. just after it
    started ("You cannot perform that operation on a Rados object in state configuring")."""
    text = str(detail)
    return "Rados object in state" in text or "rados state" in text.lower()


def _rgw_not_found(detail: Any) -> bool:
    """The dashboard answers 500 when the RGW admin API it asks answers 404 (NoSuchUser, ...)."""
    text = str(detail)
    return "status code 404" in text or "NoSuchUser" in text or "NoSuchBucket" in text


_RETRYABLE_ERRNOS = {
    errno.ETIMEDOUT,
    errno.EAGAIN,
    errno.EINTR,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EBUSY,
}


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ [0-9a-f]+ +-?\d+ ")
"""A line of librados's own log (`2026-01-01T00:00:00.000+0000 7f00 -1 auth: ...`), which the
CLI writes to stderr before the error itself (missing keyrings, retries, ...)."""


def _cli_detail(stderr: str) -> str:
    """The CLI's error without the librados log lines in front of it (unless that is all)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if not _LOG_LINE.match(line)] or lines
    return " ".join(" ".join(said).split())[:300]


def _cli_error(what: str, code: int, stderr: str) -> Exception:
    detail = _cli_detail(stderr)
    message = f"{what}: exit {code}: {detail}"
    if code == errno.ENOENT or "ENOENT" in stderr or "does not exist" in stderr:
        return NotFoundError(message)
    if code in _RETRYABLE_ERRNOS or "timed out" in stderr or "RADOS" in stderr:
        return CephUnavailableError(message)
    return CephRefusedError(message)

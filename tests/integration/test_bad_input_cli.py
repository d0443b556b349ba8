"""The bad-input corpus, the CLI (issue 15, acceptance 4): the real `foot apply -f FILE` run
as a user runs it (a process of its own, the scheduler and the registry behind a real
nats-server with authentication), given files the loader must refuse (not UTF-8, `!!binary`,
alias bombs, Python tags, nothing in them, too big, not there) and files of bad objects.
Each run ends with exit code 1 and a clear message naming the file (or the object and its
field), never a traceback, and nothing invalid is stored."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from bad_input_support import (  # noqa: F401 - the `scheduler` fixture
    changed,
    data_object,
    deployment,
    scheduler_and_registry,
    stored,
)

from foot.yamlsafe import MAX_INPUT_BYTES
from foot_cli.natsserver import EmbeddedNats
from foot_scheduler.service import SchedulerService

LAUGHS = 'lol0: &lol0 "lol"\n' + "".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]\n" for i in range(1, 10)
)
SECRET_WITH_BINARY = (
    b"apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: bad}\n"
    b"data:\n  key: !!binary aGVsbG8=\n"
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"
CLI_SECONDS = 60.0

# (id, file content, what stderr says after the file's name, or all of it with `{path}`)
FILE_CASES: list[tuple[str, bytes, str]] = [
    ("not-utf-8", "kind: Caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 9)"),
    ("png-image", PNG, "is not UTF-8 text (byte 0x89 at offset 0)"),
    ("binary-tag", SECRET_WITH_BINARY, "tag !!binary is not allowed (line 5)"),
    ("billion-laughs", LAUGHS.encode(), "expands to more than 1000000 values (aliases)"),
    (
        "python-object-tag",
        b"kind: !!python/object/apply:os.system ['id']\n",
        "tag !!python/object/apply:os.system is not allowed",
    ),
    ("empty", b"", "error: no objects in {path} (it is empty, or only comments and `---`)"),
    (
        "duplicate-key",
        b"kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
        "duplicate key 'name' at line 4",
    ),
    ("yaml-list", b"- kind: ConfigMap\n", "document 1 is invalid: must be a mapping, got a list"),
    ("nested-too-deep", b"a: " + b"[" * 150 + b"]" * 150 + b"\n", "nested deeper than 100 levels"),
    ("over-3mib", b"#" * MAX_INPUT_BYTES + b"\n", f"more than the limit of {MAX_INPUT_BYTES}"),
]


async def foot_apply(nats_url: str, path: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """`foot apply -f PATH` in a process of its own: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "foot_cli.main",
        "apply",
        "-f",
        path,
        "--nats-url",
        nats_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "400", "OTEL_TRACES_EXPORTER": "none"},
    )
    async with asyncio.timeout(CLI_SECONDS):
        stdout, stderr = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def assert_refused_clearly(code: int, stdout: str, stderr: str, *fragments: str) -> None:
    assert code == 1, (code, stdout, stderr)
    assert "Traceback" not in stderr + stdout, stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)


@pytest.mark.parametrize(
    ("content", "reason"), [pytest.param(c, r, id=i) for i, c, r in FILE_CASES]
)
async def test_foot_apply_refuses_a_bad_file_clearly(
    *,
    scheduler: SchedulerService,
    nats_server: EmbeddedNats,
    tmp_path: Path,
    content: bytes,
    reason: str,
) -> None:
    path = tmp_path / "app.yaml"
    path.write_bytes(content)
    before = await stored(nats_server.url)
    code, stdout, stderr = await foot_apply(nats_server.url, str(path))
    if "{path}" in reason:  # a file without objects: the whole message names the file
        assert_refused_clearly(code, stdout, stderr, reason.format(path=path))
    else:
        assert_refused_clearly(code, stdout, stderr, f"error: {path} ", "is invalid", reason)
    assert await stored(nats_server.url) == before


async def test_foot_apply_refuses_binary_on_stdin_clearly(
    scheduler: SchedulerService, nats_server: EmbeddedNats
) -> None:
    code, stdout, stderr = await foot_apply(nats_server.url, "-", stdin=PNG)
    assert_refused_clearly(code, stdout, stderr, "error: stdin is invalid", "is not UTF-8")
    assert await stored(nats_server.url) == {}


@pytest.mark.parametrize("missing", [True, False], ids=["no-such-file", "a-directory"])
async def test_foot_apply_says_when_it_cannot_read_the_file(
    scheduler: SchedulerService, nats_server: EmbeddedNats, tmp_path: Path, missing: bool
) -> None:
    path = tmp_path / "absent.yaml" if missing else tmp_path
    code, stdout, stderr = await foot_apply(nats_server.url, str(path))
    words = "No such file or directory" if missing else "Is a directory"
    assert_refused_clearly(code, stdout, stderr, f"error: [Errno {2 if missing else 21}] {words}")


async def test_foot_apply_refuses_an_alias_bomb_at_once(
    scheduler: SchedulerService, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """The whole run, Python's start included, is short: the bomb is never expanded (the
    issue's CLI grew to 10.4 GB on it). The loader's own bounds: test_bad_input_bodies."""
    path = tmp_path / "bomb.yaml"
    path.write_text(LAUGHS)
    started = time.monotonic()
    code, stdout, stderr = await foot_apply(nats_server.url, str(path))
    assert time.monotonic() - started < 30
    assert_refused_clearly(code, stdout, stderr, "aliases")


async def test_foot_apply_of_a_bad_object_names_its_field_and_stores_nothing(
    scheduler: SchedulerService, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(yaml.safe_dump(deployment(replicas=-1, minReadySeconds=-2)))
    code, stdout, stderr = await foot_apply(nats_server.url, str(path))
    assert_refused_clearly(
        code,
        stdout,
        stderr,
        "deployment.apps/web rejected",
        "spec.replicas: must be greater than or equal to 0, got -1",
        "spec.minReadySeconds: must be greater than or equal to 0, got -2",
    )
    assert await stored(nats_server.url) == {}


async def test_foot_apply_of_a_file_mixing_good_and_bad_stores_the_good_only(
    scheduler: SchedulerService, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    good = changed(data_object("ConfigMap", data={"mode": "test"}), ("metadata", "name"), "good")
    bad = data_object("Secret", data={"a b": "eA=="})
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all([good, bad]))
    code, stdout, stderr = await foot_apply(nats_server.url, str(path))
    assert_refused_clearly(code, stdout, stderr, "secret/cfg rejected", "data: key 'a b'")
    assert "configmap/good created" in stdout
    assert set(await stored(nats_server.url)) == {"core.ConfigMap.bad.good"}

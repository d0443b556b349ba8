"""Generated bad inputs over HTTP (POST /api/apply), NATS (`foot.api.apply` request-reply)
and into the CLI's loader: each gets a clear error, none crashes anything, none is stored.

The budget is fixed (Hypothesis `max_examples`, derandomized: the same inputs every run, so
CI is not flaky); the counts are printed in the summary line at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import nats.errors
import orjson
import pytest
from fuzz.bad_inputs import bad_bodies, bad_documents, loader_bad_bodies, to_json
from fuzz.fuzz_support import TALLY, FuzzTarget, LoopThread, refused_reply_problems
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from foot.catalog import API_APPLY, BUCKETS
from foot.errors import InvalidObjectError
from foot_cli.main import EmptyFileError, read_files
from support import stored_values

HTTP_EXAMPLES = 3000
NATS_EXAMPLES = 4000
CLI_EXAMPLES = 2500
ANSWER_SECONDS = 10.0
"""Longer than any answer takes even on a loaded machine; past it a request is unanswered."""


def budget(examples: int) -> settings:
    """`examples` inputs, the same ones every run (derandomized, no example database)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


BODY_TYPES = ["application/yaml", "application/json", "application/x-yaml; charset=utf-8"]


class CrashError(AssertionError):
    """An input that got no clear answer (counted in the tally)."""


def crashed(reason: str) -> CrashError:
    TALLY["crash"] += 1
    return CrashError(reason)


async def all_buckets(nats_url: str) -> dict[str, dict[str, bytes]]:
    return {spec.name: await stored_values(nats_url, spec.name) for spec in BUCKETS}


@pytest.fixture(scope="module")
def before(fuzz_target: FuzzTarget, fuzz_loop: LoopThread) -> dict[str, dict[str, bytes]]:
    """Every bucket before any input of this module was sent."""
    snapshot: dict[str, dict[str, bytes]] = fuzz_loop.run(all_buckets(fuzz_target.nats.url))
    return snapshot


@pytest.fixture(scope="module")
def http(fuzz_loop: LoopThread) -> Iterator[aiohttp.ClientSession]:
    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS))

    session = fuzz_loop.run(open_session())
    yield session
    fuzz_loop.run(session.close())


@pytest.fixture(scope="module")
def nats_client(fuzz_target: FuzzTarget, fuzz_loop: LoopThread) -> Iterator[NatsClient]:
    client = fuzz_loop.run(nats.connect(fuzz_target.nats.url, name="fuzz"))
    yield client
    fuzz_loop.run(client.close())


def assert_refused(answer: Any, what: str) -> None:
    problems = refused_reply_problems(answer)
    if problems:
        raise crashed(f"{what}: not a clear refusal: {problems}; answer {answer!r}")


@budget(HTTP_EXAMPLES)
@given(body=bad_bodies(), content_type=st.sampled_from(BODY_TYPES))
def test_bad_bodies_over_http_are_refused_clearly(
    *,
    fuzz_target: FuzzTarget,
    fuzz_loop: LoopThread,
    http: aiohttp.ClientSession,
    before: dict[str, dict[str, bytes]],
    body: bytes,
    content_type: str,
) -> None:
    TALLY["http"] += 1
    headers = fuzz_target.credentials.admin_headers(content_type)

    async def post() -> tuple[int, Any]:
        url = f"{fuzz_target.scheduler_url}/api/apply"
        async with http.post(url, data=body, headers=headers) as response:
            return response.status, orjson.loads(await response.read())

    try:
        status, answer = fuzz_loop.run(post(), timeout=ANSWER_SECONDS + 5)
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        raise crashed(f"HTTP: {type(exc).__name__}: {exc}") from None
    if status != 422:
        raise crashed(f"HTTP {status} (422 expected) for a bad body: {answer!r}")
    assert_refused(answer, "HTTP")


@budget(NATS_EXAMPLES)
@given(
    body=st.one_of(
        bad_bodies(),
        st.lists(bad_documents(), min_size=1, max_size=3).map(
            lambda documents: to_json({"objects": documents})
        ),
    )
)
def test_bad_requests_over_nats_are_refused_clearly(
    *,
    fuzz_loop: LoopThread,
    nats_client: NatsClient,
    before: dict[str, dict[str, bytes]],
    body: bytes,
) -> None:
    TALLY["nats"] += 1
    try:
        reply = fuzz_loop.run(nats_client.request(API_APPLY, body, timeout=ANSWER_SECONDS))
        answer = orjson.loads(reply.data)
    except (nats.errors.Error, TimeoutError, orjson.JSONDecodeError) as exc:
        raise crashed(f"NATS: {type(exc).__name__}: {exc}") from None
    assert_refused(answer, "NATS")


@pytest.fixture(scope="module")
def input_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-cli") / "deploy.yaml"


@budget(CLI_EXAMPLES)
@given(body=loader_bad_bodies())
def test_bad_files_are_refused_by_the_cli_loader(*, input_file: Path, body: bytes) -> None:
    TALLY["cli"] += 1
    input_file.write_bytes(body)
    try:
        read_files([str(input_file)])
    except EmptyFileError as exc:
        if str(input_file) not in exc.message:
            raise crashed(f"CLI loader: an empty file refused without its name: {exc}") from None
    except InvalidObjectError as exc:
        if not exc.problems or not all(p.reason.strip() for p in exc.problems):
            raise crashed(f"CLI loader: an error without a reason: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - anything else is exactly what this test looks for
        raise crashed(f"CLI loader: {type(exc).__name__}: {exc}") from None
    else:
        raise crashed(f"CLI loader accepted a bad file: {body[:200]!r}")


def test_nothing_was_stored_and_no_service_logged_a_traceback(
    fuzz_target: FuzzTarget, fuzz_loop: LoopThread, before: dict[str, dict[str, bytes]]
) -> None:
    after = fuzz_loop.run(all_buckets(fuzz_target.nats.url))
    changed = {
        name: sorted(
            k
            for k in set(after[name]) | set(before[name])
            if after[name].get(k) != before[name].get(k)
        )
        for name in after
    }
    changed = {name: keys for name, keys in changed.items() if keys}
    TALLY["stored"] += sum(len(keys) for keys in changed.values())
    assert not changed, f"bad inputs changed buckets: {changed}"
    tracebacks = fuzz_target.tracebacks()
    TALLY["traceback"] += len(tracebacks)
    assert not tracebacks, "\n".join(tracebacks[:5])

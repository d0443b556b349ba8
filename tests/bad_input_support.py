"""What the bad-input corpus (issue 15, acceptance 4) shares: the scheduler and the registry
started as `foot up` starts them (admin token files, a real nats-server with authentication),
one request sent over NATS or HTTP, and what every answer to a bad input must be: the one
error shape (code, message, fields of path + reason), naming the field at fault, with nothing
of a library's internals, no traceback in the services' logs, and nothing invalid stored."""

from __future__ import annotations

import copy
import io
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
import pytest
import yaml
from admin_support import AdminCredentials

from foot.api import ApiError
from foot.bus import Bus
from foot.catalog import API_APPLY, POLICIES, TEMPLATES
from foot.runtime.settings import ServiceSettings
from foot_cli.natsserver import EmbeddedNats
from foot_registry.service import RegistryService
from foot_scheduler.service import SchedulerService
from support import stored_values

Expected = list[tuple[str, str]]
"""(field path, a fragment of its reason) of every problem an answer must name."""
YAML = "application/yaml"
JSON = "application/json"
LIBRARY_LEAKS = ("pydantic", "https://", "Traceback", "Input should be", "Field required")


@asynccontextmanager
async def scheduler_and_registry(
    nats_url: str, credentials: AdminCredentials
) -> AsyncIterator[SchedulerService]:
    """The scheduler (owner of templates and policies, its admin server with the session's
    token files) and the registry (it answers the NATS front door too)."""
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "admin_port": 0,
        "shutdown_deadline_seconds": 2.0,
        **credentials.settings(),
    }
    async with (
        SchedulerService(ServiceSettings(**values)) as scheduler,
        RegistryService(ServiceSettings(**values)),
    ):
        yield scheduler


async def over_nats(bus: Bus, body: bytes) -> dict[str, Any]:
    msg = await bus.request(API_APPLY, body)
    answer: dict[str, Any] = orjson.loads(msg.data)
    return answer


async def over_http(
    url: str, credentials: AdminCredentials, body: bytes, content_type: str | None = YAML
) -> tuple[int, dict[str, Any]]:
    """POST /api/apply with the admin token; `content_type` None sends none at all."""
    headers = credentials.admin_headers(content_type)
    async with (
        aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as http,
        # A file-like body: aiohttp warns that big raw bytes would hold up the event loop.
        http.post(f"{url}/api/apply", data=io.BytesIO(body), headers=headers) as response,
    ):
        assert response.content_type == JSON, await response.text()
        answer: dict[str, Any] = await response.json()
        return response.status, answer


def assert_clear_error(
    error: Any, expected: Expected, code: str = "Invalid", message: str = ""
) -> dict[str, str]:
    """`error` is the one error shape with `code`, names every expected field with its reason
    fragment, and shows nothing of a library's internals; returns path -> reason."""
    assert isinstance(error, dict), error
    assert set(error) == {"code", "message", "fields"}, error
    parsed = ApiError.model_validate(error)
    assert parsed.code == code, error
    assert parsed.message.strip(), error
    assert message in parsed.message, error
    found: dict[str, str] = {}
    for field in parsed.fields:  # a path with two problems (a port's bound and range) has both
        found[field.path] = (
            f"{found[field.path]}; {field.reason}" if field.path in found else field.reason
        )
    if code == "Invalid":
        assert parsed.fields, f"an Invalid answer names its fields: {error}"
    assert all(f.reason.strip() for f in parsed.fields), error
    for path, fragment in expected:
        assert path in found, (path, found)
        assert fragment in found[path], (path, fragment, found[path])
    text = orjson.dumps(error).decode()
    assert not [leak for leak in LIBRARY_LEAKS if leak in text], text
    return found


def assert_all_rejected(answer: dict[str, Any], expected: Expected) -> None:
    """Every document of the request rejected, the first with the expected problems."""
    assert answer.get("error") is None, answer
    results = answer["results"]
    assert results, answer
    assert all(r["outcome"] == "rejected" for r in results), results
    assert_clear_error(results[0]["error"], expected)


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """No service logged an error or an exception while answering."""
    failures = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]
    assert "Traceback" not in caplog.text


async def stored(nats_url: str) -> dict[str, bytes]:
    """Every stored template and policy (the buckets a bad apply could write)."""
    values = await stored_values(nats_url, TEMPLATES.name)
    return values | await stored_values(nats_url, POLICIES.name)


def changed(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at `path` set (the last step created if absent)."""
    result = copy.deepcopy(document)
    here: Any = result
    for step in path[:-1]:
        here = here[step]
    here[path[-1]] = value
    return result


def without(document: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """A copy of `document` without the value at `path`."""
    result = copy.deepcopy(document)
    here: Any = result
    for step in path[:-1]:
        here = here[step]
    del here[path[-1]]
    return result


def deployment(name: str = "web", **spec: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bad", "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    document["spec"].update(spec)
    return document


def service(**spec: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]} | spec
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "bad"},
        "spec": values,
    }


def data_object(kind: str, **fields: Any) -> dict[str, Any]:
    """A ConfigMap or a Secret in namespace `bad` with these top-level fields."""
    metadata = {"name": "cfg", "namespace": "bad"}
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata} | fields


def pod_owner(api_version: str, kind: str, **spec: Any) -> dict[str, Any]:
    """A Job, StatefulSet or DaemonSet of one container, its pods labelled app=web."""
    pod: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    if kind == "Job":
        pod["restartPolicy"] = "Never"
    values: dict[str, Any] = {"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod}}
    if kind != "Job":
        values["selector"] = {"matchLabels": {"app": "web"}}
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web", "namespace": "bad"},
        "spec": values | spec,
    }


def policy(kind: str = "PropagationPolicy", **spec: Any) -> dict[str, Any]:
    selectors = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]
    values: dict[str, Any] = {"resourceSelectors": selectors} if "Propagation" in kind else {}
    metadata: dict[str, Any] = {"name": "spread"}
    if not kind.startswith("Cluster"):
        metadata["namespace"] = "bad"
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": values | spec,
    }


async def assert_refused_everywhere(
    *,
    admin_url: str,
    bus: Bus,
    nats_url: str,
    credentials: AdminCredentials,
    caplog: pytest.LogCaptureFixture,
    document: dict[str, Any],
    expected: Expected,
) -> None:
    """`document` alone is refused over NATS (JSON) and over HTTP (YAML, 422) with the
    expected problems; nothing is stored and no service logs a traceback."""
    before = await stored(nats_url)
    assert_all_rejected(await over_nats(bus, orjson.dumps({"objects": [document]})), expected)
    status, answer = await over_http(admin_url, credentials, yaml.safe_dump(document).encode())
    assert status == 422, answer
    assert_all_rejected(answer, expected)
    assert await stored(nats_url) == before
    assert_no_tracebacks(caplog)


@pytest.fixture(name="scheduler")
async def owning_scheduler(
    nats_server: EmbeddedNats, admin_credentials: AdminCredentials
) -> AsyncIterator[SchedulerService]:
    """The templates' and policies' owner, with the registry, on the admin tokens' files
    (import it into a test module to use it as `scheduler`)."""
    async with scheduler_and_registry(nats_server.url, admin_credentials) as owner:
        yield owner


def assert_distinct(cases: Sequence[tuple[str, dict[str, Any], Any]]) -> None:
    """Every case has its own id and its own document (no case counted twice)."""
    ids = [case_id for case_id, _, _ in cases]
    assert len(set(ids)) == len(ids)
    documents = {orjson.dumps(d, option=orjson.OPT_SORT_KEYS) for _, d, _ in cases}
    assert len(documents) == len(cases)

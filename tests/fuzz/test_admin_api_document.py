"""The OpenAPI document of the admin HTTP API: the published file is the one the code
generates, every route of every service is in it, and each admin server serves the
document of its own routes (behind the read token)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from fuzz.fuzz_support import FuzzTarget

from foot.runtime.openapi import OPENAPI_PATH, admin_api_document, render

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "admin-api.openapi.json"
REGENERATE = (
    "python -c 'from foot.runtime.openapi import admin_api_document, render; "
    'open("docs/admin-api.openapi.json", "wb").write(render(admin_api_document()))\''
)


def test_the_published_document_is_up_to_date() -> None:
    assert PUBLISHED.read_bytes() == render(admin_api_document()), f"regenerate: {REGENERATE}"


def get(url: str, headers: dict[str, str], method: str = "GET") -> tuple[int, Any, Any]:
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, orjson.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, orjson.loads(refused.read())


def test_each_server_serves_the_document_of_its_routes(fuzz_target: FuzzTarget) -> None:
    read = fuzz_target.credentials.read_headers()
    status, _, served = get(f"{fuzz_target.registry_url}{OPENAPI_PATH}", read)
    assert status == 200
    # The registry has every route (its /api/clusters ones besides everyone's): all documented.
    assert served == admin_api_document()
    status, _, scheduler = get(f"{fuzz_target.scheduler_url}{OPENAPI_PATH}", read)
    assert status == 200
    assert set(scheduler["paths"]) == {p for p in served["paths"] if "/api/clusters" not in p}
    assert "(undocumented)" not in orjson.dumps(served).decode()


def test_the_document_wants_the_read_token(fuzz_target: FuzzTarget) -> None:
    status, headers, body = get(f"{fuzz_target.scheduler_url}{OPENAPI_PATH}", {})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"]["code"] == "Unauthorized"


def test_aiohttps_own_refusals_come_in_the_one_error_shape(fuzz_target: FuzzTarget) -> None:
    """Regression (found by schemathesis): a method a route lacks, or no such route, was
    answered with aiohttp's plain text ("405: Method Not Allowed")."""
    admin = fuzz_target.credentials.admin_headers()
    status, headers, body = get(f"{fuzz_target.scheduler_url}/admin/objects", admin, "PUT")
    assert status == 405
    assert "GET" in headers["Allow"]
    assert body == {
        "error": {"code": "MethodNotAllowed", "message": "Method Not Allowed: 405", "fields": []}
    }
    status, _, body = get(f"{fuzz_target.scheduler_url}/no/such/route", admin)
    assert status == 404
    assert body["error"]["code"] == "NotFound"

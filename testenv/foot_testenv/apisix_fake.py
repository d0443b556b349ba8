"""A strict fake of the APISIX Admin API v3, in process (aiohttp) or as its own process.

No real APISIX can be installed here, so gateway-sync's tests talk to this. It
follows shared/reference/apisix-admin-api.md: X-API-KEY (or `api_key` query
argument or cookie) with admin and viewer roles, `X-API-VERSION: v3` on every
response, v3 envelopes, schema validation of upstreams, routes, services and
plugin configs (defaults filled in as APISIX stores them), reference checks on
write (`upstream_id`, `service_id`, `plugin_config_id`) but not inside
traffic-split, deletes refused while something still uses the object, PUT
replacing whole objects (201 created / 200 replaced, create_time kept), PATCH
deep-merging (null deletes, arrays replaced) or replacing a sub-path, and the
404 `{"message":"Key not found"}` shape.

Test hooks (not HTTP): `objects()`, `requests`, `listeners`, `pause()`/`resume()`
(the port refuses connections while the data is kept), `race_next_patch()`.

    python -m foot_testenv.apisix_fake --port 9180 --admin-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from foot_testenv.apisix_schema import SINGULAR, SchemaError, check_resource, validate

PREFIX = "/apisix/admin"
RESOURCES = ("upstreams", "routes", "services", "plugin_configs")
PAGE_SIZE_MIN = 10
PAGE_SIZE_MAX = 500
ID_PATTERN = re.compile(r"^[a-zA-Z0-9-_.]{1,64}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Listener = Callable[[str, str, str, dict[str, Any] | None], None]
"""(method, resource, id, value after the change or None when deleted)."""


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _error(status: int, message: str) -> ApiError:
    return ApiError(status, {"error_msg": message})


BODY = web.RequestKey("body", object)
NOT_FOUND = ApiError(404, {"message": "Key not found"})


@dataclass
class Stored:
    value: dict[str, Any]
    created_index: int
    modified_index: int


@dataclass
class Request:
    method: str
    path: str
    body: Any = None


@dataclass
class ApisixFake:
    """One fake APISIX Admin API. `admin_key` may write, `viewer_key` may only GET."""

    admin_key: str = "edd1c9f034335f136f87ad84b625c8f1"
    viewer_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    data: dict[str, dict[str, Stored]] = field(
        default_factory=lambda: {resource: {} for resource in RESOURCES}
    )
    requests: list[Request] = field(default_factory=list)
    """Every authenticated request, in order (method, path, parsed body)."""
    listeners: list[Listener] = field(default_factory=list)
    """Called after every successful write (a bench measures propagation with this)."""
    write_latency: float = 0.0
    """Seconds every write waits before it is handled (a slow etcd behind APISIX)."""
    writes_in_flight: int = 0
    """Writes being handled right now."""
    max_writes_in_flight: int = 0
    """The most writes ever handled at once."""
    _index: int = 0
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    _race_patch: bool = False

    # ---- lifecycle ----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._version_header, self._auth])
        app.router.add_route("*", PREFIX + "/schema/validate/{resource}", self._schema_validate)
        app.router.add_route("*", PREFIX + "/{resource}", self._collection)
        app.router.add_route("*", PREFIX + "/{resource}/{id}", self._item)
        app.router.add_route("*", PREFIX + "/{resource}/{id}/{path:.+}", self._sub_path)
        return app

    async def start(self) -> ApisixFake:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await self.resume()
        return self

    async def resume(self) -> None:
        """Listen (again, on the same port): APISIX is back with its data."""
        assert self._runner is not None, "start() first"  # noqa: S101
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            server = self._site._server  # noqa: SLF001 - aiohttp has no public bound-port API
            assert server is not None  # noqa: S101
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def pause(self) -> None:
        """Stop listening (connections are refused) but keep every object."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for connection in list(self._runner.server.connections):
                connection.force_close()

    async def stop(self) -> None:
        await self.pause()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ApisixFake:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- test hooks ---------------------------------------------------------------------

    def objects(self, resource: str) -> dict[str, dict[str, Any]]:
        """Current values of one resource type by id (deep copies)."""
        return {key: copy.deepcopy(s.value) for key, s in self.data[resource].items()}

    def race_next_patch(self) -> None:
        """Make the next PATCH see a concurrent change (APISIX answers 503)."""
        self._race_patch = True

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    # ---- middleware ---------------------------------------------------------------------

    @web.middleware
    async def _version_header(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _json(exc.body, exc.status)
        except web.HTTPException as exc:
            response = _json({"error_msg": exc.reason}, exc.status)
        response.headers["X-API-VERSION"] = "v3"
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = (
            request.headers.get("X-API-KEY")
            or request.query.get("api_key")
            or request.cookies.get("api_key")
        )
        if not key:
            raise ApiError(
                401, {"error_msg": "failed to check token", "description": "missing apikey"}
            )
        if key == self.admin_key:
            role = "admin"
        elif self.viewer_key is not None and key == self.viewer_key:
            role = "viewer"
        else:
            raise ApiError(
                401, {"error_msg": "failed to check token", "description": "wrong apikey"}
            )
        if role == "viewer" and request.method != "GET":
            raise ApiError(
                401,
                {
                    "error_msg": "failed to check token",
                    "description": "invalid method for role viewer",
                },
            )
        body = None
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise _error(400, f"invalid request body: {exc}") from None
        request[BODY] = body
        self.requests.append(Request(request.method, request.path_qs, body))
        if request.method == "GET":
            return await handler(request)
        self.writes_in_flight += 1
        self.max_writes_in_flight = max(self.max_writes_in_flight, self.writes_in_flight)
        try:
            if self.write_latency:
                await asyncio.sleep(self.write_latency)
            return await handler(request)
        finally:
            self.writes_in_flight -= 1

    # ---- handlers -----------------------------------------------------------------------

    def _resource(self, request: web.Request) -> str:
        resource = request.match_info["resource"]
        if resource not in RESOURCES:
            raise ApiError(404, {"error_msg": f"Unsupported resource type: {resource}"})
        return resource

    async def _schema_validate(self, request: web.Request) -> web.Response:
        resource = self._resource(request)
        if request.method != "POST":
            raise _error(405, f"not supported `{request.method}` method")
        body = request[BODY]
        try:
            check_resource(resource, copy.deepcopy(body))
        except SchemaError as exc:
            raise _error(400, exc.message) from None
        return _json({}, 200)

    async def _collection(self, request: web.Request) -> web.Response:
        resource = self._resource(request)
        if request.method == "GET":
            return self._list(resource, request)
        if request.method == "POST":
            if resource == "plugin_configs":
                raise _error(405, "not supported `POST` method for plugin config")
            body = _body_object(request)
            if "id" in body:
                raise _error(400, f"wrong {SINGULAR[resource]} id, do not need it")
            self._index += 1
            new_id = f"{self._index:020d}"
            value = self._checked(resource, new_id, body, existing=None)
            return _json(self._write("POST", resource, new_id, value), 200)
        raise _error(405, f"not supported `{request.method}` method")

    async def _item(self, request: web.Request) -> web.Response:
        resource = self._resource(request)
        item_id = request.match_info["id"]
        self._check_id(item_id)
        stored = self.data[resource].get(item_id)
        method = request.method
        if method == "GET":
            if stored is None:
                raise NOT_FOUND
            return _json(self._envelope(resource, item_id, stored), 200)
        if method == "PUT":
            body = _body_object(request)
            if "id" in body and str(body["id"]) != item_id:
                raise _error(400, f"wrong {SINGULAR[resource]} id")
            value = self._checked(resource, item_id, body, existing=stored)
            status = 200 if stored is not None else 201
            return _json(self._write("PUT", resource, item_id, value), status)
        if method == "PATCH":
            if stored is None:
                raise NOT_FOUND
            body = _body_object(request)
            if "id" in body and str(body["id"]) != item_id:
                raise _error(400, f"wrong {SINGULAR[resource]} id")
            _forbid_stamps(body)
            merged = _merge(copy.deepcopy(stored.value), body)
            return self._patched(resource, item_id, stored, merged)
        if method == "DELETE":
            if stored is None:
                raise NOT_FOUND
            if request.query.get("force") != "true":
                self._check_unused(resource, item_id)
            del self.data[resource][item_id]
            self._notify("DELETE", resource, item_id, None)
            return _json({"deleted": "1", "key": f"/apisix/{resource}/{item_id}"}, 200)
        raise _error(405, f"not supported `{method}` method")

    async def _sub_path(self, request: web.Request) -> web.Response:
        resource = self._resource(request)
        item_id = request.match_info["id"]
        if request.method != "PATCH":
            raise _error(405, f"not supported `{request.method}` method")
        self._check_id(item_id)
        stored = self.data[resource].get(item_id)
        if stored is None:
            raise NOT_FOUND
        path = [part for part in request.match_info["path"].split("/") if part]
        merged = copy.deepcopy(stored.value)
        target = merged
        for part in path[:-1]:
            nxt = target.get(part) if isinstance(target, dict) else None
            if not isinstance(nxt, dict):
                raise _error(400, f"invalid sub path: {'/'.join(path)}")
            target = nxt
        target[path[-1]] = request[BODY]
        return self._patched(resource, item_id, stored, merged)

    def _patched(
        self, resource: str, item_id: str, stored: Stored, merged: dict[str, Any]
    ) -> web.Response:
        if self._race_patch:
            self._race_patch = False
            raise _error(503, "value changed before overwritten")
        for stamp in ("create_time", "update_time"):
            merged.pop(stamp, None)
        value = self._checked(resource, item_id, merged, existing=stored, patch=True)
        return _json(self._write("PATCH", resource, item_id, value), 200)

    # ---- the rules ----------------------------------------------------------------------

    def _check_id(self, item_id: str) -> None:
        if not ID_PATTERN.match(item_id):
            raise _error(
                400,
                'invalid configuration: property "id" validation failed: '
                "object matches none of the required",
            )

    def _checked(
        self,
        resource: str,
        item_id: str,
        body: dict[str, Any],
        *,
        existing: Stored | None,
        patch: bool = False,
    ) -> dict[str, Any]:
        if not patch:
            _forbid_stamps(body)
        value = copy.deepcopy(body)
        value["id"] = item_id
        try:
            check_resource(resource, value)
        except SchemaError as exc:
            raise _error(400, exc.message) from None
        if resource == "routes":
            self._check_references(value)
        elif resource == "services" and "upstream_id" in value:
            self._need("upstreams", value["upstream_id"], "upstream")
        now = int(time.time())
        value["create_time"] = existing.value.get("create_time", now) if existing else now
        value["update_time"] = now
        return value

    def _need(self, resource: str, ref: Any, what: str) -> None:
        if str(ref) not in self.data[resource]:
            raise _error(
                400, f"failed to fetch {what} info by {what} id [{ref}], response code: 404"
            )

    def _check_references(self, route: dict[str, Any]) -> None:
        if "upstream_id" in route:
            self._need("upstreams", route["upstream_id"], "upstream")
        if "service_id" in route:
            self._need("services", route["service_id"], "service")
        if "plugin_config_id" in route:
            self._need("plugin_configs", route["plugin_config_id"], "plugin_config")
        # traffic-split's weighted_upstreams[].upstream_id is NOT checked (as in APISIX).

    def _check_unused(self, resource: str, item_id: str) -> None:
        for route_id, route in self.data["routes"].items():
            value = route.value
            if resource == "upstreams" and (
                str(value.get("upstream_id")) == item_id or item_id in _split_upstreams(value)
            ):
                raise _error(
                    400, f"can not delete this upstream, route [{route_id}] is still using it now"
                )
            if resource == "services" and str(value.get("service_id")) == item_id:
                raise _error(
                    400,
                    f"can not delete this service directly, route [{route_id}] "
                    "is still using it now",
                )
            if resource == "plugin_configs" and str(value.get("plugin_config_id")) == item_id:
                raise _error(
                    400,
                    f"can not delete this plugin config, route [{route_id}] is still using it now",
                )
        if resource == "upstreams":
            for service_id, service in self.data["services"].items():
                if str(service.value.get("upstream_id")) == item_id:
                    raise _error(
                        400,
                        f"can not delete this upstream, service [{service_id}] "
                        "is still using it now",
                    )

    def _write(
        self, method: str, resource: str, item_id: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        self._index += 1
        stored = self.data[resource].get(item_id)
        created = stored.created_index if stored is not None else self._index
        self.data[resource][item_id] = Stored(value, created, self._index)
        self._notify(method, resource, item_id, value)
        return {"key": f"/apisix/{resource}/{item_id}", "value": copy.deepcopy(value)}

    def _notify(
        self, method: str, resource: str, item_id: str, value: dict[str, Any] | None
    ) -> None:
        for listener in self.listeners:
            listener(method, resource, item_id, copy.deepcopy(value) if value else None)

    def _envelope(self, resource: str, item_id: str, stored: Stored) -> dict[str, Any]:
        return {
            "key": f"/apisix/{resource}/{item_id}",
            "value": copy.deepcopy(stored.value),
            "createdIndex": stored.created_index,
            "modifiedIndex": stored.modified_index,
        }

    def _list(self, resource: str, request: web.Request) -> web.Response:
        query = request.query
        items = sorted(self.data[resource].items(), key=lambda kv: kv[1].created_index)
        if "name" in query:
            pattern = re.compile(query["name"])
            items = [(i, s) for i, s in items if pattern.search(str(s.value.get("name", "")))]
        if "label" in query:
            key, _, wanted = query["label"].partition(":")
            items = [
                (i, s)
                for i, s in items
                if key in s.value.get("labels", {})
                and (not wanted or s.value["labels"][key] == wanted)
            ]
        if resource == "routes" and "uri" in query:
            items = [
                (i, s)
                for i, s in items
                if query["uri"] in str(s.value.get("uri", ""))
                or any(query["uri"] in u for u in s.value.get("uris", []))
            ]
        if "filter" in query:
            field_name, _, wanted = query["filter"].partition("=")
            items = [(i, s) for i, s in items if str(s.value.get(field_name)) == wanted]
        total = len(items)
        if "page" in query or "page_size" in query:
            page = _int_arg(query, "page", 1, minimum=1)
            size = _int_arg(query, "page_size", PAGE_SIZE_MIN, minimum=PAGE_SIZE_MIN)
            if size > PAGE_SIZE_MAX:
                raise _error(
                    400,
                    f'invalid configuration: property "page_size" validation failed: '
                    f"expected {size} to be at most {PAGE_SIZE_MAX}",
                )
            items = items[(page - 1) * size : page * size]
        listing = [self._envelope(resource, i, s) for i, s in items]
        return _json({"list": listing, "total": total}, 200)


def _int_arg(query: Any, name: str, default: int, *, minimum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _error(
            400,
            f'invalid configuration: property "{name}" validation failed: '
            f"wrong type: expected integer, got string",
        ) from None
    if value < minimum:
        raise _error(
            400,
            f'invalid configuration: property "{name}" validation failed: '
            f"expected {value} to be at least {minimum}",
        )
    return value


def _split_upstreams(route: dict[str, Any]) -> set[str]:
    split = route.get("plugins", {}).get("traffic-split", {})
    return {
        str(weighted["upstream_id"])
        for rule in split.get("rules", [])
        for weighted in rule.get("weighted_upstreams", [])
        if "upstream_id" in weighted
    }


def _merge(origin: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: objects merge deeply, null deletes a key, arrays are replaced."""
    for key, value in patch.items():
        if value is None:
            origin.pop(key, None)
        elif isinstance(value, dict) and isinstance(origin.get(key), dict):
            origin[key] = _merge(origin[key], value)
        else:
            origin[key] = value
    return origin


def _forbid_stamps(body: dict[str, Any]) -> None:
    for stamp in ("create_time", "update_time"):
        if stamp in body:
            raise _error(400, f"the property is forbidden: {stamp}")


def _body_object(request: web.Request) -> dict[str, Any]:
    body = request[BODY]
    if not isinstance(body, dict):
        raise _error(400, "invalid request body: expected a JSON object")
    return body


def _json(body: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# Re-exported for tests that validate documents the same way the fake does.
__all__ = ["ApisixFake", "Request", "SchemaError", "validate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9180)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--viewer-key")
    args = parser.parse_args()

    async def serve() -> None:
        fake = ApisixFake(
            admin_key=args.admin_key, viewer_key=args.viewer_key, host=args.host, port=args.port
        )
        async with fake:
            print(f"fake APISIX Admin API on {fake.url}", flush=True)  # noqa: T201
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()

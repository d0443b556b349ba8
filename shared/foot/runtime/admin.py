"""The admin HTTP server every service runs: health, readiness, metrics, its objects, the API."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from foot.api import ApiError, ApiReply
from foot.errors import FootError, InvalidObjectError, NotFoundError
from foot.kinds import KINDS, KindInfo
from foot.objects import load_documents
from foot.runtime.ingest import ApiIngest
from foot.runtime.metrics import CONTENT_TYPE, ServiceMetrics
from foot.runtime.wire import http_status
from foot.store import ObjectStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(exc: FootError) -> web.Response:
    error = ApiError.from_exception(exc).model_dump(mode="json", by_alias=True)
    return json_response({"error": error}, status=http_status(exc.code))


def reply_response(reply: ApiReply) -> web.Response:
    status = 200 if reply.ok else 422
    return json_response(reply.model_dump(mode="json", by_alias=True, exclude_none=True), status)


class AdminServer:
    """Health, readiness and metrics of one service; more routes with `add_route` (before
    `start`), its objects and the API with `add_object_routes`."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        token: str | None,
        *,
        metrics: ServiceMetrics,
        readiness_problems: Callable[[], list[str]],
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.token = token
        self.metrics = metrics
        self.readiness_problems = readiness_problems
        self.app = web.Application(middlewares=[self._auth])
        self.add_route("GET", "/healthz", self._healthz)
        self.add_route("GET", "/readyz", self._readyz)
        self.add_route("GET", "/metrics", self._metrics)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `method path`; paths under /admin and /api need the bearer token."""
        if method == "GET":
            self.app.router.add_get(path, handler)  # HEAD as well
        else:
            self.app.router.add_route(method, path, handler)

    def add_object_routes(self, store: ObjectStore, ingest: ApiIngest) -> None:
        """/admin/objects (the kinds this service owns, read and deleted through `store`)
        and /api/apply, /api/delete (handed to `ingest`)."""
        ObjectRoutes(self.name, store, ingest).register(self)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server  # noqa: SLF001 - aiohttp has no public way to read the bound port
            assert server is not None  # noqa: S101
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        guarded = request.path.startswith(("/admin", "/api"))
        if guarded and self.token is not None:
            supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                body = {
                    "error": {"code": "Unauthorized", "message": "a valid bearer token is required"}
                }
                return json_response(body, status=401)
        return await handler(request)

    async def _healthz(self, _: web.Request) -> web.Response:
        return json_response({"status": "ok", "service": self.name})

    async def _readyz(self, _: web.Request) -> web.Response:
        problems = self.readiness_problems()
        if problems:
            return json_response({"status": "not ready", "problems": problems}, status=503)
        return json_response({"status": "ready", "service": self.name})

    async def _metrics(self, _: web.Request) -> web.Response:
        self.metrics.ready.set(0 if self.readiness_problems() else 1)
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


class ObjectRoutes:
    """The admin API on the objects one service owns."""

    def __init__(self, owner: str, store: ObjectStore, ingest: ApiIngest) -> None:
        self.owner = owner
        self.store = store
        self.ingest = ingest

    def register(self, admin: AdminServer) -> None:
        admin.add_route("GET", "/admin/objects", self._kinds)
        admin.add_route("GET", "/admin/objects/{kind}", self._list)
        admin.add_route("GET", "/admin/objects/{kind}/{name}", self._get)
        admin.add_route("DELETE", "/admin/objects/{kind}/{name}", self._delete_one)
        admin.add_route("POST", "/api/apply", self._apply)
        admin.add_route("POST", "/api/delete", self._delete)

    def _owned_kind(self, request: web.Request) -> KindInfo:
        info = KINDS.resolve(request.match_info["kind"])
        if info.owner != self.owner:
            raise NotFoundError(f"{info.plural} are served by the {info.owner} service")
        return info

    async def _kinds(self, _: web.Request) -> web.Response:
        kinds = [
            {
                "apiVersion": i.api_version,
                "kind": i.kind,
                "plural": i.plural,
                "namespaced": i.namespaced,
            }
            for i in KINDS.owned_by(self.owner)
        ]
        return json_response({"kinds": kinds})

    async def _list(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
            objects = await self.store.list(info, request.query.get("namespace"))
        except FootError as exc:
            return error_response(exc)
        return json_response({"items": [o.to_dict() for o in objects]})

    async def _get(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
            namespace = request.query.get("namespace") or ("default" if info.namespaced else None)
            found = await self.store.get(info, namespace, request.match_info["name"])
            if found is None:
                raise NotFoundError(f"{info.kind} {request.match_info['name']} not found")
        except FootError as exc:
            return error_response(exc)
        return json_response(found.to_dict())

    async def _documents(self, request: web.Request) -> list[dict[str, object]]:
        return load_documents(await request.read(), source="request body")

    async def _apply(self, request: web.Request) -> web.Response:
        try:
            documents = await self._documents(request)
        except InvalidObjectError as exc:
            return error_response(exc)
        return reply_response(await self.ingest.apply_documents(documents))

    async def _delete(self, request: web.Request) -> web.Response:
        try:
            documents = await self._documents(request)
        except InvalidObjectError as exc:
            return error_response(exc)
        return reply_response(await self.ingest.delete_documents(documents))

    async def _delete_one(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
        except FootError as exc:
            return error_response(exc)
        ref = {
            "apiVersion": info.api_version,
            "kind": info.kind,
            "metadata": {
                "name": request.match_info["name"],
                "namespace": request.query.get("namespace"),
            },
        }
        return reply_response(await self.ingest.delete_documents([ref]))

"""The admin HTTP server every service runs: health, readiness, metrics, its objects, the API."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from foot.api import ApiError, ApiReply
from foot.errors import FootError, InvalidObjectError, NotFoundError
from foot.kinds import KINDS, KindInfo
from foot.objects import load_documents
from foot.runtime.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from foot.runtime.service import Service

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HTTP_STATUS = {"Invalid": 422, "NotFound": 404, "Conflict": 409, "Unavailable": 503}


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(exc: FootError) -> web.Response:
    error = ApiError.from_exception(exc).model_dump(mode="json", by_alias=True)
    return json_response({"error": error}, status=HTTP_STATUS.get(exc.code, 500))


def reply_response(reply: ApiReply) -> web.Response:
    status = 200 if reply.ok else 422
    return json_response(reply.model_dump(mode="json", by_alias=True, exclude_none=True), status)


class AdminServer:
    def __init__(self, service: Service, host: str, port: int, token: str | None) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.token = token
        self.app = web.Application(middlewares=[self._auth])
        routes = self.app.router
        routes.add_get("/healthz", self._healthz)
        routes.add_get("/readyz", self._readyz)
        routes.add_get("/metrics", self._metrics)
        routes.add_get("/admin/objects", self._kinds)
        routes.add_get("/admin/objects/{kind}", self._list)
        routes.add_get("/admin/objects/{kind}/{name}", self._get)
        routes.add_delete("/admin/objects/{kind}/{name}", self._delete_one)
        routes.add_post("/api/apply", self._apply)
        routes.add_post("/api/delete", self._delete)
        self._runner: web.AppRunner | None = None

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
        return json_response({"status": "ok", "service": self.service.name})

    async def _readyz(self, _: web.Request) -> web.Response:
        problems = self.service.readiness_problems()
        if problems:
            return json_response({"status": "not ready", "problems": problems}, status=503)
        return json_response({"status": "ready", "service": self.service.name})

    async def _metrics(self, _: web.Request) -> web.Response:
        self.service.metrics.ready.set(0 if self.service.readiness_problems() else 1)
        return web.Response(
            body=self.service.metrics.render(), headers={"Content-Type": CONTENT_TYPE}
        )

    def _owned_kind(self, request: web.Request) -> KindInfo:
        info = KINDS.resolve(request.match_info["kind"])
        if info.owner != self.service.name:
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
            for i in KINDS.owned_by(self.service.name)
        ]
        return json_response({"kinds": kinds})

    async def _list(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
            objects = await self.service.store.list(info, request.query.get("namespace"))
        except FootError as exc:
            return error_response(exc)
        return json_response({"items": [o.to_dict() for o in objects]})

    async def _get(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
            namespace = request.query.get("namespace") or ("default" if info.namespaced else None)
            found = await self.service.store.get(info, namespace, request.match_info["name"])
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
        return reply_response(await self.service.ingest.apply_documents(documents))

    async def _delete(self, request: web.Request) -> web.Response:
        try:
            documents = await self._documents(request)
        except InvalidObjectError as exc:
            return error_response(exc)
        return reply_response(await self.service.ingest.delete_documents(documents))

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
        return reply_response(await self.service.ingest.delete_documents([ref]))

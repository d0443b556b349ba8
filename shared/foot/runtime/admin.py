"""The admin HTTP server every service runs: health, readiness, metrics, its objects, the API.

Secure by default: one middleware (`AdminGuard`) stands before every route, those services
add themselves included. Only /healthz, /readyz and /metrics are open (probes, Prometheus);
everything else wants the admin token, or the read token for GET and HEAD, and with no
admin token configured it is closed. Requests a web page could send from another origin
(a foreign `Origin`, `Sec-Fetch-Site` other than same-origin) are refused, and so are
bodies that are neither JSON nor YAML (a page can send `text/plain` without asking).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from yarl import URL

from foot.api import ApiError, ApiReply
from foot.errors import FootError, InvalidObjectError, NotFoundError
from foot.kinds import KINDS, KindInfo
from foot.objects import load_documents
from foot.runtime.ingest import ApiIngest
from foot.runtime.metrics import CONTENT_TYPE, ServiceMetrics
from foot.runtime.openapi import OPENAPI_PATH, admin_api_document
from foot.runtime.settings import AdminTokens
from foot.runtime.wire import http_status, redact_secrets
from foot.store import ObjectStore
from foot.yamlsafe import MAX_INPUT_BYTES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Served without a token: probes and Prometheus scrapes carry none."""
READ_METHODS = frozenset({"GET", "HEAD"})
"""What the read token may do."""
BODY_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml"})
"""Media types (parameters such as charset aside) a request body may have."""
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
"""`Sec-Fetch-Site` values of requests a browser did not send on behalf of another site
("none": typed by the user). same-site is refused too: another port of localhost is
another origin, and exactly where a hostile local page would be."""
BEARER_CHALLENGE = 'Bearer realm="foot"'
FIRST_ERROR_STATUS = 400


class UnauthorizedError(FootError):
    """No token, a wrong one, or none configured to compare with."""

    code = "Unauthorized"


class ForbiddenError(FootError):
    """A known token or an origin that may not do this."""

    code = "Forbidden"


class UnsupportedMediaTypeError(FootError):
    """A body that is neither JSON nor YAML."""

    code = "UnsupportedMediaType"


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def error_response(exc: FootError) -> web.Response:
    error = ApiError.from_exception(exc).model_dump(mode="json", by_alias=True)
    return json_response({"error": error}, status=http_status(exc.code))


def http_error_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (no such route, a method the route lacks, a body over the
    size limit) in the one error shape rather than its plain text; the status and the
    headers (Allow) kept."""
    code = exc.reason.title().replace(" ", "")
    message = f"{exc.reason}: {exc.status}"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = f"the body is larger than the limit of {MAX_INPUT_BYTES} bytes"
    error = ApiError(code=code, message=message)
    response = json_response({"error": error.model_dump(mode="json", by_alias=True)}, exc.status)
    for header in ("Allow",):
        if header in exc.headers:
            response.headers[header] = exc.headers[header]
    return response


class AdminGuard:
    """Who may send what to the admin HTTP server (see the module docstring)."""

    def __init__(self, tokens: AdminTokens) -> None:
        self._admin = None if tokens.admin is None else tokens.admin.encode()
        self._read = None if tokens.read is None else tokens.read.encode()

    def check(self, request: web.Request) -> None:
        """Raise UnauthorizedError, ForbiddenError or UnsupportedMediaTypeError unless
        `request` may go on to its route."""
        self._check_origin(request)
        if request.path not in OPEN_PATHS:
            self._check_token(request)
        if request.body_exists:
            self._check_body_type(request)

    @staticmethod
    def _check_origin(request: web.Request) -> None:
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in OWN_FETCH_SITES:
            raise ForbiddenError(f"cross-origin requests are refused (Sec-Fetch-Site: {site})")
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request):
            raise ForbiddenError("requests from another origin are refused")

    def _check_token(self, request: web.Request) -> None:
        if self._admin is None:
            raise UnauthorizedError(
                "the admin API is closed: this service has no admin token configured "
                "(admin_token_file)"
            )
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise UnauthorizedError("a bearer token is required (Authorization: Bearer ...)")
        supplied = credential.strip().encode("utf-8", errors="replace")
        # Both compared every time, in constant time: the answer's timing tells nothing.
        is_admin = hmac.compare_digest(supplied, self._admin)
        is_reader = self._read is not None and hmac.compare_digest(supplied, self._read)
        if is_admin:
            return
        if not is_reader:
            raise UnauthorizedError("the bearer token is not valid")
        if request.method not in READ_METHODS:
            raise ForbiddenError(f"the read-only token may not {request.method} {request.path}")

    @staticmethod
    def _check_body_type(request: web.Request) -> None:
        if request.content_type not in BODY_TYPES:
            given = request.headers.get("Content-Type", "none")
            raise UnsupportedMediaTypeError(
                f"the body must be application/json or application/yaml, not {given}"
            )


def _same_origin(origin: str, request: web.Request) -> bool:
    """Whether `origin` (an Origin header) is this server as the request addressed it."""
    try:
        theirs = str(URL(origin).origin())
        ours = str(URL(f"{request.scheme}://{request.host}").origin())
    except ValueError:  # "null" (a sandboxed page, a file) or garbage: not us
        return False
    return theirs.lower() == ours.lower()


def reply_response(reply: ApiReply) -> web.Response:
    status = 200 if reply.ok else 422
    return json_response(reply.model_dump(mode="json", by_alias=True, exclude_none=True), status)


class AdminServer:
    """Health, readiness and metrics of one service; more routes with `add_route` (before
    `start`), its objects and the API with `add_object_routes`; every route behind the
    `AdminGuard` of `tokens`."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        tokens: AdminTokens,
        *,
        metrics: ServiceMetrics,
        readiness_problems: Callable[[], list[str]],
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.guard = AdminGuard(tokens)
        self.metrics = metrics
        self.readiness_problems = readiness_problems
        # Bodies up to the loader's own limit (kube-apiserver's 3 MiB), not aiohttp's 1 MiB.
        self.app = web.Application(middlewares=[self._guard], client_max_size=MAX_INPUT_BYTES)
        self.add_route("GET", "/healthz", self._healthz)
        self.add_route("GET", "/readyz", self._readyz)
        self.add_route("GET", "/metrics", self._metrics)
        self.add_route("GET", OPENAPI_PATH, self._openapi)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `method path`, behind the guard (a token needed, the read token for GET)."""
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
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            self.guard.check(request)
        except FootError as exc:
            refused = error_response(exc)
            if isinstance(exc, UnauthorizedError):
                refused.headers["WWW-Authenticate"] = BEARER_CHALLENGE
            return refused
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < FIRST_ERROR_STATUS:  # redirects stay as aiohttp makes them
                raise
            return http_error_response(exc)

    async def _healthz(self, _: web.Request) -> web.Response:
        return json_response({"status": "ok", "service": self.name})

    async def _readyz(self, _: web.Request) -> web.Response:
        problems = self.readiness_problems()
        if problems:
            return json_response({"status": "not ready", "problems": problems}, status=503)
        return json_response({"status": "ready", "service": self.name})

    async def _openapi(self, _: web.Request) -> web.Response:
        """The OpenAPI document of this server's routes (docs/admin-api.openapi.json has every
        service's). Behind the read token like every other read, not open like the probes:
        the open paths are only what probes and scrapes need, and the document is published
        with the project for anyone who wants it without a token."""
        served = [
            (route.method, route.resource.canonical)
            for route in self.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        ]
        return json_response(admin_api_document(served))

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
        return json_response({"items": [redact_secrets(o.to_dict()) for o in objects]})

    async def _get(self, request: web.Request) -> web.Response:
        try:
            info = self._owned_kind(request)
            namespace = request.query.get("namespace") or ("default" if info.namespaced else None)
            found = await self.store.get(info, namespace, request.match_info["name"])
            if found is None:
                raise NotFoundError(f"{info.kind} {request.match_info['name']} not found")
        except FootError as exc:
            return error_response(exc)
        return json_response(redact_secrets(found.to_dict()))

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

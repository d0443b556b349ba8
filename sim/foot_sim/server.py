"""The Kubernetes REST API of one virtual cluster, as an aiohttp application.

Routing is done by hand on the path segments: the API's URL space
(`/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`, `/apis/{group}/...`)
is regular and a single handler keeps per-request overhead low.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import random
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
import yaml
from aiohttp import web

from foot_sim import discovery, errors
from foot_sim.errors import ApiError
from foot_sim.faults import Fault, FaultMode
from foot_sim.patches import PatchError, PatchFormatError, json_patch, merge_patch
from foot_sim.resources import NAMESPACES, RESOURCES_BY_PATH, ResourceType
from foot_sim.selectors import (
    FieldRequirement,
    LabelRequirement,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from foot_sim.store import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    PATCH_TYPES,
    STRATEGIC_MERGE_PATCH,
    ClusterStore,
    WatchEvent,
)

JSON = dict[str, Any]

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
_JSON_CONTENT = "application/json"
# Accepted request bodies; a missing Content-Type reads as octet-stream and is taken as JSON.
_BODY_TYPES = frozenset(
    {_JSON_CONTENT, "application/yaml", "application/x-yaml", "application/octet-stream"}
)
# A real server picks a random watch timeout between 30 and 60 minutes when the client sets none.
_DEFAULT_WATCH_TIMEOUT_SECONDS = 1800
_WATCH_QUEUE_LIMIT = 10_000

try:
    _YAML_LOADER: Any = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YAML_LOADER = yaml.SafeLoader


def _load_yaml(raw: bytes) -> Any:
    return yaml.load(raw, Loader=_YAML_LOADER)  # noqa: S506 - a SafeLoader, in C when available


def _load_apply_body(raw: bytes) -> Any:
    """An apply patch is YAML, and most clients send it as JSON (a subset the API server reads
    with JSON semantics): JSON is decoded as JSON, anything else as YAML."""
    if raw.lstrip()[:1] == b"{":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # a YAML flow mapping, not JSON
    return _load_yaml(raw)


def _json_response(body: JSON, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=_JSON_CONTENT)


def _error_response(error: ApiError) -> web.Response:
    response = _json_response(error.status(), error.code)
    response.headers.update(error.headers)
    return response


def _path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _without_type(obj: JSON) -> JSON:
    """List items carry no kind/apiVersion on a real server."""
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


@dataclass(slots=True)
class _Target:
    """What a resource URL addresses."""

    resource: ResourceType
    namespace: str  # "" for cluster-scoped resources and all-namespace collections
    all_namespaces: bool
    name: str | None
    subresource: str


@dataclass
class ClusterApi:
    """Serves one virtual cluster: auth, faults, discovery and the resource verbs."""

    name: str
    token: str
    store: ClusterStore
    server_address: str = "127.0.0.1:0"
    bookmark_interval: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    fault: Fault = field(default_factory=Fault)
    _fault_changed: asyncio.Event = field(default_factory=asyncio.Event)
    requests_served: int = 0

    # --- faults -------------------------------------------------------------------------

    def set_fault(self, fault: Fault) -> None:
        self.fault = fault
        self._fault_changed.set()
        self._fault_changed = asyncio.Event()

    async def _wait_while_partitioned(self, request: web.Request) -> None:
        """Hold the request unanswered; once healed, drop the connection as a lost link would."""
        while self.fault.mode is FaultMode.PARTITIONED:
            await self._fault_changed.wait()
        if request.transport is not None:
            request.transport.abort()

    async def _inject_fault(self, request: web.Request) -> web.StreamResponse | None:
        fault = self.fault
        if fault.mode is FaultMode.PARTITIONED:
            await self._wait_while_partitioned(request)
            return web.Response(status=503)
        if fault.mode is FaultMode.SLOW:
            await asyncio.sleep(fault.latency_ms / 1000)
        elif fault.mode is FaultMode.ERROR_RATE and self.rng.random() < fault.error_rate:
            code = self.rng.choice(fault.error_codes)
            if code == HTTPStatus.TOO_MANY_REQUESTS:
                return _error_response(errors.too_many_requests(fault.retry_after_seconds))
            return _error_response(
                errors.internal_error("injected fault: the simulated cluster is failing")
            )
        return None

    # --- entry point --------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests_served += 1
        faulted = await self._inject_fault(request)
        if faulted is not None:
            return faulted
        path = request.path.rstrip("/") or "/"
        try:
            if path not in _PUBLIC_PATHS:
                self._authorize(request, path)
            return await self._route(request, path)
        except ApiError as error:
            return _error_response(error)

    def _authorize(self, request: web.Request, path: str) -> None:
        """A wrong token is 401; no token is the anonymous user, whom RBAC forbids this."""
        header = request.headers.get("Authorization")
        if header is None:
            raise self._anonymous_forbidden(request, path)
        scheme, _, credential = header.partition(" ")
        valid = hmac.compare_digest(credential.strip().encode(), self.token.encode())
        if scheme.lower() != "bearer" or not valid:
            raise errors.unauthorized()

    def _anonymous_forbidden(self, request: web.Request, path: str) -> ApiError:
        user = 'User "system:anonymous"'
        target: _Target | None = None
        address = _resource_address(path)
        if address is not None:
            with contextlib.suppress(ApiError):
                target = _target(*address)
        verb = _VERBS.get(request.method, request.method.lower())
        if target is None:
            return ApiError(403, "Forbidden", f'forbidden: {user} cannot {verb} path "{path}"', {})
        resource = target.resource
        if target.name is None:
            collection_verbs = {"get": "list", "delete": "deletecollection"}
            if _truthy(request.query.get("watch")):
                collection_verbs["get"] = "watch"
            verb = collection_verbs.get(verb, verb)
        plural = (
            f"{resource.plural}/{target.subresource}" if target.subresource else resource.plural
        )
        if resource.namespaced and not target.all_namespaces:
            scope = f'in the namespace "{target.namespace}"'
        else:
            scope = "at the cluster scope"
        details: JSON = {}
        subject = resource.group_resource
        if target.name is not None:
            details["name"] = target.name
            subject += f' "{target.name}"'
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        message = (
            f"{subject} is forbidden: {user} cannot {verb} resource "
            f'"{plural}" in API group "{resource.group}" {scope}'
        )
        return ApiError(403, "Forbidden", message, details)

    async def _route(self, request: web.Request, path: str) -> web.StreamResponse:
        if request.method == "GET":
            document = self._document(request, path)
            if document is not None:
                return document
        address = _resource_address(path)
        if address is None:
            raise _path_not_found()
        return await self._resource_request(request, _target(*address))

    def _document(  # noqa: PLR0912 - one case per discovery endpoint
        self, request: web.Request, path: str
    ) -> web.StreamResponse | None:
        """Non-resource GETs: health, version, discovery, OpenAPI; None for resource paths."""
        if path in ("/healthz", "/livez", "/readyz"):
            if "verbose" in request.query:
                check = path.lstrip("/")
                return web.Response(text=f"[+]ping ok\n[+]etcd ok\n{check} check passed\n")
            return web.Response(text="ok")
        document: JSON | None
        match [s for s in path.split("/") if s]:
            case ["version"]:
                document = discovery.version_info()
            case ["api"]:
                document = discovery.api_versions(self.server_address)
            case ["apis"]:
                document = discovery.api_group_list()
            case ["openapi", "v2"]:
                document = discovery.openapi_v2()
            case ["openapi", "v3"]:
                document = discovery.openapi_v3_index()
            case ["openapi", "v3", *group_version]:
                document = discovery.openapi_v3_group("/".join(group_version))
            case ["api", version]:
                document = discovery.api_resource_list("", version)
            case ["apis", group]:
                document = discovery.api_group(group)
            case ["apis", group, version]:
                document = discovery.api_resource_list(group, version)
            case _:
                return None
        if document is None:
            raise _path_not_found()
        return _json_response(document)

    # --- resources ----------------------------------------------------------------------

    async def _resource_request(self, request: web.Request, target: _Target) -> web.StreamResponse:
        if target.subresource:
            return await self._subresource_request(request, target)
        if target.name is None:
            return await self._collection_request(request, target)
        return await self._object_request(request, target, target.name)

    async def _collection_request(
        self, request: web.Request, target: _Target
    ) -> web.StreamResponse:
        method = request.method
        if method == "GET":
            if _truthy(request.query.get("watch")):
                return await self._watch(request, target)
            return self._list(request, target)
        if method == "POST" and not target.all_namespaces:
            body = await self._read_json(request)
            created = self.store.create(
                target.resource, target.namespace, body, manager=self._manager(request)
            )
            return _json_response(created, HTTPStatus.CREATED)
        deletable = not target.all_namespaces and target.resource is not NAMESPACES
        if method == "DELETE" and deletable:
            return self._delete_collection(request, target)
        raise errors.method_not_allowed()

    async def _object_request(
        self, request: web.Request, target: _Target, name: str
    ) -> web.StreamResponse:
        method = request.method
        if method == "GET":
            obj = self.store.get(target.resource, target.namespace, name)
            if _wants_table(request):
                return _json_response(discovery.table([obj], obj["metadata"]["resourceVersion"]))
            return _json_response(obj)
        if method == "PUT":
            body = await self._read_json(request)
            updated = self.store.update(
                target.resource, target.namespace, name, body, manager=self._manager(request)
            )
            return _json_response(updated)
        if method == "PATCH":
            return await self._patch(request, target, "")
        if method == "DELETE":
            return await self._delete(request, target)
        raise errors.method_not_allowed()

    async def _subresource_request(
        self, request: web.Request, target: _Target
    ) -> web.StreamResponse:
        resource, namespace, name = target.resource, target.namespace, target.name
        if name is None:
            raise _path_not_found()
        method = request.method
        if target.subresource == "status" and resource.has_status:
            if method == "GET":
                return _json_response(self.store.get(resource, namespace, name))
            if method == "PUT":
                body = await self._read_json(request)
                updated = self.store.update(
                    resource,
                    namespace,
                    name,
                    body,
                    manager=self._manager(request),
                    subresource="status",
                )
                return _json_response(updated)
            if method == "PATCH":
                return await self._patch(request, target, "status")
            raise errors.method_not_allowed()
        if target.subresource == "scale" and resource.has_scale:
            return await self._scale(request, target)
        raise _path_not_found()

    async def _scale(self, request: web.Request, target: _Target) -> web.StreamResponse:
        resource, namespace, name = target.resource, target.namespace, target.name
        if name is None:
            raise _path_not_found()
        if request.method == "GET":
            return _json_response(_scale_of(self.store.get(resource, namespace, name)))
        if request.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed()
        current = self.store.get(resource, namespace, name)
        if request.method == "PUT":
            body = await self._read_json(request)
            replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
            wanted_version = (
                (body.get("metadata") or {}).get("resourceVersion")
                if isinstance(body, dict)
                else None
            )
            if wanted_version and wanted_version != current["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, name, errors.STALE_OBJECT)
        else:
            patched = _patch_scale(
                _scale_of(current), request.content_type, await self._read_body(request)
            )
            replicas = (patched.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                "Invalid",
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {replicas}: '
                "must be greater than or equal to 0",
                {"name": name, "group": "autoscaling", "kind": "Scale"},
            )
        merge = {"spec": {"replicas": replicas}}
        updated = self.store.patch(
            resource,
            namespace,
            name,
            MERGE_PATCH,
            merge,
            manager=self._manager(request),
        )
        return _json_response(_scale_of(updated))

    async def _patch(
        self, request: web.Request, target: _Target, subresource: str
    ) -> web.StreamResponse:
        if target.name is None:
            raise _path_not_found()
        patch_type = request.content_type
        if patch_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(patch_type)
        raw = await self._read_body(request)
        try:
            body = _load_apply_body(raw) if patch_type == APPLY_PATCH else orjson.loads(raw)
        except (yaml.YAMLError, orjson.JSONDecodeError) as error:
            raise errors.bad_request(f"error decoding patch: {error}") from error
        field_manager = request.query.get("fieldManager", "")
        if patch_type == APPLY_PATCH and not field_manager:
            raise errors.field_manager_required()
        existed = self.store.find(target.resource, target.namespace, target.name) is not None
        patched = self.store.patch(
            target.resource,
            target.namespace,
            target.name,
            patch_type,
            body,
            manager=field_manager or self._manager(request),
            force=_truthy(request.query.get("force")),
            subresource=subresource,
        )
        return _json_response(patched, 200 if existed else 201)

    async def _delete(self, request: web.Request, target: _Target) -> web.StreamResponse:
        if target.name is None:
            raise _path_not_found()
        options: JSON = {}
        raw = await self._read_body(request)
        if raw.strip():
            try:
                parsed = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                raise errors.bad_request(f"error decoding DeleteOptions: {error}") from error
            options = parsed if isinstance(parsed, dict) else {}
        preconditions = options.get("preconditions") or {}
        obj, deleted_now = self.store.delete(
            target.resource,
            target.namespace,
            target.name,
            precondition_uid=preconditions.get("uid"),
            precondition_resource_version=preconditions.get("resourceVersion"),
        )
        if not deleted_now:
            return _json_response(obj)
        details: JSON = {"name": target.name}
        if target.resource.group:
            details["group"] = target.resource.group
        details["kind"] = target.resource.plural
        details["uid"] = obj["metadata"]["uid"]
        return _json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
        )

    def _delete_collection(self, request: web.Request, target: _Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, target.resource)
        page = self.store.list_objects(target.resource, target.namespace, labels, fields)
        deleted = []
        for obj in page.items:
            final, _ = self.store.delete(target.resource, target.namespace, obj["metadata"]["name"])
            deleted.append(_without_type(final))
        return _json_response(
            {
                "kind": target.resource.list_kind,
                "apiVersion": target.resource.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            }
        )

    def _selectors(
        self, request: web.Request, resource: ResourceType
    ) -> tuple[list[LabelRequirement], list[FieldRequirement]]:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""), resource.kind)
        return labels, fields

    def _list(self, request: web.Request, target: _Target) -> web.StreamResponse:
        labels, fields = self._selectors(request, target.resource)
        try:
            limit = int(request.query.get("limit", "0") or 0)
        except ValueError as error:
            raise errors.bad_request(f"invalid limit: {request.query['limit']}") from error
        page = self.store.list_objects(
            target.resource,
            None if target.all_namespaces or not target.resource.namespaced else target.namespace,
            labels,
            fields,
            limit=max(limit, 0),
            continue_token=request.query.get("continue", ""),
        )
        if _wants_table(request):
            return _json_response(
                discovery.table(page.items, str(page.resource_version), page.continue_token)
            )
        metadata: JSON = {"resourceVersion": str(page.resource_version)}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        if page.remaining is not None:
            metadata["remainingItemCount"] = page.remaining
        body = {
            "kind": target.resource.list_kind,
            "apiVersion": target.resource.api_version,
            "metadata": metadata,
            "items": [_without_type(obj) for obj in page.items],
        }
        return _json_response(body)

    async def _watch(self, request: web.Request, target: _Target) -> web.StreamResponse:
        resource = target.resource
        labels, fields = self._selectors(request, resource)
        namespace = None if target.all_namespaces or not resource.namespaced else target.namespace
        try:
            timeout = float(request.query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT_SECONDS)
        except ValueError as error:
            raise errors.bad_request("invalid timeoutSeconds") from error
        start_version = request.query.get("resourceVersion", "")
        if start_version and not start_version.isdigit():
            raise errors.bad_request(f"invalid resource version: {start_version}")
        watch = _WatchFilter(resource, namespace, labels, fields)
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

        def deliver(event: WatchEvent) -> None:
            if event.resource is resource:
                if queue.qsize() >= _WATCH_QUEUE_LIMIT:
                    queue.put_nowait(None)  # a consumer this slow is dropped, as a real server does
                else:
                    queue.put_nowait(event)

        # Subscribing and taking the starting point happen with no await in between, so the
        # initial events and the live ones neither overlap nor leave a gap.
        unsubscribe = self.store.subscribe(deliver)
        try:
            initial: list[JSON] = []
            expired: ApiError | None = None
            if start_version in ("", "0"):
                initial = [
                    {"type": "ADDED", "object": obj}
                    for obj in self.store.iter_objects(resource, namespace)
                    if watch.matches(obj)
                ]
            else:
                try:
                    initial = [
                        e
                        for e in map(watch.convert, self.store.events_since(int(start_version)))
                        if e
                    ]
                except ApiError as error:
                    expired = error
            response = web.StreamResponse(headers={"Content-Type": _JSON_CONTENT})
            response.enable_chunked_encoding()
            await response.prepare(request)
            if expired is not None:
                await response.write(
                    orjson.dumps({"type": "ERROR", "object": expired.status()}) + b"\n"
                )
                return response
            for event in initial:
                await response.write(orjson.dumps(event) + b"\n")
            await self._stream_events(request, response, queue, watch, duration=timeout)
        finally:
            unsubscribe()
        return response

    async def _stream_events(
        self,
        request: web.Request,
        response: web.StreamResponse,
        queue: asyncio.Queue[WatchEvent | None],
        watch: _WatchFilter,
        *,
        duration: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        bookmarks = _truthy(request.query.get("allowWatchBookmarks"))

        def next_bookmark(now: float) -> float:
            # Like the real watch cache: roughly every interval, and 2 s before the deadline.
            return min(now + self.bookmark_interval, deadline - 2.0)

        bookmark_at = next_bookmark(loop.time()) if bookmarks else float("inf")
        while True:
            now = loop.time()
            if now >= deadline:
                return
            wake_at = min(deadline, bookmark_at)
            event: WatchEvent | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wake_at - now, 0)):
                    event = await queue.get()
                    if event is None:
                        return
            if self.fault.mode is FaultMode.PARTITIONED:
                await self._wait_while_partitioned(request)
                return
            if event is None:
                if bookmarks and loop.time() >= bookmark_at:
                    marker = {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": watch.resource.kind,
                            "apiVersion": watch.resource.api_version,
                            "metadata": {"resourceVersion": str(self.store.resource_version)},
                        },
                    }
                    await response.write(orjson.dumps(marker) + b"\n")
                    bookmark_at = next_bookmark(loop.time())
                    if bookmark_at <= loop.time():
                        bookmark_at = float("inf")
                continue
            converted = watch.convert(event)
            if converted is not None:
                await response.write(orjson.dumps(converted) + b"\n")

    # --- request helpers ----------------------------------------------------------------

    @staticmethod
    def _manager(request: web.Request) -> str:
        explicit = request.query.get("fieldManager")
        if explicit:
            return explicit
        return request.headers.get("User-Agent", "").split("/", 1)[0][:128]

    @staticmethod
    async def _read_body(request: web.Request) -> bytes:
        return await request.read()

    async def _read_json(self, request: web.Request) -> Any:
        raw = await self._read_body(request)
        content_type = request.content_type
        if content_type not in _BODY_TYPES:
            # Protobuf and CBOR bodies: the answer that makes client-go retry with JSON.
            raise errors.unsupported_media_type(content_type)
        try:
            if content_type in ("application/yaml", "application/x-yaml"):
                return _load_yaml(raw)
            return orjson.loads(raw)
        except (yaml.YAMLError, orjson.JSONDecodeError) as error:
            raise errors.bad_request(
                f"the body of the request could not be decoded: {error}"
            ) from error


def _resource_address(path: str) -> tuple[str, str, list[str]] | None:
    """(group, version, rest of the path) for resource URLs, None for anything else."""
    match [s for s in path.split("/") if s]:
        case ["api", version, first, *rest]:
            return "", version, [first, *rest]
        case ["apis", group, version, first, *rest]:
            return group, version, [first, *rest]
        case _:
            return None


def _item(tail: list[str]) -> tuple[str | None, str]:
    """(name, subresource) from the path segments below a collection."""
    match tail:
        case []:
            return None, ""
        case [name]:
            return name, ""
        case [name, subresource]:
            return name, subresource
        case _:
            raise _path_not_found()


def _target(group: str, version: str, rest: list[str]) -> _Target:
    """What a resource URL below /api/<v> or /apis/<g>/<v> addresses; 404 if nothing."""
    match rest:
        case ["namespaces", namespace, plural, *tail]:
            resource = RESOURCES_BY_PATH.get((group, version, plural))
            if resource is not None and resource.namespaced:
                name, subresource = _item(tail)
                return _Target(resource, namespace, False, name, subresource)
            if group == "" and plural == "status" and not tail:
                return _Target(NAMESPACES, "", False, namespace, "status")
        case [plural, *tail]:
            resource = RESOURCES_BY_PATH.get((group, version, plural))
            if resource is not None:
                name, subresource = _item(tail)
                return _Target(resource, "", resource.namespaced, name, subresource)
    raise _path_not_found()


@dataclass(slots=True)
class _WatchFilter:
    """Which events a watch sees, and how selector transitions turn into ADDED/DELETED."""

    resource: ResourceType
    namespace: str | None
    labels: list[LabelRequirement]
    fields: list[FieldRequirement]

    def matches(self, obj: JSON) -> bool:
        metadata = obj["metadata"]
        if self.namespace is not None and metadata.get("namespace") != self.namespace:
            return False
        if self.labels and not labels_match(self.labels, metadata.get("labels")):
            return False
        return not self.fields or fields_match(self.fields, obj, self.resource.kind)

    def convert(self, event: WatchEvent) -> JSON | None:
        if event.resource is not self.resource:
            return None
        now_matches = event.type != "DELETED" and self.matches(event.obj)
        before_matches = event.previous is not None and self.matches(event.previous)
        if event.type == "DELETED":
            return {"type": "DELETED", "object": event.obj} if before_matches else None
        if now_matches and before_matches:
            return {"type": "MODIFIED", "object": event.obj}
        if now_matches:
            return {"type": "ADDED", "object": event.obj}
        if before_matches:
            return {"type": "DELETED", "object": event.obj}
        return None


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _patch_scale(scale: JSON, patch_type: str, raw: bytes) -> JSON:
    """A Scale after a patch; it has no lists, so merge and strategic merge agree."""
    if patch_type not in (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH):
        raise errors.unsupported_media_type(patch_type)
    try:
        patch = orjson.loads(raw)
        patched = (
            json_patch(scale, patch) if patch_type == JSON_PATCH else merge_patch(scale, patch)
        )
    except orjson.JSONDecodeError as error:
        raise errors.bad_request(f"error decoding patch: {error}") from error
    except (PatchError, PatchFormatError) as error:
        raise errors.bad_request(str(error)) from error
    if not isinstance(patched, dict):
        raise errors.bad_request("the patched Scale is not an object")
    return patched


def _scale_of(obj: JSON) -> JSON:
    metadata = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    match_labels = selector.get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata.get("namespace", ""),
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(match_labels.items())),
        },
    }

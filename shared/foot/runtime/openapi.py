"""The admin HTTP API as an OpenAPI 3.1 document, generated from its routes and the pydantic
models of its request, reply and error bodies.

Every admin server serves the document of the routes it has at GET /openapi.json
(`AdminServer`); the project publishes the document of every route of every service
(`admin_api_document()`, written to docs/admin-api.openapi.json, which a test keeps up to
date). The fuzz suite drives the API from the published document, so what a route answers
and what the document says it answers cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from foot.api import ApiError, ApiReply
from foot.objects import FrozenModel
from foot.registry_api import (
    ClusterNameRequest,
    EmptyRequest,
    JoinRequest,
    RegisterRequest,
    RegistryReply,
    UnjoinRequest,
)

OPENAPI_PATH = "/openapi.json"
OPENAPI_VERSION = "3.1.0"
SCHEMAS = "#/components/schemas/"
BEARER = "bearerToken"
KUBE_OBJECT = "KubeObject"
"""Component of a Kubernetes object as stored and shown (free-form beyond these fields)."""

Access = Literal["open", "read", "admin"]
"""Who may call a route: anyone (probes, scrapes), the read token or better, the admin token."""


# ---- bodies that the admin server builds as plain dicts ----------------------------------


class ErrorBody(FrozenModel):
    """A refused request, in the one error shape of HTTP and NATS answers."""

    error: ApiError


class Health(FrozenModel):
    """The service is alive."""

    status: Literal["ok"]
    service: str


class Readiness(FrozenModel):
    """Whether the service can do its work; 503 names the problems."""

    status: Literal["ready", "not ready"]
    service: str | None = None
    problems: list[str] | None = None


class KindEntry(FrozenModel):
    """A kind this service owns."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool


class KindList(FrozenModel):
    """The kinds this service owns (GET /admin/objects)."""

    kinds: list[KindEntry]


class ObjectList(FrozenModel):
    """Objects of one kind, Secret values redacted."""

    items: list[dict[str, Any]] = Field(
        json_schema_extra={"items": {"$ref": SCHEMAS + KUBE_OBJECT}}
    )


# ---- the routes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One documented answer of a route."""

    description: str
    model: type[BaseModel] | None = None
    """JSON body; None with `media_type` set: a body that is not JSON."""
    media_type: str = "application/json"
    schema_ref: str | None = None
    """A component by name instead of a model (`KUBE_OBJECT`)."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    access: Access
    replies: dict[int, Reply]
    body: type[BaseModel] | Literal["documents"] | None = None
    """A JSON request body of this model, or "documents": Kubernetes objects as JSON or YAML."""
    namespace_query: bool = False
    tags: tuple[str, ...] = field(default=())


_REFUSED = {
    401: Reply("no bearer token, or not a valid one", ErrorBody),
    403: Reply("the token may not do this, or the request came from another origin", ErrorBody),
}
_BODY_REFUSED = {415: Reply("the body is neither JSON nor YAML", ErrorBody)}
_API_REPLY = {
    200: Reply("every object was handled; the outcome of each", ApiReply),
    422: Reply("the request or some object was refused; each problem by field", ApiReply),
}
_NO_KIND = {404: Reply("this service does not serve that kind, or the object is absent", ErrorBody)}


def _registry_route(verb: str, body: type[BaseModel], summary: str) -> Route:
    replies = {
        200: Reply("done", RegistryReply),
        404: Reply("no such cluster", RegistryReply),
        409: Reply("the cluster exists already, or is busy", RegistryReply),
        422: Reply("the request was refused; each problem by field", RegistryReply),
        503: Reply("the member cluster could not be reached", RegistryReply),
    }
    return Route(
        "POST",
        f"/api/clusters/{verb}",
        summary,
        "admin",
        replies | _REFUSED | _BODY_REFUSED,
        body=body,
        tags=("registry",),
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", "Liveness", "open", {200: Reply("alive", Health)}, tags=("probes",)),
    Route(
        "GET",
        "/readyz",
        "Readiness",
        "open",
        {200: Reply("ready", Readiness), 503: Reply("not ready", Readiness)},
        tags=("probes",),
    ),
    Route(
        "GET",
        "/metrics",
        "Prometheus metrics",
        "open",
        {200: Reply("the metrics, Prometheus text format", None, "text/plain")},
        tags=("probes",),
    ),
    Route(
        "GET",
        OPENAPI_PATH,
        "This document (the routes of this service)",
        "read",
        {200: Reply("an OpenAPI 3.1 document", None, "application/json")} | _REFUSED,
    ),
    Route(
        "GET",
        "/admin/objects",
        "The kinds this service owns",
        "read",
        {200: Reply("the kinds", KindList)} | _REFUSED,
        tags=("objects",),
    ),
    Route(
        "GET",
        "/admin/objects/{kind}",
        "Objects of one kind (all namespaces, or `namespace`)",
        "read",
        {200: Reply("the objects", ObjectList)} | _REFUSED | _NO_KIND,
        namespace_query=True,
        tags=("objects",),
    ),
    Route(
        "GET",
        "/admin/objects/{kind}/{name}",
        "One object (namespace `default` unless given)",
        "read",
        {200: Reply("the object", schema_ref=KUBE_OBJECT)} | _REFUSED | _NO_KIND,
        namespace_query=True,
        tags=("objects",),
    ),
    Route(
        "DELETE",
        "/admin/objects/{kind}/{name}",
        "Delete one object",
        "admin",
        _API_REPLY | _REFUSED | _NO_KIND,
        namespace_query=True,
        tags=("objects",),
    ),
    Route(
        "POST",
        "/api/apply",
        "Create or update objects (validated as Kubernetes would, nothing invalid stored)",
        "admin",
        _API_REPLY | _REFUSED | _BODY_REFUSED,
        body="documents",
        tags=("api",),
    ),
    Route(
        "POST",
        "/api/delete",
        "Delete objects (documents, or references with apiVersion, kind and name)",
        "admin",
        _API_REPLY | _REFUSED | _BODY_REFUSED,
        body="documents",
        tags=("api",),
    ),
    _registry_route("join", JoinRequest, "Join a cluster in push mode (registry)"),
    _registry_route("unjoin", UnjoinRequest, "Forget a cluster (registry)"),
    _registry_route("register", RegisterRequest, "Register a pull-mode cluster (registry)"),
    _registry_route("collect", ClusterNameRequest, "Collect a cluster's status now (registry)"),
    _registry_route(
        "sealing-key", EmptyRequest, "The registry's public key to seal kubeconfigs to (registry)"
    ),
    Route(
        "GET",
        "/api/clusters",
        "The member clusters (registry)",
        "read",
        {200: Reply("the clusters", ObjectList)} | _REFUSED,
        tags=("registry",),
    ),
)
ROUTES_BY_KEY = {(r.method, r.path): r for r in ROUTES}

_KUBE_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Kubernetes object (a FOOT kind, or a template of a Kubernetes kind).",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
    },
    "additionalProperties": True,
}
_JSON_DOCUMENTS_SCHEMA: dict[str, Any] = {
    "description": "One object, or a list of them.",
    "oneOf": [
        {"$ref": SCHEMAS + KUBE_OBJECT},
        {"type": "array", "minItems": 1, "items": {"$ref": SCHEMAS + KUBE_OBJECT}},
    ],
}
_YAML_DOCUMENTS_SCHEMA: dict[str, Any] = {
    "description": "YAML documents separated by ---, each one object (not a list of them).",
    "$ref": SCHEMAS + KUBE_OBJECT,
}


def admin_api_document(served: Iterable[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI document of the routes `served` ((method, path) pairs as the router has
    them), or of every route of every service. A route missing from `ROUTES` is documented
    as undocumented rather than left out, and a test keeps that list empty."""
    wanted = list(ROUTES) if served is None else [_route_for(m, p) for m, p in served]
    refs, definitions = models_json_schema(_models(wanted), ref_template=SCHEMAS + "{model}")
    schemas = {
        name: _readable(schema) for name, schema in sorted(definitions.get("$defs", {}).items())
    }
    schemas[KUBE_OBJECT] = _KUBE_OBJECT_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(wanted, key=lambda r: (r.path, r.method)):
        operation = _Operation(route, refs).document()
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "FOOT admin HTTP API",
            "version": "1",
            "description": (
                "Served by every FOOT service's admin server. /healthz, /readyz and /metrics "
                "are open; every other route wants a bearer token: the read token may GET, "
                "the admin token may do everything. Bodies are application/json or "
                "application/yaml; requests from another origin are refused. Every refusal "
                "has one shape: an `error` with `code`, `message` and `fields` (path, reason)."
            ),
        },
        "security": [{BEARER: []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer"}},
        },
    }


def _readable(schema: Any) -> Any:
    """`schema` without pydantic's `writeOnly` on secret fields: a reply does carry the
    one secret it exists for (register's bootstrap token, shown once), and OpenAPI tools
    read writeOnly as "never in a response"."""
    if isinstance(schema, dict):
        return {key: _readable(value) for key, value in schema.items() if key != "writeOnly"}
    if isinstance(schema, list):
        return [_readable(item) for item in schema]
    return schema


def render(document: dict[str, Any]) -> bytes:
    """The published form: stable key order, indented, a final newline."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _route_for(method: str, path: str) -> Route:
    known = ROUTES_BY_KEY.get((method, path))
    if known is not None:
        return known
    return Route(method, path, "(undocumented)", "admin", dict(_REFUSED))


Mode = Literal["validation", "serialization"]
ModelRefs = Mapping[tuple[Any, Mode], dict[str, Any]]
"""Schema reference of each (model, mode), as `models_json_schema` returns them."""


def _models(routes: Iterable[Route]) -> list[tuple[type[BaseModel], Mode]]:
    """Request bodies as they are validated, replies as they are serialized."""
    found: dict[tuple[type[BaseModel], Mode], None] = {}
    for route in routes:
        if isinstance(route.body, type):
            found[(route.body, "validation")] = None
        for reply in route.replies.values():
            if reply.model is not None:
                found[(reply.model, "serialization")] = None
    return list(found)


@dataclass(frozen=True)
class _Operation:
    """One route as an OpenAPI operation; `refs` are the schema references of its models."""

    route: Route
    refs: ModelRefs

    def document(self) -> dict[str, Any]:
        route = self.route
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route),
            "description": f"Token: {route.access}.",
            "responses": {
                str(status): self._response(reply)
                for status, reply in sorted(route.replies.items())
            },
        }
        if route.tags:
            operation["tags"] = list(route.tags)
        if route.access == "open":
            operation["security"] = []
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in ("kind", "name")
            if f"{{{name}}}" in route.path
        ]
        if route.namespace_query:
            parameters.append(
                {
                    "name": "namespace",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if route.body == "documents":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _JSON_DOCUMENTS_SCHEMA},
                    "application/yaml": {"schema": _YAML_DOCUMENTS_SCHEMA},
                },
            }
        elif route.body is not None:
            schema = self.refs[(route.body, "validation")]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        return operation

    def _response(self, reply: Reply) -> dict[str, Any]:
        if reply.model is not None:
            schema = self.refs[(reply.model, "serialization")]
        elif reply.schema_ref is not None:
            schema = {"$ref": SCHEMAS + reply.schema_ref}
        elif reply.media_type == "application/json":
            schema = {"type": "object"}
        else:
            schema = {"type": "string"}
        return {"description": reply.description, "content": {reply.media_type: {"schema": schema}}}


def _operation_id(route: Route) -> str:
    words = [w.strip("{}") for w in route.path.split("/") if w]
    return route.method.lower() + "".join(w[:1].upper() + w[1:] for w in words).replace(".", "")

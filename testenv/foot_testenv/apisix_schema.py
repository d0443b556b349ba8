"""The schemas and checks the APISIX Admin API v3 applies, for the strict fake.

Modelled on apache/apisix `apisix/schema_def.lua` and `apisix/admin/*.lua` as
summarised in shared/reference/apisix-admin-api.md. A small JSON-schema
validator (the subset APISIX's schemas use) reports errors in the words of
lua-jsonschema (`property "retries" validation failed: expected -1 to be at
least 0`) and fills in defaults the way APISIX stores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]


class SchemaError(Exception):
    """A value does not match its schema; `message` reads like APISIX's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _matches_type(value: Any, wanted: str) -> bool:
    actual = _type_of(value)
    if wanted == "number":
        return actual in {"integer", "number"}
    return actual == wanted


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def validate(schema: Schema, value: Any) -> None:  # noqa: PLR0912, PLR0915
    """Check `value` against `schema` (filling defaults into dicts in place)."""
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema["oneOf"]
        matched = []
        for index, option in enumerate(options, start=1):
            try:
                validate(option, _copy(value))
            except SchemaError:
                continue
            matched.append(index)
        if "anyOf" in schema and not matched:
            raise SchemaError("object matches none of the required")
        if "oneOf" in schema and len(matched) != 1:
            if not matched:
                raise SchemaError("value should match only one schema, but matches none")
            raise SchemaError(
                f"value should match only one schema, but matches both schemas "
                f"{matched[0]} and {matched[1]}"
            )
        # Validate again on the real value so that defaults of the chosen branch are filled.
        validate(options[matched[0] - 1], value)
    if "not" in schema:
        try:
            validate(schema["not"], _copy(value))
        except SchemaError:
            pass
        else:
            raise SchemaError("value wasn't supposed to match schema")
    wanted = schema.get("type")
    if wanted is not None:
        kinds = wanted if isinstance(wanted, list) else [wanted]
        if not any(_matches_type(value, kind) for kind in kinds):
            raise SchemaError(f"wrong type: expected {'/'.join(kinds)}, got {_type_of(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError("matches none of the enum values")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"expected {_fmt(value)} to be at least {_fmt(schema['minimum'])}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"expected {_fmt(value)} to be at most {_fmt(schema['maximum'])}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            raise SchemaError(
                f"expected {_fmt(value)} to be greater than {_fmt(schema['exclusiveMinimum'])}"
            )
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaError(
                f"string too short, expected at least {schema['minLength']}, got {len(value)}"
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaError(
                f"string too long, expected at most {schema['maxLength']}, got {len(value)}"
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f'failed to match pattern "{schema["pattern"]}" with "{value}"')
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise SchemaError(f"expect array to have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaError(f"expect array to have at most {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            seen: list[Any] = []
            for item in value:
                if item in seen:
                    raise SchemaError("expected unique items but items are equal")
                seen.append(item)
        if "items" in schema:
            for index, item in enumerate(value, start=1):
                try:
                    validate(schema["items"], item)
                except SchemaError as exc:
                    raise SchemaError(f"failed to validate item {index}: {exc.message}") from None
    if isinstance(value, dict):
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            raise SchemaError(
                f"expect object to have at least {schema['minProperties']} properties"
            )
        properties: dict[str, Schema] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f'property "{name}" is required')
        for name, sub in properties.items():
            if name in value:
                try:
                    validate(sub, value[name])
                except SchemaError as exc:
                    raise SchemaError(
                        f'property "{name}" validation failed: {exc.message}'
                    ) from None
            elif "default" in sub:
                value[name] = _copy(sub["default"])
        patterns: dict[str, Schema] = schema.get("patternProperties", {})
        for name, item in value.items():
            if name in properties:
                continue
            matched_pattern = False
            for pattern, sub in patterns.items():
                if re.search(pattern, name):
                    matched_pattern = True
                    try:
                        validate(sub, item)
                    except SchemaError as exc:
                        raise SchemaError(
                            f'property "{name}" validation failed: {exc.message}'
                        ) from None
            if not matched_pattern and schema.get("additionalProperties") is False:
                raise SchemaError(f"additional properties forbidden, found {name}")
    check: Callable[[Any], None] | None = schema.get("x-check")
    if check is not None:
        check(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# ---- schema_def.lua --------------------------------------------------------------------------

ID_SCHEMA: Schema = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-_.]+$"},
        {"type": "integer", "minimum": 1},
    ]
}
LABELS: Schema = {
    "type": "object",
    "patternProperties": {
        ".*": {"type": "string", "pattern": r"^\S+$", "minLength": 1, "maxLength": 256}
    },
}
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 256}
DESC: Schema = {"type": "string", "maxLength": 256}
TIMESTAMP: Schema = {"type": "integer"}
# What every named admin object (route, service, upstream) carries, as schema_def.lua has it.
OBJECT_FIELDS: Schema = {
    "id": ID_SCHEMA,
    "name": NAME,
    "desc": DESC,
    "labels": LABELS,
    "create_time": TIMESTAMP,
    "update_time": TIMESTAMP,
}
HOST: Schema = {"type": "string", "pattern": r"^\*?[0-9a-zA-Z-._\[\]:]+$"}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
HTTP_STATUSES: Schema = {
    "type": "array",
    "minItems": 1,
    "uniqueItems": True,
    "items": {"type": "integer", "minimum": 200, "maximum": 599},
}
TIMEOUT: Schema = {
    "type": "object",
    "properties": {
        "connect": {"type": "number", "exclusiveMinimum": 0},
        "send": {"type": "number", "exclusiveMinimum": 0},
        "read": {"type": "number", "exclusiveMinimum": 0},
    },
    "required": ["connect", "send", "read"],
}

PASSIVE_HEALTHY_STATUSES = [
    *range(200, 209),
    226,
    *range(300, 309),
]

HEALTH_CHECKER: Schema = {
    "type": "object",
    "properties": {
        "active": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["http", "https", "tcp"], "default": "http"},
                "timeout": {"type": "number", "default": 1},
                "concurrency": {"type": "integer", "default": 10},
                "host": HOST,
                "port": PORT,
                "http_path": {"type": "string", "default": "/"},
                "https_verify_certificate": {"type": "boolean", "default": True},
                "req_headers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "uniqueItems": True},
                },
                "healthy": {
                    "type": "object",
                    "properties": {
                        "interval": {"type": "integer", "minimum": 1, "default": 1},
                        "http_statuses": {**HTTP_STATUSES, "default": [200, 302]},
                        "successes": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 254,
                            "default": 2,
                        },
                    },
                    "default": {"interval": 1, "http_statuses": [200, 302], "successes": 2},
                },
                "unhealthy": {
                    "type": "object",
                    "properties": {
                        "interval": {"type": "integer", "minimum": 1, "default": 1},
                        "http_statuses": {
                            **HTTP_STATUSES,
                            "default": [429, 404, 500, 501, 502, 503, 504, 505],
                        },
                        "http_failures": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 254,
                            "default": 5,
                        },
                        "tcp_failures": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 254,
                            "default": 2,
                        },
                        "timeouts": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 254,
                            "default": 3,
                        },
                    },
                    "default": {
                        "interval": 1,
                        "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                        "http_failures": 5,
                        "tcp_failures": 2,
                        "timeouts": 3,
                    },
                },
            },
            "additionalProperties": False,
        },
        "passive": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["http", "https", "tcp"], "default": "http"},
                "healthy": {
                    "type": "object",
                    "properties": {
                        "http_statuses": {
                            **HTTP_STATUSES,
                            "default": PASSIVE_HEALTHY_STATUSES,
                        },
                        "successes": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 254,
                            "default": 5,
                        },
                    },
                },
                "unhealthy": {
                    "type": "object",
                    "properties": {
                        "http_statuses": {**HTTP_STATUSES, "default": [429, 500, 503]},
                        "tcp_failures": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 254,
                            "default": 2,
                        },
                        "timeouts": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 254,
                            "default": 7,
                        },
                        "http_failures": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 254,
                            "default": 5,
                        },
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "required": ["active"],
    "additionalProperties": False,
}

NODE: Schema = {
    "type": "object",
    "properties": {
        "host": HOST,
        "port": PORT,
        "weight": {"type": "integer", "minimum": 0},
        "priority": {"type": "integer", "default": 0},
        "metadata": {"type": "object"},
    },
    "required": ["host", "weight"],
}
NODES: Schema = {
    "anyOf": [
        {"type": "object", "patternProperties": {".*": {"type": "integer", "minimum": 0}}},
        {"type": "array", "items": NODE},
    ]
}


def _check_upstream(conf: Any) -> None:
    """apisix/admin/upstreams.lua check_upstream_conf, the parts beyond the schema."""
    if not isinstance(conf, dict):
        return
    if conf.get("type") == "chash" and conf.get("hash_on") != "consumer" and not conf.get("key"):
        raise SchemaError("missing key")
    if conf.get("pass_host") == "rewrite" and not conf.get("upstream_host"):
        raise SchemaError("`upstream_host` can't be empty when `pass_host` is `rewrite`")


UPSTREAM: Schema = {
    "type": "object",
    "properties": {
        **OBJECT_FIELDS,
        "nodes": NODES,
        "service_name": {"type": "string", "minLength": 1, "maxLength": 256},
        "discovery_type": {"type": "string"},
        "discovery_args": {"type": "object"},
        "retries": {"type": "integer", "minimum": 0},
        "retry_timeout": {"type": "number", "minimum": 0},
        "timeout": TIMEOUT,
        # No enum on purpose: APISIX accepts any string and fails at request time.
        "type": {"type": "string", "default": "roundrobin"},
        "checks": HEALTH_CHECKER,
        "hash_on": {
            "type": "string",
            "enum": ["vars", "header", "cookie", "consumer", "vars_combinations"],
            "default": "vars",
        },
        "key": {"type": "string"},
        "scheme": {
            "type": "string",
            "enum": ["grpc", "grpcs", "http", "https", "tcp", "tls", "udp", "kafka"],
            "default": "http",
        },
        "pass_host": {"type": "string", "enum": ["pass", "node", "rewrite"], "default": "pass"},
        "upstream_host": HOST,
        "keepalive_pool": {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "minimum": 1, "default": 320},
                "idle_timeout": {"type": "number", "minimum": 0, "default": 60},
                "requests": {"type": "integer", "minimum": 1, "default": 1000},
            },
        },
        "tls": {"type": "object"},
    },
    "oneOf": [{"required": ["nodes"]}, {"required": ["service_name", "discovery_type"]}],
    "additionalProperties": False,
    "x-check": _check_upstream,
}

TRAFFIC_SPLIT: Schema = {
    "type": "object",
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "match": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"vars": {"type": "array"}},
                        },
                    },
                    "weighted_upstreams": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 20,
                        "items": {
                            "type": "object",
                            "properties": {
                                "upstream_id": ID_SCHEMA,
                                "upstream": UPSTREAM,
                                "weight": {"type": "integer", "minimum": 0, "default": 1},
                            },
                        },
                    },
                },
                "required": ["weighted_upstreams"],
            },
        }
    },
}
FAULT_INJECTION: Schema = {
    "type": "object",
    "properties": {
        "abort": {
            "type": "object",
            "properties": {
                "http_status": {"type": "integer", "minimum": 200},
                "body": {"type": "string", "minLength": 0},
                "headers": {"type": "object"},
                "percentage": {"type": "integer", "minimum": 0, "maximum": 100},
                "vars": {"type": "array"},
            },
            "required": ["http_status"],
        },
        "delay": {
            "type": "object",
            "properties": {
                "duration": {"type": "number", "minimum": 0},
                "percentage": {"type": "integer", "minimum": 0, "maximum": 100},
                "vars": {"type": "array"},
            },
            "required": ["duration"],
        },
    },
    "minProperties": 1,
}
ANY_PLUGIN: Schema = {"type": "object"}
OTHER_PLUGINS = (
    "key-auth", "basic-auth", "jwt-auth", "hmac-auth", "openid-connect", "limit-count",
    "limit-req", "limit-conn", "cors", "ip-restriction", "ua-restriction", "proxy-rewrite",
    "response-rewrite", "redirect", "real-ip", "request-id", "prometheus", "gzip", "echo",
    "api-breaker", "consumer-restriction", "csrf", "uri-blocker", "referer-restriction",
    "request-validation", "proxy-cache", "proxy-mirror", "client-control",
)  # fmt: skip
"""Plugins the fake knows by name only (their own schemas are not modelled)."""
PLUGINS: dict[str, Schema] = {
    "traffic-split": TRAFFIC_SPLIT,
    "fault-injection": FAULT_INJECTION,
    **dict.fromkeys(OTHER_PLUGINS, ANY_PLUGIN),
}


def _check_plugins(plugins: Any) -> None:
    if not isinstance(plugins, dict):
        return
    for name, conf in plugins.items():
        schema = PLUGINS.get(name)
        if schema is None:
            raise SchemaError(f"unknown plugin [{name}]")
        try:
            validate(schema, conf)
        except SchemaError as exc:
            raise SchemaError(
                f"failed to check the configuration of plugin {name} err: {exc}"
            ) from None


PLUGINS_SCHEMA: Schema = {"type": "object", "x-check": _check_plugins}


def _check_route(conf: Any) -> None:
    if not isinstance(conf, dict):
        return
    if "uri" in conf and "uris" in conf:
        raise SchemaError("value should match only one schema, but matches both schemas 1 and 2")
    if "uri" not in conf and "uris" not in conf:
        raise SchemaError("value should match only one schema, but matches none")
    if "host" in conf and "hosts" in conf:
        raise SchemaError("only one of host or hosts is allowed")
    if not any(k in conf for k in ("plugins", "upstream", "upstream_id", "service_id")):
        raise SchemaError(
            "value should match at least one schema of plugins, upstream, upstream_id, "
            "service_id, but matches none"
        )


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"]

ROUTE: Schema = {
    "type": "object",
    "properties": {
        **OBJECT_FIELDS,
        "uri": {"type": "string", "minLength": 1, "maxLength": 4096},
        "uris": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 4096},
        },
        "priority": {"type": "integer", "default": 0},
        "methods": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "enum": METHODS},
        },
        "host": HOST,
        "hosts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": HOST},
        "remote_addr": {"type": "string"},
        "remote_addrs": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "vars": {"type": "array"},
        "filter_func": {"type": "string", "minLength": 10, "pattern": r"^function"},
        "plugins": PLUGINS_SCHEMA,
        "script": {"type": "string", "minLength": 10, "maxLength": 102400},
        "upstream": UPSTREAM,
        "upstream_id": ID_SCHEMA,
        "service_id": ID_SCHEMA,
        "plugin_config_id": ID_SCHEMA,
        "enable_websocket": {"type": "boolean"},
        "timeout": TIMEOUT,
        "status": {"type": "integer", "enum": [1, 0], "default": 1},
    },
    "additionalProperties": False,
    "x-check": _check_route,
}

SERVICE: Schema = {
    "type": "object",
    "properties": {
        **OBJECT_FIELDS,
        "plugins": PLUGINS_SCHEMA,
        "upstream": UPSTREAM,
        "upstream_id": ID_SCHEMA,
        "script": {"type": "string", "minLength": 10, "maxLength": 102400},
        "enable_websocket": {"type": "boolean"},
        "hosts": {"type": "array", "minItems": 1, "uniqueItems": True, "items": HOST},
    },
    "additionalProperties": False,
}

PLUGIN_CONFIG: Schema = {
    "type": "object",
    "properties": {
        "id": ID_SCHEMA,
        "desc": DESC,
        "labels": LABELS,
        "create_time": TIMESTAMP,
        "update_time": TIMESTAMP,
        "plugins": PLUGINS_SCHEMA,
    },
    "required": ["plugins"],
    "additionalProperties": False,
}

SCHEMAS: dict[str, Schema] = {
    "upstreams": UPSTREAM,
    "routes": ROUTE,
    "services": SERVICE,
    "plugin_configs": PLUGIN_CONFIG,
}
SINGULAR = {
    "upstreams": "upstream",
    "routes": "route",
    "services": "service",
    "plugin_configs": "plugin_config",
}


def check_resource(resource: str, conf: Any) -> None:
    """Validate (and fill defaults of) one object; SchemaError with APISIX's wording."""
    try:
        validate(SCHEMAS[resource], conf)
    except SchemaError as exc:
        if exc.message.startswith(("unknown plugin", "failed to check the configuration")):
            raise
        raise SchemaError(f"invalid configuration: {exc.message}") from None

"""Kubernetes `Status` failures shaped as a real kube-apiserver sends them.

Messages and details follow k8s.io/apimachinery/pkg/api/errors so clients that
switch on `reason`, `code` or `details` behave the same against the simulator.
"""

from __future__ import annotations

from typing import Any

from foot_sim.resources import ResourceType

JSON = dict[str, Any]


class ApiError(Exception):
    """A request failure that is answered with a Status body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _resource_details(resource: ResourceType, name: str) -> JSON:
    details: JSON = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: ResourceType, name: str) -> ApiError:
    return _about(resource, name, 404, "NotFound", f'{resource.group_resource} "{name}" not found')


def already_exists(resource: ResourceType, name: str) -> ApiError:
    message = f'{resource.group_resource} "{name}" already exists'
    return _about(resource, name, 409, "AlreadyExists", message)


def _about(resource: ResourceType, name: str, code: int, reason: str, message: str) -> ApiError:
    """An error about one object, with the details the real server gives for it."""
    return ApiError(code, reason, message, _resource_details(resource, name))


def conflict(resource: ResourceType, name: str, why: str) -> ApiError:
    return _cannot_fulfil(resource.group_resource, name, why, _resource_details(resource, name))


def precondition_failed(resource: ResourceType, name: str, why: str) -> ApiError:
    """A delete precondition that does not hold; the real server names the kind here."""
    return _cannot_fulfil(resource.kind, name, why, {"name": name, "kind": resource.kind})


def _cannot_fulfil(on: str, name: str, why: str, details: JSON) -> ApiError:
    """A 409 Conflict the way the real server words it."""
    return ApiError(
        409, "Conflict", f'Operation cannot be fulfilled on {on} "{name}": {why}', details
    )


STALE_OBJECT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(resource: ResourceType, name: str, causes: list[JSON]) -> ApiError:
    """422 Invalid; each cause is {reason, message, field} as field.Error renders them."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    details: JSON = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.kind
    details["causes"] = causes
    qualified_kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    message = f'{qualified_kind} "{name}" is invalid: {summary}'
    return ApiError(422, "Invalid", message, details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def field_manager_required() -> ApiError:
    cause = {
        "reason": "FieldValueRequired",
        "message": "Required value: is required for apply patch",
        "field": "fieldManager",
    }
    return ApiError(
        422,
        "Invalid",
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch",
        {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]},
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type}",
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def namespace_terminating(resource: ResourceType, name: str, namespace: str) -> ApiError:
    message = (
        f'{resource.group_resource} "{name}" is forbidden: unable to create new content in '
        f"namespace {namespace} because it is being terminated"
    )
    details = _resource_details(resource, name)
    details["causes"] = [
        {
            "reason": "NamespaceTerminating",
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
    ]
    return ApiError(403, "Forbidden", message, details)


def too_many_requests(retry_after_seconds: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after_seconds},
        {"Retry-After": str(retry_after_seconds)},
    )


def internal_error(why: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {why}",
        {"causes": [{"message": why}]},
    )


def apply_conflict(conflicts: list[tuple[str, str]]) -> ApiError:
    """409 for server-side apply; `conflicts` holds (printed manager, field path) pairs.

    The message follows the apiserver's fieldmanager: one conflict is inlined,
    several are grouped per manager (sorted) with one `- path` line each.
    """
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {manager}", "field": path}
        for manager, path in conflicts
    ]
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {manager}: {path}"
    else:
        by_manager: dict[str, list[str]] = {}
        for manager, path in conflicts:
            by_manager.setdefault(manager, []).append(path)
        lines: list[str] = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines.extend(f"- {path}" for path in by_manager[manager])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})

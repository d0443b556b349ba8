"""What goes on the wire: the one mapping from an error's `code` to an HTTP status, and
objects as read endpoints may show them.

NATS replies carry the code itself (`ApiError.code`); HTTP answers carry a status taken
from here, whichever service answers (the admin API, the registry's cluster routes).
"""

from __future__ import annotations

from typing import Any

HTTP_STATUS = {
    "Invalid": 422,
    "NotFound": 404,
    "Conflict": 409,
    # Creating what exists is a conflict with the current state, as in Kubernetes.
    "AlreadyExists": 409,
    "Unavailable": 503,
    # The admin HTTP API's guard: no or a wrong token; a token or origin that may not do
    # this; a body that is neither JSON nor YAML.
    "Unauthorized": 401,
    "Forbidden": 403,
    "UnsupportedMediaType": 415,
}
INTERNAL_STATUS = 500
"""Any other code (Internal, an unexpected failure)."""

REDACTED = "<redacted>"
"""What a read shows in place of each value of a Secret (its keys stay)."""
SECRET_VALUE_FIELDS = ("data", "stringData")


def http_status(code: str) -> int:
    return HTTP_STATUS.get(code, INTERNAL_STATUS)


def redact_secrets(document: Any) -> Any:
    """`document` with the values of every Secret in it replaced by "<redacted>", keys
    kept: a Secret template itself, and Secrets inside other objects (a work's manifests).

    Read endpoints and `foot get` show objects this way, as `kubectl` users expect from a
    read that has no right to the values; the stored objects keep them (sealed)."""
    if isinstance(document, list):
        return [redact_secrets(item) for item in document]
    if not isinstance(document, dict):
        return document
    shown = {key: redact_secrets(value) for key, value in document.items()}
    if document.get("kind") == "Secret" and "apiVersion" in document:
        for field in SECRET_VALUE_FIELDS:
            values = document.get(field)
            if isinstance(values, dict):
                shown[field] = dict.fromkeys(values, REDACTED)
    return shown

"""The one mapping from an error's `code` to what goes on the wire.

NATS replies carry the code itself (`ApiError.code`); HTTP answers carry a status taken
from here, whichever service answers (the admin API, the registry's cluster routes).
"""

from __future__ import annotations

HTTP_STATUS = {
    "Invalid": 422,
    "NotFound": 404,
    "Conflict": 409,
    # Creating what exists is a conflict with the current state, as in Kubernetes.
    "AlreadyExists": 409,
    "Unavailable": 503,
}
INTERNAL_STATUS = 500
"""Any other code (Internal, an unexpected failure)."""


def http_status(code: str) -> int:
    return HTTP_STATUS.get(code, INTERNAL_STATUS)

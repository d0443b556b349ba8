"""The one place NATS exceptions become FOOT's error types."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import nats.errors
import nats.js.errors

from foot.errors import PermanentError, TransportError


@contextlib.contextmanager
def nats_errors(what: str) -> Iterator[None]:
    """Refusals by the server are permanent; lost connections and timeouts are retryable.

    Callers catch the specific errors they give meaning to (a wrong revision,
    a missing key) inside the block; whatever is left is translated here.
    """
    try:
        yield
    except nats.js.errors.APIError as exc:
        raise PermanentError(f"{what}: {exc.description}") from exc
    except (nats.errors.Error, TimeoutError) as exc:
        raise TransportError(f"{what}: {exc}") from exc

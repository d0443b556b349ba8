"""What the dispatcher's renderer, aggregation and apply lanes share.

The service builds it once in `setup` and hands the same one to each of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from foot_dispatcher.intents import DispatchIntents
from foot_dispatcher.mirrors import Mirrors
from foot_dispatcher.queues import DispatchQueues
from foot_dispatcher.works import WorksCache


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchParts:
    works: WorksCache
    """The works, their indexes and staging; revision-checked writes."""
    mirrors: Mirrors
    """Bindings, templates, override policies and clusters, parsed once per change."""
    intents: DispatchIntents
    """What each binding was last rendered to, per cluster."""
    queues: DispatchQueues
    synced: Callable[[], Awaitable[None]]
    """Returns once every mirrored bucket has been read to its end."""

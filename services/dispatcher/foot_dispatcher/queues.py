"""The dispatcher's queues, through which its parts hand each other work.

* `render`, keyed by binding: render its works, decide the fate of the works of clusters
  it left (`rendering`);
* one `apply:<cluster>` lane per member cluster (`lanes`, `pull`), created on first use;
* `status`, keyed by work: fold what a push member reports into the work (`lanes`);
* `aggregate`, keyed by binding, added after a short delay (`aggregation`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from foot.bus import ReconcileQueue
from foot.objects import utc_now

log = logging.getLogger(__name__)

RENDER_AT_SLACK_SECONDS = 0.05
"""A timed render fires this long after its time, so that the decision it rechecks is due."""


@dataclass(eq=False, kw_only=True)
class DispatchQueues:
    """The render, status and aggregate queues, and the apply lanes."""

    render: ReconcileQueue
    """Keyed by binding: render its works (`rendering`)."""
    status: ReconcileQueue
    """Keyed by work: fold what a push member reports into the work (`lanes`)."""
    aggregate: ReconcileQueue
    """Keyed by binding, added after `aggregate_delay_seconds` (`aggregation`)."""
    new_lane: Callable[[str], ReconcileQueue]
    """Makes (and runs) the apply lane of a cluster."""
    aggregate_delay_seconds: float
    lanes: dict[str, ReconcileQueue] = field(default_factory=dict, init=False)
    """Cluster name -> its apply lane."""

    def lane(self, cluster: str) -> ReconcileQueue:
        """The apply lane of `cluster` (created, and run, on first use)."""
        lane = self.lanes.get(cluster)
        if lane is None:
            lane = self.new_lane(cluster)
            self.lanes[cluster] = lane
        return lane

    def answering_again(self, cluster: str) -> None:
        """A member answers again: what waits for its backoff is tried now."""
        log.info("member %s answers again", cluster)
        lane = self.lanes.get(cluster)
        if lane is not None:
            lane.expedite()

    def aggregate_soon(self, binding_key: str) -> None:
        """Aggregate a binding's works after a short delay, once for a burst of changes."""
        self.aggregate.add_after(binding_key, self.aggregate_delay_seconds)

    def render_at(self, binding_key: str, when: datetime) -> None:
        """Render the binding again at `when` (or at an earlier time asked before): a
        reminder, not pending work (`ReconcileQueue.wake_after`)."""
        delay = max((when - utc_now()).total_seconds(), 0.0) + RENDER_AT_SLACK_SECONDS
        self.render.wake_after(binding_key, delay)

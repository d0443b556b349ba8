"""What the agent's tasks work with once the agent is connected."""

from __future__ import annotations

from dataclasses import dataclass

from foot.agent_channel import AgentChannel
from foot.bus import Bus
from foot.kube import KubeClient
from foot_agent.settings import AgentSettings


@dataclass(frozen=True, slots=True)
class Connected:
    """The agent's identity, its hub connection and its own cluster's API client."""

    settings: AgentSettings
    agent_id: str
    """This process; heartbeat sequences count per agent id."""
    key: bytes
    """Signs every message to the registry."""
    bus: Bus
    kube: KubeClient
    channel: AgentChannel
    """Seals what the agent sends on the works channel and opens what the hub sends there
    (keys derived once; one sequence for the process)."""

    @property
    def cluster(self) -> str:
        return self.settings.cluster_name

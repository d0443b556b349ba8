"""Registry settings: health timing, status collection, what the join creates in a member.

Health defaults (push): a probe of `/readyz` starts every `probe_period_seconds`
whether or not the previous one has answered, each with `probe_timeout_seconds`;
`failure_threshold` consecutive failed probes turn Ready False/Unknown,
`success_threshold` consecutive good ones turn it True again.

* Dead cluster: the first probe after the death starts within one period, the
  threshold-th fails at most `failure_threshold * period + timeout` after the death:
  2 x 0.5 + 1.5 = 2.5 s for a partition (probes hang until the timeout); a killed
  API server refuses connections at once, so 1.0 s. Both within the 3 s goal.
* Jitter: a probe that answers within the timeout is a success, so responses slowed
  by up to 1 s (0.5 s of margin) never count as failures: no flapping.

Pull: agents heartbeat every `heartbeat_period_seconds`; a cluster whose last
heartbeat is older than `heartbeat_lease_seconds` turns Unknown (2.0 s: four missed
heartbeats, and 1.5 s of delay tolerated), checked every `lease_check_seconds`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from foot.objects import DNS1123_LABEL_PATTERN
from foot.runtime.settings import ServiceSettings, check_nats_ca


class RegistrySettings(ServiceSettings):
    probe_period_seconds: float = Field(default=0.5, gt=0, le=60)
    """Push clusters: a /readyz probe starts this often (probes overlap when one hangs)."""
    probe_timeout_seconds: float = Field(default=1.5, gt=0, le=60)
    """Push clusters: a probe not answered within this is a failure (above the jitter a
    healthy cluster may show: 1 s)."""
    failure_threshold: int = Field(default=2, ge=1, le=100)
    """Consecutive failed probes before Ready turns False (answered, not ready) or Unknown
    (not answered)."""
    success_threshold: int = Field(default=2, ge=1, le=100)
    """Consecutive good probes (or heartbeats) before Ready turns True again."""
    heartbeat_period_seconds: float = Field(default=0.5, gt=0, le=60)
    """Pull clusters: how often agents are told to heartbeat."""
    heartbeat_lease_seconds: float = Field(default=2.0, gt=0, le=600)
    """Pull clusters: Ready turns Unknown when the last heartbeat is older than this."""
    lease_check_seconds: float = Field(default=0.1, gt=0, le=10)
    """Pull clusters: how often leases are checked."""
    heartbeat_max_skew_seconds: float = Field(default=30.0, gt=0, le=3600)
    """Agent messages whose timestamp is further than this from the registry's clock are
    refused (replay protection together with the per-agent sequence)."""
    status_period_seconds: float = Field(default=10.0, gt=0, le=3600)
    """Status (version, APIs, nodes, resources) is collected this often per cluster (push)
    and sent this often by agents (pull)."""
    status_timeout_seconds: float = Field(default=8.0, gt=0, le=300)
    """One status collection may take this long before it is abandoned."""
    status_concurrency: int = Field(default=8, ge=1, le=256)
    """Status collections running at once across all clusters."""
    join_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Each request of a join/unjoin to a member's API server may take this long."""
    member_namespace: str = Field(
        default="foot-system", pattern=DNS1123_LABEL_PATTERN, max_length=63
    )
    """Namespace the push join creates in each member (FOOT's ServiceAccount lives there);
    the ClusterRole and its binding are named `<namespace>:foot-controller`."""
    token_expiration_seconds: int = Field(default=365 * 24 * 3600, ge=600)
    """Lifetime requested for the ServiceAccount token minted at join."""
    agent_nats_url: str | None = Field(default=None, pattern=r"^(nats|tls)://[^\s]+$")
    """NATS URL written into pull agents' manifests (default: nats_url); give the address the
    member clusters reach (the agent's own NATS user goes into its Secret, minted here)."""
    agent_nats_ca_file: Path | None = None
    """CA certificate(s), PEM, that sign the NATS server's certificate as agents reach it: put
    into pull agents' Secret and mounted for them (their NATS URL must then be tls://)."""

    nats_account_signing_seed_file: Path | None = None
    """The FOOT account's signing nkey seed (mode 600), with which `register` mints each pull
    agent's own NATS user (unset: <FOOT_HOME>/nats-auth/account-signing.nk, from `foot up`)."""

    @model_validator(mode="after")
    def _agent_ca_only_with_tls(self) -> RegistrySettings:
        check_nats_ca(
            self.agent_nats_url or self.nats_url,
            self.agent_nats_ca_file,
            url_field="agent_nats_url (or nats_url)",
            ca_field="agent_nats_ca_file",
        )
        return self

    @model_validator(mode="after")
    def _lease_longer_than_heartbeat(self) -> RegistrySettings:
        if self.heartbeat_lease_seconds <= self.heartbeat_period_seconds:
            raise ValueError("heartbeat_lease_seconds must be longer than heartbeat_period_seconds")
        return self

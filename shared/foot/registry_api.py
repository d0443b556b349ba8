"""Wire types of the registry's requests and of the pull-mode agent protocol.

Registry requests (request-reply on `foot.registry.<verb>`, the same bodies on the
registry's HTTP admin API under `/api/clusters/...`): join, unjoin, register,
collect, sealing-key. Every reply is a `RegistryReply`; an error names the field and the
reason.

No secret crosses the bus in the clear: on NATS a join's (or unjoin's) kubeconfig travels
only as `sealedKubeconfig`, sealed to the registry's public key (`sealing-key` answers it),
and a registration names a `replyKey` to which the registry seals the bootstrap token and
the agent's manifests (`RegistryReply.sealed`). Over the admin HTTP API (loopback or TLS,
behind the admin token) the plain fields stay accepted. `foot.registry_client` does the
sealing for the CLI and other clients.

Agents (pull mode) speak two subjects, both per cluster so that NATS permissions can
confine an agent's user to its own cluster:

* `foot.agent.register.<cluster>`: request-reply `AgentHello` -> `AgentWelcome`;
* `foot.agent.heartbeat.<cluster>`: plain publish of `Heartbeat` (lost ones are fine).

Both are authenticated with the cluster's agent key, an HMAC key derived from the
per-cluster bootstrap token that `foot cluster register` printed
(`agent_key(token)`, in `foot.agent_channel`, which also seals the works channel with keys
derived from it). The token itself never travels after registration printed it;
the registry keeps only the derived key, sealed. Each message carries its time
and a per-agent sequence, so a captured heartbeat cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, Field, SecretStr, model_validator

# The agent key lives with the works channel that derives its keys from it.
from foot.agent_channel import AGENT_KEY_CONTEXT as AGENT_KEY_CONTEXT  # noqa: PLC0414 - re-exported
from foot.agent_channel import agent_key as agent_key  # noqa: PLC0414 - re-exported
from foot.api import ApiError
from foot.cluster_status import CollectedStatus
from foot.errors import FieldProblem
from foot.kinds.policies import Labels
from foot.objects import FrozenModel, check_label
from foot.secrets import BoxKey, parse_public_key, seal_to

ClusterName = Annotated[str, AfterValidator(check_label)]
"""A cluster's name: an RFC 1123 label (it ends up in namespace names and bucket keys, so a
name that is not one can name no cluster, and is refused before any lookup)."""

REGISTRY_BOX_PURPOSE = "registry-requests"
"""What the registry's sealed-message key is derived for (`SecretBox.box_key`)."""


def _check_public_key(value: str) -> str:
    parse_public_key(value)
    return value


PublicKeyText = Annotated[str, AfterValidator(_check_public_key)]


def join_context(verb: str, name: str) -> str:
    """What a sealed kubeconfig is bound to: its verb and cluster (`join/east`)."""
    return f"{verb}/{name}"


def register_reply_context(name: str) -> str:
    return f"register-reply/{name}"


class JoinRequest(FrozenModel):
    """Push join: the registry sets FOOT up in the member with the admin credential given."""

    name: str
    """Name of the new cluster (an RFC 1123 label)."""
    kubeconfig: SecretStr | None = None
    """The admin kubeconfig's text (used for the join only; never stored or logged). Over
    the admin HTTP API only: on NATS it travels as `sealedKubeconfig`."""
    sealed_kubeconfig: str | None = None
    """The kubeconfig sealed to the registry's key (`sealing-key`) for `join/<name>`."""
    context: str | None = None
    """Kubeconfig context (default: its current-context)."""
    provider: str | None = None
    """Cloud provider name."""
    region: str | None = None
    """Region."""
    zone: str | None = None
    """Zone."""
    gateway_address: str | None = None
    """Address at which the gateway reaches the member's NodePort Services (default: the
    API server's host, which is wrong when that is a load balancer)."""
    labels: Labels = Field(default_factory=dict)
    """Labels of the Cluster object (policies select on them)."""
    use_given_credential: bool = False
    """Store the kubeconfig's own bearer token instead of creating a ServiceAccount: for a
    credential already scoped for FOOT (and for the simulator, which has no RBAC API)."""

    @model_validator(mode="after")
    def _one_kubeconfig(self) -> JoinRequest:
        if (self.kubeconfig is None) == (self.sealed_kubeconfig is None):
            raise ValueError("give exactly one of kubeconfig and sealedKubeconfig")
        return self


class ClusterNameRequest(FrozenModel):
    """Collect (or describe): just the cluster's name."""

    name: ClusterName
    """Cluster name."""


class UnjoinRequest(FrozenModel):
    """Unjoin: forget the cluster and remove what the join created in the member."""

    name: ClusterName
    """Cluster name."""
    kubeconfig: SecretStr | None = None
    """An admin kubeconfig: remove each object at once. Without it FOOT deletes its
    namespace with its own token and the member's garbage collector removes the rest. Over
    the admin HTTP API only: on NATS it travels as `sealedKubeconfig`."""
    sealed_kubeconfig: str | None = None
    """That kubeconfig sealed to the registry's key (`sealing-key`) for `unjoin/<name>`."""
    context: str | None = None
    """Context of that kubeconfig."""
    force: bool = False
    """Forget the cluster even when the member cannot be reached (its objects stay)."""

    @model_validator(mode="after")
    def _at_most_one_kubeconfig(self) -> UnjoinRequest:
        if self.kubeconfig is not None and self.sealed_kubeconfig is not None:
            raise ValueError("give at most one of kubeconfig and sealedKubeconfig")
        return self


class RegisterRequest(FrozenModel):
    """Pull registration: a bootstrap credential and the agent's manifests."""

    name: str
    """Name of the new cluster (an RFC 1123 label)."""
    hub_nats_url: str | None = None
    """NATS URL the agent dials (default: the registry's own, as it sees it)."""
    image: str = "ghcr.io/foot-dev/foot:latest"
    """Container image with FOOT (the agent runs `foot agent`)."""
    provider: str | None = None
    """Cloud provider name."""
    region: str | None = None
    """Region."""
    zone: str | None = None
    """Zone."""
    gateway_address: str | None = None
    """Address at which the gateway reaches the member's NodePort Services."""
    labels: Labels = Field(default_factory=dict)
    """Labels of the Cluster object."""
    reply_key: PublicKeyText | None = None
    """A public key (`foot-x25519:...`) made for this request: the reply's bootstrap token
    and manifests come sealed to it (`RegistryReply.sealed`). Required on NATS."""


class EmptyRequest(FrozenModel):
    """A request without parameters (`sealing-key`)."""


class RegistryReply(FrozenModel):
    """Answer to every registry request."""

    error: ApiError | None = None
    """Set when the request failed; nothing was left half-done."""
    cluster: dict[str, Any] | None = None
    """The Cluster object as stored (join, register, collect)."""
    manifests: str | None = None
    """Register: the agent's manifests, multi-document YAML for `kubectl apply -f -`."""
    bootstrap_token: SecretStr | None = None
    """Register: the bootstrap token (also inside the manifests' Secret); shown once."""
    sealed: str | None = None
    """Register with a `replyKey`: `manifests` and `bootstrapToken` sealed to it (JSON)."""
    sealing_key: str | None = None
    """Sealing-key: the registry's public key to seal kubeconfigs to."""
    message: str = ""
    """What was done, for people."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> bytes:
        document = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.bootstrap_token is not None:
            document["bootstrapToken"] = self.bootstrap_token.get_secret_value()
        return orjson.dumps(document)

    def sealed_to(self, reply_key: str, name: str) -> RegistryReply:
        """This registration reply with its manifests and token sealed to `reply_key`."""
        secret = {
            "manifests": self.manifests,
            "bootstrapToken": (
                self.bootstrap_token.get_secret_value() if self.bootstrap_token else None
            ),
        }
        sealed = seal_to(reply_key, orjson.dumps(secret), context=register_reply_context(name))
        return self.model_copy(
            update={"manifests": None, "bootstrap_token": None, "sealed": sealed}
        )

    def opened_with(self, key: BoxKey, name: str) -> RegistryReply:
        """A sealed registration reply opened (UnsealError when it is not sealed to `key`)."""
        if self.sealed is None:
            return self
        secret = orjson.loads(key.open(self.sealed, context=register_reply_context(name)))
        token = secret.get("bootstrapToken")
        return self.model_copy(
            update={
                "manifests": secret.get("manifests"),
                "bootstrap_token": SecretStr(token) if token else None,
                "sealed": None,
            }
        )


def clear_secret_problems(verb: str, document: dict[str, Any]) -> list[FieldProblem]:
    """Why a request received on NATS is refused: a secret in the clear (`kubeconfig`), or
    a registration without a key to seal its answer to. Empty when it is fine."""
    problems = []
    if verb in {"join", "unjoin"} and document.get("kubeconfig") is not None:
        problems.append(
            FieldProblem(
                "kubeconfig",
                "is refused on NATS, where it would cross the bus in the clear: send it as "
                "sealedKubeconfig, sealed to the registry's key (foot.registry.sealing-key; "
                "the foot CLI does this)",
            )
        )
    if verb == "register" and document.get("replyKey") is None:
        problems.append(
            FieldProblem(
                "replyKey",
                "is required on NATS: the bootstrap token is sent back only sealed to a key "
                "of the requester's (the foot CLI makes one per request)",
            )
        )
    return problems


# ---- the agent protocol --------------------------------------------------------------------


class _Signed(FrozenModel):
    signature: str = ""
    """HMAC-SHA256 (hex) of the message's other fields, canonical JSON, with the agent key."""

    def _canonical(self) -> bytes:
        body = self.model_dump(mode="json", by_alias=True, exclude={"signature"})
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)

    def signed(self, key: bytes) -> Any:
        digest = hmac.new(key, self._canonical(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"signature": digest})

    def verify(self, key: bytes) -> bool:
        expected = hmac.new(key, self._canonical(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)


class AgentHello(_Signed):
    """An agent announcing itself (at start and after it was told to register again)."""

    cluster: str
    """Its cluster's name."""
    agent_id: str = Field(min_length=1, max_length=128)
    """Random id of this agent process; heartbeat sequences are per agent id."""
    sent_at: datetime
    """When it was sent; the registry refuses messages too far from its own clock."""
    version: str = ""
    """FOOT version of the agent."""


class AgentWelcome(FrozenModel):
    """The registry's answer to a hello."""

    accepted: bool
    """False: the credential was refused (see message)."""
    message: str = ""
    """Why not, for the agent's log."""
    heartbeat_period_seconds: float = 0.5
    """How often to send heartbeats."""
    status_period_seconds: float = 10.0
    """How often to include a full status collection."""


class Heartbeat(_Signed):
    """An agent's lease renewal, with its API server's health and (sometimes) the status."""

    cluster: str
    """Its cluster's name."""
    agent_id: str = Field(min_length=1, max_length=128)
    """The agent process (as in its hello)."""
    sequence: int = Field(ge=0)
    """Increases by one per heartbeat of this agent process."""
    sent_at: datetime
    """When it was sent."""
    api_server_ready: bool
    """Whether the member's API server answered /readyz just now."""
    message: str = ""
    """Why not ready, when it is not."""
    status: CollectedStatus | None = None
    """A status collection, every status period."""


HeartbeatVerdict = Literal["ok", "bad-signature", "stale", "replayed", "unknown-cluster"]

"""Agent settings: FOOT_AGENT_* variables and the matching flags."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from foot.agent_channel import MAX_SKEW_SECONDS
from foot.errors import FieldProblem
from foot.objects import DNS1123_LABEL_PATTERN
from foot.runtime.settings import SettingsError, check_nats_ca

ENV_PREFIX = "FOOT_AGENT_"


class AgentSettings(BaseSettings):
    """What the agent needs; in a member cluster they come from the Secret that
    `foot cluster register` printed."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    cluster_name: str = Field(pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """Name the cluster was registered under."""
    nats_url: str = Field(pattern=r"^(nats|tls)://[^\s]+$")
    """The hub's NATS (with this agent's NATS user in production)."""
    nats_ca_file: Path | None = None
    """CA certificate(s), PEM, that sign the hub NATS server's certificate, for a tls://
    nats_url (unset: the system's CAs); `foot cluster register` mounts the hub's here."""
    nats_credentials_file: Path | None = None
    """This agent's NATS user, a `.creds` file, fenced to its cluster's subjects (the mounted
    Secret from `foot cluster register`)."""
    bootstrap_token: SecretStr | None = None
    """The bootstrap token `foot cluster register` printed (or bootstrap_token_file)."""
    bootstrap_token_file: Path | None = None
    """File holding the bootstrap token (the mounted Secret in a member cluster)."""
    kubeconfig: Path | None = None
    """Kubeconfig of the member's API server; unset: the in-cluster ServiceAccount."""
    context: str | None = None
    """Context of that kubeconfig (default: its current-context)."""
    probe_timeout_seconds: float = Field(default=1.5, gt=0, le=60)
    """The member's /readyz must answer within this for a heartbeat to say ready."""
    status_timeout_seconds: float = Field(default=8.0, gt=0, le=300)
    """A status collection may take this long."""
    hello_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    """How long to wait for the registry's answer to a hello before trying again."""
    hub_max_skew_seconds: float = Field(default=MAX_SKEW_SECONDS, gt=0, le=3600)
    """A work delivery or sync reply is dropped when its time is further than this from the
    agent's clock (see `foot.agent_channel`)."""
    shutdown_deadline_seconds: float = Field(default=5.0, gt=0, le=300)
    """On SIGTERM: how long tasks may take to finish."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""
    log_format: Literal["json", "text"] = "json"
    """json: one object per line; text: for people at a terminal."""

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if (self.bootstrap_token is None) == (self.bootstrap_token_file is None):
            raise ValueError("give exactly one of bootstrap_token and bootstrap_token_file")
        return self

    @model_validator(mode="after")
    def _ca_only_with_tls(self) -> Self:
        check_nats_ca(self.nats_url, self.nats_ca_file)
        return self

    def token(self) -> str:
        if self.bootstrap_token is not None:
            return self.bootstrap_token.get_secret_value()
        assert self.bootstrap_token_file is not None  # noqa: S101 - checked by the validator
        try:
            return self.bootstrap_token_file.read_text().strip()
        except OSError as exc:
            raise SettingsError(
                [FieldProblem("bootstrap_token_file", f"cannot read it: {exc.strerror}")]
            ) from exc

    @classmethod
    def load(cls, argv: Sequence[str] | None = None) -> Self:
        try:
            return cls(_cli_parse_args=list(argv) if argv is not None else False)
        except ValidationError as exc:
            problems = []
            for item in exc.errors(include_url=False):
                field = str(item["loc"][0]) if item["loc"] else ""
                where = field
                if field in cls.model_fields:
                    where = f"{field} ({ENV_PREFIX}{field.upper()} / --{field.replace('_', '-')})"
                reason = str(item["msg"]).removeprefix("Value error, ")
                problems.append(FieldProblem(where, reason))
            raise SettingsError(problems) from None

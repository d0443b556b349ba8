"""Service settings: pydantic models read from FOOT_* variables and command-line flags.

Every problem is reported at once, naming the variable and the flag, before the
service touches anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from foot.errors import FieldProblem, PermanentError

ENV_PREFIX = "FOOT_"


def default_home() -> Path:
    """FOOT's data folder: FOOT_HOME, or ~/.foot."""
    return Path(os.environ.get("FOOT_HOME") or Path.home() / ".foot")


class SettingsError(PermanentError):
    """The configuration cannot work; every problem is listed."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid settings:\n{listing}")


class ServiceSettings(BaseSettings):
    """What every FOOT service needs; services subclass to add their own."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    nats_url: str = Field(default="nats://127.0.0.1:4222", pattern=r"^(nats|tls)://[^\s]+$")
    """NATS server (or cluster seed) to connect to, e.g. nats://127.0.0.1:4222."""
    nats_ca_file: Path | None = None
    """CA certificate(s), PEM, that sign the NATS server's certificate, for a tls:// nats_url
    (unset: the system's CAs)."""
    admin_host: str = "127.0.0.1"
    """Interface the admin HTTP server (/healthz, /readyz, /metrics, /admin) binds to."""
    admin_port: int = Field(default=0, ge=0, le=65535)
    """Port of the admin HTTP server; 0 picks a free one (printed at start)."""
    admin_token: str | None = Field(default=None, min_length=16)
    """Bearer token required by /admin and /api endpoints; unset leaves them open on loopback."""
    shutdown_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    """On SIGTERM: how long in-flight work may run on before it is cancelled."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""
    log_format: Literal["json", "text"] = "json"
    """json: one JSON object per line with trace ids; text: for people at a terminal."""
    consumer_concurrency: int = Field(default=16, ge=1, le=1024)
    """Messages each consumer handles at once."""
    reconcile_workers: int = Field(default=4, ge=1, le=256)
    """Keys each reconcile queue works on at once."""
    secret_key_file: Path = Field(default_factory=lambda: default_home() / "secret.key")
    """File holding the base64 AES-256 key that seals stored credentials (mode 600; created
    on first use). Every service of one installation must use the same file."""

    @model_validator(mode="after")
    def _ca_only_with_tls(self) -> Self:
        check_nats_ca(self.nats_url, self.nats_ca_file)
        return self

    @classmethod
    def load(cls, argv: Sequence[str] | None = None) -> Self:
        """Read environment and flags (`argv`; None reads none), or raise SettingsError."""
        try:
            return cls(_cli_parse_args=list(argv) if argv is not None else False)
        except ValidationError as exc:
            raise SettingsError(_problems(cls, exc)) from None


SettingsT = TypeVar("SettingsT", bound="ServiceSettings")


def as_settings(model: type[SettingsT], settings: ServiceSettings) -> SettingsT:
    """`settings` as the service's own model: given only the common settings (a test, an
    embedding program), the service's own fields take their defaults or FOOT_* variables.

    `Service.__init__` does this for every service (its typed `self.settings`); the
    dispatcher and the registry still call it themselves, for their `self.config`, until
    they switch."""
    if isinstance(settings, model):
        return settings
    return model(**settings.model_dump())


def check_nats_ca(
    nats_url: str,
    ca_file: Path | None,
    *,
    url_field: str = "nats_url",
    ca_field: str = "nats_ca_file",
) -> None:
    """A NATS CA file is readable and goes with a tls:// URL (a CA with nats:// would let
    the connection fall back to plain text without anyone noticing)."""
    if ca_file is None:
        return
    if not nats_url.startswith("tls://"):
        # The URL itself is not repeated: it may carry a NATS user's password.
        raise ValueError(f"{ca_field} is given, so {url_field} must be a tls:// URL")
    if not ca_file.is_file():
        raise ValueError(f"{ca_field} {ca_file} is not a readable file")


def _problems(cls: type[ServiceSettings], error: ValidationError) -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        where = field
        if field in cls.model_fields:
            flag = "--" + field.replace("_", "-")
            where = f"{field} ({ENV_PREFIX}{field.upper()} / {flag})"
        problems.append(FieldProblem(where, str(item["msg"]).removeprefix("Value error, ")))
    return problems

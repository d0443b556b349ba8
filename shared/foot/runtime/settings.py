"""Service settings: pydantic models read from FOOT_* variables and command-line flags.

Every problem is reported at once, naming the variable and the flag, before the
service touches anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self, TypeVar

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from foot.errors import FieldProblem, PermanentError
from foot.natsauth import service_creds_path

ENV_PREFIX = "FOOT_"


def default_home() -> Path:
    """FOOT's data folder: FOOT_HOME, or ~/.foot."""
    return Path(os.environ.get("FOOT_HOME") or Path.home() / ".foot")


TOKEN_MIN_LENGTH = 16


@dataclass(frozen=True, slots=True, repr=False)
class AdminTokens:
    """The bearer tokens of the admin HTTP API: `admin` may do everything, `read` only GET and
    HEAD. No admin token closes /admin and /api altogether (secure by default)."""

    admin: str | None = None
    read: str | None = None

    def __repr__(self) -> str:
        # Never the tokens themselves: settings and their parts end up in logs.
        admin = "set" if self.admin else "unset"
        read = "set" if self.read else "unset"
        return f"AdminTokens(admin={admin}, read={read})"


def read_token_file(path: Path, field: str) -> str:
    """The token in `path`: a file only its owner may read (mode 600), at least 16 characters
    long once surrounding whitespace is stripped."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{field} {path}: {reason}") from None
    if mode & 0o077:
        raise ValueError(
            f"{field} {path} is open to other users (mode {mode & 0o777:o}); chmod 600 it"
        )
    if len(token) < TOKEN_MIN_LENGTH:
        raise ValueError(f"{field} {path} must hold at least {TOKEN_MIN_LENGTH} characters")
    return token


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
    nats_credentials_file: Path | None = None
    """The service's NATS user, a `.creds` file (mode 600) holding its JWT and nkey seed
    (unset: <FOOT_HOME>/nats/<service>.creds, which `foot up` writes)."""
    admin_host: str = "127.0.0.1"
    """Interface the admin HTTP server (/healthz, /readyz, /metrics, /admin) binds to."""
    admin_port: int = Field(default=0, ge=0, le=65535)
    """Port of the admin HTTP server; 0 picks a free one (printed at start)."""
    admin_token_file: Path | None = None
    """File (mode 600) holding the bearer token that may do everything on /admin and /api.
    With no admin token at all, every request but /healthz, /readyz and /metrics is refused."""
    admin_token: SecretStr | None = None
    """The admin token itself (at least 16 characters); prefer admin_token_file, which keeps
    it off command lines and out of environment dumps."""
    read_token_file: Path | None = None
    """File (mode 600) holding a bearer token that may only read (GET, HEAD) /admin and /api."""
    read_token: SecretStr | None = None
    """The read-only token itself; prefer read_token_file."""
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

    _admin_tokens: AdminTokens = PrivateAttr(default_factory=AdminTokens)

    @field_validator("admin_token", "read_token")
    @classmethod
    def _token_long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < TOKEN_MIN_LENGTH:
            raise ValueError(f"must be at least {TOKEN_MIN_LENGTH} characters")
        return token

    @model_validator(mode="after")
    def _ca_only_with_tls(self) -> Self:
        check_nats_ca(self.nats_url, self.nats_ca_file)
        return self

    @model_validator(mode="after")
    def _tokens_readable(self) -> Self:
        admin = _one_token(self.admin_token, self.admin_token_file, "admin_token")
        read = _one_token(self.read_token, self.read_token_file, "read_token")
        if read is not None and admin is None:
            raise ValueError("a read token is given but no admin token: set admin_token_file")
        if read is not None and read == admin:
            raise ValueError("the read token must differ from the admin token")
        self._admin_tokens = AdminTokens(admin=admin, read=read)
        return self

    def nats_credentials(self, service: str) -> Path:
        """The `.creds` file `service` connects to NATS with."""
        if self.nats_credentials_file is not None:
            return self.nats_credentials_file
        return service_creds_path(default_home(), service)

    @property
    def admin_tokens(self) -> AdminTokens:
        """The admin HTTP API's tokens, read from their files at load."""
        return self._admin_tokens

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

    `Service.__init__` does this for every service (its typed `self.settings`)."""
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


def _one_token(token: SecretStr | None, path: Path | None, field: str) -> str | None:
    if token is not None and path is not None:
        raise ValueError(f"give {field} or {field}_file, not both")
    if path is not None:
        return read_token_file(path, f"{field}_file")
    return None if token is None else token.get_secret_value()


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

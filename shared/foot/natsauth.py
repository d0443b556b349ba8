"""Who may say what on FOOT's NATS: one identity per service, per pull agent, the CLI.

FOOT runs NATS in operator mode (decentralized auth): an operator key signs the FOOT
account, whose signing key signs every user. The server needs only the operator's and the
accounts' JWTs (a memory resolver, preloaded), so the registry can mint a new pull agent's
user at `foot cluster register` without touching the server. The permissions are allow
lists derived from `foot.catalog`:

- a service: FOOT's subjects (`foot.>`), the JetStream API (every service declares every
  stream and bucket at start, and reads buckets through it), acknowledgements, writes to the
  buckets it owns only (`$KV.<bucket>.>`), replies to requests it receives, and its own
  inbox `_INBOX.>`; never an agent's inbox;
- a pull agent of cluster C: only C's register, heartbeat, works sync/status subjects, C's
  deliveries, and its own inbox `_INBOX_C.>` (`agent_inbox_prefix`), so no agent reads
  another's replies, works or buckets;
- the CLI: the API and registry requests, the JetStream API's reads only (no stream or
  bucket write, purge, delete or reconfiguration), its own inbox `_INBOX_cli.>` (no
  service reads its answers).

`NatsAuthHome` keeps the keys and the `.creds` files in a folder of FOOT's home (mode 600),
where `foot up` and the test fixtures create them, and services and the CLI find them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from foot.catalog import (
    AGENT_PREFIX,
    BUCKETS,
    WORKS_PREFIX,
    agent_heartbeat_subject,
    agent_register_subject,
    work_deliver_subject,
    work_status_subject,
    work_sync_subject,
)
from foot.natsjwt import (
    KeyKind,
    NKey,
    Permissions,
    account_jwt,
    creds_text,
    mint_user_creds,
    operator_jwt,
    parse_creds,
    user_jwt,
)

SERVICES = ("registry", "scheduler", "dispatcher", "gateway-sync", "storage")
"""Every FOOT service, each with its own NATS user."""
CLI_IDENTITY = "cli"
ACCOUNT_NAME = "FOOT"
INBOX = "_INBOX"

_JETSTREAM_CLIENT = ("$JS.API.>", "$JS.ACK.>", "$JS.FC.>")


def service_permissions(service: str) -> Permissions:
    """A service's user: FOOT's subjects and the JetStream API, writes to the buckets it
    owns (`foot.catalog`: nobody else writes them), answers, never an agent's inbox."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    owned = tuple(f"$KV.{bucket.name}.>" for bucket in BUCKETS if bucket.owner == service)
    return Permissions(
        publish=("foot.>", *_JETSTREAM_CLIENT, *owned),
        subscribe=("foot.>", f"{INBOX}.>"),
        respond=True,
    )


CLI_INBOX_PREFIX = f"{INBOX}_{CLI_IDENTITY}"
"""The CLI's own inbox: its answers (a register's manifests, say) are not readable by a
service's user, which may subscribe only to `_INBOX.>`."""


_JETSTREAM_READS = (
    "$JS.API.INFO",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.DIRECT.GET.>",
    # Ephemeral consumers only (`CREATE.<stream>`): a named create could rewrite a
    # service's durable consumer.
    "$JS.API.CONSUMER.CREATE.*",
    "$JS.API.CONSUMER.INFO.*.*",
    "$JS.FC.>",
)
"""The JetStream API calls that read: stream and bucket contents, never a write, a purge, a
delete, or a change of a stream's or a consumer's configuration."""


def cli_permissions() -> Permissions:
    """The CLI's user: API and registry requests and JetStream reads (`foot get`, `foot
    status`). Secrets it could read in buckets are sealed with the services' key."""
    return Permissions(
        publish=("foot.api.>", "foot.registry.>", *_JETSTREAM_READS),
        subscribe=(f"{CLI_INBOX_PREFIX}.>",),
    )


def agent_inbox_prefix(cluster: str) -> str:
    """The inbox a pull agent's replies arrive on (`<prefix>.<id>`): its own, so another
    agent, allowed only its own prefix, can never read them."""
    return f"{INBOX}_{cluster}"


def agent_permissions(cluster: str) -> Permissions:
    """A pull agent's user: its own cluster's subjects and inbox, nothing else."""
    return Permissions(
        publish=(
            agent_register_subject(cluster),
            agent_heartbeat_subject(cluster),
            work_sync_subject(cluster),
            work_status_subject(cluster),
        ),
        subscribe=(work_deliver_subject(cluster), f"{agent_inbox_prefix(cluster)}.>"),
    )


AGENT_SUBJECT_FAMILIES = (
    f"{AGENT_PREFIX}.register",
    f"{AGENT_PREFIX}.heartbeat",
    f"{WORKS_PREFIX}.deliver",
    f"{WORKS_PREFIX}.sync",
    f"{WORKS_PREFIX}.status",
)
"""Every per-cluster subject family (`<family>.<cluster>`) an agent speaks on."""


def mint_agent_creds(signing_key: NKey, *, account: str, cluster: str) -> str:
    """A new pull agent's `.creds` text: a fresh user fenced to `cluster`."""
    return mint_user_creds(
        signing_key,
        account=account,
        name=f"agent-{cluster}",
        permissions=agent_permissions(cluster),
    )


def nats_folder(home: Path) -> Path:
    return home / "nats-auth"


def service_creds_path(home: Path, identity: str) -> Path:
    """Where `foot up` keeps a service's (or the CLI's) `.creds` file."""
    return nats_folder(home) / f"{identity}.creds"


def account_signing_seed_path(home: Path) -> Path:
    """The seed the registry mints pull agents' users with."""
    return nats_folder(home) / "account-signing.nk"


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read or write (mode 600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written beside, then renamed: a process reading it meanwhile sees the old or the new.
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    partial.replace(path)


def read_seed(path: Path) -> NKey:
    return NKey.from_seed(path.read_bytes())


@dataclass(frozen=True)
class NatsAuthHome:
    """The NATS trust chain of one installation, in `<home>/nats` (every file mode 600)."""

    home: Path

    @property
    def folder(self) -> Path:
        return nats_folder(self.home)

    @property
    def server_config(self) -> Path:
        """The nats-server configuration part with the trust chain (`include`d)."""
        return self.folder / "auth.conf"

    def creds(self, identity: str) -> Path:
        return service_creds_path(self.home, identity)

    @property
    def signing_seed(self) -> Path:
        """The account signing key the registry mints pull agents' users with."""
        return account_signing_seed_path(self.home)

    def _key(self, name: str, kind: KeyKind) -> NKey:
        path = self.folder / f"{name}.nk"
        if path.exists():
            return read_seed(path)
        key = NKey.generate(kind)
        write_private(path, key.seed.decode() + "\n")
        return key

    def ensure(self, *, extra_users: dict[str, Permissions] | None = None) -> NatsAuthHome:
        """Create what is missing: keys, the server's trust configuration, a `.creds` file
        per service and for the CLI (and `extra_users`: a test harness). Existing keys are
        kept, so a restart changes nobody's identity; the users' JWTs are signed anew, so
        their permissions are always this version's."""
        operator = self._key("operator", "operator")
        system = self._key("system-account", "account")
        account = self._key("account", "account")
        signing = self._key("account-signing", "account")
        operator_token = operator_jwt(operator, name="FOOT", system_account=system.public_key)
        accounts = {
            system.public_key: account_jwt(operator, system.public_key, name="SYS"),
            account.public_key: account_jwt(
                operator,
                account.public_key,
                name=ACCOUNT_NAME,
                signing_keys=(signing.public_key,),
                jetstream=True,
            ),
        }
        write_private(self.folder / "operator.jwt", operator_token + "\n")
        preload = "\n".join(f'  {key}: "{token}"' for key, token in accounts.items())
        write_private(
            self.server_config,
            f'operator: "{self.folder / "operator.jwt"}"\n'
            f'system_account: "{system.public_key}"\n'
            "resolver: MEMORY\n"
            f"resolver_preload: {{\n{preload}\n}}\n",
        )
        users = {name: service_permissions(name) for name in SERVICES}
        users[CLI_IDENTITY] = cli_permissions()
        users |= extra_users or {}
        for name, permissions in users.items():
            path = self.creds(name)
            # The same user key across restarts; its JWT re-signed with today's permissions.
            user = parse_creds(path.read_text())[1] if path.exists() else NKey.generate("user")
            token = user_jwt(
                signing,
                user.public_key,
                name=name,
                account=account.public_key,
                permissions=permissions,
            )
            write_private(path, creds_text(token, user.seed))
        return self

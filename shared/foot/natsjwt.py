"""NATS decentralized-auth material: nkeys, JWTs (v2) and `.creds` files (pure, no I/O).

NATS's operator mode trusts a chain of ed25519 keys: an operator signs accounts, an account
(or one of its signing keys) signs users. Each link is a JWT: a header
`{"typ":"JWT","alg":"ed25519-nkey"}`, the claims (`jti`, `iat`, `iss`, `sub`, `name`,
`nats`), both base64url without padding, then the issuer's signature over the first two
parts. `jti` is the base32 SHA-256 of the claims as they are before it is set, so two
mintings at the same second with the same content carry the same id (as NATS's own tools).
A user's `.creds` file holds its JWT and its nkey seed between the standard markers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import nkeys

KeyKind = Literal["operator", "account", "user"]
_PREFIX: dict[KeyKind, int] = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
UNLIMITED = -1


class NatsKeyError(ValueError):
    """A seed, JWT or creds file that cannot be what it claims to be."""


@dataclass(frozen=True, slots=True, repr=False)
class NKey:
    """An ed25519 key pair as NATS encodes it: the seed (`S...`, secret) and the public key
    (`O...` operator, `A...` account, `U...` user)."""

    seed: bytes
    public_key: str

    def __repr__(self) -> str:
        # Never the seed: keys end up in log lines and tracebacks.
        return f"NKey({self.public_key})"

    @classmethod
    def generate(cls, kind: KeyKind) -> NKey:
        return cls.from_seed(nkeys.encode_seed(os.urandom(32), _PREFIX[kind]))

    @classmethod
    def from_seed(cls, seed: bytes) -> NKey:
        try:
            pair = nkeys.from_seed(bytearray(seed.strip()))
            public = pair.public_key.decode()
        except (nkeys.NkeysError, binascii.Error, ValueError, TypeError) as exc:
            raise NatsKeyError("not a NATS nkey seed") from exc
        return cls(seed=bytes(seed.strip()), public_key=public)

    def sign(self, data: bytes) -> bytes:
        pair = nkeys.from_seed(bytearray(self.seed))
        return bytes(pair.sign(data))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(
    *, issuer: NKey, subject: str, name: str, nats: dict[str, Any], issued_at: int | None = None
) -> str:
    """A signed NATS JWT: `nats` is the type-specific part (with `type` and `version`)."""
    claims: dict[str, Any] = {
        "jti": "",
        "iat": int(time.time()) if issued_at is None else issued_at,
        "iss": issuer.public_key,
        "name": name,
        "sub": subject,
        "nats": nats,
    }
    digest = hashlib.sha256(json.dumps(claims, separators=(",", ":")).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64url(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = issuer.sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{_b64url(signature)}"


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (not verified: for reading what one's own tools minted)."""
    try:
        _, body, _ = token.split(".")
        claims = json.loads(_b64url_decode(body))
    except (ValueError, binascii.Error) as exc:
        raise NatsKeyError("not a JWT") from exc
    if not isinstance(claims, dict):
        raise NatsKeyError("not a JWT")
    return claims


def operator_jwt(operator: NKey, *, name: str, system_account: str) -> str:
    """The self-signed operator JWT the server trusts."""
    return encode_jwt(
        issuer=operator,
        subject=operator.public_key,
        name=name,
        nats={"type": "operator", "version": 2, "system_account": system_account},
    )


def account_jwt(
    operator: NKey,
    account: str,
    *,
    name: str,
    signing_keys: tuple[str, ...] = (),
    jetstream: bool = False,
) -> str:
    """An account JWT signed by the operator; with `jetstream`, JetStream without limits."""
    limits: dict[str, Any] = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": UNLIMITED,
        "leaf": UNLIMITED,
    }
    if jetstream:
        limits |= {
            "mem_storage": UNLIMITED,
            "disk_storage": UNLIMITED,
            "streams": UNLIMITED,
            "consumer": UNLIMITED,
        }
    nats: dict[str, Any] = {"type": "account", "version": 2, "limits": limits}
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    return encode_jwt(issuer=operator, subject=account, name=name, nats=nats)


@dataclass(frozen=True, slots=True)
class Permissions:
    """Subjects a NATS user may publish to and subscribe on (allow lists: everything else is
    denied); `respond` lets it answer the requests it receives, whatever their reply subject."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    respond: bool = False


def user_jwt(signer: NKey, user: str, *, name: str, account: str, permissions: Permissions) -> str:
    """A user JWT signed by `signer`, the account itself or one of its signing keys."""
    nats: dict[str, Any] = {
        "type": "user",
        "version": 2,
        "pub": {"allow": list(permissions.publish)},
        "sub": {"allow": list(permissions.subscribe)},
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
    }
    if permissions.respond:
        nats["resp"] = {"max": 1, "ttl": 0}
    if signer.public_key != account:
        nats["issuer_account"] = account
    return encode_jwt(issuer=signer, subject=user, name=name, nats=nats)


_CREDS = re.compile(
    r"-----BEGIN NATS USER JWT-----\s*(?P<jwt>\S+)\s*------END NATS USER JWT------.*?"
    r"-----BEGIN USER NKEY SEED-----\s*(?P<seed>\S+)\s*------END USER NKEY SEED------",
    re.DOTALL,
)


def creds_text(jwt: str, seed: bytes) -> str:
    """A `.creds` file in the layout nats-server's tools write and every client reads."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed.decode()}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def parse_creds(text: str) -> tuple[str, NKey]:
    """The JWT and the user key of a `.creds` file."""
    found = _CREDS.search(text)
    if found is None:
        raise NatsKeyError("not a NATS .creds file")
    return found["jwt"], NKey.from_seed(found["seed"].encode())


def mint_user_creds(signer: NKey, *, account: str, name: str, permissions: Permissions) -> str:
    """A fresh user (new key) with `permissions`, as the text of its `.creds` file."""
    user = NKey.generate("user")
    token = user_jwt(signer, user.public_key, name=name, account=account, permissions=permissions)
    return creds_text(token, user.seed)

"""Sealing secrets at rest, and in transit to one receiver.

At rest: credentials are stored only as AES-256-GCM ciphertext. The key lives in a file
readable by its owner only (`secret_key_file` in the settings; `foot up` creates one under
FOOT_HOME). Each sealed value is bound to where it is stored (bucket and key as associated
data), so a sealed credential copied under another cluster's key does not open.

In transit: `seal_to` seals a message to one receiver's X25519 public key (an ephemeral key
agreement, HKDF-SHA256, AES-256-GCM: libsodium's "sealed box" shape), bound to a context
such as `join/east`. Only the holder of the private key (`BoxKey`) opens it; whoever else
reads the bus sees ciphertext. The CLI seals a join's kubeconfig to the registry's key, and
the registry seals a registration's bootstrap token and agent credentials to a key the CLI
made for that one request.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from foot.errors import PermanentError

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_PREFIX = b"foot-sealed-v1:"
BOX_PREFIX = "foot-box-v1:"
PUBLIC_KEY_PREFIX = "foot-x25519:"
X25519_BYTES = 32


class SecretKeyError(PermanentError):
    """The sealing key is missing, unreadable or malformed."""


class UnsealError(PermanentError):
    """A sealed value does not open with this key (wrong key, tampered, or moved)."""


class SecretBox:
    """Seals and opens small secrets with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretKeyError(f"the sealing key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        self._key = key

    def box_key(self, purpose: str) -> BoxKey:
        """A private key for sealed messages derived from this key for `purpose` (e.g.
        `registry-requests`): every holder of the sealing key derives the same one, so no
        second key file is needed and a restart keeps the public key."""
        return BoxKey(hkdf_key(self._key, info=f"foot-box-key-v1/{purpose}".encode()))

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> SecretBox:
        """Load the base64 key in `path`; with `create`, write a new random key if absent."""
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES))
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first; use theirs
            else:
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(encoded + b"\n")
        try:
            text = path.read_bytes().strip()
        except OSError as exc:
            raise SecretKeyError(f"cannot read the sealing key file {path}: {exc}") from exc
        if path.stat().st_mode & 0o077:
            raise SecretKeyError(f"the sealing key file {path} is readable by others; chmod 600 it")
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise SecretKeyError(f"the sealing key file {path} is not base64") from exc
        return cls(key)

    def seal(self, plaintext: bytes, *, context: str) -> bytes:
        """Encrypt `plaintext` for storage at `context` (e.g. `cluster-credentials/east`)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return FORMAT_PREFIX + base64.b64encode(nonce + sealed)

    def open_if_sealed(self, value: bytes, *, context: str) -> bytes:
        """`value` opened if it is sealed; as it is otherwise (a key-value store whose bus
        holds the key has opened it already)."""
        return self.open(value, context=context) if value.startswith(FORMAT_PREFIX) else value

    def open(self, sealed: bytes, *, context: str) -> bytes:
        """Decrypt a value sealed for `context`, or raise UnsealError."""
        if not sealed.startswith(FORMAT_PREFIX):
            raise UnsealError(f"the value at {context} is not a sealed value")
        try:
            raw = base64.b64decode(sealed[len(FORMAT_PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
        except (ValueError, InvalidTag) as exc:
            raise UnsealError(
                f"the value at {context} does not open with this key (wrong key or tampered)"
            ) from exc


def hkdf_key(material: bytes, *, info: bytes) -> bytes:
    """A 32-byte key derived from `material` for `info` (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(material)


def _public_bytes(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def _box_aead(shared: bytes, sender: bytes, receiver: bytes) -> AESGCM:
    return AESGCM(hkdf_key(shared, info=b"foot-box-v1" + sender + receiver))


def parse_public_key(text: str) -> X25519PublicKey:
    """A `foot-x25519:<base64>` public key; ValueError saying what is wrong otherwise."""
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"a public key starts with {PUBLIC_KEY_PREFIX!r}")
    try:
        raw = base64.b64decode(text[len(PUBLIC_KEY_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("a public key is base64 after its prefix") from None
    if len(raw) != X25519_BYTES:
        raise ValueError(f"a public key is {X25519_BYTES} bytes, this one {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def seal_to(public_key: str, plaintext: bytes, *, context: str) -> str:
    """`plaintext` sealed so that only the holder of `public_key`'s private key opens it,
    and only for `context` (a sealed join for `east` does not open as one for `west`)."""
    receiver = parse_public_key(public_key)
    ephemeral = X25519PrivateKey.generate()
    sender = _public_bytes(ephemeral.public_key())
    aead = _box_aead(ephemeral.exchange(receiver), sender, _public_bytes(receiver))
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext, context.encode())
    return BOX_PREFIX + base64.b64encode(sender + nonce + sealed).decode()


class BoxKey:
    """The private half of a sealed-message key pair (X25519)."""

    def __init__(self, private: bytes | None = None) -> None:
        self._private = (
            X25519PrivateKey.from_private_bytes(private)
            if private is not None
            else X25519PrivateKey.generate()
        )
        self.public_key = (
            PUBLIC_KEY_PREFIX + base64.b64encode(_public_bytes(self._private.public_key())).decode()
        )
        """The `foot-x25519:<base64>` text senders seal to."""

    def __repr__(self) -> str:
        return f"BoxKey(public={self.public_key})"

    def open(self, sealed: str, *, context: str) -> bytes:
        """Open a message sealed to this key for `context`, or raise UnsealError."""
        if not sealed.startswith(BOX_PREFIX):
            raise UnsealError(f"the {context} message is not sealed (it must start {BOX_PREFIX!r})")
        try:
            raw = base64.b64decode(sealed[len(BOX_PREFIX) :], validate=True)
            sender, nonce = raw[:X25519_BYTES], raw[X25519_BYTES : X25519_BYTES + NONCE_BYTES]
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(sender))
            receiver = _public_bytes(self._private.public_key())
            aead = _box_aead(shared, sender, receiver)
            return aead.decrypt(nonce, raw[X25519_BYTES + NONCE_BYTES :], context.encode())
        except (ValueError, InvalidTag) as exc:
            raise UnsealError(
                f"the sealed {context} message does not open with this key "
                "(sealed to another key, for another purpose, or tampered)"
            ) from exc
